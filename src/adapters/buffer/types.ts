/**
 * The usage buffer between collect and save. Two implementations keep the same semantics:
 * Redis Streams with a consumer group (production) and a PostgreSQL queue table (embedded mode).
 * - `append` resolves only when the records are durably buffered;
 * - an entry read by a consumer stays pending until `ack`;
 * - entries pending longer than an idle time can be claimed by another consumer (redelivery).
 */
import type { UsageRecord } from '../../contract/usage.js';

/** One buffered entry: several usage records appended together. */
export interface BufferEntry {
  id: string;
  records: UsageRecord[];
}

export interface BufferStats {
  /** Entries in the buffer, read or not, not yet acknowledged. */
  length: number;
  /** Entries read by a consumer and not yet acknowledged. */
  pending: number;
  /** Age of the oldest unacknowledged entry in ms (0 when empty): how far save lags. */
  lagMs: number;
}

export interface UsageBuffer {
  /** Appends records (packed into entries of at most `maxRecordsPerEntry`); durable on resolve. */
  append(records: UsageRecord[]): Promise<void>;
  /** Reads up to `count` entries never delivered before, marking them pending for `consumer`. */
  readNew(consumer: string, count: number): Promise<BufferEntry[]>;
  /** Takes over up to `count` entries pending longer than `minIdleMs` (a crashed consumer's). */
  claimStale(consumer: string, minIdleMs: number, count: number): Promise<BufferEntry[]>;
  /** Acknowledges entries: they are gone for good. Call only after their rows are committed. */
  ack(ids: string[]): Promise<void>;
  stats(): Promise<BufferStats>;
  /** Throws when the buffer cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Most records packed into one buffer entry (one XADD / one row). */
export const maxRecordsPerEntry = 500;

/** Splits records into entry-sized chunks. */
export function chunkRecords(records: UsageRecord[], size = maxRecordsPerEntry): UsageRecord[][] {
  const chunks: UsageRecord[][] = [];
  for (let i = 0; i < records.length; i += size) chunks.push(records.slice(i, i + size));
  return chunks;
}

/** Decodes an entry's payload; a payload that is not a JSON array is reported, not guessed at. */
export function decodeRecords(payload: string): UsageRecord[] {
  const value: unknown = JSON.parse(payload);
  if (!Array.isArray(value)) throw new Error('buffer entry payload is not an array of usage records');
  return value as UsageRecord[];
}
