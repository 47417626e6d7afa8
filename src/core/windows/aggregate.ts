/**
 * Window statistics for the aggregate stage: usage reports in, one row per
 * (window size, window start, tenant, service, revision) out. Pure: plain data in and out.
 *
 * Meaning of the figures (see `UsageRecord` in contract/usage.ts: `duration_ms` is the total wall
 * time of the report's `invocations`):
 * - `invocations` = Σ invocations; `events` = number of usage reports.
 * - `total_duration_ms` = Σ duration_ms; `avg_duration_ms` = total / invocations, i.e. **per
 *   invocation**, not per report.
 * - `p50/p95_duration_ms`: percentiles of the **per-invocation** duration; a report of N
 *   invocations counts as N invocations lasting duration_ms / N each (see percentiles.ts).
 *   `aggregateWindows` computes them exactly as PostgreSQL's `percentile_cont`; partial states
 *   (`accumulateWindows`, mergeable) carry a sketch within 0.5% relative error instead.
 * - `max_memory_mb` = max memory_mb; `avg_memory_mb` = Σ(memory_mb × invocations) / invocations,
 *   weighted per invocation like the duration average.
 * - `total_cpu_ms` = Σ cpu_ms (a report without cpu_ms adds 0).
 * - `mb_ms` = Σ duration_ms × memory_mb, the observed MB·ms (1 GB = 1024 MB, so GB-s = mb_ms /
 *   1024 / 1000). `billed_mb_ms` = Σ of the caller's per-report billed quantity (`billedMbMs`
 *   option, where a plan's per-invocation rounding rules apply), by default equal to `mb_ms`.
 * - `cold_starts` / `errors` count reports flagged `cold_start` / `error` (a report of N
 *   invocations flagged cold_start is one cold start: only an instance's first request is cold).
 *
 * Sums that may reach money (durations, MB·ms, CPU) are exact decimals, returned as canonical
 * decimal strings; averages are rounded half-up to 3 decimals, the scale of the usage_aggregate
 * columns. Counts and maxima are numbers. Output is sorted by window size (5m, 1h, 1d), window
 * start, tenant, service, revision (code-unit string order), so equal input gives deep-equal output
 * whatever the input order. Percentiles are float8 values, unrounded, as `percentile_cont` gives.
 * Records in time order aggregate faster (their windows stay in cache) but any order is correct.
 */
import type { UsageRecord } from '../../contract/usage.js';
import { ExactDecimal, FixedSum, amountOf, multiplyAmounts, type Amount } from './exact-decimal.js';
import { DurationSketch, defaultSketchAlpha, percentilesCont, type DurationSketchJson } from './percentiles.js';
import { WindowCalendar, toEpochMs, windowSizes, type WindowSize } from './windows.js';

/** The fields of a usage report the windows need (a `UsageRecord` fits; so does a usage_raw row mapped to it). */
export type WindowUsage = Pick<
  UsageRecord,
  'time' | 'tenant_id' | 'service' | 'revision' | 'invocations' | 'duration_ms' | 'memory_mb' | 'cpu_ms' | 'cold_start' | 'error'
>;

/** One zone for every record, or the zone of each tenant. */
export type TimeZoneOf = string | ((tenantId: string) => string);

/** What identifies a window row; `window_start`/`window_end` are ISO 8601 UTC instants. */
export interface WindowKey {
  window_size: WindowSize;
  window_start: string;
  window_end: string;
  tenant_id: string;
  service: string;
  revision: string;
}

/** A finished window row (what usage_aggregate holds). */
export interface WindowRow extends WindowKey {
  events: number;
  invocations: number;
  total_duration_ms: string;
  avg_duration_ms: string;
  p50_duration_ms: number;
  p95_duration_ms: number;
  max_memory_mb: number;
  avg_memory_mb: string;
  total_cpu_ms: string;
  mb_ms: string;
  billed_mb_ms: string;
  cold_starts: number;
  errors: number;
}

/** A mergeable window state: sums, counts, maxima and a duration sketch (plain JSON). */
export interface WindowPartial extends WindowKey {
  events: number;
  invocations: number;
  total_duration_ms: string;
  /** Σ memory_mb × invocations, for the per-invocation memory average. */
  memory_mb_invocations: string;
  max_memory_mb: number;
  total_cpu_ms: string;
  mb_ms: string;
  billed_mb_ms: string;
  cold_starts: number;
  errors: number;
  duration_sketch: DurationSketchJson;
}

export interface AggregateOptions {
  /**
   * Billed MB·ms of one report (e.g. duration rounded up per invocation, memory rounded up to a
   * step), as a number or decimal string. Default: the observed duration_ms × memory_mb.
   */
  billedMbMs?: (record: WindowUsage) => number | string;
  /** Relative accuracy of the duration sketch of partial states (default 0.005). */
  sketchAlpha?: number;
}

const sizeOrder: Record<WindowSize, number> = { '5m': 0, '1h': 1, '1d': 2 };
const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
/** Canonical `toISOString()` instants order as strings; anything else is parsed. */
const canonicalIso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const compareInstants = (a: string, b: string): number =>
  canonicalIso.test(a) && canonicalIso.test(b) ? byCodeUnits(a, b) : Date.parse(a) - Date.parse(b);

/** The deterministic order of window rows. */
export function compareWindowKeys(a: WindowKey, b: WindowKey): number {
  return (
    sizeOrder[a.window_size] - sizeOrder[b.window_size] ||
    compareInstants(a.window_start, b.window_start) ||
    byCodeUnits(a.tenant_id, b.tenant_id) ||
    byCodeUnits(a.service, b.service) ||
    byCodeUnits(a.revision, b.revision)
  );
}

const mapKey = (k: WindowKey): string => [k.window_size, k.window_start, k.tenant_id, k.service, k.revision].join('\u0000');
const zoneResolver = (timeZone: TimeZoneOf): ((tenant: string) => string) =>
  typeof timeZone === 'function' ? timeZone : () => timeZone;

function checkSizes(sizes: readonly WindowSize[]): WindowSize[] {
  const unique = [...new Set(sizes)];
  for (const size of unique) {
    if (!windowSizes.includes(size)) throw new RangeError(`unknown window size ${JSON.stringify(size)}: expected one of ${windowSizes.join(', ')}`);
  }
  return unique.sort((a, b) => sizeOrder[a] - sizeOrder[b]);
}

function describe(r: WindowUsage): string {
  return `usage of ${r.tenant_id}/${r.service}/${r.revision} at ${r.time}`;
}

function checkRecord(r: WindowUsage): void {
  const bad = (what: string): never => {
    throw new RangeError(`${describe(r)}: ${what}`);
  };
  if (!(Number.isSafeInteger(r.invocations) && r.invocations >= 1)) bad(`invocations must be a positive integer, got ${r.invocations}`);
  if (!(Number.isFinite(r.duration_ms) && r.duration_ms >= 0)) bad(`duration_ms must be finite and ≥ 0, got ${r.duration_ms}`);
  if (!(Number.isFinite(r.memory_mb) && r.memory_mb > 0)) bad(`memory_mb must be finite and > 0, got ${r.memory_mb}`);
  if (r.cpu_ms !== null && !(Number.isFinite(r.cpu_ms) && r.cpu_ms >= 0)) bad(`cpu_ms must be null or finite and ≥ 0, got ${r.cpu_ms}`);
}

interface Entry<G> {
  key: WindowKey;
  rank: number;
  startMs: number;
  group: G;
}

/**
 * Groups the records by window for each size: calls `create` once per window and `add` for each
 * record in it (a record's sizes consecutively). Returns the groups in the deterministic order.
 */
function groupByWindow<G>(
  records: readonly WindowUsage[],
  sizes: readonly WindowSize[],
  timeZone: TimeZoneOf,
  create: () => G,
  add: (group: G, record: WindowUsage, index: number) => void,
): Entry<G>[] {
  const checked = checkSizes(sizes);
  const zoneOf = zoneResolver(timeZone);
  const calendar = new WindowCalendar();
  const entries: Entry<G>[] = [];
  // tenant → service → revision → per size: window start (ms) → entry
  const series = new Map<string, Map<string, Map<string, Map<number, Entry<G>>[]>>>();
  for (let index = 0; index < records.length; index++) {
    const record = records[index]!;
    const t = toEpochMs(record.time);
    const zone = zoneOf(record.tenant_id);
    let byService = series.get(record.tenant_id);
    if (!byService) series.set(record.tenant_id, (byService = new Map<string, Map<string, Map<number, Entry<G>>[]>>()));
    let byRevision = byService.get(record.service);
    if (!byRevision) byService.set(record.service, (byRevision = new Map<string, Map<number, Entry<G>>[]>()));
    let bySize = byRevision.get(record.revision);
    if (!bySize) byRevision.set(record.revision, (bySize = checked.map(() => new Map<number, Entry<G>>())));
    for (let i = 0; i < checked.length; i++) {
      const size = checked[i]!;
      const [start, end] = calendar.bounds(t, size, zone);
      const byStart = bySize[i]!;
      let entry = byStart.get(start);
      if (!entry) {
        const key: WindowKey = {
          window_size: size,
          window_start: new Date(start).toISOString(),
          window_end: new Date(end).toISOString(),
          tenant_id: record.tenant_id,
          service: record.service,
          revision: record.revision,
        };
        entry = { key, rank: sizeOrder[size], startMs: start, group: create() };
        byStart.set(start, entry);
        entries.push(entry);
      }
      add(entry.group, record, index);
    }
  }
  return entries.sort(
    (a, b) =>
      a.rank - b.rank ||
      a.startMs - b.startMs ||
      byCodeUnits(a.key.tenant_id, b.key.tenant_id) ||
      byCodeUnits(a.key.service, b.key.service) ||
      byCodeUnits(a.key.revision, b.key.revision),
  );
}

/**
 * The distinct windows the records fall in (per tenant, service, revision), sorted: exactly the
 * windows to recompute after these records were saved, late ones included.
 */
export function windowKeysOf(records: readonly WindowUsage[], sizes: readonly WindowSize[], timeZone: TimeZoneOf): WindowKey[] {
  return groupByWindow(records, sizes, timeZone, () => null, () => undefined).map(({ key }) => key);
}

/** A report's contributions, computed once and added to each of its windows. */
interface Contribution {
  duration: Amount; // scale 3
  memoryInvocations: Amount; // scale 3
  cpu: Amount; // scale 3
  mbMs: Amount; // scale 6
  billed: Amount; // scale 6
  /** Duration of each of its invocations. */
  perInvocation: number;
}

function contributionOf(r: WindowUsage, options: AggregateOptions): Contribution {
  checkRecord(r);
  const duration = amountOf(r.duration_ms, 3);
  const memory = amountOf(r.memory_mb, 3);
  const mbMs = multiplyAmounts(duration, 3, memory, 3);
  return {
    duration,
    memoryInvocations: multiplyAmounts(memory, 3, r.invocations, 0),
    cpu: r.cpu_ms === null ? 0 : amountOf(r.cpu_ms, 3),
    mbMs,
    billed: options.billedMbMs ? amountOf(options.billedMbMs(r), 6) : mbMs,
    perInvocation: r.duration_ms / r.invocations,
  };
}

class Accumulator {
  events = 0;
  invocations = 0;
  readonly duration = new FixedSum(3);
  readonly memoryInvocations = new FixedSum(3);
  maxMemory = Number.NEGATIVE_INFINITY;
  readonly cpu = new FixedSum(3);
  readonly mbMs = new FixedSum(6);
  readonly billed = new FixedSum(6);
  coldStarts = 0;
  errors = 0;

  add(r: WindowUsage, c: Contribution): void {
    this.events += 1;
    this.invocations += r.invocations;
    this.duration.add(c.duration);
    this.memoryInvocations.add(c.memoryInvocations);
    if (r.memory_mb > this.maxMemory) this.maxMemory = r.memory_mb;
    this.cpu.add(c.cpu);
    this.mbMs.add(c.mbMs);
    this.billed.add(c.billed);
    if (r.cold_start) this.coldStarts += 1;
    if (r.error) this.errors += 1;
  }

  /** The fields every row and partial share. */
  sums() {
    return {
      events: this.events,
      invocations: this.invocations,
      total_duration_ms: this.duration.toString(),
      max_memory_mb: this.maxMemory,
      total_cpu_ms: this.cpu.toString(),
      mb_ms: this.mbMs.toString(),
      billed_mb_ms: this.billed.toString(),
      cold_starts: this.coldStarts,
      errors: this.errors,
    };
  }
}

/** Average per invocation, rounded half-up to the 3 decimals of the usage_aggregate columns. */
const average = (total: FixedSum | string, count: number): string =>
  (typeof total === 'string' ? ExactDecimal.of(total) : total.toExact()).divideToFixed(count, 3);

function group<A>(
  records: readonly WindowUsage[],
  sizes: readonly WindowSize[],
  timeZone: TimeZoneOf,
  options: AggregateOptions,
  create: () => A,
  add: (acc: A, record: WindowUsage, c: Contribution) => void,
): Entry<A>[] {
  // Each record is visited once per size, consecutively: compute its contribution once.
  let lastIndex = -1;
  let last: Contribution | undefined;
  return groupByWindow(records, sizes, timeZone, create, (acc, record, index) => {
    if (index !== lastIndex || !last) {
      last = contributionOf(record, options);
      lastIndex = index;
    }
    add(acc, record, last);
  });
}

/** Per-invocation durations of a window: values, and their weights once any report has several. */
class Durations {
  readonly values: number[] = [];
  weights: number[] | null = null;

  add(value: number, weight: number): void {
    if (weight !== 1 && !this.weights) this.weights = this.values.map(() => 1);
    this.values.push(value);
    this.weights?.push(weight);
  }

  /** Exact `percentile_cont` at each fraction. */
  percentiles(qs: readonly number[]): number[] {
    return percentilesCont(this.values, this.weights, qs).map((p) => p!);
  }
}

/**
 * Window rows of the records for each of `sizes`, with exact p50/p95 (PostgreSQL's
 * `percentile_cont` over per-invocation durations). Give it every record of the windows it
 * recomputes: a row reflects exactly the records passed.
 */
export function aggregateWindows(
  records: readonly WindowUsage[],
  sizes: readonly WindowSize[],
  timeZone: TimeZoneOf,
  options: AggregateOptions = {},
): WindowRow[] {
  type Exact = { acc: Accumulator; durations: Durations };
  const groups = group<Exact>(
    records,
    sizes,
    timeZone,
    options,
    () => ({ acc: new Accumulator(), durations: new Durations() }),
    (g, r, c) => {
      g.acc.add(r, c);
      g.durations.add(c.perInvocation, r.invocations);
    },
  );
  return groups.map(({ key, group: { acc, durations } }) => {
    const [p50, p95] = durations.percentiles([0.5, 0.95]);
    const sums = acc.sums();
    return {
      ...key,
      events: sums.events,
      invocations: sums.invocations,
      total_duration_ms: sums.total_duration_ms,
      avg_duration_ms: average(acc.duration, acc.invocations),
      p50_duration_ms: p50!,
      p95_duration_ms: p95!,
      max_memory_mb: sums.max_memory_mb,
      avg_memory_mb: average(acc.memoryInvocations, acc.invocations),
      total_cpu_ms: sums.total_cpu_ms,
      mb_ms: sums.mb_ms,
      billed_mb_ms: sums.billed_mb_ms,
      cold_starts: sums.cold_starts,
      errors: sums.errors,
    };
  });
}

/**
 * Mergeable window states of the records: what `mergeWindowPartials` combines across batches and
 * `rollUpPartials` turns from 5m windows into 1h/1d ones, and `finalizeWindow` turns into rows.
 */
export function accumulateWindows(
  records: readonly WindowUsage[],
  sizes: readonly WindowSize[],
  timeZone: TimeZoneOf,
  options: AggregateOptions = {},
): WindowPartial[] {
  const alpha = options.sketchAlpha ?? defaultSketchAlpha;
  type State = { acc: Accumulator; sketch: DurationSketch };
  const groups = group<State>(
    records,
    sizes,
    timeZone,
    options,
    () => ({ acc: new Accumulator(), sketch: new DurationSketch(alpha) }),
    (g, r, c) => {
      g.acc.add(r, c);
      g.sketch.add(c.perInvocation, r.invocations);
    },
  );
  return groups.map(({ key, group: { acc, sketch } }) => {
    const sums = acc.sums();
    return {
      ...key,
      events: sums.events,
      invocations: sums.invocations,
      total_duration_ms: sums.total_duration_ms,
      memory_mb_invocations: acc.memoryInvocations.toString(),
      max_memory_mb: sums.max_memory_mb,
      total_cpu_ms: sums.total_cpu_ms,
      mb_ms: sums.mb_ms,
      billed_mb_ms: sums.billed_mb_ms,
      cold_starts: sums.cold_starts,
      errors: sums.errors,
      duration_sketch: sketch.toJSON(),
    };
  });
}

const addDecimalStrings = (a: string, b: string): string => ExactDecimal.of(a).add(ExactDecimal.of(b)).toString();

function mergeTwo(a: WindowPartial, b: WindowPartial, key: WindowKey): WindowPartial {
  return {
    ...key,
    events: a.events + b.events,
    invocations: a.invocations + b.invocations,
    total_duration_ms: addDecimalStrings(a.total_duration_ms, b.total_duration_ms),
    memory_mb_invocations: addDecimalStrings(a.memory_mb_invocations, b.memory_mb_invocations),
    max_memory_mb: Math.max(a.max_memory_mb, b.max_memory_mb),
    total_cpu_ms: addDecimalStrings(a.total_cpu_ms, b.total_cpu_ms),
    mb_ms: addDecimalStrings(a.mb_ms, b.mb_ms),
    billed_mb_ms: addDecimalStrings(a.billed_mb_ms, b.billed_mb_ms),
    cold_starts: a.cold_starts + b.cold_starts,
    errors: a.errors + b.errors,
    duration_sketch: DurationSketch.fromJSON(a.duration_sketch).merge(DurationSketch.fromJSON(b.duration_sketch)).toJSON(),
  };
}

function mergeInto(target: Map<string, WindowPartial>, partial: WindowPartial, key: WindowKey): void {
  const k = mapKey(key);
  const existing = target.get(k);
  if (existing && existing.window_end !== key.window_end) {
    throw new RangeError(`window ${key.window_size} ${key.window_start} ends at ${existing.window_end} and at ${key.window_end}: mixed time zones?`);
  }
  target.set(k, existing ? mergeTwo(existing, partial, key) : { ...partial, ...key });
}

const keyOf = (p: WindowKey): WindowKey => ({
  window_size: p.window_size,
  window_start: p.window_start,
  window_end: p.window_end,
  tenant_id: p.tenant_id,
  service: p.service,
  revision: p.revision,
});

/** Merges partial states of the same windows (e.g. from separate batches), sorted. */
export function mergeWindowPartials(...lists: readonly (readonly WindowPartial[])[]): WindowPartial[] {
  const merged = new Map<string, WindowPartial>();
  for (const list of lists) for (const p of list) mergeInto(merged, p, keyOf(p));
  return [...merged.values()].sort(compareWindowKeys);
}

/**
 * Merges smaller windows' partial states into the windows of a larger `size` that contain them
 * (5m → 1h or 1d, 1h → 1d). Windows nest (see windows.ts), so each small window lies in exactly one
 * larger one; a partial that does not (wrong time zone) is an error.
 */
export function rollUpPartials(partials: readonly WindowPartial[], size: WindowSize, timeZone: TimeZoneOf): WindowPartial[] {
  const [target] = checkSizes([size]);
  const zoneOf = zoneResolver(timeZone);
  const calendar = new WindowCalendar();
  const merged = new Map<string, WindowPartial>();
  for (const p of partials) {
    if (sizeOrder[p.window_size] > sizeOrder[target!]) throw new RangeError(`cannot roll ${p.window_size} windows up into ${target} windows`);
    const [start, end] = calendar.bounds(Date.parse(p.window_start), target!, zoneOf(p.tenant_id));
    if (Date.parse(p.window_end) > end) {
      throw new RangeError(`${p.window_size} window ${p.window_start}–${p.window_end} is not inside one ${target} window in ${zoneOf(p.tenant_id)}`);
    }
    mergeInto(merged, p, { ...keyOf(p), window_size: target!, window_start: new Date(start).toISOString(), window_end: new Date(end).toISOString() });
  }
  return [...merged.values()].sort(compareWindowKeys);
}

/** A row from a partial state; p50/p95 come from its sketch (within its relative accuracy). */
export function finalizeWindow(p: WindowPartial): WindowRow {
  const sketch = DurationSketch.fromJSON(p.duration_sketch);
  const p50 = sketch.quantile(0.5);
  const p95 = sketch.quantile(0.95);
  if (p50 === null || p95 === null || p.invocations < 1) throw new RangeError(`window ${p.window_size} ${p.window_start} of ${p.tenant_id}/${p.service}/${p.revision} is empty`);
  return {
    ...keyOf(p),
    events: p.events,
    invocations: p.invocations,
    total_duration_ms: p.total_duration_ms,
    avg_duration_ms: average(p.total_duration_ms, p.invocations),
    p50_duration_ms: p50,
    p95_duration_ms: p95,
    max_memory_mb: p.max_memory_mb,
    avg_memory_mb: average(p.memory_mb_invocations, p.invocations),
    total_cpu_ms: p.total_cpu_ms,
    mb_ms: p.mb_ms,
    billed_mb_ms: p.billed_mb_ms,
    cold_starts: p.cold_starts,
    errors: p.errors,
  };
}

/** Rows from partial states, in the deterministic order. */
export function finalizeWindows(partials: readonly WindowPartial[]): WindowRow[] {
  return [...partials].sort(compareWindowKeys).map(finalizeWindow);
}
