/**
 * The aggregate stage's SQL: claiming dirty buckets, reading raw usage and stored window states,
 * and writing windows. Every function runs inside the caller's transaction, so the claim (a
 * DELETE of the marks) commits together with the windows it produced — or, when anything fails,
 * rolls back and the marks are dirty again.
 */
import type { Knex } from 'knex';
import { billedMbMsSql, type PlanRules } from '../core/pricing/index.js';
import type { WindowSize } from '../core/windows/index.js';
import type { RawWindowGroup, StoredWindow, WindowFigures } from './aggregate-state.js';
import { lockKeys } from '../adapters/postgres.js';

/** One dirty mark: a 5-minute UTC bucket of one series (tenant, service, revision). */
export interface DirtyBucket {
  tenant_id: string;
  service_id: string;
  revision_id: string;
  bucket_start: Date;
}

/** What the stage needs to know about a series. */
export interface SeriesInfo {
  revision_id: string;
  timezone: string;
  /** The revision's memory limit, else the service's; null when neither is set. */
  allocated_memory_mb: number | null;
}

/** A time range `[from, to)` of one series. */
export interface SeriesRange {
  tenantId: string;
  serviceId: string;
  revisionId: string;
  from: Date;
  to: Date;
}

/** A window of one series to write (figures) or to delete (null: no usage left in it). */
export interface WindowWrite {
  size: WindowSize;
  tenantId: string;
  serviceId: string;
  revisionId: string;
  start: Date;
  end: Date;
  figures: WindowFigures | null;
  billedPlanId: string | null;
}

/** One of `count` disjoint shares of the series (by a hash of the revision id). */
export interface SeriesShare {
  index: number;
  count: number;
}

/**
 * Claims up to `limit` dirty buckets, oldest first (a batch is a slice of time across series),
 * skipping marks another aggregator — or a transaction still inserting rows into that bucket, see
 * migration 0003 — holds locked. With a `share`, only buckets of that share's series.
 */
export async function claimDirtyBuckets(trx: Knex.Transaction, limit: number, share: SeriesShare = { index: 0, count: 1 }): Promise<DirtyBucket[]> {
  const result = await trx.raw<{ rows: DirtyBucket[] }>(
    `DELETE FROM usage_dirty d
      USING (SELECT tenant_id, service_id, revision_id, bucket_start FROM usage_dirty
              WHERE ?::int = 1 OR (hashtext(revision_id::text) & 2147483647) % ?::int = ?::int
              ORDER BY bucket_start, tenant_id, service_id, revision_id
              LIMIT ? FOR UPDATE SKIP LOCKED) c
      WHERE d.tenant_id = c.tenant_id AND d.service_id = c.service_id AND d.revision_id = c.revision_id AND d.bucket_start = c.bucket_start
      RETURNING d.tenant_id, d.service_id, d.revision_id, d.bucket_start`,
    [share.count, share.count, share.index, limit],
  );
  return result.rows;
}

/**
 * Serialises aggregators per series until commit. A 1h or 1d window is merged from rows that
 * other batches write; without the lock two batches of one series could each merge without the
 * other's uncommitted part, and the later commit would keep a window missing the earlier one's.
 * Locks are taken in key order, so two aggregators cannot deadlock.
 */
export async function lockSeries(trx: Knex.Transaction, revisionIds: readonly string[]): Promise<void> {
  await lockKeys(trx, 'aggregate', revisionIds);
}

/** Time zone (of the tenant) and allocated memory of each series. */
export async function seriesInfo(trx: Knex.Transaction, revisionIds: readonly string[]): Promise<Map<string, SeriesInfo>> {
  const result = await trx.raw<{ rows: SeriesInfo[] }>(
    `SELECT rv.id AS revision_id, t.timezone, coalesce(rv.memory_limit_mb, sv.memory_limit_mb) AS allocated_memory_mb
       FROM revisions rv JOIN services sv ON sv.id = rv.service_id JOIN tenants t ON t.id = sv.tenant_id
      WHERE rv.id = ANY(?::uuid[])`,
    [revisionIds as string[]],
  );
  return new Map(result.rows.map((r) => [r.revision_id, r]));
}

const rangeBindings = (ranges: readonly SeriesRange[]): Knex.Value[] => [
  ranges.map((r) => r.tenantId),
  ranges.map((r) => r.serviceId),
  ranges.map((r) => r.revisionId),
  ranges.map((r) => r.from.toISOString()),
  ranges.map((r) => r.to.toISOString()),
];

const rangesSql = `unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::timestamptz[], ?::timestamptz[]) AS w(tenant_id, service_id, revision_id, range_from, range_to)`;

/** A raw group with the series and 5-minute UTC bucket it belongs to. */
export interface RawGroupRow extends RawWindowGroup {
  revision_id: string;
  bucket_start: Date;
}

/**
 * The raw rows of the ranges, one group per series and 5-minute UTC bucket. Only counting and the
 * CPU sum happen in SQL; each event's duration, invocations and memory travel as text, because
 * the percentiles need every value anyway and the per-event metering rule is far cheaper in
 * TypeScript than in numeric SQL (see aggregate-meter.ts).
 */
export async function readRawGroups(trx: Knex.Transaction, ranges: readonly SeriesRange[]): Promise<RawGroupRow[]> {
  if (ranges.length === 0) return [];
  const result = await trx.raw<{ rows: RawGroupRow[] }>(
    `SELECT r.revision_id, date_bin('5 minutes', r.time, timestamptz '2000-01-01 00:00:00+00') AS bucket_start,
            count(*)::int AS events,
            (count(*) FILTER (WHERE r.cold_start))::int AS cold_starts,
            (count(*) FILTER (WHERE r.error))::int AS errors,
            sum(r.cpu_ms) AS total_cpu_ms,
            string_agg(r.duration_ms::text, ',') AS durations,
            string_agg(r.invocations::text, ',') AS invocations,
            string_agg(r.memory_mb::text, ',') AS memories
       FROM ${rangesSql}
       -- LATERAL with OFFSET 0 (which keeps the planner from flattening it): one index range scan
       -- per range, whatever the (often stale) row estimates say, never a scan of every raw row.
       CROSS JOIN LATERAL (
         SELECT * FROM usage_raw x
          WHERE x.tenant_id = w.tenant_id AND x.service_id = w.service_id AND x.revision_id = w.revision_id
            AND x.time >= w.range_from AND x.time < w.range_to OFFSET 0) r
      GROUP BY 1, 2`,
    rangeBindings(ranges),
  );
  return result.rows;
}

/** A stored window row with its key. */
export interface StoredWindowRow extends StoredWindow {
  tenant_id: string;
  service_id: string;
  revision_id: string;
  window_start: Date;
  window_end: Date;
}

/** Stored windows of `size` starting within the ranges. */
export async function readStoredWindows(trx: Knex.Transaction, size: WindowSize, ranges: readonly SeriesRange[]): Promise<StoredWindowRow[]> {
  if (ranges.length === 0) return [];
  const result = await trx.raw<{ rows: StoredWindowRow[] }>(
    `SELECT a.tenant_id, a.service_id, a.revision_id, a.window_start, a.window_end, a.events, a.invocations, a.total_duration_ms, a.memory_mb_invocations, a.max_memory_mb,
            a.total_cpu_ms, a.mb_ms, a.billed_mb_ms, a.billed_plan_id, a.cold_starts, a.errors, a.duration_sketch
       FROM ${rangesSql}
       CROSS JOIN LATERAL (
         SELECT * FROM usage_aggregate x
          WHERE x.window_size = ? AND x.tenant_id = w.tenant_id AND x.service_id = w.service_id AND x.revision_id = w.revision_id
            AND x.window_start >= w.range_from AND x.window_start < w.range_to OFFSET 0) a`,
    [...rangeBindings(ranges), size],
  );
  return result.rows;
}

/** A window whose billed MB·ms is recomputed from raw rows under one plan's rules. */
export interface BilledRecompute extends SeriesRange {
  planId: string | null;
  rules: PlanRules;
}

/**
 * Σ billed MB·ms of each range's raw rows under its plan's rules (`billedMbMsSql`, the rule the
 * price stage applies), as decimal text, in the order given. Used only where a merged window's
 * parts were metered under other plans (a plan change inside the window), so it is rare.
 */
export async function billedFromRaw(trx: Knex.Transaction, windows: readonly BilledRecompute[]): Promise<string[]> {
  if (windows.length === 0) return [];
  const cases = windows.map((w, i) => `WHEN ${i + 1} THEN ${billedMbMsSql(w.rules, 'r.duration_ms', 'r.memory_mb', 'r.invocations', 'a.allocated_mb')}`);
  const result = await trx.raw<{ rows: { k: string; billed: string }[] }>(
    `SELECT w.k, coalesce(sum(CASE w.k ${cases.join(' ')} END), 0) AS billed
       FROM unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::timestamptz[], ?::timestamptz[]) WITH ORDINALITY
            AS w(tenant_id, service_id, revision_id, range_from, range_to, k)
       JOIN LATERAL (SELECT coalesce(rv.memory_limit_mb, sv.memory_limit_mb) AS allocated_mb
                       FROM revisions rv JOIN services sv ON sv.id = rv.service_id WHERE rv.id = w.revision_id) a ON true
       LEFT JOIN usage_raw r ON r.tenant_id = w.tenant_id AND r.service_id = w.service_id AND r.revision_id = w.revision_id
        AND r.time >= w.range_from AND r.time < w.range_to
      GROUP BY w.k`,
    rangeBindings(windows),
  );
  const byIndex = new Map(result.rows.map((r) => [Number(r.k), r.billed]));
  return windows.map((_, i) => byIndex.get(i + 1) ?? '0');
}

const keyColumns = ['window_size', 'tenant_id', 'service_id', 'revision_id', 'window_start'] as const;
const valueColumns = [
  'window_end',
  'events',
  'invocations',
  'total_duration_ms',
  'avg_duration_ms',
  'p50_duration_ms',
  'p95_duration_ms',
  'max_memory_mb',
  'avg_memory_mb',
  'memory_mb_invocations',
  'total_cpu_ms',
  'mb_ms',
  'billed_mb_ms',
  'billed_plan_id',
  'cold_starts',
  'errors',
  'duration_sketch',
] as const;
const columnTypes: Record<(typeof keyColumns)[number] | (typeof valueColumns)[number], string> = {
  window_size: 'text',
  tenant_id: 'uuid',
  service_id: 'uuid',
  revision_id: 'uuid',
  window_start: 'timestamptz',
  window_end: 'timestamptz',
  events: 'bigint',
  invocations: 'bigint',
  total_duration_ms: 'numeric',
  avg_duration_ms: 'numeric',
  p50_duration_ms: 'float8',
  p95_duration_ms: 'float8',
  max_memory_mb: 'numeric',
  avg_memory_mb: 'numeric',
  memory_mb_invocations: 'numeric',
  total_cpu_ms: 'numeric',
  mb_ms: 'numeric',
  billed_mb_ms: 'numeric',
  billed_plan_id: 'uuid',
  cold_starts: 'int',
  errors: 'int',
  duration_sketch: 'jsonb',
};

/**
 * Upserts the windows with figures and deletes those without; returns how many rows changed. An
 * update that would write the same values is skipped, so recomputing an unchanged window leaves
 * its row (and updated_at) as it was.
 */
export async function writeWindows(trx: Knex.Transaction, windows: readonly WindowWrite[]): Promise<number> {
  const upserts = windows.filter((w) => w.figures !== null);
  const deletes = windows.filter((w) => w.figures === null);
  let changed = 0;
  if (upserts.length > 0) {
    // One JSON document rather than an array per column: far cheaper to serialise and to parse.
    const rows = upserts.map((w) => ({
      ...w.figures,
      window_size: w.size,
      tenant_id: w.tenantId,
      service_id: w.serviceId,
      revision_id: w.revisionId,
      window_start: w.start.toISOString(),
      window_end: w.end.toISOString(),
      billed_plan_id: w.billedPlanId,
    }));
    const columns = [...keyColumns, ...valueColumns];
    const result = await trx.raw<{ rowCount: number | null }>(
      `INSERT INTO usage_aggregate (${columns.join(', ')}, updated_at)
       SELECT ${columns.join(', ')}, now() FROM json_to_recordset(?::json) AS x(${columns.map((c) => `${c} ${columnTypes[c]}`).join(', ')})
       ON CONFLICT (${keyColumns.join(', ')}) DO UPDATE
         SET ${valueColumns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, updated_at = EXCLUDED.updated_at
       WHERE (${valueColumns.map((c) => `usage_aggregate.${c}`).join(', ')}) IS DISTINCT FROM (${valueColumns.map((c) => `EXCLUDED.${c}`).join(', ')})`,
      [JSON.stringify(rows)],
    );
    changed += result.rowCount ?? 0;
  }
  if (deletes.length > 0) {
    const result = await trx.raw<{ rowCount: number | null }>(
      `DELETE FROM usage_aggregate a USING unnest(?::text[], ?::uuid[], ?::uuid[], ?::uuid[], ?::timestamptz[]) AS d(${keyColumns.join(', ')})
        WHERE (a.window_size, a.tenant_id, a.service_id, a.revision_id, a.window_start) = (d.window_size, d.tenant_id, d.service_id, d.revision_id, d.window_start)`,
      [
        deletes.map((w) => w.size),
        deletes.map((w) => w.tenantId),
        deletes.map((w) => w.serviceId),
        deletes.map((w) => w.revisionId),
        deletes.map((w) => w.start.toISOString()),
      ],
    );
    changed += result.rowCount ?? 0;
  }
  return changed;
}

/** Marks every 5-minute bucket of the ranges dirty (a window to rebuild from raw rows). */
export async function markDirty(trx: Knex.Transaction, ranges: readonly SeriesRange[]): Promise<void> {
  if (ranges.length === 0) return;
  await trx.raw(
    `INSERT INTO usage_dirty (bucket_start, tenant_id, service_id, revision_id)
     SELECT b, w.tenant_id, w.service_id, w.revision_id
       FROM ${rangesSql} CROSS JOIN LATERAL generate_series(w.range_from, w.range_to - interval '5 minutes', interval '5 minutes') AS b
     ON CONFLICT DO NOTHING`,
    rangeBindings(ranges),
  );
}

/** How many buckets are dirty and how long the oldest has waited (for the metrics). */
export async function dirtyStats(db: Knex): Promise<{ buckets: number; lagSeconds: number }> {
  const result = await db.raw<{ rows: { buckets: number; lag_seconds: number | null }[] }>(
    `SELECT count(*)::int AS buckets, extract(epoch FROM now() - min(marked_at))::float8 AS lag_seconds FROM usage_dirty`,
  );
  const row = result.rows[0];
  return { buckets: row?.buckets ?? 0, lagSeconds: row?.lag_seconds ?? 0 };
}
