/**
 * aggregate: triggered by faasbilling.usage.saved.v1 (save's reply), faasbilling.aggregate.tick.v1
 * and the 5-minute PingSource; recomputes the 5m/1h/1d windows of every dirty bucket within a
 * time budget and replies faasbilling.usage.aggregated.v1 when it recomputed any (else 204).
 * The work is in src/stages/aggregate*.ts.
 */
import { createDb, pingDb } from '../../src/adapters/postgres.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Aggregator, createAggregateMetrics } from '../../src/stages/aggregate.js';
import { AggregateStage } from '../../src/stages/aggregate-stage.js';

/** Creates the aggregate function from its configuration. */
export const createAggregate: FunctionFactory = (config, logger) => {
  const db = createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX);
  const metrics = createStageMetrics('aggregate');
  const aggregator = new Aggregator({
    db,
    logger,
    batchBuckets: config.AGGREGATE_BATCH_BUCKETS,
    timeBudgetMs: config.AGGREGATE_TIME_BUDGET_MS,
    concurrency: config.AGGREGATE_CONCURRENCY,
    metrics: createAggregateMetrics(metrics.registry, db),
  });
  const stage = new AggregateStage({ aggregator, logger, pingDb: () => pingDb(db) });
  return Promise.resolve({
    metrics,
    handle: (request) => stage.handle(request),
    ready: () => pingDb(db),
    close: () => db.destroy(),
  });
};

const aggregate = defineFunction('aggregate', createAggregate);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = aggregate;
export default aggregate;
