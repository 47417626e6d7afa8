/**
 * Price schedules: time-of-day / day-of-week price multipliers ("nights and weekends −30%").
 * Pure: no I/O, no clock, no environment; the zone's rules come from the runtime's ICU data through
 * luxon; multipliers and quantities are decimal strings (`Dec`), never JS numbers.
 *
 * A schedule is a list of at most {@link MAX_SCHEDULE_RULES} rules
 * `{ days, from, to, multiplier, label? }`, e.g. nights and weekends at −30 %:
 *
 * ```
 * [
 *   { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '22:00', to: '06:00', multiplier: '0.7', label: 'night' },
 *   { days: ['sat', 'sun'], from: '00:00', to: '24:00', multiplier: '0.7', label: 'weekend' },
 * ]
 * ```
 *
 * Semantics:
 *
 * - **Rules are read on the tenant's local wall clock.** An instant is matched by reading its local
 *   date, weekday and time of day in the tenant's zone (with the UTC offset in force at that
 *   instant). A rule `from`–`to` on day D covers the instants whose local date-time is in
 *   `[D from, D to)`: `from` inclusive, `to` exclusive. `to` may be "24:00" (the end of D);
 *   "00:00"–"24:00" is the whole day.
 * - **The first matching rule wins**; an instant no rule matches has multiplier "1" and label null.
 * - **A rule with `from` > `to` wraps past midnight, and the part after midnight belongs to the
 *   listed day's NIGHT, i.e. falls on the next calendar day.** `days: ['fri'], 22:00–06:00` covers
 *   Friday 22:00–24:00 and Saturday 00:00–06:00 — not Friday 00:00–06:00. The weekday list names
 *   the day the night starts on. So "Mon–Fri 22:00–06:00" discounts Monday evening through
 *   Saturday morning, but not Monday 00:00–06:00 (that is Sunday's night: list `sun` to include
 *   it). `to` = "00:00" with a later `from` is the same as `to` = "24:00".
 * - **DST.** Because matching reads the local wall clock, a spring-forward gap simply never shows
 *   the skipped wall times: a rule boundary inside the gap (e.g. 02:30 in Europe/Berlin on
 *   2026-03-29) takes effect at the change itself (the first instant at or after it on the local
 *   clock). In the repeated hour of a fall-back, each wall time occurs twice and matches twice: a
 *   rule 02:00–03:00 covers both the CEST and the CET 02:00–03:00 (two real hours), and a
 *   boundary at 02:30 is crossed twice. Local days are 23 h or 25 h long accordingly.
 *
 * {@link splitBySchedule} cuts `[start, end)` exactly at every instant where the multiplier or
 * label changes (at a local rule boundary, local midnight or a change of UTC offset), merging
 * neighbours with the same multiplier and label; {@link multiplierAt} is the same rule for one
 * instant, and every piece's multiplier equals `multiplierAt` at every instant of the piece.
 *
 * {@link apportion} splits a quantity measured uniformly over `[start, end)` (e.g. one hourly
 * usage window) into such pieces by duration share. A share like 20 min / 60 min is not a finite
 * decimal, so every part but the last is rounded DOWN to a fixed grid of decimal places (chosen so
 * that every value ≤ the quantity on that grid has at most 64 significant digits: `Dec` adds and
 * subtracts them exactly) and the last part gets the rest. So the parts sum EXACTLY to the
 * quantity, each is ≥ 0, and each differs from its exact share by less than one unit of the grid
 * (about 10^-63 relative; the last by less than one unit per piece).
 *
 * Validation (`scheduleSchema` / {@link parseSchedule}): "HH:MM" times (`from` 00:00–23:59, `to`
 * 00:00–24:00), `from` ≠ `to` (an empty rule is refused; use 00:00–24:00 for a whole day), a
 * decimal-string multiplier ≥ 0 (a JS number is refused, so no float becomes a multiplier), days
 * non-empty and unique, at most 32 rules, no unknown fields. Every message names its rule by
 * index, as in the issue path (`schedule[2].from must be ...`). After parsing, multipliers are
 * canonical decimal text ("0.70" → "0.7") and labels are trimmed.
 *
 * Assumption (as in windows.ts, true of every zone in the tz database): a zone changes its UTC
 * offset at most once within any 32 hours.
 */
import { z } from 'zod';
import type { Decimal } from 'decimal.js';
import { Dec, plain } from './money.js';
import { firstWhere, offsetAt, zoneOf } from '../windows/windows.js';

/** Weekday names, Monday first (ISO order). */
export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof weekdays)[number];

/** Most rules a schedule may have. */
export const MAX_SCHEDULE_RULES = 32;
/** Longest label. */
const MAX_LABEL_LENGTH = 100;

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const show = (v: unknown): string => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) ?? String(v));

/** A time of day "HH:MM"; `to` also admits "24:00" (the end of the day). */
const fromPattern = /^([01]\d|2[0-3]):[0-5]\d$/;
const toPattern = /^(([01]\d|2[0-3]):[0-5]\d|24:00)$/;
const decimalPattern = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

function timeField(name: 'from' | 'to') {
  const pattern = name === 'from' ? fromPattern : toPattern;
  const range = name === 'from' ? '00:00 to 23:59' : '00:00 to 24:00';
  const message = (input: unknown): string => `must be a time "HH:MM" from ${range} (got ${show(input)})`;
  return z.string({ error: (issue) => message(issue.input) }).refine((v) => pattern.test(v), { error: (issue) => message(issue.input) });
}

const multiplierField = z
  .string({
    error: (issue) =>
      typeof issue.input === 'number'
        ? `must be a decimal string such as "0.7", not a JS number (got ${show(issue.input)})`
        : `must be a decimal string such as "0.7" (got ${show(issue.input)})`,
  })
  .transform((text, ctx): string => {
    if (!decimalPattern.test(text)) {
      ctx.issues.push({ code: 'custom', message: `must be a decimal string such as "0.7" (got ${show(text)})`, input: text });
      return z.NEVER;
    }
    const value = new Dec(text.trim());
    if (value.isNegative() && !value.isZero()) {
      ctx.issues.push({ code: 'custom', message: `must not be negative (got ${show(text)})`, input: text });
      return z.NEVER;
    }
    return plain(value);
  });

const daysField = z
  .array(z.enum(weekdays, { error: (issue) => `must be one of ${weekdays.join(', ')} (got ${show(issue.input)})` }), {
    error: (issue) => `must be an array of weekdays such as ["sat", "sun"] (got ${show(issue.input)})`,
  })
  .min(1, { error: 'must list at least one weekday' })
  .superRefine((days, ctx) => {
    const seen = new Set<Weekday>();
    days.forEach((d, i) => {
      if (seen.has(d)) ctx.addIssue({ code: 'custom', path: [i], message: `must not repeat a weekday: "${d}" is listed twice`, input: days });
      seen.add(d);
    });
  });

const ruleFields = ['days', 'from', 'to', 'multiplier', 'label'] as const;

/** One rule, on its own (messages relative to the rule; {@link scheduleSchema} prefixes them with its index). */
export const scheduleRuleSchema = z
  .strictObject(
    {
      days: daysField,
      from: timeField('from'),
      to: timeField('to'),
      multiplier: multiplierField,
      label: z
        .string({ error: (issue) => `must be a string (got ${show(issue.input)})` })
        .trim()
        .min(1, { error: 'must not be empty (leave it out instead)' })
        .max(MAX_LABEL_LENGTH, { error: `must be at most ${MAX_LABEL_LENGTH} characters` })
        .optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `has unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')} (a rule has ${ruleFields.join(', ')})`
          : `must be an object { days, from, to, multiplier, label? } (got ${show(issue.input)})`,
    },
  )
  .superRefine((rule, ctx) => {
    if (typeof rule.from === 'string' && rule.from === rule.to) {
      ctx.addIssue({
        code: 'custom',
        path: ['to'],
        message: `must differ from from (both "${rule.from}"): an empty rule is refused; "00:00"–"24:00" is a whole day`,
        input: rule,
      });
    }
  });

export type ScheduleRule = z.output<typeof scheduleRuleSchema>;
/** What a rule may be written as. */
export type ScheduleRuleInput = z.input<typeof scheduleRuleSchema>;

/** `schedule[2].days[1]` for the path [2, 'days', 1]. */
function where(path: readonly PropertyKey[]): string {
  return path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : `${s}.${String(k)}`), 'schedule');
}

/**
 * A price schedule: at most {@link MAX_SCHEDULE_RULES} rules, first match wins (see the module
 * comment). Each rule is checked on its own; every message starts with the rule's place
 * (`schedule[2].from must be ...`), the issue path is `[2, 'from']`.
 */
export const scheduleSchema = z
  .array(z.unknown(), { error: (issue) => `a schedule must be an array of rules (got ${show(issue.input)})` })
  .max(MAX_SCHEDULE_RULES, { error: (issue) => `a schedule has at most ${MAX_SCHEDULE_RULES} rules (got ${Array.isArray(issue.input) ? issue.input.length : '?'})` })
  .transform((items, ctx): ScheduleRule[] => {
    const rules: ScheduleRule[] = [];
    items.forEach((item, i) => {
      const r = scheduleRuleSchema.safeParse(item);
      if (r.success) {
        rules.push(r.data);
        return;
      }
      for (const issue of r.error.issues) {
        const path = [i, ...issue.path];
        const sep = /^(must|has) /.test(issue.message) ? ' ' : ': ';
        ctx.issues.push({ code: 'custom', path, message: `${where(path)}${sep}${issue.message}`, input: item });
      }
    });
    return rules.length === items.length ? rules : z.NEVER;
  });

export type Schedule = z.output<typeof scheduleSchema>;
/** What a schedule may be written as. */
export type ScheduleInput = ScheduleRuleInput[];

/** One problem found in a schedule: where (dotted path, "" for the whole schedule) and what. */
export interface ScheduleIssue {
  path: string;
  message: string;
}

export class ScheduleValidationError extends Error {
  readonly issues: ScheduleIssue[];
  constructor(issues: ScheduleIssue[]) {
    super(`invalid price schedule: ${issues.map((i) => i.message).join('; ')}`);
    this.name = 'ScheduleValidationError';
    this.issues = issues;
  }
}

export type ScheduleParseResult = { ok: true; schedule: Schedule } | { ok: false; error: ScheduleValidationError };

/** Validates a schedule; never throws. The result is frozen (rules and their day lists too). */
export function safeParseSchedule(input: unknown): ScheduleParseResult {
  const r = scheduleSchema.safeParse(input);
  if (!r.success) {
    return { ok: false, error: new ScheduleValidationError(r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }))) };
  }
  const schedule = Object.freeze(r.data.map((rule) => Object.freeze({ ...rule, days: Object.freeze([...rule.days]) }))) as Schedule;
  return { ok: true, schedule };
}

/** Validates a schedule; throws {@link ScheduleValidationError} listing every problem. */
export function parseSchedule(input: unknown): Schedule {
  const r = safeParseSchedule(input);
  if (!r.ok) throw r.error;
  return r.schedule;
}

/** A sub-interval `[start, end)` with one multiplier and label. */
export interface SchedulePiece {
  start: Date;
  end: Date;
  /** Canonical decimal text; "1" outside every rule. */
  multiplier: string;
  /** The matching rule's label; null outside every rule or for a rule without one. */
  label: string | null;
}

/** A rule ready to match: local times in ms since local midnight, weekdays as a bit mask (bit 0 = Sunday). */
interface CompiledRule {
  mask: number;
  from: number;
  to: number;
  wraps: boolean;
  multiplier: string;
  label: string | null;
}

interface CompiledSchedule {
  rules: CompiledRule[];
  /** Every rule boundary strictly inside the day (ms since local midnight), ascending. */
  boundaries: number[];
}

/** Bit of each weekday in a mask, by `Date#getUTCDay()` numbering (0 = Sunday). */
const dayBit: Record<Weekday, number> = { sun: 1, mon: 2, tue: 4, wed: 8, thu: 16, fri: 32, sat: 64 };

const timeMs = (hhmm: string): number => (Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5))) * MINUTE;

function compile(schedule: Schedule): CompiledSchedule {
  const rules = schedule.map((r): CompiledRule => {
    const from = timeMs(r.from);
    const to = timeMs(r.to);
    return {
      mask: r.days.reduce((m, d) => m | dayBit[d], 0),
      from,
      to,
      wraps: from > to,
      multiplier: r.multiplier,
      label: r.label ?? null,
    };
  });
  const cuts = new Set<number>();
  for (const r of rules) for (const t of [r.from, r.to]) if (t > 0 && t < DAY) cuts.add(t);
  return { rules, boundaries: [...cuts].sort((a, b) => a - b) };
}

/** Compiled frozen schedules (from {@link parseSchedule}): known valid and unchanged. */
const compiledFrozen = new WeakMap<object, CompiledSchedule>();

/** Validates (unless frozen and seen before) and compiles; throws {@link ScheduleValidationError}. */
function compiled(schedule: Readonly<Schedule>): CompiledSchedule {
  const cached = compiledFrozen.get(schedule);
  if (cached) return cached;
  const parsed = parseSchedule(schedule);
  const c = compile(parsed);
  const frozen = Object.isFrozen(schedule) && schedule.every((r) => Object.isFrozen(r) && Object.isFrozen(r.days));
  if (frozen) compiledFrozen.set(schedule, c);
  return c;
}



const NO_RULE = { multiplier: '1', label: null } as const;

/** The first rule matching a local wall reading: `localMs` = instant + offset. */
function match(c: CompiledSchedule, localMs: number): CompiledRule | undefined {
  const dayNo = Math.floor(localMs / DAY);
  const tod = localMs - dayNo * DAY;
  // 1970-01-01 was a Thursday (getUTCDay() = 4).
  const wd = (((dayNo + 4) % 7) + 7) % 7;
  const bit = 1 << wd;
  const prevBit = 1 << (wd === 0 ? 6 : wd - 1);
  return c.rules.find((r) =>
    r.wraps ? ((r.mask & bit) !== 0 && tod >= r.from) || ((r.mask & prevBit) !== 0 && tod < r.to) : (r.mask & bit) !== 0 && tod >= r.from && tod < r.to,
  );
}

function epochMs(d: Date, what: string): number {
  const ms = d instanceof Date ? d.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new RangeError(`${what} must be a valid Date (got ${show(d)})`);
  return ms;
}

/** The multiplier and label in force at `instant` in `timeZone` (first matching rule, else "1"). */
export function multiplierAt(schedule: Readonly<Schedule>, timeZone: string, instant: Date): { multiplier: string; label: string | null } {
  const c = compiled(schedule);
  const zone = zoneOf(timeZone);
  const t = epochMs(instant, 'instant');
  const rule = match(c, t + offsetAt(zone, t));
  return rule ? { multiplier: rule.multiplier, label: rule.label } : { ...NO_RULE };
}

/**
 * The exact sub-intervals of `[start, end)` with constant multiplier and label, in order, without
 * gaps or overlaps; neighbours with the same multiplier and label are merged. Empty when
 * `start` = `end`. Cuts fall at local rule boundaries and local midnights as they occur on the
 * tenant's clock, including across DST changes (see the module comment).
 */
export function splitBySchedule(schedule: Readonly<Schedule>, timeZone: string, start: Date, end: Date): SchedulePiece[] {
  const c = compiled(schedule);
  const zone = zoneOf(timeZone);
  const startMs = epochMs(start, 'start');
  const endMs = epochMs(end, 'end');
  if (endMs < startMs) throw new RangeError(`end (${end.toISOString()}) must not be before start (${start.toISOString()})`);
  if (startMs === endMs) return [];
  if (c.rules.length === 0) return [{ start: new Date(startMs), end: new Date(endMs), ...NO_RULE }];

  const out: { start: number; end: number; multiplier: string; label: string | null }[] = [];
  let offset = offsetAt(zone, startMs); // the offset in force at t
  for (let t = startMs; t < endMs; ) {
    const local = t + offset;
    const tod = local - Math.floor(local / DAY) * DAY;
    const rule = match(c, local);
    // The next rule boundary or local midnight on the clock of this offset (at most a day ahead).
    const nextCut = c.boundaries.find((b) => b > tod) ?? DAY;
    let next = Math.min(t + (nextCut - tod), endMs);
    // A change of offset in (t, next] (at most one within a day) cuts the piece there instead.
    const offsetAtNext = offsetAt(zone, next);
    if (offsetAtNext !== offset) {
      const from = offset;
      next = firstWhere(t, next, (x) => offsetAt(zone, x) !== from);
      offset = offsetAt(zone, next);
    }
    const multiplier = rule ? rule.multiplier : NO_RULE.multiplier;
    const label = rule ? rule.label : NO_RULE.label;
    const last = out[out.length - 1];
    if (last && last.multiplier === multiplier && last.label === label) last.end = next;
    else out.push({ start: t, end: next, multiplier, label });
    t = next;
  }
  return out.map((p) => ({ start: new Date(p.start), end: new Date(p.end), multiplier: p.multiplier, label: p.label }));
}

/** Enough digits for any q × d (q ≤ 64 digits, d < 2^53) exactly, and a truncated quotient. */
const Wide = Dec.clone({ precision: 160, rounding: Dec.ROUND_DOWN });

/**
 * Splits `quantity` (a decimal string ≥ 0, at most 64 significant digits), measured uniformly over
 * `[start, end)`, into `pieces` (which must cover `[start, end)` exactly: ordered, contiguous,
 * non-empty) by duration share. Every part but the last is the exact share rounded DOWN to
 * 63 − e decimal places (e = the quantity's decimal exponent, so every value ≤ the quantity on
 * that grid has at most 64 significant digits); the last part is the rest. The parts are ≥ 0 and
 * sum exactly to the quantity. Returns each piece with its `quantity` (canonical decimal text).
 */
export function apportion<P extends { start: Date; end: Date }>(quantity: string, start: Date, end: Date, pieces: readonly P[]): (P & { quantity: string })[] {
  if (typeof quantity !== 'string' || !decimalPattern.test(quantity)) {
    throw new RangeError(`quantity must be a decimal string such as "12.5" (got ${show(quantity)})`);
  }
  const q = new Wide(quantity.trim());
  if (q.isNegative() && !q.isZero()) throw new RangeError(`quantity must not be negative (got ${show(quantity)})`);
  if (q.sd() > 64) throw new RangeError(`quantity must have at most 64 significant digits (got ${show(quantity)})`);
  if (q.e >= 63) throw new RangeError(`quantity must be below 10^63 (got ${show(quantity)})`);
  const startMs = epochMs(start, 'start');
  const endMs = epochMs(end, 'end');
  if (!(endMs > startMs)) throw new RangeError(`end (${show(end)}) must be after start (${show(start)})`);
  const first = pieces[0];
  const last = pieces[pieces.length - 1];
  if (!first || !last) throw new RangeError('pieces must not be empty: they must cover [start, end)');
  if (epochMs(first.start, 'pieces[0].start') !== startMs) throw new RangeError(`pieces[0].start (${show(first.start)}) must equal start (${show(start)})`);
  if (epochMs(last.end, `pieces[${pieces.length - 1}].end`) !== endMs) {
    throw new RangeError(`pieces[${pieces.length - 1}].end (${show(last.end)}) must equal end (${show(end)})`);
  }
  const durations = pieces.map((p, i) => {
    const s = epochMs(p.start, `pieces[${i}].start`);
    const e = epochMs(p.end, `pieces[${i}].end`);
    if (!(e > s)) throw new RangeError(`pieces[${i}] must not be empty or reversed (${show(p.start)} – ${show(p.end)})`);
    const prev = i > 0 ? pieces[i - 1] : undefined;
    if (prev && prev.end.getTime() !== s) throw new RangeError(`pieces[${i}].start (${show(p.start)}) must equal pieces[${i - 1}].end (${show(prev.end)})`);
    return e - s;
  });
  const total = endMs - startMs;
  if (q.isZero()) return pieces.map((p) => ({ ...p, quantity: '0' }));
  const places = 63 - q.e;
  let rest: Decimal = q;
  const parts = durations.map((d, i): Decimal => {
    if (i === durations.length - 1) return rest;
    const part = q.times(d).div(total).toDecimalPlaces(places, Dec.ROUND_DOWN);
    rest = rest.minus(part);
    return part;
  });
  return pieces.map((p, i) => ({ ...p, quantity: plain(parts[i] ?? new Dec(0)) }));
}
