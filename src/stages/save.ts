/**
 * The save stage: drains the buffer into usage_raw within a time budget. Entries are acknowledged
 * only after their transaction has committed; entries a crashed consumer left pending are claimed
 * first. An entry that fails on its own while the database is up goes to dead_letters, so one bad
 * entry never blocks the rest.
 */
import type { Logger } from 'pino';
import { BillingError } from '../contract/problem.js';
import type { UsageSavedData } from '../contract/events.js';
import type { BufferEntry, UsageBuffer } from '../adapters/buffer/types.js';
import type { DeadLetter } from '../adapters/dead-letters.js';
import type { StoreResult, UsageStore } from '../adapters/usage-store.js';
import type { StageMetrics } from '../runtime/metrics.js';

export interface SaveOptions {
  buffer: UsageBuffer;
  store: UsageStore;
  metrics: StageMetrics;
  logger: Logger;
  consumer: string;
  batchEntries: number;
  /**
   * Records one transaction aims for: reads continue until they are reached or the buffer is
   * empty. Entries hold one record when the Broker delivers events one by one, up to 500 from
   * batches, so a fixed entry count alone would make tiny or huge transactions.
   */
  batchRecords: number;
  timeBudgetMs: number;
  claimIdleMs: number;
  /** Writes dead letters (committed when it resolves): where unreadable buffer records go. */
  deadLetters: (letters: DeadLetter[]) => Promise<number>;
  /**
   * Read the next batch while the current one is being stored, so reading and decoding overlap
   * the database's work. Only for a buffer that serves concurrent calls on its own connection
   * (Redis); the queue table shares the database the batch is being written to.
   */
  prefetch?: boolean;
}

const minIso = (a: string | null, b: string | null): string | null => (a === null ? b : b === null || a <= b ? a : b);
const maxIso = (a: string | null, b: string | null): string | null => (a === null ? b : b === null || a >= b ? a : b);

/** Sums per-batch results into the figures of one drain. */
class DrainTotals {
  inserted = 0;
  duplicates = 0;
  deadLettered = 0;
  minTime: string | null = null;
  maxTime: string | null = null;
  readonly tenants = new Set<string>();

  add(result: StoreResult): void {
    this.inserted += result.inserted;
    this.duplicates += result.duplicates;
    this.deadLettered += result.deadLettered;
    this.minTime = minIso(this.minTime, result.minTime);
    this.maxTime = maxIso(this.maxTime, result.maxTime);
    for (const tenant of result.tenants) this.tenants.add(tenant);
  }

  toEventData(): UsageSavedData {
    return {
      inserted: this.inserted,
      duplicates: this.duplicates,
      dead_lettered: this.deadLettered,
      min_time: this.minTime,
      max_time: this.maxTime,
      tenants: [...this.tenants].sort(),
    };
  }
}

export class Saver {
  constructor(private readonly options: SaveOptions) {}

  /** Drains until the buffer is empty or the time budget is spent; returns what was stored. */
  async drain(): Promise<UsageSavedData> {
    const { buffer, consumer, batchEntries, claimIdleMs, timeBudgetMs } = this.options;
    const deadline = Date.now() + timeBudgetMs;
    const totals = new DrainTotals();
    let entries = await this.withBuffer(() => buffer.claimStale(consumer, claimIdleMs, batchEntries));
    // A prefetched batch is only read, never acknowledged before its own commit: if anything
    // fails meanwhile, its entries stay pending and are claimed like a crashed consumer's.
    let next: Promise<BufferEntry[]> | undefined;
    while (Date.now() < deadline) {
      if (entries.length === 0) entries = next ? await next : await this.readBatch();
      next = undefined;
      if (entries.length === 0) break;
      if (this.options.prefetch) {
        next = this.readBatch();
        next.catch(() => undefined); // observed when awaited; never an unhandled rejection
      }
      await this.saveBatch(entries, totals);
      entries = [];
    }
    // Entries read ahead are stored even past the deadline (one batch), not left pending.
    if (next) {
      const rest = await next;
      if (rest.length > 0) await this.saveBatch(rest, totals);
    }
    return totals.toEventData();
  }

  /** Reads new entries until they hold `batchRecords` records or the buffer has no more. */
  private async readBatch(): Promise<BufferEntry[]> {
    const { buffer, consumer, batchEntries, batchRecords } = this.options;
    const entries: BufferEntry[] = [];
    let records = 0;
    while (records < batchRecords) {
      const read = await this.withBuffer(() => buffer.readNew(consumer, batchEntries));
      entries.push(...read);
      records += read.reduce((n, e) => n + e.records.length + e.rejected.length, 0);
      if (read.length < batchEntries) break;
    }
    return entries;
  }

  private async saveBatch(entries: BufferEntry[], totals: DrainTotals): Promise<void> {
    const { buffer, store, metrics } = this.options;
    const records = entries.flatMap((e) => e.records);
    metrics.batchSize.observe(records.length);
    const stopTimer = metrics.saveSeconds.startTimer();
    try {
      this.record(totals, await store.store(records));
    } catch (err) {
      metrics.saveFailures.inc();
      await this.isolateFailure(entries, totals, err);
      return;
    } finally {
      stopTimer();
    }
    await this.deadLetterRejected(entries, totals);
    await this.withBuffer(() => buffer.ack(entries.map((e) => e.id)));
  }

  /**
   * Dead-letters what the buffer could not read as usage records (a corrupt or foreign entry), so
   * it is kept with the reason instead of failing every drain or being acknowledged unseen.
   */
  private async deadLetterRejected(entries: BufferEntry[], totals: DrainTotals): Promise<void> {
    const letters: DeadLetter[] = entries.flatMap((entry) =>
      entry.rejected.map((r) => {
        const record = typeof r.value === 'object' && r.value !== null ? (r.value as Record<string, unknown>) : {};
        const text = (key: string): string | null => (typeof record[key] === 'string' ? record[key] : null);
        return {
          stage: 'save',
          reason: 'invalid_buffer_record',
          detail: `buffer entry ${entry.id}${r.index >= 0 ? ` record ${r.index}` : ''} is not a valid usage record: ${r.detail}`,
          // The entry id keeps the key unique when the record has no source/id of its own.
          source: text('source') ?? 'buffer',
          eventId: text('id') ?? `${entry.id}#${r.index}`,
          eventType: null,
          tenantKey: text('tenant_id'),
          payload: r.value,
        };
      }),
    );
    if (letters.length === 0) return;
    const written = await this.options.deadLetters(letters);
    totals.deadLettered += written;
    this.options.metrics.deadLettered.inc({ reason: 'invalid_buffer_record' }, written);
    this.options.logger.error({ records: letters.length }, 'unreadable buffer records dead-lettered');
  }

  /**
   * Runs a buffer call. When it fails because a dependency is down, the invocation fails with a
   * retryable 503 naming it (the queue-table buffer lives in PostgreSQL, so a database outage
   * shows up here first); any other failure is passed on as it is.
   */
  private async withBuffer<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const { buffer, store } = this.options;
      try {
        await store.ping();
      } catch {
        throw new BillingError('database_unavailable', 'PostgreSQL is not reachable; buffered entries stay pending and will be saved when it is back', true, undefined, { cause: err });
      }
      try {
        await buffer.ping();
      } catch {
        throw new BillingError('buffer_unavailable', 'the usage buffer is not reachable; its entries stay pending and will be saved when it is back', true, undefined, { cause: err });
      }
      throw err;
    }
  }

  /**
   * A failed batch: if the database is down, leave every entry pending (redelivered later) and
   * fail the invocation so the Broker retries. If it is up, the data is at fault: store entry by
   * entry and dead-letter the ones that fail alone.
   */
  private async isolateFailure(entries: BufferEntry[], totals: DrainTotals, cause: unknown): Promise<void> {
    const { buffer, store, logger } = this.options;
    try {
      await store.ping();
    } catch {
      throw new BillingError('database_unavailable', `PostgreSQL is not reachable; ${entries.length} buffer entries stay pending and will be saved when it is back`, true, undefined, { cause });
    }
    logger.warn({ err: cause, entries: entries.length }, 'batch failed with the database up; saving entry by entry');
    for (const entry of entries) {
      try {
        this.record(totals, await store.store(entry.records));
      } catch (err) {
        const detail = `insert failed: ${err instanceof Error ? err.message : String(err)}`;
        const written = await store.deadLetterRecords(entry.records, 'insert_failed', detail);
        totals.deadLettered += written;
        this.options.metrics.deadLettered.inc({ reason: 'insert_failed' }, written);
        logger.error({ err, entry: entry.id }, 'buffer entry dead-lettered');
      }
      await this.deadLetterRejected([entry], totals);
      await buffer.ack([entry.id]);
    }
  }

  /** Adds one stored batch to the drain's totals and to the metrics. */
  private record(totals: DrainTotals, result: StoreResult): void {
    const { metrics } = this.options;
    totals.add(result);
    metrics.rowsInserted.inc(result.inserted);
    metrics.duplicatesDropped.inc({ stage: 'save' }, result.duplicates);
    metrics.deadLettered.inc({ reason: 'unknown_tenant' }, result.deadLettered);
  }
}
