/**
 * The usage buffer between collect and save. Two implementations keep the same semantics:
 * Redis Streams with a consumer group (production) and a PostgreSQL queue table (embedded mode).
 * - `append` resolves only when the records are durably buffered;
 * - an entry read by a consumer stays pending until `ack`;
 * - entries pending longer than an idle time can be claimed by another consumer (redelivery).
 */
import { usageRecordSchema, type UsageRecord } from '../../contract/usage.js';

/** A part of an entry that is not a valid usage record (or an entry that is not an array). */
export interface RejectedRecord {
  /** Position in the entry; -1 when the whole payload is unreadable. */
  index: number;
  value: unknown;
  detail: string;
}

/** One buffered entry: several usage records appended together. */
export interface BufferEntry {
  id: string;
  records: UsageRecord[];
  /** What could not be read as a usage record; save dead-letters it so it is never lost or retried forever. */
  rejected: RejectedRecord[];
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

/**
 * Decodes an entry's payload. Never throws: a corrupt entry (not JSON, not an array, a record
 * that fails the schema) must not block the entries beside it, so what cannot be read is
 * returned as rejected, with the reason.
 */
export function decodeEntry(id: string, payload: string): BufferEntry {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch (err) {
    return { id, records: [], rejected: [{ index: -1, value: payload, detail: `not JSON: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  if (!Array.isArray(value)) return { id, records: [], rejected: [{ index: -1, value, detail: 'not an array of usage records' }] };
  const records: UsageRecord[] = [];
  const rejected: RejectedRecord[] = [];
  value.forEach((item: unknown, index) => {
    const parsed = usageRecordSchema.safeParse(item);
    if (parsed.success) records.push(parsed.data);
    else rejected.push({ index, value: item, detail: parsed.error.issues.map((i) => `${i.path.join('.') || '(record)'}: ${i.message}`).join('; ') });
  });
  return { id, records, rejected };
}
