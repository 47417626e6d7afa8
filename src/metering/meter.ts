/**
 * The metering middleware: measures each invocation a workload serves (wall duration, CPU time,
 * memory, error status, cold start) and queues one `faasbilling.usage.v1` report per invocation
 * on the emitter, which sends them in the background. Usable as express middleware
 * (`meter.express()`) and around a faas-js-runtime handler (`meter.wrap(handle)`).
 *
 * What it does not guarantee: CPU time is the process's (process.cpuUsage), so invocations that
 * overlap in one process share theirs; memory is the container's (cgroup v2 memory.current) or the
 * process RSS when the invocation ends (read at most every 10 ms), not a per-request peak.
 */
import type { RequestHandler } from 'express';
import type { Context } from 'faas-js-runtime';
import { Counter, Registry } from 'prom-client';
import { usageLimits, type UsageData } from '../contract/usage.js';
import { memoryReader, ownCgroupDir } from './cgroup.js';
import type { MeteringConfig } from './config.js';
import { UsageEmitter } from './emitter.js';

/** One invocation being measured. */
export interface Measurement {
  startedAt: Date;
  startedHr: bigint;
  cpu: NodeJS.CpuUsage;
  /** Set on the first invocation of the process: ms from process start to this invocation. */
  coldStartMs: number | undefined;
}

const bytesPerMb = 1024 * 1024;

export interface MeterOptions {
  config: MeteringConfig;
  /** Registry the meter's metrics go to (a fresh one by default). */
  registry?: Registry;
  /** Told about failed sends. */
  onSendError?: (err: unknown) => void;
}

/** Measures invocations and reports them; one per process. */
export class Meter {
  readonly registry: Registry;
  readonly emitter: UsageEmitter;
  private readonly memory: { source: 'cgroup' | 'rss'; read(): number };
  private served = false;
  private readonly invocations: Counter<'outcome'>;
  private readonly coldStarts: Counter;

  constructor(private readonly options: MeterOptions) {
    const { config } = options;
    this.registry = options.registry ?? new Registry();
    this.memory = memoryReader(config.METERING_MEMORY_SOURCE === 'rss' ? undefined : ownCgroupDir());
    this.emitter = new UsageEmitter({
      sink: config.K_SINK,
      source: `/faasbilling/meter/${config.K_SERVICE}`,
      mode: config.METERING_SINK_MODE,
      maxQueue: config.METERING_MAX_QUEUE,
      batchSize: config.METERING_BATCH_SIZE,
      flushIntervalMs: config.METERING_FLUSH_INTERVAL_MS,
      timeoutMs: config.METERING_TIMEOUT_MS,
      registry: this.registry,
      onSendError: options.onSendError,
    });
    this.invocations = new Counter({
      name: 'faasbilling_meter_invocations_total',
      help: 'Invocations measured by the metering middleware, by outcome (ok, error)',
      labelNames: ['outcome'] as const,
      registers: [this.registry],
    });
    this.coldStarts = new Counter({ name: 'faasbilling_meter_cold_starts_total', help: 'Cold starts (first invocation of the process)', registers: [this.registry] });
  }

  /** Where memory figures come from. */
  get memorySource(): 'cgroup' | 'rss' {
    return this.memory.source;
  }

  /** Starts measuring one invocation; the process's first one is its cold start. */
  start(): Measurement {
    const coldStartMs = this.served ? undefined : Math.round(process.uptime() * 1000);
    this.served = true;
    return { startedAt: new Date(), startedHr: process.hrtime.bigint(), cpu: process.cpuUsage(), coldStartMs };
  }

  /** Ends a measurement and queues its usage report (never throws, never waits for the sink). */
  finish(measurement: Measurement, outcome: { error: boolean }): UsageData {
    const durationMs = Number(process.hrtime.bigint() - measurement.startedHr) / 1e6;
    const cpu = process.cpuUsage(measurement.cpu);
    const memoryBytes = this.memory.read();
    const { config } = this.options;
    const labels: Record<string, string> = { ...config.METERING_LABELS, memory_source: this.memory.source };
    if (measurement.coldStartMs !== undefined) labels.cold_start_ms = String(measurement.coldStartMs);
    const data: UsageData = {
      tenant_id: config.METERING_TENANT,
      service: config.K_SERVICE,
      revision: config.K_REVISION,
      invocations: 1,
      // Microsecond precision, what usage_raw keeps; capped at the contract's per-invocation ceiling.
      duration_ms: Math.min(Math.round(durationMs * 1000) / 1000, usageLimits.maxDurationMsPerInvocation),
      memory_mb: Math.min(Math.max(Math.ceil((memoryBytes / bytesPerMb) * 1000) / 1000, 0.001), usageLimits.maxMemoryMb),
      cpu_ms: Math.round(cpu.user + cpu.system) / 1000,
      cold_start: measurement.coldStartMs !== undefined,
      error: outcome.error,
      labels,
    };
    this.invocations.inc({ outcome: outcome.error ? 'error' : 'ok' });
    if (data.cold_start) this.coldStarts.inc();
    this.emitter.enqueue({ data, time: measurement.startedAt });
    return data;
  }

  /** Express middleware: one report per request, when its response finishes (or the client goes away). */
  express(): RequestHandler {
    return (_req, res, next) => {
      const measurement = this.start();
      let done = false;
      const end = (): void => {
        if (done) return;
        done = true;
        // A response cut off before it finished counts as an error, as does any 5xx.
        this.finish(measurement, { error: res.statusCode >= 500 || !res.writableFinished });
      };
      res.once('finish', end);
      res.once('close', end);
      next();
    };
  }

  /** Wraps a faas-js-runtime handler: a thrown error or a 5xx answer is an error invocation. */
  wrap<Body, Result>(handle: (context: Context, body?: Body) => Result | Promise<Result>): (context: Context, body?: Body) => Promise<Result> {
    return async (context, body) => {
      const measurement = this.start();
      let error = true;
      try {
        const result = await handle(context, body);
        error = statusOf(result) >= 500;
        return result;
      } finally {
        this.finish(measurement, { error });
      }
    };
  }

  /** Sends what is queued and stops (call it on SIGTERM, e.g. from a faas-js-runtime shutdown). */
  close(deadlineMs?: number): Promise<void> {
    return this.emitter.close(deadlineMs);
  }
}

function statusOf(result: unknown): number {
  if (typeof result === 'object' && result !== null && 'statusCode' in result) {
    const status = (result as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number') return status;
  }
  return 200;
}
