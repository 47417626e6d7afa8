/**
 * The one place billing reads usage (the data contract with the aggregate stage).
 *
 * Source: usage_aggregate 1h rows (windows aligned in the tenant's zone), whose billed_mb_ms was
 * metered under `billed_plan_id`, the plan in force at window_start. A window is taken from the
 * aggregate when it lies inside the segment and was metered under the segment's plan. Otherwise —
 * the window straddles a plan change (a change at 10:30), or the assignment changed after the
 * window was aggregated, or billed_plan_id is unset — the window is recomputed from usage_raw
 * with the segment plan's metering rules (`billedMbMsSql`, the same rule the aggregate applies),
 * split exactly at the segment bounds. Usage is never billed under rules of another plan. (One
 * query reads every segment; only segments with such a window are read again by the general
 * query, so the common case costs no anti-join.)
 *
 * Free tier in time order without shipping every hour to JavaScript: the free-tier walk of
 * `computeBill` (chunks by start, ties by service name, each taking min(quantity, what is left))
 * is run here in SQL over the hourly chunks with running sums, and each service comes back as its
 * totals plus the free part. `usageChunks` turns that into two chunks per service — the free part
 * at the segment start and the rest 1 ms later — on which computeBill's own walk gives every
 * service exactly that free part (the free parts sum to at most the allowance, and the rest only
 * exists once it is used up). So computeBill still does all the money, and a month of hourly rows
 * costs one row per service. Ties order service names with COLLATE "C" (code points), which equals
 * computeBill's code-unit order for every name without characters beyond U+FFFF.
 *
 * Cold starts recomputed from usage_raw count events flagged cold_start (one per event).
 */
import type { Knex } from 'knex';
import { Dec, billedMbMsSql, plain, type UsageChunk } from '../core/pricing/index.js';
import { ARCHITECTURE_LABEL, PRIORITY_LABEL, SPOT_PRIORITY } from '../core/pricing/plan.js';
import { splitBySchedule, type SchedulePiece } from '../core/pricing/schedule.js';
import type { BillSegment } from './segments.js';

/** A segment whose usage is read, under a caller's key. */
export interface SegmentUsageQuery {
  key: number;
  tenantId: string;
  segment: BillSegment;
  /** The tenant's zone (a plan's time-of-day schedule is read on its clock). */
  timeZone?: string;
}

/** One service's usage in one segment, with the free part of the walk. Decimal text throughout. */
export interface ServiceUsage {
  key: number;
  serviceId: string;
  service: string;
  invocations: string;
  freeInvocations: string;
  billedMbMs: string;
  freeMbMs: string;
  coldStarts: string;
  cpuMs: string;
  freeCpuMs: string;
  /** Plans with price variants only (read from raw events): the usage's architecture label, spot flag and schedule piece. */
  architecture: string | null;
  spot: boolean;
  timeOfDay: { multiplier: string; label: string | null } | null;
}

/** Windows are at most this long, so one that ends after an instant starts less than it before. */
const LONGEST_WINDOW = "interval '1 hour'";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** billed MB·ms of a usage_raw row `u` under the rules of the segment's plan (a CASE per plan). */
function billedMbMsByPlan(queries: readonly SegmentUsageQuery[]): string {
  const plans = new Map(queries.map((q) => [q.segment.plan.id, q.segment.plan]));
  const cases = [...plans.values()].map((plan) => {
    if (!uuid.test(plan.id)) throw new RangeError(`plan id ${JSON.stringify(plan.id)} is not a uuid`);
    const allocated = plan.rules.billed_memory === 'allocated' ? 'u.alloc_mb' : undefined;
    return `WHEN '${plan.id}'::uuid THEN ${billedMbMsSql(plan.rules, 'u.duration_ms', 'u.memory_mb', 'u.invocations', allocated)}`;
  });
  return `CASE s.plan_id ${cases.join(' ')} END`;
}

const SEGMENTS = `
  seg AS (
    SELECT * FROM unnest(?::int[], ?::uuid[], ?::uuid[], ?::timestamptz[], ?::timestamptz[], ?::numeric[], ?::numeric[], ?::numeric[], ?::boolean[])
      AS s(seg_key, tenant_id, plan_id, seg_from, seg_to, free_inv, free_mb_ms, free_cpu, raw_only)
  ),
  piece AS (
    SELECT * FROM unnest(?::int[], ?::int[], ?::timestamptz[], ?::timestamptz[]) AS p(seg_key, idx, p_from, p_to)
  )`;

/** 1h rows overlapping each segment; `usable` when inside it and metered under its plan. */
const AGGREGATE_ROWS = `
  SELECT s.seg_key, a.service_id, a.window_start AS start, a.window_end, a.invocations::numeric AS inv, a.billed_mb_ms AS mb_ms,
         a.cold_starts::numeric AS cs, a.total_cpu_ms AS cpu, NULL::text AS arch, false AS spot, NULL::int AS piece,
         (a.window_start >= s.seg_from AND a.window_end <= s.seg_to AND a.billed_plan_id IS NOT DISTINCT FROM s.plan_id AND NOT s.raw_only) AS usable
    FROM seg s
    JOIN usage_aggregate a ON a.tenant_id = s.tenant_id AND a.window_size = '1h'
     AND a.window_start < s.seg_to AND a.window_start > s.seg_from - ${LONGEST_WINDOW} AND a.window_end > s.seg_from`;

/**
 * Totals per (segment, service) of chunk rows (seg_key, service_id, start, inv, mb_ms, cs, cpu,
 * usable) with the free part of each, from the free-tier walk. Only segments whose usage exceeds a
 * non-zero allowance are walked (sorted); in the others each service's free part is all of its
 * usage (allowance > 0, total within it) or none (allowance 0). Rows of one (start, service) — its
 * revisions — are adjacent in the walk's order, so summing each row's clamped free part equals
 * clamping their sum, as computeBill's merge of equal chunks does.
 */
const walkAndTotals = (rows: string): string => `
  totals AS (
    SELECT seg_key, service_id, arch, spot, piece, sum(inv) AS inv, sum(mb_ms) AS mb_ms, sum(cs) AS cs, sum(cpu) AS cpu, bool_and(usable) AS usable
      FROM ${rows} GROUP BY seg_key, service_id, arch, spot, piece
  ),
  crossing AS (
    SELECT t.seg_key FROM totals t JOIN seg s ON s.seg_key = t.seg_key
     GROUP BY t.seg_key, s.free_inv, s.free_mb_ms, s.free_cpu
    HAVING (s.free_inv > 0 AND sum(t.inv) > s.free_inv) OR (s.free_mb_ms > 0 AND sum(t.mb_ms) > s.free_mb_ms)
        OR (s.free_cpu > 0 AND sum(t.cpu) > s.free_cpu)
  ),
  walk AS (
    SELECT c.seg_key, c.service_id, c.arch, c.spot, c.piece, c.inv, c.mb_ms, c.cpu, s.free_inv, s.free_mb_ms, s.free_cpu,
           sum(c.inv) OVER w - c.inv AS inv_before,
           sum(c.mb_ms) OVER w - c.mb_ms AS mb_ms_before,
           sum(c.cpu) OVER w - c.cpu AS cpu_before
      FROM ${rows} c
      JOIN crossing x ON x.seg_key = c.seg_key
      JOIN services sv ON sv.id = c.service_id
      JOIN seg s ON s.seg_key = c.seg_key
    WINDOW w AS (PARTITION BY c.seg_key ORDER BY c.start, sv.name COLLATE "C", c.arch COLLATE "C", c.spot, c.piece ROWS UNBOUNDED PRECEDING)
  ),
  walked AS MATERIALIZED (
    SELECT seg_key, service_id, arch, spot, piece,
           sum(least(inv, greatest(free_inv - inv_before, 0))) AS free_inv,
           sum(least(mb_ms, greatest(free_mb_ms - mb_ms_before, 0))) AS free_mb_ms,
           sum(least(cpu, greatest(free_cpu - cpu_before, 0))) AS free_cpu
      FROM walk GROUP BY seg_key, service_id, arch, spot, piece
  )
  SELECT t.seg_key, t.service_id, sv.name AS service, t.arch, t.spot, t.piece,
         t.inv AS invocations,
         CASE WHEN w.seg_key IS NOT NULL THEN w.free_inv WHEN s.free_inv > 0 THEN t.inv ELSE 0 END AS free_invocations,
         t.mb_ms AS billed_mb_ms,
         CASE WHEN w.seg_key IS NOT NULL THEN w.free_mb_ms WHEN s.free_mb_ms > 0 THEN t.mb_ms ELSE 0 END AS free_mb_ms,
         t.cs AS cold_starts,
         t.cpu AS cpu_ms,
         CASE WHEN w.seg_key IS NOT NULL THEN w.free_cpu WHEN s.free_cpu > 0 THEN t.cpu ELSE 0 END AS free_cpu_ms,
         t.usable
    FROM totals t
    JOIN seg s ON s.seg_key = t.seg_key
    JOIN services sv ON sv.id = t.service_id
    LEFT JOIN walked w ON w.seg_key = t.seg_key AND w.service_id = t.service_id
     AND coalesce(w.arch, '') = coalesce(t.arch, '') AND w.spot = t.spot AND coalesce(w.piece, -1) = coalesce(t.piece, -1)`;

/** The common case: every window of the segment comes straight from usage_aggregate. */
const fastSql = (): string => `WITH ${SEGMENTS}, agg AS (${AGGREGATE_ROWS}), ${walkAndTotals('agg')}`;

/** The general case: windows not usable as aggregated are recomputed from usage_raw. */
const generalSql = (queries: readonly SegmentUsageQuery[]): string => `
  WITH ${SEGMENTS},
  agg AS (${AGGREGATE_ROWS}),
  recompute AS (SELECT DISTINCT seg_key, start, window_end FROM agg WHERE NOT usable),
  chunk_rows AS (
    SELECT g.seg_key, g.service_id, g.start, g.inv, g.mb_ms, g.cs, g.cpu, g.arch, g.spot, g.piece, true AS usable
      FROM agg g
     WHERE NOT EXISTS (SELECT 1 FROM recompute r WHERE r.seg_key = g.seg_key AND r.start = g.start)
    UNION ALL
    SELECT r.seg_key, u.service_id, greatest(r.start, s.seg_from), u.invocations::numeric, ${billedMbMsByPlan(queries)},
           CASE WHEN u.cold_start THEN 1 ELSE 0 END, coalesce(u.cpu_ms, 0),
           CASE WHEN s.raw_only THEN u.labels->>'${ARCHITECTURE_LABEL}' END,
           s.raw_only AND coalesce(u.labels->>'${PRIORITY_LABEL}' = '${SPOT_PRIORITY}', false),
           CASE WHEN s.raw_only THEN (SELECT p.idx FROM piece p WHERE p.seg_key = s.seg_key AND u.time >= p.p_from AND u.time < p.p_to) END,
           true
      FROM recompute r
      JOIN seg s ON s.seg_key = r.seg_key
      JOIN LATERAL (
        SELECT x.*, coalesce(rv.memory_limit_mb, sv.memory_limit_mb) AS alloc_mb
          FROM usage_raw x
          JOIN revisions rv ON rv.id = x.revision_id
          JOIN services sv ON sv.id = x.service_id
         WHERE x.tenant_id = s.tenant_id
           AND x.time >= greatest(r.start, s.seg_from) AND x.time < least(r.window_end, s.seg_to)
      ) u ON true
  ),
  ${walkAndTotals('chunk_rows')}`;

type UsageRow = Record<string, string | number | boolean | null>;

/** Whether a segment's plan has price variants: its usage is then read from raw events, each at its own instant. */
const rawOnly = (q: SegmentUsageQuery): boolean => q.segment.plan.price_variants !== null;

/** The schedule pieces of each segment whose plan has a time-of-day schedule, by segment key. */
function schedulePieces(queries: readonly SegmentUsageQuery[]): Map<number, SchedulePiece[]> {
  const out = new Map<number, SchedulePiece[]>();
  for (const q of queries) {
    const schedule = q.segment.plan.price_variants?.schedule ?? [];
    if (schedule.length > 0) out.set(q.key, splitBySchedule(schedule, q.timeZone ?? 'UTC', q.segment.start, q.segment.end));
  }
  return out;
}

async function run(db: Knex, sql: string, queries: readonly SegmentUsageQuery[], pieces: ReadonlyMap<number, SchedulePiece[]>): Promise<UsageRow[]> {
  const flat = [...pieces.entries()].flatMap(([key, list]) => list.map((p, idx) => ({ key, idx, p })));
  const result = await db.raw<{ rows: UsageRow[] }>(sql, [
    queries.map((q) => q.key),
    queries.map((q) => q.tenantId),
    queries.map((q) => q.segment.plan.id),
    queries.map((q) => q.segment.start.toISOString()),
    queries.map((q) => q.segment.end.toISOString()),
    queries.map((q) => q.segment.freeInvocations),
    queries.map((q) => q.segment.freeMbMs),
    queries.map((q) => q.segment.freeCpuMs ?? '0'),
    queries.map(rawOnly),
    flat.map((f) => f.key),
    flat.map((f) => f.idx),
    flat.map((f) => f.p.start.toISOString()),
    flat.map((f) => f.p.end.toISOString()),
  ]);
  return result.rows;
}

/**
 * Reads the usage of every segment: one row per (segment key, service) that has usage. One query
 * for all segments; the few segments with a window that must be recomputed from usage_raw are
 * read again with the general query.
 */
export async function readSegmentUsage(db: Knex, queries: readonly SegmentUsageQuery[]): Promise<ServiceUsage[]> {
  if (queries.length === 0) return [];
  const pieces = schedulePieces(queries);
  let rows = await run(db, fastSql(), queries, new Map());
  const recompute = new Set(rows.filter((r) => r.usable !== true).map((r) => Number(r.seg_key)));
  if (recompute.size > 0) {
    const again = queries.filter((q) => recompute.has(q.key));
    const general = await run(db, generalSql(again), again, new Map([...pieces].filter(([key]) => recompute.has(key))));
    rows = [...rows.filter((r) => !recompute.has(Number(r.seg_key))), ...general];
  }
  return rows.map((r) => ({
    key: Number(r.seg_key),
    serviceId: String(r.service_id),
    service: String(r.service),
    invocations: String(r.invocations),
    freeInvocations: String(r.free_invocations),
    billedMbMs: String(r.billed_mb_ms),
    freeMbMs: String(r.free_mb_ms),
    coldStarts: String(r.cold_starts),
    cpuMs: String(r.cpu_ms),
    freeCpuMs: String(r.free_cpu_ms),
    architecture: r.arch === null || r.arch === undefined ? null : String(r.arch),
    spot: r.spot === true,
    timeOfDay: (() => {
      const piece = r.piece === null || r.piece === undefined ? undefined : pieces.get(Number(r.seg_key))?.[Number(r.piece)];
      return piece ? { multiplier: piece.multiplier, label: piece.label } : null;
    })(),
  }));
}

/**
 * A segment's usage as computeBill chunks: per service its free part at the segment start and
 * the rest 1 ms later (see the module comment for why computeBill then reproduces the walk). A
 * service wholly free, or with nothing free, needs one chunk: all at the start, or all 1 ms later.
 */
export function usageChunks(rows: readonly ServiceUsage[], segment: BillSegment): UsageChunk[] {
  const startMs = segment.start.getTime();
  if (segment.end.getTime() - startMs < 2) {
    throw new RangeError(`a plan segment must last at least 2 ms (got [${segment.start.toISOString()}, ${segment.end.toISOString()}))`);
  }
  const freeAt = segment.start.toISOString();
  const restAt = new Date(startMs + 1).toISOString();
  return rows.flatMap((r): UsageChunk[] => {
    const variant = { architecture: r.architecture, spot: r.spot, ...(r.timeOfDay ? { timeOfDay: r.timeOfDay } : {}) };
    const all = { service: r.service, invocations: r.invocations, billedMbMs: r.billedMbMs, coldStarts: r.coldStarts, cpuMs: r.cpuMs, ...variant };
    const restInvocations = new Dec(r.invocations).minus(r.freeInvocations);
    const restMbMs = new Dec(r.billedMbMs).minus(r.freeMbMs);
    const restCpuMs = new Dec(r.cpuMs).minus(r.freeCpuMs);
    if (restInvocations.isZero() && restMbMs.isZero() && restCpuMs.isZero()) return [{ ...all, start: freeAt }];
    if (new Dec(r.freeInvocations).isZero() && new Dec(r.freeMbMs).isZero() && new Dec(r.freeCpuMs).isZero()) return [{ ...all, start: restAt }];
    return [
      { service: r.service, start: freeAt, invocations: r.freeInvocations, billedMbMs: r.freeMbMs, coldStarts: '0', cpuMs: r.freeCpuMs, ...variant },
      { ...all, start: restAt, invocations: plain(restInvocations), billedMbMs: plain(restMbMs), cpuMs: plain(restCpuMs) },
    ];
  });
}
