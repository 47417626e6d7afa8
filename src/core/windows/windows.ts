/**
 * Window bucketing in a tenant's time zone: which 5m / 1h / 1d window an instant falls in, and
 * which calendar month (billing period). Pure: no I/O, no clock, no environment; the zone's rules
 * come from the ICU data of the runtime through luxon.
 *
 * Definitions (DESIGN §5: "a month is a calendar month in the tenant's timezone"):
 *
 * - **Windows are identified by UTC instants**, never by local wall times: a window is the
 *   half-open interval `[start, end)` of instants, `start` inclusive, `end` exclusive.
 * - **5m and 1h windows follow the tenant's local clock.** A boundary is every instant whose local
 *   wall time (in the offset in force at that instant) is a multiple of 5 minutes / a whole hour,
 *   plus every UTC-offset change of the zone. So in Asia/Kolkata (+05:30) 1h windows start at
 *   :30 UTC, in Asia/Kathmandu (+05:45) at :15 UTC. On a DST fall-back day the repeated local hour
 *   is two distinct 1h windows (one per offset, e.g. 02:00 CEST and 02:00 CET in Europe/Berlin);
 *   on a spring-forward day the skipped local hour has no window. A zone whose DST shift is not a
 *   multiple of the window (Australia/Lord_Howe shifts by 30 minutes) gets one shorter window at the
 *   change, so a window never spans two offsets and windows never overlap.
 * - **1d windows are the tenant's local calendar day**: from the first instant whose local
 *   date-time is at or after `D 00:00` to the same for `D+1`. DST days are 23 h or 25 h long.
 *   Where local midnight does not exist (a spring-forward at 00:00) the day starts at the change.
 * - **Billing periods** are calendar months built the same way from local day starts.
 *
 * These sets of boundaries nest: every 1h boundary and every day start is also a 5m boundary, so a
 * 5m window lies inside exactly one 1h window and one 1d window (which lets 1h/1d windows be merged
 * from 5m ones), and a day lies inside one month.
 *
 * For zones whose DST shifts are whole hours, 1h and 1d window starts equal PostgreSQL's
 * `date_trunc('hour' | 'day', t, zone)` (checked in the tests), so SQL can bucket the same way. They
 * differ only in odd zones: a 30-minute DST shift (date_trunc's hours overlap there), and a
 * fall-back that repeats local midnight (America/Havana: date_trunc starts that day at the second
 * midnight, this module at the first).
 *
 * Assumption (true of every zone in the tz database): a zone changes its UTC offset at most once
 * within any 32 hours.
 */
import { IANAZone } from 'luxon';

export const windowSizes = ['5m', '1h', '1d'] as const;
export type WindowSize = (typeof windowSizes)[number];

/** A half-open interval of instants `[start, end)`. */
export interface WindowBounds {
  start: Date;
  end: Date;
}

/** An instant: a Date, epoch milliseconds, or an ISO 8601 string with `Z` or an explicit offset. */
export type Instant = Date | string | number;

/** A time zone name that is not a known IANA zone. */
export class InvalidTimeZoneError extends RangeError {
  constructor(readonly timeZone: string) {
    super(`unknown time zone ${JSON.stringify(timeZone)}: expected an IANA zone name such as "Europe/Berlin" or "UTC"`);
    this.name = 'InvalidTimeZoneError';
  }
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Length of the local-clock grid of each sub-day window size. */
const gridMs = { '5m': 5 * MINUTE, '1h': HOUR } as const;
/** Longest distance between an instant and the instants showing a given local wall time. */
const SEARCH_SPAN = 16 * HOUR;

const zones = new Map<string, IANAZone>();

/** Returns the zone (cached), or throws {@link InvalidTimeZoneError}. */
export function zoneOf(timeZone: string): IANAZone {
  let zone = zones.get(timeZone);
  if (zone) return zone;
  if (typeof timeZone !== 'string' || timeZone.trim() === '' || !IANAZone.isValidZone(timeZone)) {
    throw new InvalidTimeZoneError(String(timeZone));
  }
  zone = IANAZone.create(timeZone);
  if (zones.size > 1000) zones.clear();
  zones.set(timeZone, zone);
  return zone;
}

/** True when `timeZone` is a known IANA zone name. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    zoneOf(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** Throws {@link InvalidTimeZoneError} unless `timeZone` is a known IANA zone name. */
export function assertTimeZone(timeZone: string): void {
  zoneOf(timeZone);
}

const isoInstant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** Epoch milliseconds of an instant; a string must carry `Z` or an offset (no process-local time). */
export function toEpochMs(time: Instant): number {
  let ms: number;
  if (time instanceof Date) ms = time.getTime();
  else if (typeof time === 'number') ms = time;
  else if (typeof time === 'string' && isoInstant.test(time.trim())) ms = Date.parse(time.trim());
  else ms = Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new RangeError(`invalid time ${JSON.stringify(time)}: expected an ISO 8601 instant with "Z" or an offset, a Date or epoch ms`);
  }
  return ms;
}

const mod = (a: number, m: number): number => ((a % m) + m) % m;

/** Smallest integer x in (lo, hi] with pred(x), given !pred(lo), pred(hi) and pred monotone there. */
export function firstWhere(lo: number, hi: number, pred: (x: number) => boolean): number {
  while (hi - lo > 1) {
    const mid = Math.floor(lo + (hi - lo) / 2);
    if (pred(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** A zone's UTC offset in ms at an instant. */
export const offsetAt = (zone: IANAZone, t: number): number => Math.round(zone.offset(t) * MINUTE);

function subDayBounds(zone: IANAZone, t: number, grid: number): [number, number] {
  const o = offsetAt(zone, t);
  const hasO = (x: number): boolean => offsetAt(zone, x) === o;
  // The local-clock grid point at or before t, read in the offset in force at t.
  const aligned = t - mod(t + o, grid);
  // An offset change between that grid point and t starts the window instead.
  const start = hasO(aligned) ? aligned : firstWhere(aligned, t, hasO);
  const alignedEnd = aligned + grid;
  // An offset change before the next grid point ends the window there.
  const end = hasO(alignedEnd - 1) ? alignedEnd : firstWhere(t, alignedEnd - 1, (x) => !hasO(x));
  return [start, end];
}

interface LocalDate {
  y: number;
  m: number; // 1..12
  d: number;
}

function localDateOf(zone: IANAZone, t: number): LocalDate {
  const local = new Date(t + offsetAt(zone, t));
  return { y: local.getUTCFullYear(), m: local.getUTCMonth() + 1, d: local.getUTCDate() };
}

/** The first instant whose local date-time is at or after `y-m-d 00:00` (Date.UTC normalises overflow). */
function localMidnight(zone: IANAZone, y: number, m: number, d: number): number {
  const wall = Date.UTC(y, m - 1, d);
  const before = offsetAt(zone, wall - SEARCH_SPAN);
  const after = offsetAt(zone, wall + SEARCH_SPAN);
  const candidates = [wall - before, wall - after].filter((c) => wall - offsetAt(zone, c) === c);
  if (candidates.length > 0) return Math.min(...candidates);
  // Local midnight falls in a spring-forward gap: the day starts at the change of offset.
  return firstWhere(wall - SEARCH_SPAN, wall + SEARCH_SPAN, (x) => offsetAt(zone, x) === after);
}

/** The interval `[start(k), start(k+1))` containing t, for a monotone sequence of starts. */
function findInterval(t: number, seed: LocalDate, startOf: (date: LocalDate, step: number) => number): [number, number] {
  let step = 0;
  for (let guard = 0; guard < 8; guard++) {
    const start = startOf(seed, step);
    const end = startOf(seed, step + 1);
    if (t < start) step--;
    else if (t >= end) step++;
    else return [start, end];
  }
  throw new Error(`no calendar interval found for ${new Date(t).toISOString()}`);
}

function dayBounds(zone: IANAZone, t: number): [number, number] {
  return findInterval(t, localDateOf(zone, t), (s, step) => localMidnight(zone, s.y, s.m, s.d + step));
}

function monthBounds(zone: IANAZone, t: number): [number, number] {
  return findInterval(t, localDateOf(zone, t), (s, step) => localMidnight(zone, s.y, s.m + step, 1));
}

/** Bounds as epoch ms; the fast path for the aggregation code. */
export function windowBoundsMs(t: number, size: WindowSize, timeZone: string): [number, number] {
  const zone = zoneOf(timeZone);
  switch (size) {
    case '5m':
    case '1h':
      return subDayBounds(zone, t, gridMs[size]);
    case '1d':
      return dayBounds(zone, t);
    default:
      throw new RangeError(`unknown window size ${JSON.stringify(size)}: expected one of ${windowSizes.join(', ')}`);
  }
}

/** The window of `size` containing `time`, in `timeZone` (see the module comment for the rules). */
export function windowBounds(time: Instant, size: WindowSize, timeZone: string): WindowBounds {
  const [start, end] = windowBoundsMs(toEpochMs(time), size, timeZone);
  return { start: new Date(start), end: new Date(end) };
}

/** The start (inclusive, a UTC instant) of the window of `size` containing `time`. */
export function windowStart(time: Instant, size: WindowSize, timeZone: string): Date {
  return windowBounds(time, size, timeZone).start;
}

/** The calendar month in `timeZone` containing `time`: the billing period, as UTC instants. */
export function billingPeriod(time: Instant, timeZone: string): WindowBounds {
  const [start, end] = monthBounds(zoneOf(timeZone), toEpochMs(time));
  return { start: new Date(start), end: new Date(end) };
}

/**
 * Every window of `size` that intersects `[minTime, maxTime]` (both inclusive), in time order.
 * A superset of what a batch touched when its events are sparse; prefer `windowKeysOf`.
 */
export function windowsTouched(minTime: Instant, maxTime: Instant, size: WindowSize, timeZone: string, limit = 100_000): WindowBounds[] {
  const min = toEpochMs(minTime);
  const max = toEpochMs(maxTime);
  const out: WindowBounds[] = [];
  for (let t = min; t <= max; ) {
    if (out.length >= limit) throw new RangeError(`more than ${limit} ${size} windows between ${new Date(min).toISOString()} and ${new Date(max).toISOString()}`);
    const [start, end] = windowBoundsMs(t, size, timeZone);
    out.push({ start: new Date(start), end: new Date(end) });
    t = end;
  }
  return out;
}

/** Nominal length of a window size (a 1d window may be 23 h or 25 h; a 5m/1h one may be shorter). */
export const nominalWindowMs: Record<WindowSize, number> = { '5m': gridMs['5m'], '1h': gridMs['1h'], '1d': DAY };

const CACHE_BUCKET = 5 * MINUTE;

/**
 * Memoised bucketing for one batch: each window computed is remembered under every 5-minute UTC
 * bucket that lies wholly inside it, so later instants in those buckets are a map lookup (a bucket
 * cut by a window boundary, possible only at odd historical offsets, is computed each time).
 * Create one per batch; it only grows.
 */
export class WindowCalendar {
  private readonly zones = new Map<string, Record<WindowSize, Map<number, readonly [number, number]>>>();

  /** `[start, end)` in epoch ms of the window of `size` containing `t` in `timeZone`. */
  bounds(t: number, size: WindowSize, timeZone: string): readonly [number, number] {
    let caches = this.zones.get(timeZone);
    if (!caches) {
      zoneOf(timeZone);
      caches = { '5m': new Map(), '1h': new Map(), '1d': new Map() };
      this.zones.set(timeZone, caches);
    }
    const byBucket = caches[size];
    if (!byBucket) return windowBoundsMs(t, size, timeZone); // an unknown size: let it throw
    const bucket = Math.floor(t / CACHE_BUCKET);
    const hit = byBucket.get(bucket);
    if (hit) return hit;
    const found = windowBoundsMs(t, size, timeZone);
    // Remember the window for every bucket that lies wholly inside it.
    const first = Math.ceil(found[0] / CACHE_BUCKET);
    const last = Math.floor(found[1] / CACHE_BUCKET) - 1;
    for (let b = first; b <= last; b++) byBucket.set(b, found);
    return found;
  }
}
