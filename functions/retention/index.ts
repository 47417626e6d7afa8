/**
 * retention: the daily PingSource (retention-daily) drops usage_raw month partitions older than
 * RETENTION_RAW_DAYS whose rows are aggregated and whose billing periods are final
 * (src/stages/retention.ts). A POST of anything runs it too; the answer is the run's report.
 */
import { Counter } from 'prom-client';
import { createDb, pingDb } from '../../src/adapters/postgres.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Retention } from '../../src/stages/retention.js';

/** Creates the retention function from its configuration. */
export const createRetention: FunctionFactory = (config, logger) => {
  const db = createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX);
  const metrics = createStageMetrics('retention');
  const dropped = new Counter({ name: 'faasbilling_retention_partitions_dropped_total', help: 'usage_raw month partitions dropped by retention', registers: [metrics.registry] });
  const kept = new Counter({
    name: 'faasbilling_retention_partitions_kept_total',
    help: 'usage_raw partitions past the retention that a run kept, by reason (not_aggregated, period_not_final)',
    labelNames: ['reason'] as const,
    registers: [metrics.registry],
  });
  const retention = new Retention({ db, logger, retentionDays: config.RETENTION_RAW_DAYS });
  return Promise.resolve({
    metrics,
    handle: async () => {
      const report = await retention.run();
      dropped.inc(report.dropped.length);
      for (const { reason } of report.kept) if (reason !== 'within_retention') kept.inc({ reason });
      return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(report) };
    },
    ready: () => pingDb(db),
    close: () => db.destroy(),
  });
};

const retention = defineFunction('retention', createRetention);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = retention;
export default retention;
