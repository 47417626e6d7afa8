/**
 * The asynchronous side of the metering middleware: usage reports wait in a bounded in-memory
 * queue and leave in batches, on a timer or when a batch is full. Enqueueing never blocks and
 * never throws; when the sink is down the queue keeps what fits and drops the rest, counting every
 * drop, so a broker outage costs usage records but never slows or fails the user's request.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { sendToSink, usageCloudEvent, type PendingUsage, type SinkMode } from './sink.js';

export interface UsageEmitterOptions {
  /** Where events go (K_SINK); undefined keeps nothing and counts every report as dropped. */
  sink: string | undefined;
  /** CloudEvent source of the events, e.g. /faasbilling/meter/<service>. */
  source: string;
  mode: SinkMode;
  /** Most reports held while waiting for the sink; past it new reports are dropped. */
  maxQueue: number;
  /** Most reports per send. */
  batchSize: number;
  /** How often queued reports are sent, in ms. */
  flushIntervalMs: number;
  /** How long one send may take, in ms. */
  timeoutMs: number;
  registry: Registry;
  /** Told about failed sends (rate-limited by the caller's logger, if at all). */
  onSendError?: (err: unknown) => void;
}

/** Queues usage reports and sends them in the background. */
export class UsageEmitter {
  private queue: PendingUsage[] = [];
  private sending: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly metrics;

  constructor(private readonly options: UsageEmitterOptions) {
    const registers = [options.registry];
    this.metrics = {
      events: new Counter({
        name: 'faasbilling_meter_events_total',
        help: 'Usage reports of the metering middleware, by outcome (sent, dropped: queue full or no sink)',
        labelNames: ['outcome'] as const,
        registers,
      }),
      sendFailures: new Counter({ name: 'faasbilling_meter_send_failures_total', help: 'Sends to the sink that failed (the reports stay queued while they fit)', registers }),
      queueLength: new Gauge({ name: 'faasbilling_meter_queue_length', help: 'Usage reports waiting to be sent', registers }),
    };
    this.metrics.queueLength.set(0);
    this.timer = setInterval(() => void this.flush(true), options.flushIntervalMs);
    this.timer.unref();
  }

  /** Number of reports waiting. */
  get queued(): number {
    return this.queue.length;
  }

  /** Queues one report; O(1), never throws. A full queue (or no sink) drops it, counted. */
  enqueue(usage: PendingUsage): void {
    if (this.closed || !this.options.sink || this.queue.length >= this.options.maxQueue) {
      this.metrics.events.inc({ outcome: 'dropped' });
      return;
    }
    this.queue.push(usage);
    this.metrics.queueLength.set(this.queue.length);
    if (this.queue.length >= this.options.batchSize && !this.sending) void this.flush(false);
  }

  /**
   * Sends what is queued, batch by batch, until fewer than a batch are left (all of it when `all`,
   * as the timer and close do) or a send fails (then the failed batch goes back to the front of
   * the queue, as far as it fits). One flush runs at a time. Only full batches leave between
   * ticks, so a busy function sends one request per batch, not one per handful of reports.
   */
  flush(all = true): Promise<void> {
    this.sending ??= this.drain(all).finally(() => (this.sending = undefined));
    return this.sending;
  }

  private async drain(all: boolean): Promise<void> {
    const sink = this.options.sink;
    if (!sink) return;
    // `all` sends what is queued now, not what keeps arriving meanwhile (that waits for full batches).
    let owed = all ? this.queue.length : 0;
    while (this.queue.length >= this.options.batchSize || (owed > 0 && this.queue.length > 0)) {
      const batch = this.queue.splice(0, this.options.batchSize);
      owed -= batch.length;
      try {
        await sendToSink(sink, batch.map((u) => usageCloudEvent(this.options.source, u)), this.options.mode, this.options.timeoutMs);
        this.metrics.events.inc({ outcome: 'sent' }, batch.length);
      } catch (err) {
        this.metrics.sendFailures.inc();
        // Reports that arrived meanwhile keep their place behind the failed batch; what no longer fits is dropped.
        const room = Math.max(0, this.options.maxQueue - this.queue.length);
        const kept = batch.slice(0, room);
        if (batch.length > kept.length) this.metrics.events.inc({ outcome: 'dropped' }, batch.length - kept.length);
        this.queue.unshift(...kept);
        this.options.onSendError?.(err);
        return;
      } finally {
        this.metrics.queueLength.set(this.queue.length);
      }
    }
  }

  /**
   * Stops the timer and sends what is left (on SIGTERM), trying until `deadlineMs` passes;
   * whatever could not be sent by then is counted as dropped.
   */
  async close(deadlineMs = 5000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + deadlineMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.queue.length > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await this.sending;
    this.closed = true;
    if (this.queue.length > 0) this.metrics.events.inc({ outcome: 'dropped' }, this.queue.length);
    this.queue = [];
    this.metrics.queueLength.set(0);
  }
}
