/**
 * collect: accepts usage CloudEvents (binary, structured, batch) and seed-shaped JSON, validates
 * them, and appends them to the buffer. Replies faasbilling.buffer.flush.v1 when save should run.
 */
import { createDb, pingDb } from '../../src/adapters/postgres.js';
import { openBuffer } from '../../src/adapters/buffer/index.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Collector } from '../../src/stages/collect.js';
import type { Db } from '../../src/adapters/postgres.js';

/** Creates the collect function from its configuration. */
export const createCollect: FunctionFactory = (config) => {
  let db: Db | undefined;
  // The database is needed only by the embedded buffer; with Redis, collect never opens it.
  const database = (): Db => (db ??= createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX));
  const buffer = openBuffer(config, database);
  const metrics = createStageMetrics('collect', () => buffer.stats());
  const collector = new Collector({
    buffer,
    metrics,
    maxBatchEvents: config.COLLECT_MAX_BATCH_EVENTS,
    flushEveryEvents: config.COLLECT_FLUSH_EVERY_EVENTS,
    dedupCapacity: config.COLLECT_DEDUP_CAPACITY,
  });
  return Promise.resolve({
    metrics,
    handle: (request) => collector.accept(request),
    ready: async () => {
      await buffer.ping();
      if (db) await pingDb(db);
    },
    close: async () => {
      await buffer.close();
      await db?.destroy();
    },
  });
};

const collect = defineFunction('collect', createCollect);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = collect;
export default collect;
