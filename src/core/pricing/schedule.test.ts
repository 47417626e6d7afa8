/** Price schedules: time-of-day / day-of-week multipliers, split exactly in the tenant's time zone. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Dec } from './money.js';
import {
  MAX_SCHEDULE_RULES,
  ScheduleValidationError,
  apportion,
  multiplierAt,
  parseSchedule,
  safeParseSchedule,
  scheduleSchema,
  splitBySchedule,
  weekdays,
  type Schedule,
  type ScheduleInput,
  type ScheduleRuleInput,
  type SchedulePiece,
} from './schedule.js';
import { InvalidTimeZoneError, windowBounds } from '../windows/index.js';

const HOUR = 3_600_000;
const MIN = 60_000;

/** Exact enough for every sum here: values have at most 64 significant digits and ≤ 130 digits overall. */
const Exact = Dec.clone({ precision: 1000 });

const d = (iso: string): Date => new Date(iso);
/** Pieces as [start, end, multiplier, label] with ISO instants. */
const rows = (pieces: SchedulePiece[]): [string, string, string, string | null][] =>
  pieces.map((p) => [p.start.toISOString(), p.end.toISOString(), p.multiplier, p.label]);
const lengthMs = (p: { start: Date; end: Date }): number => p.end.getTime() - p.start.getTime();
/** Total ms of the pieces with this multiplier. */
const msAt = (pieces: SchedulePiece[], multiplier: string): number => pieces.filter((p) => p.multiplier === multiplier).reduce((s, p) => s + lengthMs(p), 0);
const totalMs = (pieces: SchedulePiece[]): number => pieces.reduce((s, p) => s + lengthMs(p), 0);

/** Mon–Fri nights 22:00–06:00 and all of Saturday and Sunday at −30 %. */
const nightsAndWeekends: ScheduleInput = [
  { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '22:00', to: '06:00', multiplier: '0.7', label: 'night' },
  { days: ['sat', 'sun'], from: '00:00', to: '24:00', multiplier: '0.7', label: 'weekend' },
];

/** Every day: 02:10–02:20 ×0.1 (first), 00:00–02:30 ×0.5, 02:30–03:30 ×0.8; boundaries around the DST hours. */
const aroundTwo: ScheduleInput = [
  { days: [...weekdays], from: '02:10', to: '02:20', multiplier: '0.1', label: 'gap' },
  { days: [...weekdays], from: '00:00', to: '02:30', multiplier: '0.5', label: 'a' },
  { days: [...weekdays], from: '02:30', to: '03:30', multiplier: '0.8', label: 'b' },
];

/** Asserts the pieces tile [start, end): ordered, contiguous, non-empty, neighbours distinct. */
function assertTiles(pieces: SchedulePiece[], start: Date, end: Date): void {
  if (start.getTime() === end.getTime()) {
    assert.deepEqual(pieces, []);
    return;
  }
  assert.ok(pieces.length > 0);
  assert.equal(pieces[0]?.start.getTime(), start.getTime(), 'first piece starts at start');
  assert.equal(pieces[pieces.length - 1]?.end.getTime(), end.getTime(), 'last piece ends at end');
  pieces.forEach((p, i) => {
    assert.ok(p.start.getTime() < p.end.getTime(), `piece ${i} is not empty`);
    const prev = pieces[i - 1];
    if (prev) {
      assert.equal(prev.end.getTime(), p.start.getTime(), `piece ${i} starts where piece ${i - 1} ends`);
      assert.ok(prev.multiplier !== p.multiplier || prev.label !== p.label, `pieces ${i - 1} and ${i} are merged`);
    }
  });
  assert.equal(totalMs(pieces), end.getTime() - start.getTime());
}

/** Joins two consecutive splits, merging at the seam like splitBySchedule does. */
function concatMerged(a: SchedulePiece[], b: SchedulePiece[]): SchedulePiece[] {
  const out = a.map((p) => ({ ...p }));
  for (const p of b) {
    const last = out[out.length - 1];
    if (last && last.end.getTime() === p.start.getTime() && last.multiplier === p.multiplier && last.label === p.label) last.end = p.end;
    else out.push({ ...p });
  }
  return out;
}

const sumExact = (values: string[]): Dec => values.reduce((s, v) => s.plus(v), new Exact(0));

describe('pricing schedule: time-of-day and day-of-week multipliers', () => {
  describe('examples', () => {
    it('nights and weekends −30%: an hour straddling 22:00 in Europe/Berlin splits exactly at 22:00 local', () => {
      const schedule = parseSchedule(nightsAndWeekends);
      // Wednesday 2026-05-13, CEST (+02:00): 21:30–22:30 local = 19:30Z–20:30Z, cut at 22:00 local = 20:00Z.
      const summer = splitBySchedule(schedule, 'Europe/Berlin', d('2026-05-13T19:30:00Z'), d('2026-05-13T20:30:00Z'));
      assert.deepEqual(rows(summer), [
        ['2026-05-13T19:30:00.000Z', '2026-05-13T20:00:00.000Z', '1', null],
        ['2026-05-13T20:00:00.000Z', '2026-05-13T20:30:00.000Z', '0.7', 'night'],
      ]);
      // Wednesday 2026-01-14, CET (+01:00): 22:00 local = 21:00Z.
      const winter = splitBySchedule(schedule, 'Europe/Berlin', d('2026-01-14T20:30:00Z'), d('2026-01-14T21:30:00Z'));
      assert.deepEqual(rows(winter), [
        ['2026-01-14T20:30:00.000Z', '2026-01-14T21:00:00.000Z', '1', null],
        ['2026-01-14T21:00:00.000Z', '2026-01-14T21:30:00.000Z', '0.7', 'night'],
      ]);
      // The hour's usage is shared by duration: half and half.
      const parts = apportion('3600.5', d('2026-05-13T19:30:00Z'), d('2026-05-13T20:30:00Z'), summer);
      assert.deepEqual(parts.map((p) => [p.multiplier, p.quantity]), [['1', '1800.25'], ['0.7', '1800.25']]);
      // 21:40–22:40 local: 20 min / 40 min = 1/3 and 2/3, not finite decimals; still sums exactly.
      const thirds = splitBySchedule(schedule, 'Europe/Berlin', d('2026-05-13T19:40:00Z'), d('2026-05-13T20:40:00Z'));
      const q = apportion('1', d('2026-05-13T19:40:00Z'), d('2026-05-13T20:40:00Z'), thirds).map((p) => p.quantity);
      assert.equal(q[0], `0.${'3'.repeat(63)}`);
      assert.equal(q[1], `0.${'6'.repeat(62)}7`);
      assert.ok(sumExact(q).eq(1));
      assert.ok(new Dec(q[0] ?? '').plus(q[1] ?? '').eq(1), 'Dec itself adds the parts exactly');
    });

    it('a week in UTC covers exactly 168 h, 82 h of them at 0.7', () => {
      // Monday 2026-05-11 00:00Z to Monday 2026-05-18 00:00Z. Hours at 0.7, by hand:
      //   Mon: 22–24 (Monday night)                       =  2 h  (00–06 is Sunday's night: sun is not listed)
      //   Tue: 00–06 (Monday night) + 22–24 (Tuesday)      =  8 h
      //   Wed, Thu, Fri: likewise 6 + 2 each               = 24 h
      //   Sat: 00–06 (Friday night) + 06–24 (weekend)      = 24 h
      //   Sun: 00–24 (weekend)                             = 24 h
      //   total 2 + 8 + 24 + 24 + 24                       = 82 h at 0.7; 168 − 82 = 86 h at 1.
      const start = d('2026-05-11T00:00:00Z');
      const end = d('2026-05-18T00:00:00Z');
      const pieces = splitBySchedule(parseSchedule(nightsAndWeekends), 'UTC', start, end);
      assertTiles(pieces, start, end);
      assert.equal(totalMs(pieces), 168 * HOUR);
      assert.equal(msAt(pieces, '0.7'), 82 * HOUR);
      assert.equal(msAt(pieces, '1'), 86 * HOUR);
      assert.deepEqual(rows(pieces), [
        ['2026-05-11T00:00:00.000Z', '2026-05-11T22:00:00.000Z', '1', null],
        ['2026-05-11T22:00:00.000Z', '2026-05-12T06:00:00.000Z', '0.7', 'night'],
        ['2026-05-12T06:00:00.000Z', '2026-05-12T22:00:00.000Z', '1', null],
        ['2026-05-12T22:00:00.000Z', '2026-05-13T06:00:00.000Z', '0.7', 'night'],
        ['2026-05-13T06:00:00.000Z', '2026-05-13T22:00:00.000Z', '1', null],
        ['2026-05-13T22:00:00.000Z', '2026-05-14T06:00:00.000Z', '0.7', 'night'],
        ['2026-05-14T06:00:00.000Z', '2026-05-14T22:00:00.000Z', '1', null],
        ['2026-05-14T22:00:00.000Z', '2026-05-15T06:00:00.000Z', '0.7', 'night'],
        ['2026-05-15T06:00:00.000Z', '2026-05-15T22:00:00.000Z', '1', null],
        // Friday night runs into Saturday 06:00 (first match: "night" before "weekend").
        ['2026-05-15T22:00:00.000Z', '2026-05-16T06:00:00.000Z', '0.7', 'night'],
        ['2026-05-16T06:00:00.000Z', '2026-05-18T00:00:00.000Z', '0.7', 'weekend'],
      ]);
      // Listing "sun" in the night rule also discounts Monday 00:00–06:00 (Sunday's night): 88 h.
      const withSunday = parseSchedule([{ ...nightsAndWeekends[0], days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri'] }, nightsAndWeekends[1]]);
      assert.equal(msAt(splitBySchedule(withSunday, 'UTC', start, end), '0.7'), 88 * HOUR);
    });

    it('DST spring-forward in Europe/Berlin (2026-03-29): a 23 h day, boundaries in the skipped hour take effect at the change', () => {
      const schedule = parseSchedule(aroundTwo);
      const day = windowBounds('2026-03-29T12:00:00Z', '1d', 'Europe/Berlin');
      assert.equal(day.start.toISOString(), '2026-03-28T23:00:00.000Z');
      assert.equal(day.end.toISOString(), '2026-03-29T22:00:00.000Z');
      const pieces = splitBySchedule(schedule, 'Europe/Berlin', day.start, day.end);
      // 00:00–02:00 CET, then the clock jumps from 02:00 CET to 03:00 CEST at 01:00Z: 02:10–02:20
      // never happens, 02:30–03:30 starts at the change and ends at 03:30 CEST = 01:30Z.
      assert.deepEqual(rows(pieces), [
        ['2026-03-28T23:00:00.000Z', '2026-03-29T01:00:00.000Z', '0.5', 'a'],
        ['2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z', '0.8', 'b'],
        ['2026-03-29T01:30:00.000Z', '2026-03-29T22:00:00.000Z', '1', null],
      ]);
      assert.equal(totalMs(pieces), 23 * HOUR);
      // The day before (CET all day) has all four cuts and 24 h.
      const before = splitBySchedule(schedule, 'Europe/Berlin', d('2026-03-27T23:00:00Z'), d('2026-03-28T23:00:00Z'));
      assert.deepEqual(rows(before), [
        ['2026-03-27T23:00:00.000Z', '2026-03-28T01:10:00.000Z', '0.5', 'a'],
        ['2026-03-28T01:10:00.000Z', '2026-03-28T01:20:00.000Z', '0.1', 'gap'],
        ['2026-03-28T01:20:00.000Z', '2026-03-28T01:30:00.000Z', '0.5', 'a'],
        ['2026-03-28T01:30:00.000Z', '2026-03-28T02:30:00.000Z', '0.8', 'b'],
        ['2026-03-28T02:30:00.000Z', '2026-03-28T23:00:00.000Z', '1', null],
      ]);
      assert.equal(totalMs(before), 24 * HOUR);
      // One ms before the change is 01:59:59.999 CET, the change itself 03:00 CEST.
      assert.deepEqual(multiplierAt(schedule, 'Europe/Berlin', d('2026-03-29T00:59:59.999Z')), { multiplier: '0.5', label: 'a' });
      assert.deepEqual(multiplierAt(schedule, 'Europe/Berlin', d('2026-03-29T01:00:00Z')), { multiplier: '0.8', label: 'b' });
    });

    it('DST fall-back in Europe/Berlin (2026-10-25): a 25 h day, the repeated hour matches twice', () => {
      const schedule = parseSchedule(aroundTwo);
      const day = windowBounds('2026-10-25T12:00:00Z', '1d', 'Europe/Berlin');
      assert.equal(day.start.toISOString(), '2026-10-24T22:00:00.000Z');
      assert.equal(day.end.toISOString(), '2026-10-25T23:00:00.000Z');
      const pieces = splitBySchedule(schedule, 'Europe/Berlin', day.start, day.end);
      // 00:00 CEST = 22:00Z; 03:00 CEST = 01:00Z becomes 02:00 CET, so 02:00–03:00 local runs twice.
      assert.deepEqual(rows(pieces), [
        ['2026-10-24T22:00:00.000Z', '2026-10-25T00:10:00.000Z', '0.5', 'a'], // 00:00–02:10 CEST
        ['2026-10-25T00:10:00.000Z', '2026-10-25T00:20:00.000Z', '0.1', 'gap'], // 02:10–02:20 CEST
        ['2026-10-25T00:20:00.000Z', '2026-10-25T00:30:00.000Z', '0.5', 'a'],
        ['2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '0.8', 'b'], // 02:30–03:00 CEST
        ['2026-10-25T01:00:00.000Z', '2026-10-25T01:10:00.000Z', '0.5', 'a'], // 02:00–02:10 CET
        ['2026-10-25T01:10:00.000Z', '2026-10-25T01:20:00.000Z', '0.1', 'gap'], // 02:10–02:20 CET
        ['2026-10-25T01:20:00.000Z', '2026-10-25T01:30:00.000Z', '0.5', 'a'],
        ['2026-10-25T01:30:00.000Z', '2026-10-25T02:30:00.000Z', '0.8', 'b'], // 02:30–03:30 CET
        ['2026-10-25T02:30:00.000Z', '2026-10-25T23:00:00.000Z', '1', null],
      ]);
      assert.equal(totalMs(pieces), 25 * HOUR);
      // a: 2 h 10 + 10 + 10 + 10 min = 160 min; gap 20 min; b 30 + 60 = 90 min; rest 20.5 h.
      assert.equal(msAt(pieces, '0.5'), 160 * MIN);
      assert.equal(msAt(pieces, '0.1'), 20 * MIN);
      assert.equal(msAt(pieces, '0.8'), 90 * MIN);
      assert.equal(msAt(pieces, '1'), 20.5 * HOUR);
      // 02:15 local happens twice, and is "gap" both times.
      assert.deepEqual(multiplierAt(schedule, 'Europe/Berlin', d('2026-10-25T00:15:00Z')), { multiplier: '0.1', label: 'gap' });
      assert.deepEqual(multiplierAt(schedule, 'Europe/Berlin', d('2026-10-25T01:15:00Z')), { multiplier: '0.1', label: 'gap' });
    });

    it('DST in America/New_York: a Saturday night is 7 h in March and 9 h in November; Sundays are 23 h and 25 h', () => {
      const schedule = parseSchedule([
        { days: ['sat'], from: '22:00', to: '06:00', multiplier: '0.5', label: 'sat-night' },
        { days: ['sun'], from: '00:00', to: '24:00', multiplier: '0.9', label: 'sunday' },
      ]);
      // Saturday 2026-03-07 12:00 EST to Monday 2026-03-09 12:00 EDT; 02:00 EST → 03:00 EDT at 07:00Z on the 8th.
      const spring = splitBySchedule(schedule, 'America/New_York', d('2026-03-07T17:00:00Z'), d('2026-03-09T16:00:00Z'));
      assert.deepEqual(rows(spring), [
        ['2026-03-07T17:00:00.000Z', '2026-03-08T03:00:00.000Z', '1', null],
        ['2026-03-08T03:00:00.000Z', '2026-03-08T10:00:00.000Z', '0.5', 'sat-night'], // 22:00 EST – 06:00 EDT
        ['2026-03-08T10:00:00.000Z', '2026-03-09T04:00:00.000Z', '0.9', 'sunday'], // 06:00 EDT – 24:00 EDT
        ['2026-03-09T04:00:00.000Z', '2026-03-09T16:00:00.000Z', '1', null],
      ]);
      assert.equal(msAt(spring, '0.5'), 7 * HOUR);
      const sunday = windowBounds('2026-03-08T12:00:00Z', '1d', 'America/New_York');
      assert.equal(totalMs(splitBySchedule(schedule, 'America/New_York', sunday.start, sunday.end)), 23 * HOUR);
      assert.equal(sunday.start.toISOString(), '2026-03-08T05:00:00.000Z');

      // Saturday 2026-10-31 12:00 EDT to Monday 2026-11-02 12:00 EST; 02:00 EDT → 01:00 EST at 06:00Z on 1 Nov.
      const autumn = splitBySchedule(schedule, 'America/New_York', d('2026-10-31T16:00:00Z'), d('2026-11-02T17:00:00Z'));
      assert.deepEqual(rows(autumn), [
        ['2026-10-31T16:00:00.000Z', '2026-11-01T02:00:00.000Z', '1', null],
        ['2026-11-01T02:00:00.000Z', '2026-11-01T11:00:00.000Z', '0.5', 'sat-night'], // 22:00 EDT – 06:00 EST
        ['2026-11-01T11:00:00.000Z', '2026-11-02T05:00:00.000Z', '0.9', 'sunday'],
        ['2026-11-02T05:00:00.000Z', '2026-11-02T17:00:00.000Z', '1', null],
      ]);
      assert.equal(msAt(autumn, '0.5'), 9 * HOUR);
      const sunday2 = windowBounds('2026-11-01T12:00:00Z', '1d', 'America/New_York');
      const sundayPieces = splitBySchedule(schedule, 'America/New_York', sunday2.start, sunday2.end);
      assert.equal(totalMs(sundayPieces), 25 * HOUR);
      assert.deepEqual(rows(sundayPieces), [
        ['2026-11-01T04:00:00.000Z', '2026-11-01T11:00:00.000Z', '0.5', 'sat-night'],
        ['2026-11-01T11:00:00.000Z', '2026-11-02T05:00:00.000Z', '0.9', 'sunday'],
      ]);
    });

    it('the first matching rule wins', () => {
      const peak: ScheduleRuleInput = { days: [...weekdays], from: '09:00', to: '17:00', multiplier: '1.2', label: 'peak' };
      const lunch: ScheduleRuleInput = { days: ['mon'], from: '12:00', to: '13:00', multiplier: '0.5', label: 'lunch' };
      const start = d('2026-05-11T08:00:00Z'); // Monday
      const end = d('2026-05-11T18:00:00Z');
      const peakFirst = splitBySchedule(parseSchedule([peak, lunch]), 'UTC', start, end);
      assert.deepEqual(rows(peakFirst), [
        ['2026-05-11T08:00:00.000Z', '2026-05-11T09:00:00.000Z', '1', null],
        ['2026-05-11T09:00:00.000Z', '2026-05-11T17:00:00.000Z', '1.2', 'peak'],
        ['2026-05-11T17:00:00.000Z', '2026-05-11T18:00:00.000Z', '1', null],
      ]);
      const lunchFirst = splitBySchedule(parseSchedule([lunch, peak]), 'UTC', start, end);
      assert.deepEqual(rows(lunchFirst), [
        ['2026-05-11T08:00:00.000Z', '2026-05-11T09:00:00.000Z', '1', null],
        ['2026-05-11T09:00:00.000Z', '2026-05-11T12:00:00.000Z', '1.2', 'peak'],
        ['2026-05-11T12:00:00.000Z', '2026-05-11T13:00:00.000Z', '0.5', 'lunch'],
        ['2026-05-11T13:00:00.000Z', '2026-05-11T17:00:00.000Z', '1.2', 'peak'],
        ['2026-05-11T17:00:00.000Z', '2026-05-11T18:00:00.000Z', '1', null],
      ]);
      assert.deepEqual(multiplierAt(parseSchedule([peak, lunch]), 'UTC', d('2026-05-11T12:30:00Z')), { multiplier: '1.2', label: 'peak' });
      assert.deepEqual(multiplierAt(parseSchedule([lunch, peak]), 'UTC', d('2026-05-11T12:30:00Z')), { multiplier: '0.5', label: 'lunch' });
      // A rule with multiplier 1 still shadows later rules, and keeps its label.
      const free = parseSchedule([{ days: ['mon'], from: '00:00', to: '24:00', multiplier: '1', label: 'flat monday' }, peak]);
      assert.deepEqual(multiplierAt(free, 'UTC', d('2026-05-11T10:00:00Z')), { multiplier: '1', label: 'flat monday' });
    });

    it('a rule from > to wraps past midnight into the next day (Friday 22:00 → Saturday 06:00)', () => {
      const schedule = parseSchedule([{ days: ['fri'], from: '22:00', to: '06:00', multiplier: '0.5', label: 'friday night' }]);
      // Thursday 2026-05-14 00:00Z to Sunday 2026-05-17 00:00Z.
      const pieces = splitBySchedule(schedule, 'UTC', d('2026-05-14T00:00:00Z'), d('2026-05-17T00:00:00Z'));
      assert.deepEqual(rows(pieces), [
        ['2026-05-14T00:00:00.000Z', '2026-05-15T22:00:00.000Z', '1', null], // Friday 00:00–06:00 is Thursday's night: not listed
        ['2026-05-15T22:00:00.000Z', '2026-05-16T06:00:00.000Z', '0.5', 'friday night'],
        ['2026-05-16T06:00:00.000Z', '2026-05-17T00:00:00.000Z', '1', null],
      ]);
      assert.deepEqual(multiplierAt(schedule, 'UTC', d('2026-05-16T05:59:59.999Z')), { multiplier: '0.5', label: 'friday night' });
      assert.deepEqual(multiplierAt(schedule, 'UTC', d('2026-05-16T06:00:00Z')), { multiplier: '1', label: null });
      assert.deepEqual(multiplierAt(schedule, 'UTC', d('2026-05-15T05:00:00Z')), { multiplier: '1', label: null });
      // In Europe/Berlin the same wall times are 20:00Z → 04:00Z (CEST).
      assert.deepEqual(rows(splitBySchedule(schedule, 'Europe/Berlin', d('2026-05-15T18:00:00Z'), d('2026-05-16T06:00:00Z'))), [
        ['2026-05-15T18:00:00.000Z', '2026-05-15T20:00:00.000Z', '1', null],
        ['2026-05-15T20:00:00.000Z', '2026-05-16T04:00:00.000Z', '0.5', 'friday night'],
        ['2026-05-16T04:00:00.000Z', '2026-05-16T06:00:00.000Z', '1', null],
      ]);
      // to "00:00" after from is the same as to "24:00".
      const untilMidnight = parseSchedule([{ days: ['fri'], from: '22:00', to: '00:00', multiplier: '0.5' }]);
      const toEnd = parseSchedule([{ days: ['fri'], from: '22:00', to: '24:00', multiplier: '0.5' }]);
      const range = [d('2026-05-15T00:00:00Z'), d('2026-05-17T00:00:00Z')] as const;
      assert.deepEqual(splitBySchedule(untilMidnight, 'UTC', ...range), splitBySchedule(toEnd, 'UTC', ...range));
    });

    it('an empty schedule gives one piece at ×1; an empty interval gives none', () => {
      const empty = parseSchedule([]);
      assert.deepEqual(rows(splitBySchedule(empty, 'Europe/Berlin', d('2026-03-28T00:00:00Z'), d('2026-03-30T00:00:00Z'))), [
        ['2026-03-28T00:00:00.000Z', '2026-03-30T00:00:00.000Z', '1', null],
      ]);
      assert.deepEqual(multiplierAt(empty, 'UTC', d('2026-05-11T12:00:00Z')), { multiplier: '1', label: null });
      assert.deepEqual(splitBySchedule(parseSchedule(nightsAndWeekends), 'UTC', d('2026-05-11T12:00:00Z'), d('2026-05-11T12:00:00Z')), []);
      assert.throws(() => splitBySchedule(empty, 'UTC', d('2026-05-11T12:00:00Z'), d('2026-05-11T11:00:00Z')), RangeError);
      assert.throws(() => splitBySchedule(empty, 'UTC', new Date(Number.NaN), d('2026-05-11T11:00:00Z')), RangeError);
    });
  });

  describe('validation', () => {
    const ok: ScheduleRuleInput = { days: ['mon'], from: '08:00', to: '18:00', multiplier: '0.7' };
    /** The messages for a schedule whose rule 1 is `bad` (rule 0 is valid). */
    const messages = (bad: unknown): string[] => {
      const r = safeParseSchedule([ok, bad]);
      assert.equal(r.ok, false, `expected ${JSON.stringify(bad)} to be refused`);
      return r.ok ? [] : r.error.issues.map((i) => i.message);
    };

    it('refuses bad rules with messages naming the rule index', () => {
      const cases: [unknown, RegExp][] = [
        [{ ...ok, from: '8:00' }, /^schedule\[1\]\.from must be a time "HH:MM" from 00:00 to 23:59 \(got "8:00"\)$/],
        [{ ...ok, from: '24:00', to: '23:00' }, /^schedule\[1\]\.from must be a time "HH:MM" from 00:00 to 23:59 \(got "24:00"\)$/],
        [{ ...ok, to: '12:60' }, /^schedule\[1\]\.to must be a time "HH:MM" from 00:00 to 24:00 \(got "12:60"\)$/],
        [{ ...ok, to: '24:01' }, /^schedule\[1\]\.to must be a time/],
        [{ ...ok, from: '08:00', to: '08:00' }, /^schedule\[1\]\.to must differ from from \(both "08:00"\)/],
        [{ ...ok, from: '00:00', to: '00:00' }, /^schedule\[1\]\.to must differ from from.*"00:00"–"24:00" is a whole day/],
        [{ ...ok, multiplier: '-0.3' }, /^schedule\[1\]\.multiplier must not be negative \(got "-0\.3"\)$/],
        [{ ...ok, multiplier: 0.7 }, /^schedule\[1\]\.multiplier must be a decimal string such as "0\.7", not a JS number \(got 0\.7\)$/],
        [{ ...ok, multiplier: 'cheap' }, /^schedule\[1\]\.multiplier must be a decimal string such as "0\.7" \(got "cheap"\)$/],
        [{ ...ok, multiplier: undefined }, /^schedule\[1\]\.multiplier must be a decimal string/],
        [{ ...ok, days: [] }, /^schedule\[1\]\.days must list at least one weekday$/],
        [{ ...ok, days: ['mon', 'tue', 'mon'] }, /^schedule\[1\]\.days\[2\] must not repeat a weekday: "mon" is listed twice$/],
        [{ ...ok, days: ['monday'] }, /^schedule\[1\]\.days\[0\] must be one of mon, tue, wed, thu, fri, sat, sun \(got "monday"\)$/],
        [{ ...ok, days: 'mon' }, /^schedule\[1\]\.days must be an array of weekdays/],
        [{ ...ok, label: '   ' }, /^schedule\[1\]\.label must not be empty/],
        [{ ...ok, label: 'x'.repeat(101) }, /^schedule\[1\]\.label must be at most 100 characters$/],
        [{ ...ok, hours: 3 }, /^schedule\[1\] has unknown field\(s\) "hours"/],
        ['mon 08:00', /^schedule\[1\] must be an object \{ days, from, to, multiplier, label\? \}/],
      ];
      for (const [bad, expected] of cases) {
        const got = messages(bad);
        assert.ok(got.some((m) => expected.test(m)), `${JSON.stringify(bad)}: ${JSON.stringify(got)} should match ${String(expected)}`);
      }
      // The issue path is the rule index then the field.
      const r = scheduleSchema.safeParse([ok, ok, { ...ok, days: ['mon', 'xyz'] }]);
      assert.equal(r.success, false);
      if (!r.success) assert.deepEqual(r.error.issues.map((i) => i.path), [[2, 'days', 1]]);
    });

    it('lists every problem; refuses a non-array and more than 32 rules; canonicalises multipliers and labels', () => {
      const r = safeParseSchedule([{ days: [], from: 'x', to: '08:00', multiplier: '-1' }, ok, { ...ok, to: '25:00' }]);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.ok(r.error instanceof ScheduleValidationError);
        assert.deepEqual(r.error.issues.map((i) => i.path), ['0.days', '0.from', '0.multiplier', '2.to']);
        assert.match(r.error.message, /^invalid price schedule: schedule\[0\]\.days must list/);
      }
      assert.throws(() => parseSchedule({ rules: [] }), /a schedule must be an array of rules/);
      assert.equal(parseSchedule(Array.from({ length: MAX_SCHEDULE_RULES }, () => ok)).length, 32);
      assert.throws(() => parseSchedule(Array.from({ length: 33 }, () => ok)), /a schedule has at most 32 rules \(got 33\)/);
      const parsed = parseSchedule([{ days: ['sat', 'sun'], from: '00:00', to: '24:00', multiplier: '0.70', label: '  weekend ' }, { ...ok, multiplier: '1.500' }]);
      assert.deepEqual(parsed, [
        { days: ['sat', 'sun'], from: '00:00', to: '24:00', multiplier: '0.7', label: 'weekend' },
        { ...ok, multiplier: '1.5' },
      ]);
      assert.ok(Object.isFrozen(parsed) && Object.isFrozen(parsed[0]));
      assert.deepEqual(parseSchedule(parsed), parsed, 'parsing is idempotent');
      assert.equal(parseSchedule([{ ...ok, multiplier: '0' }])[0]?.multiplier, '0', 'a free period is allowed');
    });

    it('the functions refuse an invalid schedule, an unknown time zone and pieces that do not cover the interval', () => {
      const invalid = [{ ...ok, from: '25:00' }] as unknown as Schedule;
      assert.throws(() => splitBySchedule(invalid, 'UTC', d('2026-05-11T00:00:00Z'), d('2026-05-12T00:00:00Z')), ScheduleValidationError);
      assert.throws(() => multiplierAt(invalid, 'UTC', d('2026-05-11T00:00:00Z')), ScheduleValidationError);
      const schedule = parseSchedule([ok]);
      assert.throws(() => splitBySchedule(schedule, 'Mars/Olympus', d('2026-05-11T00:00:00Z'), d('2026-05-12T00:00:00Z')), InvalidTimeZoneError);
      assert.throws(() => multiplierAt(schedule, '', d('2026-05-11T00:00:00Z')), InvalidTimeZoneError);

      const start = d('2026-05-11T00:00:00Z');
      const mid = d('2026-05-11T00:30:00Z');
      const end = d('2026-05-11T01:00:00Z');
      const full = [{ start, end: mid }, { start: mid, end }];
      assert.deepEqual(apportion('10', start, end, full).map((p) => p.quantity), ['5', '5']);
      assert.throws(() => apportion('10', start, end, []), /pieces must not be empty/);
      assert.throws(() => apportion('10', start, end, [{ start, end: mid }]), /must equal end/);
      assert.throws(() => apportion('10', start, end, [{ start: mid, end }]), /must equal start/);
      assert.throws(() => apportion('10', start, end, [{ start, end: mid }, { start: d('2026-05-11T00:40:00Z'), end }]), /must equal pieces\[0\]\.end/);
      assert.throws(() => apportion('-1', start, end, full), /must not be negative/);
      assert.throws(() => apportion('ten', start, end, full), /decimal string/);
      assert.throws(() => apportion('10', end, start, full), /must be after start/);
      assert.deepEqual(apportion('0', start, end, full).map((p) => p.quantity), ['0', '0']);
    });
  });

  describe('properties', function () {
    // Generous: the run command has no config, so mocha's default 2 s would apply on a slow machine.
    this.timeout(120_000);
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'America/Havana', 'Pacific/Chatham'];
    /** Times of day on a 10-minute grid, biased to the DST hours, and any minute. */
    const hhmm = (max: number) =>
      fc
        .oneof(fc.integer({ min: 0, max: Math.floor(max / 10) }).map((m) => m * 10), fc.integer({ min: 0, max }), fc.integer({ min: 0, max: 4 * 6 }).map((m) => 60 + m * 10))
        .map((m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
    const ruleArb: fc.Arbitrary<ScheduleRuleInput> = fc
      .record({
        days: fc.uniqueArray(fc.constantFrom(...weekdays), { minLength: 1, maxLength: 7 }),
        from: hhmm(23 * 60 + 59),
        to: hhmm(24 * 60),
        multiplier: fc.constantFrom('0', '0.5', '0.7', '1', '1.25'),
        label: fc.option(fc.constantFrom('night', 'weekend', 'peak'), { nil: undefined }),
      })
      .filter((r) => r.from !== r.to);
    const scheduleArb = fc.array(ruleArb, { maxLength: 6 }).map((rules) => parseSchedule(rules));
    /** Known offset changes, to start near one often. */
    const changes = ['2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', '2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z', '2026-04-05T15:00:00Z', '2026-10-04T15:30:00Z'].map(Date.parse);
    const instantArb = fc.oneof(
      fc.integer({ min: Date.parse('2025-06-01T00:00:00Z'), max: Date.parse('2027-06-01T00:00:00Z') }),
      fc.tuple(fc.constantFrom(...changes), fc.integer({ min: -48 * 60, max: 48 * 60 })).map(([t, m]) => t + m * MIN),
    );
    const lengthArb = fc.oneof(fc.integer({ min: 0, max: 3 * HOUR }), fc.integer({ min: 0, max: 10 * 24 * HOUR }), fc.integer({ min: 0, max: 96 }).map((q) => q * 15 * MIN));

    it('pieces cover [start, end) exactly: ordered, contiguous, summing to end − start, each agreeing with multiplierAt', () => {
      fc.assert(
        fc.property(scheduleArb, fc.constantFrom(...zones), instantArb, lengthArb, fc.double({ min: 0, max: 1, noNaN: true }), (schedule, tz, s, len, where) => {
          const start = new Date(s);
          const end = new Date(s + len);
          const pieces = splitBySchedule(schedule, tz, start, end);
          assertTiles(pieces, start, end);
          for (const p of pieces) {
            const inside = p.start.getTime() + Math.floor(where * (lengthMs(p) - 1));
            for (const t of [p.start.getTime(), inside, p.end.getTime() - 1]) {
              assert.deepEqual(multiplierAt(schedule, tz, new Date(t)), { multiplier: p.multiplier, label: p.label }, `${tz} at ${new Date(t).toISOString()}`);
            }
          }
        }),
        { numRuns: 300 },
      );
    });

    it('splitting [a, c) equals splitting [a, b) and [b, c) merged at b', () => {
      fc.assert(
        fc.property(scheduleArb, fc.constantFrom(...zones), instantArb, lengthArb, lengthArb, (schedule, tz, a, ab, bc) => {
          const [ta, tb, tc] = [new Date(a), new Date(a + ab), new Date(a + ab + bc)];
          const whole = splitBySchedule(schedule, tz, ta, tc);
          const joined = concatMerged(splitBySchedule(schedule, tz, ta, tb), splitBySchedule(schedule, tz, tb, tc));
          assert.deepEqual(rows(joined), rows(whole));
        }),
        { numRuns: 300 },
      );
    });

    it('apportioned parts are ≥ 0, within one grid unit of the exact share, and sum exactly to the quantity', () => {
      /** Decimal text: up to 30 integer digits and up to 34 decimals. */
      const quantityArb = fc
        .tuple(fc.bigInt({ min: 0n, max: 10n ** 40n }), fc.integer({ min: 0, max: 34 }))
        .map(([digits, scale]) => new Dec(digits.toString()).div(new Dec(10).pow(scale)).toFixed())
        .filter((q) => new Dec(q).lt('1e30'));
      fc.assert(
        fc.property(scheduleArb, fc.constantFrom(...zones), instantArb, lengthArb.filter((l) => l > 0), quantityArb, (schedule, tz, s, len, quantity) => {
          const start = new Date(s);
          const end = new Date(s + len);
          const parts = apportion(quantity, start, end, splitBySchedule(schedule, tz, start, end));
          const values = parts.map((p) => p.quantity);
          assert.ok(sumExact(values).eq(quantity), `${JSON.stringify(values)} sum to ${quantity}`);
          assert.ok(values.reduce((acc, v) => acc.plus(v), new Dec(0)).eq(quantity), 'Dec (64 digits) adds them exactly too');
          const q = new Exact(quantity);
          const unit = q.isZero() ? new Exact(0) : new Exact(10).pow(-(63 - q.e));
          parts.forEach((p, i) => {
            const v = new Exact(p.quantity);
            assert.ok(v.gte(0), `part ${i} = ${p.quantity} ≥ 0`);
            assert.ok(new Dec(p.quantity).sd() <= 64, 'at most 64 significant digits');
            // |v − q·d/D| · D < n·unit·D, compared exactly (integers times decimals).
            const err = v.times(len).minus(q.times(lengthMs(p))).abs();
            assert.ok(err.isZero() || err.lt(unit.times(len).times(parts.length)), `part ${i} = ${p.quantity} is close to its share`);
          });
        }),
        { numRuns: 300 },
      );
    });
  });
});
