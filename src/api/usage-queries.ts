/**
 * Read-only usage queries behind the REST API: a keyset-paginated listing of usage_aggregate
 * windows, and the one-call usage dashboard of a tenant (its open period, the stored month-to-date
 * running cost, daily series per service from the 1d windows, top services, totals).
 *
 * - Quantities that are NUMERIC in the database (durations, memory, MB·ms, GB-s, money) leave as
 *   exact decimal strings (never through a JS float); counts (invocations, events, cold starts,
 *   errors) are numbers. GB-s = billed MB·ms / MB_MS_PER_GB_S (1 024 000), exact.
 * - Tenant scoping is the caller's allowed set (`tenantIds`): no row of another tenant is ever
 *   returned, whatever the other filters name.
 * - Every value reaches SQL as a binding; errors a caller can cause are `QueryError`s with a code.
 * - p95 figures that combine several windows (revisions of a service in a day, days, services) are
 *   the maximum of the windows' p95s: an upper bound of the combined p95, not an estimate of it.
 */
import type { Knex } from 'knex';
import { DateTime } from 'luxon';
import { z } from 'zod';
import { currentPeriod } from '../billing/periods.js';
import { Dec, MB_MS_PER_GB_S, lineKinds, meters, minorUnitDigits, plain } from '../core/pricing/index.js';
import { windowBoundsMs, windowSizes, type WindowSize } from '../core/windows/index.js';

/** What a caller did wrong: a bad cursor, an unknown tenant, an argument out of range. */
export type QueryErrorCode = 'invalid_cursor' | 'tenant_not_found' | 'invalid_argument';

export class QueryError extends Error {
  override readonly name = 'QueryError';
  constructor(
    readonly code: QueryErrorCode,
    message: string = code,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Output schemas (zod: the API puts them in its OpenAPI document; the TS types derive from them)

const decimalString = z.string().regex(/^-?\d+(\.\d+)?$/, 'a decimal number written as a string');
const instant = z.iso.datetime();
const localDate = z.iso.date();
const count = z.number().int().nonnegative();

/** One usage_aggregate window, JSON-friendly. */
export const aggregateRowSchema = z.object({
  id: z.string().describe('usage_aggregate id (bigint as text)'),
  tenant_id: z.uuid(),
  service_id: z.uuid(),
  service_name: z.string(),
  revision_id: z.uuid(),
  revision_name: z.string(),
  window_size: z.enum(windowSizes),
  window_start: instant,
  window_end: instant,
  invocations: count,
  events: count.describe('usage reports aggregated into the window'),
  total_duration_ms: decimalString,
  avg_duration_ms: decimalString.nullable(),
  p50_duration_ms: decimalString.nullable(),
  p95_duration_ms: decimalString.nullable(),
  max_memory_mb: decimalString.nullable(),
  avg_memory_mb: decimalString.nullable(),
  total_cpu_ms: decimalString,
  mb_ms: decimalString.describe('observed MB·ms, before any metering rule'),
  billed_mb_ms: decimalString.describe('MB·ms after the plan’s metering rules'),
  billed_gb_s: decimalString.describe('billed_mb_ms / 1 024 000'),
  cold_starts: count,
  errors: count,
  billed_plan_id: z.uuid().nullable(),
  updated_at: instant,
});
export type AggregateRow = z.infer<typeof aggregateRowSchema>;

export const aggregatePageSchema = z.object({
  items: z.array(aggregateRowSchema),
  next_cursor: z.string().nullable().describe('opaque; pass as `cursor` for the next page, null on the last page'),
});
export type AggregatePage = z.infer<typeof aggregatePageSchema>;

const usageFigures = {
  invocations: count,
  gb_s: decimalString.describe('billed GB-s'),
  cold_starts: count,
  errors: count,
  p95_duration_ms: decimalString.nullable().describe('max of the windows’ p95: an upper bound of the combined p95; null without usage'),
};

const dailyPointSchema = z.object({ date: localDate.describe('tenant-local date'), ...usageFigures });

const rateString = decimalString.describe('ratio with 4 decimals ("0.0125"), "0" when there are no invocations');

const runningCostLineSchema = z.object({
  service: z.string(),
  service_id: z.uuid().nullable(),
  meter: z.enum([...meters, 'minimum', 'credit']),
  kind: z.enum(lineKinds),
  description: z.string(),
  quantity: decimalString,
  free_quantity: decimalString,
  billable_quantity: decimalString,
  unit: z.string(),
  unit_price: decimalString,
  amount_unrounded: decimalString,
  amount: decimalString,
  is_adjustment: z.boolean(),
  adjusts_bill_id: z.uuid().nullable(),
  plan_id: z.string(),
  segment_start: z.string(),
  segment_end: z.string(),
  gb_s: z
    .object({ quantity: decimalString, free_quantity: decimalString, billable_quantity: decimalString, unit_price: decimalString })
    .nullable()
    .describe('compute lines: quantities and unit price in GB-s'),
});

export const dashboardSchema = z.object({
  tenant: z.object({ id: z.uuid(), slug: z.string(), name: z.string(), currency: z.string(), timezone: z.string() }),
  as_of: instant.describe('the `now` the dashboard was computed for'),
  period: z.object({ start: instant, end: instant }).describe('the open billing period: the calendar month in the tenant’s zone'),
  month_to_date: z
    .object({
      period_start: instant,
      period_end: instant,
      currency: z.string(),
      plan_id: z.uuid().nullable(),
      total: decimalString.describe('usage_total + adjustments_total, at the currency’s minor unit'),
      usage_total: decimalString.describe('cost of the period’s own usage (sum of rounded lines)'),
      adjustments_total: decimalString.describe('late usage of finalized periods billed on this period'),
      usage_total_unrounded: decimalString,
      usage_as_of: instant.describe('when the priced usage was read'),
      computed_at: instant,
      lines: z.array(runningCostLineSchema),
    })
    .nullable()
    .describe('the running cost stored by the price stage; null until it first prices the open period'),
  window: z
    .object({
      days: z.number().int().positive(),
      start: instant,
      end: instant,
      first_date: localDate,
      last_date: localDate,
    })
    .describe('the tenant-local days the series and totals cover, [start, end); the last day is today'),
  daily: z
    .array(z.object({ service_id: z.uuid(), service_name: z.string(), points: z.array(dailyPointSchema) }))
    .describe('per service with usage in the window (by name), one point per day of the window (zeros when idle)'),
  daily_totals: z.array(dailyPointSchema).describe('all services, one point per day of the window'),
  top_services: z
    .array(
      z.object({
        service_id: z.uuid(),
        service_name: z.string(),
        ...usageFigures,
        cold_start_rate: rateString,
        error_rate: rateString,
      }),
    )
    .describe('at most 10, by billed GB-s then invocations (descending)'),
  totals: z.object({ ...usageFigures, cold_start_rate: rateString, error_rate: rateString }),
});
export type Dashboard = z.infer<typeof dashboardSchema>;
export type DashboardDailyPoint = z.infer<typeof dailyPointSchema>;
export type RunningCostLine = z.infer<typeof runningCostLineSchema>;

// ---------------------------------------------------------------------------------------------
// Helpers

const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Largest page `listUsageAggregates` serves. */
export const MAX_PAGE_LIMIT = 1000;
/** Longest dashboard window, in days. */
export const MAX_DASHBOARD_DAYS = 400;
/** How many services `top_services` lists. */
export const TOP_SERVICES = 10;

type Numeric = string | number | bigint;

const decimal = (v: Numeric): string => plain(new Dec(v.toString()));
const decimalOrNull = (v: Numeric | null): string | null => (v === null ? null : decimal(v));

function toCount(v: Numeric): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`count ${String(v)} is not a safe integer`);
  return n;
}

const gbS = (mbMs: Dec): string => plain(mbMs.div(MB_MS_PER_GB_S));

const rate = (part: number, whole: number): string => (whole === 0 ? '0' : new Dec(part).div(whole).toFixed(4, Dec.ROUND_HALF_UP));

function checkUuid(value: string, what: string): void {
  if (!uuidText.test(value)) throw new QueryError('invalid_argument', `${what} must be a uuid (got ${JSON.stringify(value)})`);
}

function checkDate(value: Date, what: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new QueryError('invalid_argument', `${what} must be a valid date`);
}

// ---------------------------------------------------------------------------------------------
// Keyset cursor: base64url of {"s": window_start with microseconds, "i": id}

const cursorTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const cursorSchema = z.object({ s: z.string().regex(cursorTimestamp), i: z.string().regex(/^[1-9]\d{0,18}$/) }).strict();
const MAX_BIGINT = 9223372036854775807n;

interface CursorKey {
  windowStart: string;
  id: string;
}

function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify({ s: key.windowStart, i: key.id })).toString('base64url');
}

function decodeCursor(cursor: string): CursorKey {
  const invalid = (): QueryError => new QueryError('invalid_cursor', 'the cursor is not one this API returned (pass next_cursor unchanged)');
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const result = cursorSchema.safeParse(parsed);
  if (!result.success) throw invalid();
  const { s, i } = result.data;
  // A real calendar instant (Date normalises 2026-02-30 to March: the round trip catches it).
  const ms = Date.parse(`${s.slice(0, 23)}Z`);
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 23) !== s.slice(0, 23) || BigInt(i) > MAX_BIGINT) throw invalid();
  return { windowStart: s, id: i };
}

// ---------------------------------------------------------------------------------------------
// listUsageAggregates

export interface UsageAggregateFilter {
  /** The caller's allowed tenants; undefined = every tenant (admin). An empty list sees nothing. */
  tenantIds?: string[];
  tenantId?: string;
  serviceId?: string;
  revisionId?: string;
  windowSize?: WindowSize;
  /** Windows with window_start >= startTime. */
  startTime?: Date;
  /** Windows with window_end <= endTime. */
  endTime?: Date;
  /** Page size, 1..MAX_PAGE_LIMIT. */
  limit: number;
  /** next_cursor of the previous page. */
  cursor?: string;
}

interface AggregateDbRow {
  id: Numeric;
  tenant_id: string;
  service_id: string;
  service_name: string;
  revision_id: string;
  revision_name: string;
  window_size: WindowSize;
  window_start: Date;
  window_end: Date;
  invocations: Numeric;
  events: Numeric;
  total_duration_ms: Numeric;
  avg_duration_ms: Numeric | null;
  p50_duration_ms: Numeric | null;
  p95_duration_ms: Numeric | null;
  max_memory_mb: Numeric | null;
  avg_memory_mb: Numeric | null;
  total_cpu_ms: Numeric;
  mb_ms: Numeric;
  billed_mb_ms: Numeric;
  cold_starts: Numeric;
  errors: Numeric;
  billed_plan_id: string | null;
  updated_at: Date;
  cursor_ts: string;
}

function toAggregateRow(r: AggregateDbRow): AggregateRow {
  return {
    id: r.id.toString(),
    tenant_id: r.tenant_id,
    service_id: r.service_id,
    service_name: r.service_name,
    revision_id: r.revision_id,
    revision_name: r.revision_name,
    window_size: r.window_size,
    window_start: r.window_start.toISOString(),
    window_end: r.window_end.toISOString(),
    invocations: toCount(r.invocations),
    events: toCount(r.events),
    total_duration_ms: decimal(r.total_duration_ms),
    avg_duration_ms: decimalOrNull(r.avg_duration_ms),
    p50_duration_ms: decimalOrNull(r.p50_duration_ms),
    p95_duration_ms: decimalOrNull(r.p95_duration_ms),
    max_memory_mb: decimalOrNull(r.max_memory_mb),
    avg_memory_mb: decimalOrNull(r.avg_memory_mb),
    total_cpu_ms: decimal(r.total_cpu_ms),
    mb_ms: decimal(r.mb_ms),
    billed_mb_ms: decimal(r.billed_mb_ms),
    billed_gb_s: gbS(new Dec(r.billed_mb_ms.toString())),
    cold_starts: toCount(r.cold_starts),
    errors: toCount(r.errors),
    billed_plan_id: r.billed_plan_id,
    updated_at: r.updated_at.toISOString(),
  };
}

/**
 * usage_aggregate windows lying in [startTime, endTime) (window_start >= startTime and
 * window_end <= endTime) that match every filter given, ordered by (window_start, id), one page
 * at a time (keyset pagination: `next_cursor` is null on the last page).
 */
export async function listUsageAggregates(db: Knex, filter: UsageAggregateFilter): Promise<AggregatePage> {
  const { tenantIds, tenantId, serviceId, revisionId, windowSize, startTime, endTime, limit, cursor } = filter;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new QueryError('invalid_argument', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT} (got ${String(limit)})`);
  }
  const after = cursor === undefined ? undefined : decodeCursor(cursor);
  for (const id of tenantIds ?? []) checkUuid(id, 'an allowed tenant id');
  if (tenantId !== undefined) checkUuid(tenantId, 'tenantId');
  if (serviceId !== undefined) checkUuid(serviceId, 'serviceId');
  if (revisionId !== undefined) checkUuid(revisionId, 'revisionId');
  if (windowSize !== undefined && !(windowSizes as readonly string[]).includes(windowSize)) {
    throw new QueryError('invalid_argument', `windowSize must be one of ${windowSizes.join(', ')} (got ${JSON.stringify(windowSize)})`);
  }
  if (startTime !== undefined) checkDate(startTime, 'startTime');
  if (endTime !== undefined) checkDate(endTime, 'endTime');
  if (tenantIds?.length === 0) return { items: [], next_cursor: null };

  const query = db('usage_aggregate as a')
    .join('services as s', 's.id', 'a.service_id')
    .join('revisions as r', 'r.id', 'a.revision_id')
    .select(
      'a.id',
      'a.tenant_id',
      'a.service_id',
      's.name as service_name',
      'a.revision_id',
      'r.name as revision_name',
      'a.window_size',
      'a.window_start',
      'a.window_end',
      'a.invocations',
      'a.events',
      'a.total_duration_ms',
      'a.avg_duration_ms',
      'a.p50_duration_ms',
      'a.p95_duration_ms',
      'a.max_memory_mb',
      'a.avg_memory_mb',
      'a.total_cpu_ms',
      'a.mb_ms',
      'a.billed_mb_ms',
      'a.cold_starts',
      'a.errors',
      'a.billed_plan_id',
      'a.updated_at',
      // The exact key (microseconds) for the cursor: a JS Date would drop them.
      db.raw(`to_char(a.window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_ts`),
    )
    .orderBy([{ column: 'a.window_start' }, { column: 'a.id' }])
    .limit(limit + 1);
  if (tenantIds !== undefined) void query.whereIn('a.tenant_id', tenantIds);
  if (tenantId !== undefined) void query.where('a.tenant_id', tenantId);
  if (serviceId !== undefined) void query.where('a.service_id', serviceId);
  if (revisionId !== undefined) void query.where('a.revision_id', revisionId);
  if (windowSize !== undefined) void query.where('a.window_size', windowSize);
  if (startTime !== undefined) void query.where('a.window_start', '>=', startTime.toISOString());
  if (endTime !== undefined) void query.where('a.window_end', '<=', endTime.toISOString());
  if (after) void query.whereRaw('(a.window_start, a.id) > (?::timestamptz, ?::bigint)', [after.windowStart, after.id]);

  const rows = (await query) as AggregateDbRow[];
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toAggregateRow),
    next_cursor: rows.length > limit && last ? encodeCursor({ windowStart: last.cursor_ts, id: last.id.toString() }) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// usageDashboard

export interface DashboardOptions {
  /** Tenant-local days the series and totals cover, today included (default 30). */
  days?: number;
}

interface TenantDbRow {
  id: string;
  slug: string;
  name: string;
  currency: string;
  timezone: string;
}

interface RunningCostDbRow {
  period_start: Date;
  period_end: Date;
  currency: string;
  plan_id: string | null;
  total: Numeric;
  total_unrounded: Numeric;
  adjustments_total: Numeric;
  lines: unknown;
  usage_as_of: Date;
  computed_at: Date;
}

interface DailyDbRow {
  service_id: string;
  service_name: string;
  window_start: Date;
  invocations: Numeric;
  billed_mb_ms: Numeric;
  cold_starts: Numeric;
  errors: Numeric;
  p95_duration_ms: Numeric | null;
}

/** A running-cost line as the price stage stores it (src/billing/compose.ts PricedLine). */
const storedLineSchema = z.object({
  service: z.string(),
  serviceId: z.string().nullable().optional(),
  meter: z.enum([...meters, 'minimum', 'credit']),
  kind: z.enum(lineKinds).default('usage'),
  description: z.string(),
  quantity: z.string(),
  freeQuantity: z.string(),
  billableQuantity: z.string(),
  unit: z.string(),
  unitPrice: z.string(),
  amountUnrounded: z.string(),
  amount: z.string(),
  isAdjustment: z.boolean(),
  adjustsBillId: z.string().nullable().optional(),
  planId: z.string(),
  segmentStart: z.string(),
  segmentEnd: z.string(),
  gbS: z.object({ quantity: z.string(), freeQuantity: z.string(), billableQuantity: z.string(), unitPrice: z.string() }).optional(),
});

function toRunningCostLine(raw: unknown, digits: number): RunningCostLine {
  const l = storedLineSchema.parse(raw);
  return {
    service: l.service,
    service_id: l.serviceId ?? null,
    meter: l.meter,
    kind: l.kind,
    description: l.description,
    quantity: decimal(l.quantity),
    free_quantity: decimal(l.freeQuantity),
    billable_quantity: decimal(l.billableQuantity),
    unit: l.unit,
    unit_price: decimal(l.unitPrice),
    amount_unrounded: decimal(l.amountUnrounded),
    amount: new Dec(l.amount).toFixed(digits),
    is_adjustment: l.isAdjustment,
    adjusts_bill_id: l.adjustsBillId ?? null,
    plan_id: l.planId,
    segment_start: l.segmentStart,
    segment_end: l.segmentEnd,
    gb_s: l.gbS
      ? {
          quantity: decimal(l.gbS.quantity),
          free_quantity: decimal(l.gbS.freeQuantity),
          billable_quantity: decimal(l.gbS.billableQuantity),
          unit_price: decimal(l.gbS.unitPrice),
        }
      : null,
  };
}

/** Running sums of one series (a service-day, a day, a service, the window). */
class Tally {
  invocations = 0;
  mbMs = new Dec(0);
  coldStarts = 0;
  errors = 0;
  p95: Dec | null = null;

  add(r: DailyDbRow): void {
    this.invocations += toCount(r.invocations);
    this.mbMs = this.mbMs.plus(r.billed_mb_ms.toString());
    this.coldStarts += toCount(r.cold_starts);
    this.errors += toCount(r.errors);
    if (r.p95_duration_ms !== null) {
      const p95 = new Dec(r.p95_duration_ms.toString());
      if (this.p95 === null || p95.gt(this.p95)) this.p95 = p95;
    }
  }

  figures() {
    return {
      invocations: this.invocations,
      gb_s: gbS(this.mbMs),
      cold_starts: this.coldStarts,
      errors: this.errors,
      p95_duration_ms: this.p95 === null ? null : plain(this.p95),
    };
  }

  rates() {
    return { cold_start_rate: rate(this.coldStarts, this.invocations), error_rate: rate(this.errors, this.invocations) };
  }
}

function tallyOf<K>(map: Map<K, Tally>, key: K): Tally {
  let t = map.get(key);
  if (!t) map.set(key, (t = new Tally()));
  return t;
}

/**
 * Everything a tenant's usage dashboard shows, in one call: the tenant, its open period and the
 * stored month-to-date cost, and, over the last `days` local days (today included, from the 1d
 * windows, which follow the tenant's zone), daily series per service and in total, the top
 * services by billed GB-s, and totals. Throws QueryError('tenant_not_found') for an unknown id.
 */
export async function usageDashboard(db: Knex, tenantId: string, now: Date, options: DashboardOptions = {}): Promise<Dashboard> {
  const days = options.days ?? 30;
  if (!Number.isInteger(days) || days < 1 || days > MAX_DASHBOARD_DAYS) {
    throw new QueryError('invalid_argument', `days must be an integer from 1 to ${MAX_DASHBOARD_DAYS} (got ${String(days)})`);
  }
  checkDate(now, 'now');
  const notFound = (): QueryError => new QueryError('tenant_not_found', `tenant ${JSON.stringify(tenantId)} does not exist`);
  if (!uuidText.test(tenantId)) throw notFound();
  const tenantRow = (await db('tenants').select('id', 'slug', 'name', 'currency', 'timezone').where('id', tenantId).first()) as TenantDbRow | undefined;
  if (!tenantRow) throw notFound();
  const tenant = { ...tenantRow, currency: tenantRow.currency.trim() };
  const zone = tenant.timezone;

  const period = currentPeriod(now, zone);

  // The window: today's local day (the aggregator's own 1d bounds) and the days - 1 before it.
  const dayStarts: number[] = [];
  const [todayStart, windowEnd] = windowBoundsMs(now.getTime(), '1d', zone);
  for (let start = todayStart, i = 0; i < days; i++) {
    dayStarts.unshift(start);
    start = windowBoundsMs(start - 1, '1d', zone)[0];
  }
  const windowStart = dayStarts[0] ?? todayStart;
  const dateOf = (ms: number): string => DateTime.fromMillis(ms, { zone }).toISODate() ?? '';
  const dates = dayStarts.map(dateOf);

  const [costRow, { rows: dailyRows }] = await Promise.all([
    db('tenant_running_costs')
      .select('period_start', 'period_end', 'currency', 'plan_id', 'total', 'total_unrounded', 'adjustments_total', 'lines', 'usage_as_of', 'computed_at')
      .where({ tenant_id: tenant.id, period_start: period.start.toISOString() })
      .first() as Promise<RunningCostDbRow | undefined>,
    db.raw<{ rows: DailyDbRow[] }>(
      `SELECT a.service_id, s.name AS service_name, a.window_start,
              sum(a.invocations) AS invocations, sum(a.billed_mb_ms) AS billed_mb_ms,
              sum(a.cold_starts) AS cold_starts, sum(a.errors) AS errors, max(a.p95_duration_ms) AS p95_duration_ms
         FROM usage_aggregate a JOIN services s ON s.id = a.service_id
        WHERE a.tenant_id = ? AND a.window_size = '1d' AND a.window_start >= ? AND a.window_start < ?
        GROUP BY a.service_id, s.name, a.window_start
        ORDER BY a.window_start, s.name, a.service_id`,
      [tenant.id, new Date(windowStart).toISOString(), new Date(windowEnd).toISOString()],
    ),
  ]);

  let monthToDate: Dashboard['month_to_date'] = null;
  if (costRow) {
    const currency = costRow.currency.trim();
    const digits = minorUnitDigits(currency);
    const usageTotal = new Dec(costRow.total.toString());
    const adjustments = new Dec(costRow.adjustments_total.toString());
    const lines = Array.isArray(costRow.lines) ? costRow.lines : [];
    monthToDate = {
      period_start: costRow.period_start.toISOString(),
      period_end: costRow.period_end.toISOString(),
      currency,
      plan_id: costRow.plan_id,
      total: usageTotal.plus(adjustments).toFixed(digits),
      usage_total: usageTotal.toFixed(digits),
      adjustments_total: adjustments.toFixed(digits),
      usage_total_unrounded: decimal(costRow.total_unrounded),
      usage_as_of: costRow.usage_as_of.toISOString(),
      computed_at: costRow.computed_at.toISOString(),
      lines: lines.map((l) => toRunningCostLine(l, digits)),
    };
  }

  const services = new Map<string, { name: string; total: Tally; byDate: Map<string, Tally> }>();
  const byDate = new Map<string, Tally>();
  const total = new Tally();
  for (const r of dailyRows) {
    const date = dateOf(r.window_start.getTime());
    let service = services.get(r.service_id);
    if (!service) services.set(r.service_id, (service = { name: r.service_name, total: new Tally(), byDate: new Map() }));
    service.total.add(r);
    tallyOf(service.byDate, date).add(r);
    tallyOf(byDate, date).add(r);
    total.add(r);
  }
  const series = (tallies: Map<string, Tally>): DashboardDailyPoint[] => dates.map((date) => ({ date, ...(tallies.get(date) ?? new Tally()).figures() }));
  const byName = (a: [string, { name: string }], b: [string, { name: string }]): number =>
    a[1].name < b[1].name ? -1 : a[1].name > b[1].name ? 1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
  const entries = [...services.entries()].sort(byName);

  const ranked = [...entries].sort(
    ([, a], [, b]) => b.total.mbMs.comparedTo(a.total.mbMs) || b.total.invocations - a.total.invocations,
  );

  return {
    tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name, currency: tenant.currency, timezone: zone },
    as_of: now.toISOString(),
    period: { start: period.start.toISOString(), end: period.end.toISOString() },
    month_to_date: monthToDate,
    window: {
      days,
      start: new Date(windowStart).toISOString(),
      end: new Date(windowEnd).toISOString(),
      first_date: dates[0] ?? dateOf(todayStart),
      last_date: dates[dates.length - 1] ?? dateOf(todayStart),
    },
    daily: entries.map(([id, s]) => ({ service_id: id, service_name: s.name, points: series(s.byDate) })),
    daily_totals: series(byDate),
    top_services: ranked.slice(0, TOP_SERVICES).map(([id, s]) => ({
      service_id: id,
      service_name: s.name,
      ...s.total.figures(),
      ...s.total.rates(),
    })),
    totals: { ...total.figures(), ...total.rates() },
  };
}
