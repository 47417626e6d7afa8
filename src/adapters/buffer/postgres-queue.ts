/**
 * The embedded usage buffer: a queue table in the (embedded) PostgreSQL, claimed with
 * FOR UPDATE SKIP LOCKED. It lives in the database so collect and save, each in its own process
 * as in a cluster, share it, and it survives a crash of either.
 */
import type { Db } from '../postgres.js';
import type { UsageRecord } from '../../contract/usage.js';
import { chunkRecords, decodeEntry, type BufferEntry, type BufferStats, type UsageBuffer } from './types.js';

interface EntryRow {
  id: string;
  payload: string;
}

export class PostgresQueueBuffer implements UsageBuffer {
  constructor(private readonly db: Db) {}

  async append(records: UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.db('buffer_entries').insert(chunkRecords(records).map((chunk) => ({ payload: JSON.stringify(chunk) })));
  }

  private async claim(consumer: string, count: number, where: string, bindings: unknown[]): Promise<BufferEntry[]> {
    const result = await this.db.raw<{ rows: EntryRow[] }>(
      `UPDATE buffer_entries SET claimed_by = ?, claimed_at = clock_timestamp(), deliveries = deliveries + 1
        WHERE id IN (SELECT id FROM buffer_entries WHERE ${where} ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
        RETURNING id::text AS id, payload`,
      [consumer, ...bindings, count] as never[],
    );
    return result.rows
      .sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)))
      .map((row) => decodeEntry(row.id, row.payload));
  }

  readNew(consumer: string, count: number): Promise<BufferEntry[]> {
    return this.claim(consumer, count, 'claimed_at IS NULL', []);
  }

  claimStale(consumer: string, minIdleMs: number, count: number): Promise<BufferEntry[]> {
    return this.claim(consumer, count, `claimed_at < clock_timestamp() - (? * interval '1 millisecond')`, [minIdleMs]);
  }

  async ack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db('buffer_entries').whereIn('id', ids).delete();
  }

  async stats(): Promise<BufferStats> {
    const row = (await this.db('buffer_entries')
      .select(
        this.db.raw('count(*)::int AS length'),
        this.db.raw('(count(*) FILTER (WHERE claimed_at IS NOT NULL))::int AS pending'),
        this.db.raw(`coalesce((extract(epoch FROM clock_timestamp() - min(enqueued_at)) * 1000)::bigint, 0)::text AS lag_ms`),
      )
      .first()) as { length: number; pending: number; lag_ms: string };
    return { length: row.length, pending: row.pending, lagMs: Number(row.lag_ms) };
  }

  async ping(): Promise<void> {
    await this.db.raw('select 1');
  }

  async close(): Promise<void> {
    // The knex pool belongs to the caller, who destroys it.
  }
}
