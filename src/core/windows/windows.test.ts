/** The pure windowing core: time-zone windows, percentiles, window statistics. */
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import fc from 'fast-check';
import {
  DurationSketch,
  InvalidTimeZoneError,
  accumulateWindows,
  aggregateWindows,
  billingPeriod,
  finalizeWindows,
  isValidTimeZone,
  mergeWindowPartials,
  percentileCont,
  percentilesCont,
  rollUpPartials,
  sortWeighted,
  weightedPercentileCont,
  windowBounds,
  windowKeysOf,
  windowStart,
  windowsTouched,
  type WindowRow,
  type WindowSize,
  type WindowUsage,
} from './index.js';
import { Dec, ExactDecimal, FixedSum, amountOf } from './exact-decimal.js';

const HOUR = 3_600_000;
const MIN = 60_000;

/** [start, end) of a window as ISO strings. */
function bounds(time: string | number, size: WindowSize, tz: string): [string, string] {
  const b = windowBounds(time, size, tz);
  return [b.start.toISOString(), b.end.toISOString()];
}
const lengthMs = (time: string, size: WindowSize, tz: string): number => {
  const b = windowBounds(time, size, tz);
  return b.end.getTime() - b.start.getTime();
};

describe('windows: bucketing in the tenant time zone', () => {
  it('puts an event exactly at a window start in that window and one ms earlier in the previous one', () => {
    const cases: [WindowSize, string, string][] = [
      ['5m', 'UTC', '2026-05-10T10:05:00.000Z'],
      ['1h', 'UTC', '2026-05-10T10:00:00.000Z'],
      ['1d', 'UTC', '2026-05-10T00:00:00.000Z'],
      ['5m', 'Europe/Berlin', '2026-05-10T10:05:00.000Z'],
      ['1h', 'Europe/Berlin', '2026-05-10T10:00:00.000Z'],
      ['1d', 'Europe/Berlin', '2026-05-09T22:00:00.000Z'],
      ['1h', 'Asia/Kolkata', '2026-05-10T09:30:00.000Z'],
      ['1d', 'Asia/Kolkata', '2026-05-09T18:30:00.000Z'],
    ];
    for (const [size, tz, start] of cases) {
      assert.equal(windowStart(start, size, tz).toISOString(), start, `${size} ${tz} at ${start}`);
      const before = Date.parse(start) - 1;
      assert.equal(windowBounds(before, size, tz).end.toISOString(), start, `${size} ${tz} 1 ms before ${start}`);
      assert.ok(windowStart(before, size, tz).getTime() < Date.parse(start));
    }
  });

  it('aligns 5m, 1h and 1d windows in UTC', () => {
    const t = '2026-05-10T10:07:31.250Z';
    assert.deepEqual(bounds(t, '5m', 'UTC'), ['2026-05-10T10:05:00.000Z', '2026-05-10T10:10:00.000Z']);
    assert.deepEqual(bounds(t, '1h', 'UTC'), ['2026-05-10T10:00:00.000Z', '2026-05-10T11:00:00.000Z']);
    assert.deepEqual(bounds(t, '1d', 'UTC'), ['2026-05-10T00:00:00.000Z', '2026-05-11T00:00:00.000Z']);
    assert.deepEqual(bounds('2026-05-10T12:07:31.250+02:00', '5m', 'UTC'), ['2026-05-10T10:05:00.000Z', '2026-05-10T10:10:00.000Z']);
  });

  it('aligns hours to the local clock: :30 UTC in Asia/Kolkata, :15 UTC in Asia/Kathmandu', () => {
    const t = '2026-05-10T10:10:00.000Z'; // 15:40 in Kolkata (+05:30), 15:55 in Kathmandu (+05:45)
    assert.deepEqual(bounds(t, '5m', 'Asia/Kolkata'), ['2026-05-10T10:10:00.000Z', '2026-05-10T10:15:00.000Z']);
    assert.deepEqual(bounds(t, '1h', 'Asia/Kolkata'), ['2026-05-10T09:30:00.000Z', '2026-05-10T10:30:00.000Z']);
    assert.deepEqual(bounds(t, '1d', 'Asia/Kolkata'), ['2026-05-09T18:30:00.000Z', '2026-05-10T18:30:00.000Z']);
    assert.deepEqual(bounds(t, '1h', 'Asia/Kathmandu'), ['2026-05-10T09:15:00.000Z', '2026-05-10T10:15:00.000Z']);
    assert.deepEqual(bounds(t, '1d', 'Asia/Kathmandu'), ['2026-05-09T18:15:00.000Z', '2026-05-10T18:15:00.000Z']);
    // 23:59:59.999 local on 10 May is still 10 May; 00:00 local on 11 May starts the next day.
    assert.deepEqual(bounds('2026-05-10T18:29:59.999Z', '1d', 'Asia/Kolkata'), ['2026-05-09T18:30:00.000Z', '2026-05-10T18:30:00.000Z']);
    assert.deepEqual(bounds('2026-05-10T18:30:00.000Z', '1d', 'Asia/Kolkata'), ['2026-05-10T18:30:00.000Z', '2026-05-11T18:30:00.000Z']);
  });

  it('makes Europe/Berlin DST days 23 h (2026-03-29) and 25 h (2026-10-25) long', () => {
    assert.deepEqual(bounds('2026-03-29T12:00:00Z', '1d', 'Europe/Berlin'), ['2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z']);
    assert.equal(lengthMs('2026-03-29T12:00:00Z', '1d', 'Europe/Berlin'), 23 * HOUR);
    assert.deepEqual(bounds('2026-10-25T12:00:00Z', '1d', 'Europe/Berlin'), ['2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z']);
    assert.equal(lengthMs('2026-10-25T12:00:00Z', '1d', 'Europe/Berlin'), 25 * HOUR);
    assert.equal(lengthMs('2026-03-28T12:00:00Z', '1d', 'Europe/Berlin'), 24 * HOUR);
    // The hours and 5-minute windows of those days tile them exactly.
    const spring = windowsTouched('2026-03-28T23:00:00Z', '2026-03-29T21:59:59.999Z', '1h', 'Europe/Berlin');
    assert.equal(spring.length, 23);
    assert.ok(spring.every((w) => w.end.getTime() - w.start.getTime() === HOUR));
    const fall = windowsTouched('2026-10-24T22:00:00Z', '2026-10-25T22:59:59.999Z', '1h', 'Europe/Berlin');
    assert.equal(fall.length, 25);
    assert.equal(windowsTouched('2026-10-24T22:00:00Z', '2026-10-25T22:59:59.999Z', '5m', 'Europe/Berlin').length, 300);
  });

  it('makes America/New_York DST days 23 h (2026-03-08) and 25 h (2026-11-01) long', () => {
    assert.deepEqual(bounds('2026-03-08T12:00:00Z', '1d', 'America/New_York'), ['2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z']);
    assert.deepEqual(bounds('2026-11-01T12:00:00Z', '1d', 'America/New_York'), ['2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z']);
    assert.equal(windowsTouched('2026-03-08T05:00:00Z', '2026-03-09T03:59:59.999Z', '1h', 'America/New_York').length, 23);
    assert.equal(windowsTouched('2026-11-01T04:00:00Z', '2026-11-02T04:59:59.999Z', '1h', 'America/New_York').length, 25);
  });

  it('gives the repeated local hour of a fall-back day two distinct 1h windows, one per offset', () => {
    // Europe/Berlin 2026-10-25: 02:30 CEST is 00:30Z, 02:30 CET is 01:30Z.
    assert.deepEqual(bounds('2026-10-25T00:30:00Z', '1h', 'Europe/Berlin'), ['2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z']);
    assert.deepEqual(bounds('2026-10-25T01:30:00Z', '1h', 'Europe/Berlin'), ['2026-10-25T01:00:00.000Z', '2026-10-25T02:00:00.000Z']);
    assert.deepEqual(bounds('2026-10-25T00:32:00Z', '5m', 'Europe/Berlin'), ['2026-10-25T00:30:00.000Z', '2026-10-25T00:35:00.000Z']);
    assert.deepEqual(bounds('2026-10-25T01:32:00Z', '5m', 'Europe/Berlin'), ['2026-10-25T01:30:00.000Z', '2026-10-25T01:35:00.000Z']);
    // America/New_York 2026-11-01: 01:30 EDT is 05:30Z, 01:30 EST is 06:30Z.
    assert.deepEqual(bounds('2026-11-01T05:30:00Z', '1h', 'America/New_York'), ['2026-11-01T05:00:00.000Z', '2026-11-01T06:00:00.000Z']);
    assert.deepEqual(bounds('2026-11-01T06:30:00Z', '1h', 'America/New_York'), ['2026-11-01T06:00:00.000Z', '2026-11-01T07:00:00.000Z']);
    // Both repeated hours lie in the same local day.
    assert.deepEqual(bounds('2026-11-01T05:30:00Z', '1d', 'America/New_York'), bounds('2026-11-01T06:30:00Z', '1d', 'America/New_York'));
  });

  it('skips the missing local hour of a spring-forward day', () => {
    // Europe/Berlin 2026-03-29: 01:59:59 CET (00:59:59Z) is followed by 03:00 CEST (01:00Z).
    assert.deepEqual(bounds('2026-03-29T00:59:59.999Z', '1h', 'Europe/Berlin'), ['2026-03-29T00:00:00.000Z', '2026-03-29T01:00:00.000Z']);
    assert.deepEqual(bounds('2026-03-29T01:00:00.000Z', '1h', 'Europe/Berlin'), ['2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z']);
  });

  it('starts a day at its first local midnight, or at the change when midnight is skipped', () => {
    // America/Havana 2026-11-01: 01:00 CDT falls back to 00:00 CST, so local midnight happens twice.
    assert.deepEqual(bounds('2026-11-01T04:30:00Z', '1d', 'America/Havana'), ['2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z']);
    assert.deepEqual(bounds('2026-11-01T03:59:59.999Z', '1d', 'America/Havana'), ['2026-10-31T04:00:00.000Z', '2026-11-01T04:00:00.000Z']);
    // America/Sao_Paulo 2018-11-04: 00:00 -03 jumped to 01:00 -02, so the day starts at 01:00 local.
    assert.deepEqual(bounds('2018-11-04T12:00:00Z', '1d', 'America/Sao_Paulo'), ['2018-11-04T03:00:00.000Z', '2018-11-05T02:00:00.000Z']);
  });

  it('gives a half-hour DST shift (Australia/Lord_Howe) one shorter window instead of overlapping ones', () => {
    // 2026-04-05 02:00 +11:00 (15:00Z) becomes 01:30 +10:30; local hours then start at :30 UTC.
    assert.deepEqual(bounds('2026-04-04T14:59:59.999Z', '1h', 'Australia/Lord_Howe'), ['2026-04-04T14:00:00.000Z', '2026-04-04T15:00:00.000Z']);
    assert.deepEqual(bounds('2026-04-04T15:10:00.000Z', '1h', 'Australia/Lord_Howe'), ['2026-04-04T15:00:00.000Z', '2026-04-04T15:30:00.000Z']);
    assert.deepEqual(bounds('2026-04-04T15:30:00.000Z', '1h', 'Australia/Lord_Howe'), ['2026-04-04T15:30:00.000Z', '2026-04-04T16:30:00.000Z']);
    assert.equal(lengthMs('2026-04-05T05:00:00Z', '1d', 'Australia/Lord_Howe'), 24.5 * HOUR);
  });

  it('returns the calendar month in the tenant zone as the billing period', () => {
    const p = (t: string, tz: string) => {
      const b = billingPeriod(t, tz);
      return [b.start.toISOString(), b.end.toISOString()];
    };
    assert.deepEqual(p('2026-03-15T12:00:00Z', 'Europe/Berlin'), ['2026-02-28T23:00:00.000Z', '2026-03-31T22:00:00.000Z']);
    assert.deepEqual(p('2026-03-31T21:59:59.999Z', 'Europe/Berlin'), ['2026-02-28T23:00:00.000Z', '2026-03-31T22:00:00.000Z']);
    assert.deepEqual(p('2026-03-31T22:00:00.000Z', 'Europe/Berlin'), ['2026-03-31T22:00:00.000Z', '2026-04-30T22:00:00.000Z']);
    assert.deepEqual(p('2026-12-31T20:00:00Z', 'America/New_York'), ['2026-12-01T05:00:00.000Z', '2027-01-01T05:00:00.000Z']);
    assert.deepEqual(p('2026-01-31T19:00:00Z', 'Asia/Kolkata'), ['2026-01-31T18:30:00.000Z', '2026-02-28T18:30:00.000Z']);
    assert.deepEqual(p('2026-02-10T00:00:00Z', 'UTC'), ['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
  });

  it('rejects an unknown time zone and a time without an offset with clear errors', () => {
    assert.throws(() => windowStart('2026-05-10T10:00:00Z', '1h', 'Mars/Olympus_Mons'), (e: unknown) => {
      assert.ok(e instanceof InvalidTimeZoneError);
      assert.match(e.message, /unknown time zone "Mars\/Olympus_Mons"/);
      return true;
    });
    assert.throws(() => billingPeriod('2026-05-10T10:00:00Z', ''), InvalidTimeZoneError);
    assert.equal(isValidTimeZone('Europe/Berlin'), true);
    assert.equal(isValidTimeZone('Europe/Atlantis'), false);
    assert.throws(() => windowStart('2026-05-10T10:00:00', '1h', 'UTC'), /invalid time "2026-05-10T10:00:00"/);
    assert.throws(() => windowStart('yesterday', '1h', 'UTC'), RangeError);
    assert.throws(() => windowStart('2026-05-10T10:00:00Z', '2h' as WindowSize, 'UTC'), /unknown window size "2h"/);
  });

  it('lists the windows between two instants, contiguous and in order', () => {
    const ws = windowsTouched('2026-05-10T10:07:00Z', '2026-05-10T10:20:00Z', '5m', 'UTC');
    assert.deepEqual(
      ws.map((w) => w.start.toISOString().slice(11, 16)),
      ['10:05', '10:10', '10:15', '10:20'],
    );
    assert.equal(windowsTouched('2026-05-10T10:07:00Z', '2026-05-10T10:07:00Z', '1d', 'UTC').length, 1);
  });

  const zones = [
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'Asia/Kolkata',
    'Asia/Kathmandu',
    'Australia/Lord_Howe',
    'Pacific/Chatham',
    'America/Sao_Paulo',
    'America/Havana',
    'Pacific/Apia',
    'America/St_Johns',
  ];
  const sizes: WindowSize[] = ['5m', '1h', '1d'];

  function checkPartition(t: number, tz: string): void {
    const containing = (size: WindowSize) => windowBounds(t, size, tz);
    for (const size of sizes) {
      const { start, end } = containing(size);
      const s = start.getTime();
      const e = end.getTime();
      assert.ok(s <= t && t < e, `${size} ${tz}: ${new Date(t).toISOString()} not in [${start.toISOString()}, ${end.toISOString()})`);
      if (size !== '1d') assert.ok(e - s <= (size === '5m' ? 5 * MIN : HOUR), `${size} ${tz} window too long at ${start.toISOString()}`);
      assert.equal(windowStart(s, size, tz).getTime(), s, `${size} ${tz}: its start maps to another window`);
      assert.equal(windowStart(e - 1, size, tz).getTime(), s, `${size} ${tz}: its last ms maps to another window`);
      assert.equal(windowStart(e, size, tz).getTime(), e, `${size} ${tz}: the next window does not start at its end`);
    }
    // 5m ⊂ 1h ⊂ 1d ⊂ month
    const chain = [...sizes.map(containing), billingPeriod(t, tz)];
    for (let i = 1; i < chain.length; i++) {
      assert.ok(chain[i]!.start <= chain[i - 1]!.start && chain[i - 1]!.end <= chain[i]!.end, `${tz}: windows do not nest at ${new Date(t).toISOString()}`);
    }
  }

  it('partitions time into nested windows in every zone (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...zones), fc.integer({ min: Date.UTC(1995, 0, 1), max: Date.UTC(2045, 0, 1) }), (tz, t) => checkPartition(t, tz)),
      { numRuns: 400 },
    );
  });

  it('partitions time into nested windows around offset changes (property)', () => {
    // Instants near the 2026 transitions of the zones above, where mistakes would be.
    const transitions = [
      ['Europe/Berlin', '2026-03-29T01:00:00Z'],
      ['Europe/Berlin', '2026-10-25T01:00:00Z'],
      ['America/New_York', '2026-03-08T07:00:00Z'],
      ['America/New_York', '2026-11-01T06:00:00Z'],
      ['Australia/Lord_Howe', '2026-04-04T15:00:00Z'],
      ['Australia/Lord_Howe', '2026-10-03T15:30:00Z'],
      ['Pacific/Chatham', '2026-04-04T14:00:00Z'],
      ['America/Havana', '2026-03-08T05:00:00Z'],
      ['America/Havana', '2026-11-01T05:00:00Z'],
      ['America/St_Johns', '2026-11-01T04:30:00Z'],
      ['America/Sao_Paulo', '2018-11-04T03:00:00Z'],
      ['Pacific/Apia', '2011-12-30T10:00:00Z'],
    ] as const;
    fc.assert(
      fc.property(fc.constantFrom(...transitions), fc.integer({ min: -26 * HOUR, max: 26 * HOUR }), ([tz, at], delta) => checkPartition(Date.parse(at) + delta, tz)),
      { numRuns: 600 },
    );
  });
});

describe('windows: percentiles', () => {
  it('computes percentile_cont (linear interpolation) the way PostgreSQL does', () => {
    // SELECT percentile_cont(q) WITHIN GROUP (ORDER BY v) FROM unnest('{1,2,3,4,10}'::float8[]) v
    assert.equal(percentileCont([1, 2, 3, 4, 10], 0.5), 3);
    // pos = 0.95 × 4 = 3.8 in float8, so 4 + 6 × 0.7999999999999998: what PostgreSQL returns too.
    assert.equal(percentileCont([1, 2, 3, 4, 10], 0.95), 8.799999999999999);
    assert.equal(percentileCont([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(percentileCont([1, 2, 3, 4], 0), 1);
    assert.equal(percentileCont([1, 2, 3, 4], 1), 4);
    assert.equal(percentileCont([7], 0.95), 7);
    assert.equal(percentileCont([], 0.5), null);
    assert.throws(() => percentileCont([1], 1.5), /between 0 and 1/);
  });

  it('weighted percentile_cont equals percentile_cont of the expanded values (property)', () => {
    const weighted = fc.array(fc.record({ value: fc.double({ min: 0, max: 1e6, noNaN: true }), weight: fc.integer({ min: 1, max: 5 }) }), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(weighted, fc.double({ min: 0, max: 1, noNaN: true }), (values, q) => {
        const sorted = sortWeighted(values);
        const expanded = sorted.flatMap(({ value, weight }) => Array<number>(weight).fill(value));
        assert.equal(weightedPercentileCont(sorted, q), percentileCont(expanded, q));
      }),
    );
  });

  it('finds the same percentiles by selection as by sorting, ties and weights included (property)', () => {
    const value = fc.oneof(fc.integer({ min: 0, max: 20 }), fc.double({ min: 0, max: 1e6, noNaN: true }));
    const weighted = fc.array(fc.record({ value, weight: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 1000 })) }), { minLength: 1, maxLength: 200 });
    const qs = [0, 0.01, 0.5, 0.95, 0.99, 1];
    fc.assert(
      fc.property(weighted, fc.double({ min: 0, max: 1, noNaN: true }), (items, q) => {
        const sorted = sortWeighted(items);
        const expected = [...qs, q].map((f) => weightedPercentileCont(sorted, f));
        const values = items.map((i) => i.value);
        assert.deepEqual(percentilesCont(values, items.map((i) => i.weight), [...qs, q]), expected);
        const unweighted = [...qs, q].map((f) => percentileCont([...values].sort((a, b) => a - b), f));
        assert.deepEqual(percentilesCont(values, null, [...qs, q]), unweighted);
      }),
      { numRuns: 300 },
    );
    assert.deepEqual(percentilesCont([], null, [0.5]), [null]);
  });

  const positive = fc.oneof(
    fc.double({ min: 0.001, max: 10, noNaN: true }),
    fc.double({ min: 10, max: 900_000, noNaN: true }),
    fc.integer({ min: 0, max: 900_000_000 }).map((x) => x / 1000),
  );
  const samples = fc.array(fc.record({ value: positive, weight: fc.integer({ min: 1, max: 20 }) }), { minLength: 1, maxLength: 300 });

  it('keeps the sketch within 1% relative error of exact percentile_cont (property)', () => {
    fc.assert(
      fc.property(samples, fc.constantFrom(0, 0.5, 0.95, 0.99, 1), (values, q) => {
        const sketch = new DurationSketch();
        for (const { value, weight } of values) sketch.add(value, weight);
        const exact = weightedPercentileCont(sortWeighted(values), q)!;
        const estimate = sketch.quantile(q)!;
        assert.ok(Math.abs(estimate - exact) <= 0.01 * exact + 1e-12, `q=${q}: sketch ${estimate} vs exact ${exact}`);
      }),
      { numRuns: 300 },
    );
  });

  it('merges sketches exactly: merge(sketch(A), sketch(B)) equals sketch(A ∪ B) (property)', () => {
    fc.assert(
      fc.property(samples, samples, (a, b) => {
        const of = (values: typeof a) => values.reduce((s, { value, weight }) => s.add(value, weight), new DurationSketch());
        const merged = DurationSketch.merged(of(a), of(b));
        assert.deepEqual(merged.toJSON(), of([...b, ...a]).toJSON());
        assert.equal(merged.quantile(0.95), of([...a, ...b]).quantile(0.95));
        assert.deepEqual(DurationSketch.fromJSON(JSON.parse(JSON.stringify(merged)) as unknown).toJSON(), merged.toJSON());
      }),
      { numRuns: 100 },
    );
  });

  it('sketch: exact at q=0 and q=1, zeros, empty, and clear errors', () => {
    const s = new DurationSketch().add(0, 2).add(3.25).add(123.456, 3);
    assert.equal(s.count, 6);
    assert.equal(s.quantile(0), 0);
    assert.equal(s.quantile(1), 123.456);
    assert.equal(s.quantile(0.2), 0);
    assert.equal(new DurationSketch().quantile(0.5), null);
    assert.deepEqual(new DurationSketch().toJSON(), { alpha: 0.005, zero: 0, bins: [], min: null, max: null });
    assert.throws(() => new DurationSketch().add(-1), /non-negative/);
    assert.throws(() => new DurationSketch().add(1, 1.5), /positive integer/);
    assert.throws(() => new DurationSketch(0.01).merge(new DurationSketch(0.005)), /alpha/);
    assert.throws(() => DurationSketch.fromJSON({ alpha: 0.005, zero: 0, bins: [[1, 1]], min: null, max: null }), /min and max/);
    assert.throws(() => DurationSketch.fromJSON({ alpha: 2 }), /invalid duration sketch/);
  });
});

describe('windows: window statistics', () => {
  const rec = (overrides: Partial<WindowUsage> = {}): WindowUsage => ({
    time: '2026-05-10T10:01:00.000Z',
    tenant_id: 't1',
    service: 'api',
    revision: 'api-00001',
    invocations: 1,
    duration_ms: 100,
    memory_mb: 128,
    cpu_ms: null,
    cold_start: false,
    error: false,
    ...overrides,
  });

  it('computes the statistics of a window, averages and percentiles per invocation', () => {
    const records = [
      rec({ duration_ms: 0.1, memory_mb: 128, cpu_ms: 0.1, cold_start: true }),
      rec({ time: '2026-05-10T10:02:00.000Z', invocations: 3, duration_ms: 30.3, memory_mb: 256, cpu_ms: 0.2, error: true }),
      rec({ time: '2026-05-10T10:04:59.999Z', duration_ms: 0.2, memory_mb: 128 }),
    ];
    const rows = aggregateWindows(records, ['5m'], 'UTC');
    // per-invocation durations: 0.1, 10.1, 10.1, 10.1, 0.2 → sorted 0.1, 0.2, 10.1, 10.1, 10.1
    assert.deepEqual(rows, [
      {
        window_size: '5m',
        window_start: '2026-05-10T10:00:00.000Z',
        window_end: '2026-05-10T10:05:00.000Z',
        tenant_id: 't1',
        service: 'api',
        revision: 'api-00001',
        events: 3,
        invocations: 5,
        total_duration_ms: '30.6',
        avg_duration_ms: '6.120',
        p50_duration_ms: 30.3 / 3,
        p95_duration_ms: 30.3 / 3,
        max_memory_mb: 256,
        avg_memory_mb: '204.800',
        total_cpu_ms: '0.3',
        mb_ms: '7795.2', // 0.1×128 + 30.3×256 + 0.2×128
        billed_mb_ms: '7795.2',
        cold_starts: 1,
        errors: 1,
      } satisfies WindowRow,
    ]);
  });

  it('sums decimals exactly (0.1 + 0.2 is 0.3) and applies a per-report billed quantity', () => {
    const records = [rec({ duration_ms: 0.1, memory_mb: 1 }), rec({ duration_ms: 0.2, memory_mb: 1 })];
    const [row] = aggregateWindows(records, ['1h'], 'UTC', { billedMbMs: (r) => Math.ceil(r.duration_ms) * 128 });
    assert.equal(row?.total_duration_ms, '0.3');
    assert.equal(row?.mb_ms, '0.3');
    assert.equal(row?.billed_mb_ms, '256');
    const [big] = aggregateWindows([rec({ invocations: 1_000_000, duration_ms: 900_000_000_000.123, memory_mb: 65_536.125 })], ['1d'], 'UTC');
    assert.equal(big?.mb_ms, '58982512500008060.943375');
  });

  it('keeps exact sums for any decimal input, past 2^53 and beyond 3 decimals (property)', () => {
    const number = fc.oneof(
      fc.integer({ min: 0, max: 900_000_000 }).map((x) => x / 1000),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      fc.constantFrom(1e-7, 0.0001, 123.4567, 4e15, 2 ** 52, 9.5e15, 1e21, 1.5e300),
    );
    fc.assert(
      fc.property(fc.array(number, { maxLength: 80 }), fc.constantFrom(3, 6), (xs, scale) => {
        const sum = new FixedSum(scale);
        const Big = Dec.clone({ precision: 2000 }); // an independent oracle, wide enough for 5e-324 + 1.5e300
        let expected = new Big(0);
        for (const x of xs) {
          sum.add(amountOf(x, scale));
          expected = expected.plus(new Big(String(x)));
        }
        assert.equal(sum.toString(), expected.toFixed());
      }),
      { numRuns: 300 },
    );
    // The number fast paths of toString and divideToFixed agree with the bigint ones.
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -(2 ** 50), max: 2 ** 50 }), { maxLength: 12 }), fc.constantFrom(0, 3, 6), fc.integer({ min: 1, max: 10 ** 7 }), fc.constantFrom(0, 3, 8), (xs, scale, divisor, places) => {
        const sum = new FixedSum(scale);
        for (const x of xs) sum.add(x);
        assert.equal(sum.toString(), sum.toExact().toString());
        assert.equal(sum.divideToFixed(divisor, places), sum.toExact().divideToFixed(divisor, places));
      }),
      { numRuns: 500 },
    );
    const spill = new FixedSum(3);
    for (let i = 0; i < 10; i++) spill.add(2 ** 52);
    assert.equal(spill.divideToFixed(3, 3), spill.toExact().divideToFixed(3, 3));
    assert.equal(spill.toString(), '45035996273704.96'); // 10 × 2^52 thousandths, past 2^53
    assert.equal(ExactDecimal.of('1e-7').toString(), '0.0000001');
    assert.equal(ExactDecimal.of(0.125).divideToFixed(1, 2), '0.13');
    assert.equal(ExactDecimal.of('2.0004').divideToFixed(1, 3), '2.000');
    assert.equal(ExactDecimal.of(1).divideToFixed(8, 3), '0.125');
    const [row] = aggregateWindows([rec({ duration_ms: 1e-7, memory_mb: 0.0001, cpu_ms: 123.4567 })], ['5m'], 'UTC');
    assert.deepEqual([row?.total_duration_ms, row?.mb_ms, row?.total_cpu_ms, row?.avg_duration_ms], ['0.0000001', '0.00000000001', '123.4567', '0.000']);
  });

  it('orders rows by size, window start, tenant, service, revision', () => {
    const records = [
      rec({ tenant_id: 't2', time: '2026-05-10T10:01:00Z' }),
      rec({ tenant_id: 't1', service: 'b', time: '2026-05-10T10:06:00Z' }),
      rec({ tenant_id: 't1', service: 'a', time: '2026-05-10T10:06:00Z' }),
      rec({ tenant_id: 't1', time: '2026-05-10T09:59:00Z' }),
    ];
    const rows = aggregateWindows(records, ['1d', '5m', '1h'], 'UTC');
    assert.deepEqual(
      rows.map((r) => `${r.window_size} ${r.window_start.slice(11, 16)} ${r.tenant_id} ${r.service}`),
      [
        '5m 09:55 t1 api',
        '5m 10:00 t2 api',
        '5m 10:05 t1 a',
        '5m 10:05 t1 b',
        '1h 09:00 t1 api',
        '1h 10:00 t1 a',
        '1h 10:00 t1 b',
        '1h 10:00 t2 api',
        '1d 00:00 t1 a',
        '1d 00:00 t1 api',
        '1d 00:00 t1 b',
        '1d 00:00 t2 api',
      ],
    );
  });

  it('uses each tenant own time zone for its windows', () => {
    const zone = (tenant: string) => (tenant === 'berlin' ? 'Europe/Berlin' : 'Asia/Kolkata');
    const rows = aggregateWindows([rec({ tenant_id: 'berlin' }), rec({ tenant_id: 'kolkata' })], ['1d', '1h'], zone);
    assert.deepEqual(
      rows.map((r) => [r.window_size, r.tenant_id, r.window_start, r.window_end]),
      [
        ['1h', 'kolkata', '2026-05-10T09:30:00.000Z', '2026-05-10T10:30:00.000Z'],
        ['1h', 'berlin', '2026-05-10T10:00:00.000Z', '2026-05-10T11:00:00.000Z'],
        ['1d', 'kolkata', '2026-05-09T18:30:00.000Z', '2026-05-10T18:30:00.000Z'],
        ['1d', 'berlin', '2026-05-09T22:00:00.000Z', '2026-05-10T22:00:00.000Z'],
      ],
    );
  });

  it('rejects a malformed record with a message naming it', () => {
    assert.throws(() => aggregateWindows([rec({ invocations: 0 })], ['5m'], 'UTC'), /usage of t1\/api\/api-00001 at 2026-05-10T10:01:00.000Z: invocations/);
    assert.throws(() => aggregateWindows([rec({ time: 'not a time' })], ['5m'], 'UTC'), /invalid time "not a time"/);
    assert.throws(() => aggregateWindows([rec()], ['5m'], 'Nowhere/Land'), InvalidTimeZoneError);
  });

  // Random workloads over three days around the Berlin fall-back, several tenants and revisions.
  const from = Date.parse('2026-10-24T00:00:00Z');
  const records = fc.array(
    fc.record({
      time: fc.integer({ min: from, max: from + 3 * 24 * HOUR }).map((t) => new Date(t).toISOString()),
      tenant_id: fc.constantFrom('t1', 't2'),
      service: fc.constantFrom('api', 'worker'),
      revision: fc.constantFrom('r1', 'r2'),
      invocations: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 50 })),
      duration_ms: fc.integer({ min: 0, max: 900_000_000 }).map((x) => x / 1000),
      memory_mb: fc.constantFrom(128, 256, 512.5, 1024, 3008),
      cpu_ms: fc.option(fc.integer({ min: 0, max: 10_000_000 }).map((x) => x / 1000), { nil: null }),
      cold_start: fc.boolean(),
      error: fc.boolean(),
    }),
    { minLength: 1, maxLength: 60 },
  );
  const zoneOf = (tenant: string) => (tenant === 't1' ? 'Europe/Berlin' : 'Asia/Kolkata');
  const all: WindowSize[] = ['5m', '1h', '1d'];

  it('is idempotent and independent of input order (property)', () => {
    fc.assert(
      fc.property(records, fc.func(fc.integer()), (rs, rank) => {
        const once = aggregateWindows(rs, all, zoneOf);
        assert.deepEqual(aggregateWindows(rs, all, zoneOf), once);
        const shuffled = [...rs].sort((a, b) => rank(a) - rank(b));
        assert.deepEqual(aggregateWindows(shuffled, all, zoneOf), once);
        assert.deepEqual(accumulateWindows(shuffled, all, zoneOf), accumulateWindows(rs, all, zoneOf));
      }),
      { numRuns: 50 },
    );
  });

  it('maps a late event only to its own windows, and recomputing changes only those rows', () => {
    const today = Array.from({ length: 40 }, (_, i) =>
      rec({ time: new Date(Date.parse('2026-05-10T08:00:00Z') + i * 7 * MIN).toISOString(), duration_ms: 10 + i }),
    );
    const late = rec({ time: '2026-05-07T13:42:10.000Z', duration_ms: 999 });
    const keys = windowKeysOf([late], all, 'Europe/Berlin');
    assert.deepEqual(
      keys.map((k) => [k.window_size, k.window_start, k.window_end]),
      [
        ['5m', '2026-05-07T13:40:00.000Z', '2026-05-07T13:45:00.000Z'],
        ['1h', '2026-05-07T13:00:00.000Z', '2026-05-07T14:00:00.000Z'],
        ['1d', '2026-05-06T22:00:00.000Z', '2026-05-07T22:00:00.000Z'],
      ],
    );
    const before = aggregateWindows(today, all, 'Europe/Berlin');
    const after = aggregateWindows([...today, late], all, 'Europe/Berlin');
    const id = (r: WindowRow) => `${r.window_size} ${r.window_start} ${r.tenant_id} ${r.service} ${r.revision}`;
    const beforeById = new Map(before.map((r) => [id(r), r]));
    const changed = after.filter((r) => JSON.stringify(beforeById.get(id(r))) !== JSON.stringify(r)).map(id);
    assert.deepEqual(changed, keys.map((k) => `${k.window_size} ${k.window_start} ${k.tenant_id} ${k.service} ${k.revision}`));
    assert.equal(after.length, before.length + 3);
  });

  it('lists exactly the distinct windows a batch touched (property)', () => {
    fc.assert(
      fc.property(records, (rs) => {
        const keys = windowKeysOf(rs, all, zoneOf);
        const rows = aggregateWindows(rs, all, zoneOf);
        assert.deepEqual(keys, rows.map(({ window_size, window_start, window_end, tenant_id, service, revision }) => ({ window_size, window_start, window_end, tenant_id, service, revision })));
      }),
      { numRuns: 50 },
    );
  });

  it('gives the same windows whether records are aggregated together or in any split and merged (property)', () => {
    fc.assert(
      fc.property(records, fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 60, maxLength: 60 }), (rs, batchOf) => {
        const batches: WindowUsage[][] = [[], [], [], []];
        rs.forEach((r, i) => batches[batchOf[i]!]!.push(r));
        const whole = accumulateWindows(rs, all, zoneOf);
        const merged = mergeWindowPartials(...batches.map((b) => accumulateWindows(b, all, zoneOf)));
        assert.deepEqual(merged, whole);
        assert.deepEqual(finalizeWindows(merged), finalizeWindows(whole));
      }),
      { numRuns: 60 },
    );
  });

  it('rolls 5m windows up into the same 1h and 1d windows as aggregating directly (property)', () => {
    fc.assert(
      fc.property(records, (rs) => {
        const fiveMinutes = accumulateWindows(rs, ['5m'], zoneOf);
        assert.deepEqual(rollUpPartials(fiveMinutes, '1h', zoneOf), accumulateWindows(rs, ['1h'], zoneOf));
        assert.deepEqual(rollUpPartials(fiveMinutes, '1d', zoneOf), accumulateWindows(rs, ['1d'], zoneOf));
        assert.deepEqual(rollUpPartials(accumulateWindows(rs, ['1h'], zoneOf), '1d', zoneOf), accumulateWindows(rs, ['1d'], zoneOf));
      }),
      { numRuns: 40 },
    );
  });

  it('agrees between exact rows and sketch rows: same sums, percentiles within 1% (property)', () => {
    fc.assert(
      fc.property(records, (rs) => {
        const exact = aggregateWindows(rs, all, zoneOf);
        const sketched = finalizeWindows(accumulateWindows(rs, all, zoneOf));
        assert.equal(sketched.length, exact.length);
        exact.forEach((e, i) => {
          const s = sketched[i]!;
          assert.deepEqual({ ...s, p50_duration_ms: 0, p95_duration_ms: 0 }, { ...e, p50_duration_ms: 0, p95_duration_ms: 0 });
          for (const p of ['p50_duration_ms', 'p95_duration_ms'] as const) {
            assert.ok(Math.abs(s[p] - e[p]) <= 0.01 * e[p] + 1e-9, `${p}: sketch ${s[p]} vs exact ${e[p]}`);
          }
        });
      }),
      { numRuns: 50 },
    );
  });

  it('refuses to roll a window up into a window that does not contain it', () => {
    const kolkataHours = accumulateWindows([rec({ time: '2026-05-10T10:10:00Z' })], ['1h'], 'Asia/Kolkata');
    assert.throws(() => rollUpPartials(kolkataHours, '1h', 'UTC'), /not inside one 1h window in UTC/);
    assert.throws(() => rollUpPartials(accumulateWindows([rec()], ['1d'], 'UTC'), '1h', 'UTC'), /cannot roll 1d windows up into 1h/);
  });
});

describe('windows: agreement with PostgreSQL (embedded PGlite)', function () {
  this.timeout(120_000);
  let db: PGlite;
  before(async () => {
    db = new PGlite();
    await db.exec(`CREATE TABLE u (invocations int, duration_ms numeric(14,3), memory_mb numeric(10,3), cpu_ms numeric(14,3), cold_start bool, error bool)`);
  });
  after(async () => {
    await db.close();
  });

  // The SQL the stage may run instead of the TypeScript (one group here: a single window).
  const sql = `
    WITH stats AS (
      SELECT count(*)::int AS events, sum(invocations)::int AS invocations, sum(duration_ms)::text AS total_duration_ms,
        round(sum(duration_ms) / sum(invocations), 3)::text AS avg_duration_ms, max(memory_mb)::float8 AS max_memory_mb,
        round(sum(memory_mb * invocations) / sum(invocations), 3)::text AS avg_memory_mb,
        coalesce(sum(cpu_ms), 0)::text AS total_cpu_ms, sum(duration_ms * memory_mb)::text AS mb_ms,
        (count(*) FILTER (WHERE cold_start))::int AS cold_starts, (count(*) FILTER (WHERE error))::int AS errors
      FROM u),
    pct AS (
      SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms::float8 / invocations) AS p50_duration_ms,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms::float8 / invocations) AS p95_duration_ms
      FROM u CROSS JOIN generate_series(1, u.invocations))
    SELECT * FROM stats, pct`;

  it('computes the same statistics and exact percentiles as SQL with percentile_cont (property)', async () => {
    const thousandths = (max: number) => fc.integer({ min: 0, max: max * 1000 }).map((x) => x / 1000);
    const usage = fc.array(
      fc.record({
        invocations: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 7 })),
        duration_ms: thousandths(900_000),
        memory_mb: fc.oneof(fc.constantFrom(128, 256, 1769.5), thousandths(10_000).filter((m) => m > 0)),
        cpu_ms: fc.option(thousandths(100_000), { nil: null }),
        cold_start: fc.boolean(),
        error: fc.boolean(),
      }),
      { minLength: 1, maxLength: 40 },
    );
    await fc.assert(
      fc.asyncProperty(usage, async (rows) => {
        await db.exec('TRUNCATE u');
        await db.query(
          `INSERT INTO u SELECT * FROM json_to_recordset($1::json)
             AS x(invocations int, duration_ms numeric, memory_mb numeric, cpu_ms numeric, cold_start bool, error bool)`,
          [JSON.stringify(rows)],
        );
        const expected = (await db.query<Record<string, string | number>>(sql)).rows[0]!;
        const records = rows.map((r) => ({ ...r, time: '2026-05-10T10:00:00.000Z', tenant_id: 't', service: 's', revision: 'r' }));
        const rowsOut: WindowRow[] = aggregateWindows(records, ['1d'], 'UTC');
        assert.equal(rowsOut.length, 1);
        const row = rowsOut[0]!;
        for (const [column, value] of Object.entries(expected)) {
          const ours: unknown = row[column as keyof WindowRow];
          if (typeof value === 'string' && !column.startsWith('avg_')) assert.ok(new Dec(value).eq(String(ours)), `${column}: SQL ${value}, ours ${String(ours)}`);
          else assert.equal(ours, value, `${column}: SQL ${value}, ours ${String(ours)}`);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("starts 1h and 1d windows where PostgreSQL's date_trunc(field, t, zone) does, DST included (property)", async () => {
    // They part only in odd zones: Lord_Howe's 30-minute DST shift (date_trunc's hours overlap there,
    // these do not) and America/Havana, whose fall-back repeats local midnight (date_trunc starts
    // the day at the second midnight, these at the first, so the 25 h day is the one with the extra hour).
    // America/St_Johns changed its clocks at 00:01 local time until 2011, so its fall-backs then
    // repeated local midnight as Havana's do: its instants are drawn from 2012 on (its 30-minute
    // offset is what it is here for).
    const stJohnsMidnightRulesEnd = Date.UTC(2012, 0, 1);
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/St_Johns', 'Pacific/Chatham', 'America/Sao_Paulo'];
    const near = fc.constantFrom('2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', '2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z', '2018-11-04T03:00:00Z', '2026-03-08T05:00:00Z');
    const instant = fc.oneof(
      fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) }),
      fc.tuple(near, fc.integer({ min: -26 * HOUR, max: 26 * HOUR })).map(([at, d]) => Date.parse(at) + d),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...zones), fc.array(instant, { minLength: 1, maxLength: 50 }), async (tz, drawn) => {
        const instants = tz === 'America/St_Johns' ? drawn.filter((t) => t >= stJohnsMidnightRulesEnd) : drawn;
        if (instants.length === 0) return;
        const { rows } = await db.query<{ t: Date; h: Date; d: Date }>(
          `SELECT t, date_trunc('hour', t, $2) AS h, date_trunc('day', t, $2) AS d FROM unnest($1::timestamptz[]) AS t`,
          [instants.map((t) => new Date(t).toISOString()), tz],
        );
        for (const row of rows) {
          const at = row.t.toISOString();
          assert.equal(windowStart(row.t, '1h', tz).toISOString(), row.h.toISOString(), `1h ${tz} ${at}`);
          assert.equal(windowStart(row.t, '1d', tz).toISOString(), row.d.toISOString(), `1d ${tz} ${at}`);
        }
      }),
      { numRuns: 60 },
    );
  });
});
