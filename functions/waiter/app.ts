/**
 * waiter: the reference workload of the seed, as an express app. `GET /invoke?sleep_ms=&mem_mb=&cpu_spin_ms=`
 * really sleeps, holds the memory and spins the CPU; /metrics has the seed's waiter_* metrics and
 * the metering middleware's; /healthz and /readiness answer probes. Every invocation is metered.
 */
import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import { Counter, Gauge, Histogram } from 'prom-client';
import { z } from 'zod';
import { problemContentType } from '../../src/contract/problem.js';
import type { Meter } from '../../src/metering/meter.js';
import { simulateLoad } from './load.js';

/** Input limits: a request cannot ask for more than these (no 100 GB allocation on request). */
export const waiterLimitsSchema = z.object({
  WAITER_MAX_SLEEP_MS: z.coerce.number().int().positive().default(60_000),
  WAITER_MAX_MEM_MB: z.coerce.number().int().positive().default(1024),
  WAITER_MAX_CPU_SPIN_MS: z.coerce.number().int().positive().default(30_000),
});
export type WaiterLimits = z.infer<typeof waiterLimitsSchema>;

function waiterMetrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({ name: 'waiter_requests_total', help: 'Requests served', labelNames: ['method', 'endpoint', 'status'] as const, registers }),
    duration: new Histogram({
      name: 'waiter_request_duration_seconds',
      help: 'Request duration',
      labelNames: ['endpoint'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    memory: new Gauge({
      name: 'waiter_memory_usage_bytes',
      help: 'Resident memory of the waiter process',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    }),
    coldStarts: new Counter({ name: 'waiter_cold_starts_total', help: 'Cold starts (the first invocation of the process)', registers }),
    errors: new Counter({ name: 'waiter_errors_total', help: 'Invocations that failed, by reason', labelNames: ['reason'] as const, registers }),
  };
}

/** Builds the waiter app around `meter` (whose registry also carries the waiter_* metrics). */
export function createWaiterApp(meter: Meter, limits: WaiterLimits): Express {
  const metrics = waiterMetrics(meter.registry);
  const query = z.object({
    sleep_ms: z.coerce.number().int().min(0).max(limits.WAITER_MAX_SLEEP_MS).default(0),
    mem_mb: z.coerce.number().int().min(0).max(limits.WAITER_MAX_MEM_MB).default(0),
    cpu_spin_ms: z.coerce.number().int().min(0).max(limits.WAITER_MAX_CPU_SPIN_MS).default(0),
  });
  let served = false;
  const app = express();
  app.disable('x-powered-by');

  app.use((req, res, next) => {
    const endpoint = req.path;
    const stop = metrics.duration.startTimer({ endpoint });
    res.once('finish', () => {
      stop();
      metrics.requests.inc({ method: req.method, endpoint, status: String(res.statusCode) });
    });
    next();
  });

  app.get('/invoke', meter.express(), async (req, res) => {
    if (!served) metrics.coldStarts.inc();
    const coldStart = !served;
    served = true;
    const parsed = query.safeParse(req.query);
    if (!parsed.success) {
      metrics.errors.inc({ reason: 'invalid_input' });
      const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      res.status(400).type(problemContentType).send(JSON.stringify({ type: 'urn:faasbilling:problem:invalid_input', title: 'invalid input', status: 400, detail }));
      return;
    }
    try {
      const { sleep_ms: sleepMs, mem_mb: memMb, cpu_spin_ms: cpuSpinMs } = parsed.data;
      const { cpuMsUsed, heldBytes } = await simulateLoad({ sleepMs, memMb, cpuSpinMs });
      res.json({ sleep_ms: sleepMs, mem_mb: memMb, cpu_spin_ms: cpuSpinMs, cpu_ms_used: Math.round(cpuMsUsed), held_bytes: heldBytes, cold_start: coldStart });
    } catch (err) {
      metrics.errors.inc({ reason: 'internal' });
      res.status(500).type(problemContentType).send(JSON.stringify({ type: 'urn:faasbilling:problem:internal', title: 'internal error', status: 500, detail: err instanceof Error ? err.message : String(err) }));
    }
  });

  app.get('/metrics', async (_req, res) => {
    res.type(meter.registry.contentType).send(await meter.registry.metrics());
  });
  // The seed's probe paths, and the ones every FaaS Billing function has.
  for (const probe of ['/healthz', '/readiness', '/health/liveness', '/health/readiness']) {
    app.get(probe, (_req, res) => void res.type('text/plain').send('OK'));
  }
  return app;
}
