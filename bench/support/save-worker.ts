/**
 * The save stage in a process of its own (as its pod), driven by the bench: the real Saver over
 * UsageStore and RedisStreamBuffer, with the batch settings of src/runtime/config.ts.
 *
 * Protocol: the worker connects and sends "ready". On "warmup" it drains what the stream holds
 * (a few records the bench put there, so the timed run starts warm, as a long-lived pod is) and
 * answers "warm". On "go" it drains, timed. In mode "until-empty" it stops as soon as the stream
 * has nothing new; in mode "until-finish" it keeps draining (as the per-minute ticks and flush
 * replies would) until the bench sends "finish" and the stream is empty. It ends with "done"
 * carrying its totals.
 */
import { z } from 'zod';
import { RedisStreamBuffer } from '../../src/adapters/buffer/redis.js';
import { recordDeadLetters } from '../../src/adapters/dead-letters.js';
import type { UsageBuffer } from '../../src/adapters/buffer/types.js';
import { createDb, type Db } from '../../src/adapters/postgres.js';
import { UsageStore, type StoreResult } from '../../src/adapters/usage-store.js';
import type { UsageRecord } from '../../src/contract/usage.js';
import { loadConfig } from '../../src/runtime/config.js';
import { createLogger } from '../../src/runtime/logger.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Saver } from '../../src/stages/save.js';
import { childArgument, failInChild, fromParent, toParent } from './child.js';

export const saveWorkerArgument = z.object({
  databaseUrl: z.string().url(),
  redisUrl: z.string().url(),
  stream: z.string().min(1),
  mode: z.enum(['until-empty', 'until-finish']),
});
export type SaveWorkerArgument = z.infer<typeof saveWorkerArgument>;

/** Where a drain's time goes: each buffer call and each store, summed in ms. */
export type PhaseTimes = Record<'readMs' | 'storeMs' | 'ackMs' | 'claimMs', number>;

/** What the worker reports when it is done. */
export interface SaveWorkerTotals {
  type: 'done';
  inserted: number;
  duplicates: number;
  deadLettered: number;
  drains: number;
  /** Transactions the store committed (store calls). */
  transactions: number;
  /** From "go" to the last commit, measured inside the worker. */
  elapsedMs: number;
  phases: PhaseTimes;
}

/** Adds the time `call` takes to `times[phase]`. */
async function timed<T>(times: PhaseTimes, phase: keyof PhaseTimes, call: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await call();
  } finally {
    times[phase] += performance.now() - started;
  }
}

/** The buffer, timing each call the saver makes (stream reads include decoding the entries). */
function timedBuffer(inner: UsageBuffer, times: PhaseTimes): UsageBuffer {
  return {
    append: (records) => inner.append(records),
    readNew: (consumer, count) => timed(times, 'readMs', () => inner.readNew(consumer, count)),
    claimStale: (consumer, idle, count) => timed(times, 'claimMs', () => inner.claimStale(consumer, idle, count)),
    ack: (ids) => timed(times, 'ackMs', () => inner.ack(ids)),
    stats: () => inner.stats(),
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
}

/** The store, timing each batch (resolving ids, COPY, INSERT and commit). */
class TimedUsageStore extends UsageStore {
  transactions = 0;

  constructor(
    db: Db,
    private readonly times: PhaseTimes,
  ) {
    super(db);
  }

  override store(records: UsageRecord[]): Promise<StoreResult> {
    this.transactions += 1;
    return timed(this.times, 'storeMs', () => super.store(records));
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const arg = saveWorkerArgument.parse(childArgument());
  const config = loadConfig({ ...process.env, DATABASE_URL: arg.databaseUrl, REDIS_URL: arg.redisUrl, BUFFER_STREAM: arg.stream });
  const logger = createLogger('bench-save', 'warn');
  const db = createDb(arg.databaseUrl, config.DATABASE_POOL_MAX, logger);
  const phases: PhaseTimes = { readMs: 0, storeMs: 0, ackMs: 0, claimMs: 0 };
  const buffer = timedBuffer(RedisStreamBuffer.connect(arg.redisUrl, arg.stream), phases);
  const store = new TimedUsageStore(db, phases);
  const saver = new Saver({
    buffer,
    store,
    metrics: createStageMetrics('save'),
    logger,
    consumer: 'bench-save',
    batchEntries: config.SAVE_BATCH_ENTRIES,
    batchRecords: config.SAVE_BATCH_RECORDS,
    timeBudgetMs: config.SAVE_TIME_BUDGET_MS,
    claimIdleMs: config.SAVE_CLAIM_IDLE_MS,
    deadLetters: (letters) => recordDeadLetters(db, letters),
    prefetch: true, // as functions/save does on Redis
  });
  await store.ping();
  await buffer.stats(); // creates the consumer group before the bench starts the clock

  let finishing = arg.mode === 'until-empty';
  void fromParent('finish').then(() => (finishing = true));
  toParent({ type: 'ready' });
  while ((await fromParent('warmup', 'go')).type === 'warmup') {
    await saver.drain();
    toParent({ type: 'warm' });
  }

  const started = performance.now();
  let lastCommit = started;
  for (const phase of Object.keys(phases) as (keyof PhaseTimes)[]) phases[phase] = 0;
  store.transactions = 0;
  const totals = { inserted: 0, duplicates: 0, deadLettered: 0, drains: 0 };
  for (;;) {
    const saved = await saver.drain();
    totals.drains += 1;
    totals.inserted += saved.inserted;
    totals.duplicates += saved.duplicates;
    totals.deadLettered += saved.dead_lettered;
    const stored = saved.inserted + saved.duplicates + saved.dead_lettered;
    if (stored > 0) {
      lastCommit = performance.now();
      continue;
    }
    if (finishing && (await buffer.stats()).length === 0) break;
    // Nothing new yet: a real save would wait for the next flush reply or tick.
    await pause(20);
  }
  const done: SaveWorkerTotals = { type: 'done', ...totals, transactions: store.transactions, elapsedMs: lastCommit - started, phases };
  toParent(done);
  await buffer.close();
  await db.destroy();
  process.disconnect();
}

main().catch(failInChild);
