import assert from 'node:assert/strict';
import {
  alignSeries,
  budgetUse,
  clearKey,
  currentMonth,
  loadKey,
  parseRoute,
  previousRange,
  recentRange,
  relativeChange,
  revisionStatuses,
  routeHash,
  samePointLastMonth,
  saveKey,
  seriesOf,
  shiftSeries,
  tierProblems,
  tiersForApi,
  type TierDraft,
  type UsageWindow,
} from './state.ts';

const window = (overrides: Partial<UsageWindow>): UsageWindow => ({
  service_id: 's1',
  service_name: 'api',
  revision_id: 'r1',
  revision_name: 'api-00001',
  window_start: '2026-11-05T10:00:00Z',
  window_end: '2026-11-05T11:00:00Z',
  invocations: 0,
  p50_duration_ms: null,
  p95_duration_ms: null,
  avg_memory_mb: null,
  max_memory_mb: null,
  billed_gb_s: '0',
  cold_starts: 0,
  errors: 0,
  ...overrides,
});

describe('dashboard state', () => {
  describe('session key', () => {
    it('is kept, read back and forgotten in the given storage', () => {
      const values = new Map<string, string>();
      const storage = { getItem: (k: string) => values.get(k) ?? null, setItem: (k: string, v: string) => void values.set(k, v), removeItem: (k: string) => void values.delete(k) };
      assert.equal(loadKey(storage), null);
      saveKey(storage, 'fbk_0123456789ab_key');
      assert.equal(loadKey(storage), 'fbk_0123456789ab_key');
      clearKey(storage);
      assert.equal(loadKey(storage), null);
    });
  });

  describe('hash routes', () => {
    it('a screen with parameters survives the round trip', () => {
      const hash = routeHash('usage', { window: '5m', service: 'abc', revision: undefined });
      assert.equal(hash, '#/usage?window=5m&service=abc');
      assert.deepEqual(parseRoute(hash), { screen: 'usage', params: { window: '5m', service: 'abc' } });
    });

    it('an empty or unknown hash is the overview', () => {
      assert.equal(parseRoute('').screen, 'overview');
      assert.equal(parseRoute('#/nowhere?x=1').screen, 'overview');
    });
  });

  describe('usage series', () => {
    it('sums services per window start; p95 is the largest, memory the invocation-weighted mean', () => {
      const points = seriesOf([
        window({ invocations: 30, billed_gb_s: '1.5', p50_duration_ms: '20', p95_duration_ms: '80', avg_memory_mb: '128', cold_starts: 1, errors: 2 }),
        window({ service_id: 's2', revision_id: 'r2', invocations: 10, billed_gb_s: '0.25', p50_duration_ms: '40', p95_duration_ms: '60', avg_memory_mb: '512', cold_starts: 2 }),
        window({ window_start: '2026-11-05T09:00:00Z', invocations: 5, billed_gb_s: '0.1' }),
      ]);
      assert.equal(points.length, 2);
      assert.ok(points[0] && points[1]);
      // Oldest first.
      assert.equal(points[0].t, Date.parse('2026-11-05T09:00:00Z') / 1000);
      const later = points[1].values;
      assert.equal(later.invocations, 40);
      assert.equal(later.gb_s, 1.75);
      assert.equal(later.p95_ms, 80);
      assert.equal(later.p50_ms, 40);
      assert.equal(later.memory_mb, (128 * 30 + 512 * 10) / 40);
      assert.equal(later.cold_starts, 3);
      assert.equal(later.errors, 2);
    });

    it('the range reaches past now to the end of the window still filling', () => {
      const now = new Date('2026-11-05T10:02:00Z');
      const fiveMinutes = recentRange('5m', now);
      assert.equal(fiveMinutes.start.toISOString(), '2026-11-05T04:02:00.000Z');
      assert.equal(fiveMinutes.end.toISOString(), '2026-11-05T10:07:00.000Z');
      assert.equal(recentRange('1d', now).end.toISOString(), '2026-11-06T10:02:00.000Z');
    });

    it('the compared period is the one just before, of the same length, and overlays the current axis', () => {
      const range = { start: new Date('2026-11-05T00:00:00Z'), end: new Date('2026-11-06T00:00:00Z') };
      const before = previousRange(range);
      assert.equal(before.start.toISOString(), '2026-11-04T00:00:00.000Z');
      assert.equal(before.end.toISOString(), '2026-11-05T00:00:00.000Z');
      const earlier = seriesOf([window({ window_start: '2026-11-04T10:00:00Z', invocations: 7 })]);
      const shifted = shiftSeries(earlier, range.start.getTime() - before.start.getTime());
      assert.equal(shifted[0]?.t, Date.parse('2026-11-05T10:00:00Z') / 1000);
    });

    it('aligns two series on the union of their instants, with gaps as null', () => {
      const current = seriesOf([window({ window_start: '2026-11-05T10:00:00Z', invocations: 3 })]);
      const compared = seriesOf([window({ window_start: '2026-11-05T11:00:00Z', invocations: 4 })]);
      const aligned = alignSeries(current, compared, 'invocations');
      assert.deepEqual(aligned.x, [Date.parse('2026-11-05T10:00:00Z') / 1000, Date.parse('2026-11-05T11:00:00Z') / 1000]);
      assert.deepEqual(aligned.current, [3, null]);
      assert.deepEqual(aligned.compared, [null, 4]);
      assert.equal(alignSeries(current, null, 'invocations').compared, null);
    });
  });

  describe('month to date against last month', () => {
    it('takes the same elapsed time into last month, in the tenant’s zone', () => {
      // 5 days and 6 hours into November in New York (UTC-5 in November).
      const range = samePointLastMonth(new Date('2026-11-06T11:00:00Z'), 'America/New_York');
      // October 1 00:00 in New York is UTC-4 (daylight time).
      assert.equal(range.start.toISOString(), '2026-10-01T04:00:00.000Z');
      assert.equal(range.end.toISOString(), '2026-10-06T10:00:00.000Z');
    });

    it('stops at the end of a shorter last month', () => {
      const range = samePointLastMonth(new Date('2026-03-31T12:00:00Z'), 'UTC');
      assert.equal(range.start.toISOString(), '2026-02-01T00:00:00.000Z');
      assert.equal(range.end.toISOString(), '2026-03-01T00:00:00.000Z');
    });

    it('the current month is the tenant’s: already December in Tokyo while still November in New York', () => {
      const now = new Date('2026-11-30T20:00:00Z');
      assert.equal(currentMonth(now, 'Asia/Tokyo'), '2026-12');
      assert.equal(currentMonth(now, 'America/New_York'), '2026-11');
    });

    it('relative change and budget use', () => {
      assert.equal(relativeChange('100', '125'), 0.25);
      assert.equal(relativeChange('0', '10'), null);
      assert.equal(budgetUse('200', '50'), 0.25);
      assert.equal(budgetUse('200', null), 0);
      assert.equal(budgetUse(null, '5'), null);
    });
  });

  describe('tier editor', () => {
    const tier = (from: string, up_to: string, unit_price = '0.1', flat_fee = ''): TierDraft => ({ from, up_to, unit_price, flat_fee });

    it('a contiguous table from 0 ending open is valid', () => {
      assert.deepEqual(tierProblems([tier('0', '1000'), tier('1000', '5000'), tier('5000', '')]), []);
    });

    it('names each problem: start, gaps, order, open end, prices', () => {
      assert.deepEqual(tierProblems([]), ['add at least one tier']);
      assert.ok(tierProblems([tier('5', '')]).includes('tier 1 must start at 0'));
      assert.ok(tierProblems([tier('0', '100'), tier('200', '')]).includes('tier 2 must start where tier 1 ends (100)'));
      assert.ok(tierProblems([tier('0', '100'), tier('100', '50'), tier('50', '')]).includes('tier 2: "up to" must be greater than "from"'));
      assert.ok(tierProblems([tier('0', ''), tier('0', '')]).includes('tier 1: only the last tier may be open-ended (fill in "up to")'));
      assert.ok(tierProblems([tier('0', '100')]).includes('tier 1: the last tier must be open-ended (leave "up to" empty)'));
      assert.ok(tierProblems([tier('0', '', '-1')]).includes('tier 1: unit price must be a decimal ≥ 0'));
      assert.ok(tierProblems([tier('0', '', '1', 'x')]).includes('tier 1: flat fee must be a decimal ≥ 0'));
    });

    it('sends an open end as null and leaves out empty fees', () => {
      assert.deepEqual(tiersForApi([tier('0', '100', '0.2', '5'), tier('100', '', '0.1')]), [
        { from: '0', up_to: '100', unit_price: '0.2', flat_fee: '5' },
        { from: '100', up_to: null, unit_price: '0.1' },
      ]);
    });
  });

  describe('function status', () => {
    it('one row per revision, busiest first, with rates over the span and its last window with calls', () => {
      const rows = revisionStatuses(
        [
          window({ invocations: 100, errors: 5, cold_starts: 10, p95_duration_ms: '90', window_end: '2026-11-05T11:00:00Z' }),
          window({ window_start: '2026-11-05T11:00:00Z', window_end: '2026-11-05T12:00:00Z', invocations: 20, p95_duration_ms: '120' }),
          window({ window_start: '2026-11-05T12:00:00Z', window_end: '2026-11-05T13:00:00Z', invocations: 0 }),
          window({ service_id: 's2', service_name: 'worker', revision_id: 'r2', revision_name: 'worker-00003', invocations: 600 }),
        ],
        2 * 3_600_000,
      );
      assert.deepEqual(
        rows.map((r) => r.revision_name),
        ['worker-00003', 'api-00001'],
      );
      const api = rows[1];
      assert.ok(api);
      assert.equal(api.invocations, 120);
      assert.equal(api.ratePerMinute, 1);
      assert.equal(api.errorRate, 5 / 120);
      assert.equal(api.coldStartRate, 10 / 120);
      assert.equal(api.p95Ms, 120);
      // The empty 12:00 window does not count as seen.
      assert.equal(api.lastSeen, '2026-11-05T12:00:00Z');
    });
  });
});
