/**
 * save: triggered by faasbilling.buffer.flush.v1 or the per-minute PingSource; drains the buffer
 * into usage_raw and replies faasbilling.usage.saved.v1 when it stored (or dead-lettered) anything.
 */
import { CloudEvent } from 'cloudevents';
import { EventType, eventSource } from '../../src/contract/events.js';
import { openBuffer } from '../../src/adapters/buffer/index.js';
import { recordDeadLetters } from '../../src/adapters/dead-letters.js';
import { createDb } from '../../src/adapters/postgres.js';
import { UsageStore } from '../../src/adapters/usage-store.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Saver } from '../../src/stages/save.js';

/** Creates the save function from its configuration. */
export const createSave: FunctionFactory = (config, logger) => {
  const db = createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX);
  const buffer = openBuffer(config, () => db);
  const store = new UsageStore(db);
  const metrics = createStageMetrics('save', () => buffer.stats());
  const saver = new Saver({
    buffer,
    store,
    metrics,
    logger,
    consumer: config.SAVE_CONSUMER,
    batchEntries: config.SAVE_BATCH_ENTRIES,
    batchRecords: config.SAVE_BATCH_RECORDS,
    timeBudgetMs: config.SAVE_TIME_BUDGET_MS,
    claimIdleMs: config.SAVE_CLAIM_IDLE_MS,
    deadLetters: (letters) => recordDeadLetters(db, letters),
    prefetch: Boolean(config.REDIS_URL), // a Redis stream serves reads beside the write
  });
  return Promise.resolve({
    metrics,
    // Any trigger (flush reply, ping tick, a plain POST) means the same thing: drain now.
    handle: async () => {
      const saved = await saver.drain();
      if (saved.inserted === 0 && saved.dead_lettered === 0) return { statusCode: 204 };
      return new CloudEvent({ type: EventType.usageSaved, source: eventSource('save'), data: saved });
    },
    ready: async () => {
      await store.ping();
      await buffer.ping();
    },
    close: async () => {
      await buffer.close();
      await db.destroy();
    },
  });
};

const save = defineFunction('save', createSave);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = save;
export default save;
