/**
 * Stage metrics (prom-client). Each function process has its own registry, served on /metrics
 * next to faas-js-runtime's own faas_* metrics.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BufferStats } from '../adapters/buffer/types.js';

/** The metrics of one function process; buffer gauges are read from `bufferStats` at scrape time. */
export function createStageMetrics(functionName: string, bufferStats?: () => Promise<BufferStats>) {
  const registry = new Registry();
  registry.setDefaultLabels({ function: functionName });
  const registers = [registry];
  return {
    registry,
    eventsAccepted: new Counter({ name: 'faasbilling_events_accepted_total', help: 'Usage events accepted into the buffer', registers }),
    eventsRejected: new Counter({
      name: 'faasbilling_events_rejected_total',
      help: 'Usage events rejected, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    duplicatesDropped: new Counter({
      name: 'faasbilling_duplicates_total',
      help: 'Events dropped as duplicates of an earlier (source, id), by stage',
      labelNames: ['stage'] as const,
      registers,
    }),
    requestProblems: new Counter({
      name: 'faasbilling_http_problems_total',
      help: 'Requests answered with a problem (4xx/5xx), by status',
      labelNames: ['status'] as const,
      registers,
    }),
    batchSize: new Histogram({
      name: 'faasbilling_batch_size',
      help: 'Events per request (collect) or per transaction (save)',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000],
      registers,
    }),
    bufferGauges: bufferStats ? bufferGauges(registry, bufferStats) : undefined,
    rowsInserted: new Counter({ name: 'faasbilling_rows_inserted_total', help: 'Rows inserted into usage_raw', registers }),
    deadLettered: new Counter({
      name: 'faasbilling_dead_letters_total',
      help: 'Events written to dead_letters, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    saveSeconds: new Histogram({
      name: 'faasbilling_save_transaction_seconds',
      help: 'Time to store one batch in PostgreSQL (transaction commit included)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    saveFailures: new Counter({ name: 'faasbilling_save_failures_total', help: 'Batches whose transaction failed (entries stay pending)', registers }),
  };
}
export type StageMetrics = ReturnType<typeof createStageMetrics>;

/** Gauges of the buffer's length, pending entries and lag, refreshed once per scrape. */
function bufferGauges(registry: Registry, bufferStats: () => Promise<BufferStats>) {
  let latest: Promise<BufferStats | undefined> | undefined;
  // One stats call serves the three gauges of a scrape; a buffer that is down leaves them unset.
  const read = (): Promise<BufferStats | undefined> => {
    latest ??= bufferStats()
      .catch(() => undefined)
      .finally(() => setTimeout(() => (latest = undefined), 250).unref());
    return latest;
  };
  const gauge = (name: string, help: string, pick: (s: BufferStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const stats = await read();
        if (stats) this.set(pick(stats));
      },
    });
  return {
    length: gauge('faasbilling_buffer_length', 'Buffered entries not yet acknowledged', (s) => s.length),
    pending: gauge('faasbilling_buffer_pending', 'Buffered entries read and not yet acknowledged', (s) => s.pending),
    lagSeconds: gauge('faasbilling_buffer_lag_seconds', 'Age of the oldest unacknowledged entry', (s) => s.lagMs / 1000),
  };
}
