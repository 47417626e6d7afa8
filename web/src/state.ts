/**
 * The dashboard's pure state: the session key, hash routes, the usage explorer's series and
 * periods, the tier editor's validation, budget and function status figures. No DOM, no fetch:
 * plain data in, plain data out (tested in state.test.ts).
 */
import { DateTime } from 'luxon';

// ---------------------------------------------------------------------------------------------
// Session: the API key lives in sessionStorage only (gone when the tab closes).

const sessionKeyName = 'faasbilling.apiKey';
/** The shape of a FaaS Billing API key (fbk_<12 hex>_<43 base64url>). */
export const keyPattern = /^fbk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/;

/** The stored key, if any. */
export const loadKey = (storage: Pick<Storage, 'getItem'>): string | null => storage.getItem(sessionKeyName);
/** Keeps the key for this tab. */
export const saveKey = (storage: Pick<Storage, 'setItem'>, key: string): void => storage.setItem(sessionKeyName, key);
/** Forgets the key (log out). */
export const clearKey = (storage: Pick<Storage, 'removeItem'>): void => storage.removeItem(sessionKeyName);

// ---------------------------------------------------------------------------------------------
// Routes: #/<screen>?<params>

export const screens = ['overview', 'usage', 'invoices', 'plans', 'functions', 'operators'] as const;
export type Screen = (typeof screens)[number];
/** Screens only an admin key may open. */
export const adminScreens: readonly Screen[] = ['plans', 'operators'];

export interface Route {
  screen: Screen;
  params: Record<string, string>;
}

/** Parses a location hash; anything unknown is the overview. */
export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  const screen = (screens as readonly string[]).includes(path) ? (path as Screen) : 'overview';
  return { screen, params: Object.fromEntries(new URLSearchParams(query)) };
}

/** The hash of a screen with its parameters (empty values left out). */
export function routeHash(screen: Screen, params: Record<string, string | undefined> = {}): string {
  const query = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => Boolean(e[1]))).toString();
  return `#/${screen}${query ? `?${query}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Usage explorer

export type WindowSize = '5m' | '1h' | '1d';

/** One usage window as GET /usage-aggregates returns it (the fields the explorer uses). */
export interface UsageWindow {
  service_id: string;
  service_name: string;
  revision_id: string;
  revision_name: string;
  window_start: string;
  window_end: string;
  invocations: number;
  p50_duration_ms: string | null;
  p95_duration_ms: string | null;
  avg_memory_mb: string | null;
  max_memory_mb: string | null;
  billed_gb_s: string;
  cold_starts: number;
  errors: number;
}

export const usageMetrics = ['invocations', 'gb_s', 'p50_ms', 'p95_ms', 'memory_mb', 'cold_starts', 'errors'] as const;
export type UsageMetric = (typeof usageMetrics)[number];
export const metricLabels: Record<UsageMetric, string> = {
  invocations: 'Invocations',
  gb_s: 'Billed GB-s',
  p50_ms: 'Duration p50 (ms)',
  p95_ms: 'Duration p95 (ms)',
  memory_mb: 'Memory, average (MB)',
  cold_starts: 'Cold starts',
  errors: 'Errors',
};

/** One point of the explorer's series: the windows of every selected service summed per start. */
export interface UsagePoint {
  /** Window start, seconds since the epoch (what uPlot's x axis takes). */
  t: number;
  values: Record<UsageMetric, number>;
}

/**
 * Sums windows that start at the same instant (several services and revisions) into one point.
 * Counts and GB-s add up; memory is the invocation-weighted average; p50/p95 take the largest of
 * the windows (an upper bound of the combined percentile, as the API's dashboard does).
 */
export function seriesOf(windows: readonly UsageWindow[]): UsagePoint[] {
  const byStart = new Map<number, { point: UsagePoint; memoryWeight: number }>();
  for (const w of windows) {
    const t = Math.floor(Date.parse(w.window_start) / 1000);
    let entry = byStart.get(t);
    if (!entry) {
      entry = { point: { t, values: { invocations: 0, gb_s: 0, p50_ms: 0, p95_ms: 0, memory_mb: 0, cold_starts: 0, errors: 0 } }, memoryWeight: 0 };
      byStart.set(t, entry);
    }
    const v = entry.point.values;
    v.invocations += w.invocations;
    v.gb_s += Number(w.billed_gb_s);
    v.cold_starts += w.cold_starts;
    v.errors += w.errors;
    v.p50_ms = Math.max(v.p50_ms, Number(w.p50_duration_ms ?? 0));
    v.p95_ms = Math.max(v.p95_ms, Number(w.p95_duration_ms ?? 0));
    if (w.avg_memory_mb !== null && w.invocations > 0) {
      const weight = entry.memoryWeight + w.invocations;
      v.memory_mb = (v.memory_mb * entry.memoryWeight + Number(w.avg_memory_mb) * w.invocations) / weight;
      entry.memoryWeight = weight;
    }
  }
  return [...byStart.values()].map((e) => e.point).sort((a, b) => a.t - b.t);
}

/** How far back each window size looks by default. */
export const defaultSpanMs: Record<WindowSize, number> = { '5m': 6 * 3_600_000, '1h': 3 * 86_400_000, '1d': 30 * 86_400_000 };

export interface TimeRange {
  start: Date;
  end: Date;
}

const windowMs: Record<WindowSize, number> = { '5m': 300_000, '1h': 3_600_000, '1d': 86_400_000 };

/**
 * The explorer's range: the last span of the window size, up to the end of the window still
 * filling (the API returns windows that end by the range's end; a live view wants the current one).
 */
export const recentRange = (size: WindowSize, now: Date): TimeRange => ({ start: new Date(now.getTime() - defaultSpanMs[size]), end: new Date(now.getTime() + windowMs[size]) });

/** The period just before `range`, of the same length (what "compare" overlays). */
export function previousRange(range: TimeRange): TimeRange {
  const length = range.end.getTime() - range.start.getTime();
  return { start: new Date(range.start.getTime() - length), end: new Date(range.start.getTime()) };
}

/** Moves the points of an earlier period onto the current one's time axis, so both overlay. */
export const shiftSeries = (points: readonly UsagePoint[], byMs: number): UsagePoint[] => points.map((p) => ({ ...p, t: p.t + Math.round(byMs / 1000) }));

/** Sum of a metric over points (counts and GB-s; not meaningful for percentiles). */
export const totalOf = (points: readonly UsagePoint[], metric: UsageMetric): number => points.reduce((sum, p) => sum + p.values[metric], 0);

/**
 * Aligns two series on one x axis (the union of their instants, missing values null), which is
 * the data layout uPlot draws.
 */
export function alignSeries(current: readonly UsagePoint[], compared: readonly UsagePoint[] | null, metric: UsageMetric): { x: number[]; current: (number | null)[]; compared: (number | null)[] | null } {
  const xs = [...new Set([...current.map((p) => p.t), ...(compared ?? []).map((p) => p.t)])].sort((a, b) => a - b);
  const at = (points: readonly UsagePoint[]): (number | null)[] => {
    const map = new Map(points.map((p) => [p.t, p.values[metric]]));
    return xs.map((x) => map.get(x) ?? null);
  };
  return { x: xs, current: at(current), compared: compared ? at(compared) : null };
}

// ---------------------------------------------------------------------------------------------
// Overview: month to date against the same point of last month

/**
 * The span of last month that matches the month to date: from last month's first instant to the
 * same local day and time (capped at its end: the 31st in a 30-day month is its end). Days are
 * calendar days in the zone, so a DST change between the two months does not shift the hour.
 */
export function samePointLastMonth(now: Date, timeZone: string): TimeRange {
  const current = DateTime.fromJSDate(now, { zone: timeZone });
  const monthStart = current.startOf('month');
  const lastStart = monthStart.minus({ months: 1 });
  const elapsed = current.diff(monthStart, ['days', 'hours', 'minutes', 'seconds', 'milliseconds']);
  const end = DateTime.min(lastStart.plus(elapsed), monthStart);
  return { start: lastStart.toJSDate(), end: end.toJSDate() };
}

/** The calendar month (YYYY-MM) `now` falls in, in the tenant's zone (what the billing API calls a month). */
export const currentMonth = (now: Date, timeZone: string): string => DateTime.fromJSDate(now, { zone: timeZone }).toFormat('yyyy-MM');

/** Relative change from `before` to `after` (null when before is zero). */
export function relativeChange(before: string | number, after: string | number): number | null {
  const b = Number(before);
  const a = Number(after);
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return (a - b) / b;
}

/** Share of a budget used, 0..∞ (null without a budget amount). */
export function budgetUse(budget: string | null, spent: string | null): number | null {
  const total = Number(budget);
  if (budget === null || !Number.isFinite(total) || total <= 0) return null;
  return Number(spent ?? 0) / total;
}

// ---------------------------------------------------------------------------------------------
// Tier editor

export interface TierDraft {
  from: string;
  up_to: string;
  unit_price: string;
  flat_fee: string;
}

const nonNegativeDecimal = /^\d+(\.\d+)?$/;

/**
 * What is wrong with a tier table, one message per problem (empty when it is valid): tiers start
 * at 0, each starts where the previous ends, bounds grow, only the last is open-ended (no
 * up_to), and prices are non-negative decimals.
 */
export function tierProblems(tiers: readonly TierDraft[]): string[] {
  const problems: string[] = [];
  if (tiers.length === 0) return ['add at least one tier'];
  tiers.forEach((tier, i) => {
    const n = i + 1;
    if (!nonNegativeDecimal.test(tier.from)) problems.push(`tier ${n}: "from" must be a number ≥ 0`);
    if (i === 0 && tier.from !== '' && Number(tier.from) !== 0) problems.push('tier 1 must start at 0');
    const previous = tiers[i - 1];
    if (previous && previous.up_to !== '' && tier.from !== previous.up_to) problems.push(`tier ${n} must start where tier ${i} ends (${previous.up_to})`);
    const last = i === tiers.length - 1;
    if (tier.up_to === '') {
      if (!last) problems.push(`tier ${n}: only the last tier may be open-ended (fill in "up to")`);
    } else if (!nonNegativeDecimal.test(tier.up_to)) problems.push(`tier ${n}: "up to" must be a number`);
    else if (nonNegativeDecimal.test(tier.from) && Number(tier.up_to) <= Number(tier.from)) problems.push(`tier ${n}: "up to" must be greater than "from"`);
    if (last && tier.up_to !== '') problems.push(`tier ${n}: the last tier must be open-ended (leave "up to" empty)`);
    if (!nonNegativeDecimal.test(tier.unit_price)) problems.push(`tier ${n}: unit price must be a decimal ≥ 0`);
    if (tier.flat_fee !== '' && !nonNegativeDecimal.test(tier.flat_fee)) problems.push(`tier ${n}: flat fee must be a decimal ≥ 0`);
  });
  return problems;
}

/** The tiers as the API's charge model takes them. */
export function tiersForApi(tiers: readonly TierDraft[]): { from: string; up_to: string | null; unit_price: string; flat_fee?: string }[] {
  return tiers.map((t) => ({ from: t.from, up_to: t.up_to === '' ? null : t.up_to, unit_price: t.unit_price, ...(t.flat_fee !== '' ? { flat_fee: t.flat_fee } : {}) }));
}

// ---------------------------------------------------------------------------------------------
// Functions: status of each service/revision from its recent windows

export interface RevisionStatus {
  service_id: string;
  service_name: string;
  revision_id: string;
  revision_name: string;
  lastSeen: string | null;
  invocations: number;
  /** Invocations per minute over the span. */
  ratePerMinute: number;
  errorRate: number;
  coldStartRate: number;
  p95Ms: number | null;
}

/** One row per revision seen in `windows`, busiest first; rates over `spanMs`. */
export function revisionStatuses(windows: readonly UsageWindow[], spanMs: number): RevisionStatus[] {
  const byRevision = new Map<string, RevisionStatus & { errors: number; coldStarts: number }>();
  for (const w of windows) {
    let s = byRevision.get(w.revision_id);
    if (!s) {
      s = { service_id: w.service_id, service_name: w.service_name, revision_id: w.revision_id, revision_name: w.revision_name, lastSeen: null, invocations: 0, ratePerMinute: 0, errorRate: 0, coldStartRate: 0, p95Ms: null, errors: 0, coldStarts: 0 };
      byRevision.set(w.revision_id, s);
    }
    s.invocations += w.invocations;
    s.errors += w.errors;
    s.coldStarts += w.cold_starts;
    if (w.invocations > 0 && (s.lastSeen === null || w.window_end > s.lastSeen)) s.lastSeen = w.window_end;
    if (w.p95_duration_ms !== null) s.p95Ms = Math.max(s.p95Ms ?? 0, Number(w.p95_duration_ms));
  }
  return [...byRevision.values()]
    .map(({ errors, coldStarts, ...s }) => ({
      ...s,
      ratePerMinute: spanMs > 0 ? s.invocations / (spanMs / 60_000) : 0,
      errorRate: s.invocations > 0 ? errors / s.invocations : 0,
      coldStartRate: s.invocations > 0 ? coldStarts / s.invocations : 0,
    }))
    .sort((a, b) => b.invocations - a.invocations || a.service_name.localeCompare(b.service_name));
}
