/** Pricing forecast usage: marginal cost after the month-to-date usage, month boundaries, bands. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Dec, computeBill, parsePlan, type PlanInput, type UsageChunk } from '../pricing/index.js';
import type { Band } from './intervals.js';
import { FORECAST_SERVICE, billByMeter, costConfidence, priceForecast, quantityText, type ForecastPart } from './cost.js';

const march = { start: '2025-03-01T00:00:00Z', end: '2025-04-01T00:00:00Z' };
const april = { start: '2025-04-01T00:00:00Z', end: '2025-05-01T00:00:00Z' };
const asOf = '2025-03-20T00:00:00Z';

const plan: PlanInput = {
  name: 'test',
  currency: 'USD',
  price_per_invocation: '0.0000002',
  price_per_gb_s: '0.0000166667',
  price_per_cold_start: '0.00001',
  price_per_cpu_ms: '0.000000001',
  free_tier_invocations: 1_000_000,
  free_tier_gb_s: '400000',
};

const chunk = (service: string, start: string, invocations: number, billedMbMs: string, coldStarts = 0, cpuMs = '0'): UsageChunk => ({ service, start, invocations, billedMbMs, coldStarts, cpuMs });
const exact = (value: number): Band => ({ expected: value, median: value, lower80: value, upper80: value, lower95: value, upper95: value });
const spread = (value: number, relative: number): Band => ({
  expected: value,
  median: value,
  lower80: value * (1 - relative),
  upper80: value * (1 + relative),
  lower95: value * (1 - 2 * relative),
  upper95: value * (1 + 2 * relative),
});

/** Month-to-date usage: 900 000 invocations (100 000 free left), lots of compute. */
const monthToDate = [
  chunk('api', '2025-03-02T10:00:00Z', 500_000, '300000000000', 40, '1000000'),
  chunk('worker', '2025-03-10T10:00:00Z', 400_000, '200000000000', 10, '500000'),
];

describe('forecast cost', () => {
  it('prices forecast usage at the free tier left after the month-to-date usage (the marginal cost)', () => {
    const actual = computeBill(plan, monthToDate, march);
    const part: ForecastPart = { plan, period: march, start: asOf, used: billByMeter(actual).quantity, expected: { invocations: 1, compute: 1, cold_starts: 1, cpu: 1 } };
    const priced = priceForecast([part], { invocations: exact(250_000), compute: exact(5e11), cold_starts: exact(30), cpu: exact(2e6) });
    const union = computeBill(plan, [...monthToDate, chunk(FORECAST_SERVICE, asOf, 250_000, '500000000000', 30, '2000000')], march);
    assert.equal(priced.cost.expected, new Dec(union.total).minus(actual.total).toFixed(2));
    // 100 000 invocations were still free: 150 000 are billed at 0.0000002.
    assert.equal(priced.components.invocations.cost.expected, '0.03');
    assert.equal(priced.components.invocations.quantity.expected, '250000');
    assert.equal(priced.actualCost, undefined);
  });

  it('prices a month-end target as the month-to-date bill plus the forecast of the rest, equal to the bill of both', () => {
    const actual = computeBill(plan, monthToDate, march);
    const part: ForecastPart = { plan, period: march, start: asOf, used: billByMeter(actual).quantity, expected: { invocations: 1, compute: 1, cold_starts: 1, cpu: 1 } };
    const totals = { invocations: spread(400_000, 0.1), compute: spread(3e11, 0.1), cold_starts: spread(20, 0.2), cpu: spread(1e6, 0.1) };
    const priced = priceForecast([part], totals, actual);
    assert.equal(priced.actualCost, actual.total);
    for (const band of ['expected', 'lower80', 'upper80', 'lower95', 'upper95'] as const) {
      const q = (m: keyof typeof totals): number => totals[m][band];
      const forecastChunk = chunk(FORECAST_SERVICE, asOf, Math.round(q('invocations')), q('compute').toFixed(3), Math.round(q('cold_starts')), q('cpu').toFixed(3));
      assert.equal(priced.cost[band], computeBill(plan, [...monthToDate, forecastChunk], march).total, band);
    }
    assert.equal(priced.components.invocations.actual?.quantity, '900000');
    assert.equal(priced.components.invocations.quantity.expected, '1300000');
  });

  it('starts the next month with a fresh free tier when a target crosses the month end', () => {
    const actual = computeBill(plan, monthToDate, march);
    const parts: ForecastPart[] = [
      { plan, period: march, start: '2025-03-31T00:00:00Z', used: billByMeter(actual).quantity, expected: { invocations: 100, compute: 100, cold_starts: 0, cpu: 0 } },
      { plan, period: april, start: april.start, expected: { invocations: 300, compute: 300, cold_starts: 0, cpu: 0 } },
    ];
    // 400 000 invocations: 100 000 in March (exactly the free ones left), 300 000 in April (all free).
    const priced = priceForecast(parts, { invocations: exact(400_000), compute: exact(0), cold_starts: exact(0), cpu: exact(0) });
    assert.equal(priced.components.invocations.cost.expected, '0.00');
    assert.equal(priced.components.invocations.quantity.expected, '400000');
    // The same usage all in March would pay for 300 000 invocations.
    const allMarch = priceForecast([{ ...parts[0], expected: { invocations: 1, compute: 1, cold_starts: 0, cpu: 0 } } as ForecastPart], {
      invocations: exact(400_000),
      compute: exact(0),
      cold_starts: exact(0),
      cpu: exact(0),
    });
    assert.equal(allMarch.components.invocations.cost.expected, '0.06');
  });

  it('keeps cost bands ordered when the usage bands are', () => {
    const part: ForecastPart = { plan, period: march, start: asOf, expected: { invocations: 1, compute: 1, cold_starts: 1, cpu: 1 } };
    const priced = priceForecast([part], { invocations: spread(5e6, 0.3), compute: spread(9e11, 0.3), cold_starts: spread(500, 0.3), cpu: spread(1e8, 0.3) });
    const c = priced.cost;
    const d = (s: string): Dec => new Dec(s);
    assert.ok(d(c.lower95).lte(c.lower80) && d(c.lower80).lte(c.expected) && d(c.expected).lte(c.upper80) && d(c.upper80).lte(c.upper95), JSON.stringify(c));
    assert.ok(d(c.upper95).gt(c.lower95));
    for (const text of Object.values(c)) assert.match(text, /^\d+\.\d{2}$/);
  });

  it('refuses to sum a target over plans in different currencies', () => {
    const rub: PlanInput = { currency: 'RUB', price_per_invocation: '0.00002' };
    const parts: ForecastPart[] = [
      { plan, period: march, start: asOf, expected: { invocations: 1, compute: 0, cold_starts: 0, cpu: 0 } },
      { plan: rub, period: april, start: april.start, expected: { invocations: 1, compute: 0, cold_starts: 0, cpu: 0 } },
    ];
    assert.throws(() => priceForecast(parts, { invocations: exact(10), compute: exact(0), cold_starts: exact(0), cpu: exact(0) }), /USD and RUB/);
  });

  it('turns float forecasts into decimal quantities: whole counts, MB·ms and CPU-ms to 3 decimals', () => {
    assert.equal(quantityText('invocations', 12.5), '13');
    assert.equal(quantityText('cold_starts', 0.4), '0');
    assert.equal(quantityText('compute', 1234.56789), '1234.568');
    assert.equal(quantityText('cpu', 1e15), '1000000000000000');
    for (const bad of [-1, NaN, Infinity, 1e21]) assert.throws(() => quantityText('compute', bad), RangeError);
  });

  it('states confidence as 1 − half the 80% width relative to the forecast, in [0, 1]', () => {
    const band = (expected: string, lower80: string, upper80: string) => ({ expected, median: expected, lower80, upper80, lower95: lower80, upper95: upper80 });
    assert.equal(costConfidence(band('100.00', '90.00', '110.00')), '0.9000');
    assert.equal(costConfidence(band('10.00', '0.00', '40.00')), '0.0000');
    assert.equal(costConfidence(band('0.00', '0.00', '0.00')), '1.0000');
    assert.equal(costConfidence(band('0.00', '0.00', '0.01')), '0.0000');
  });

  /** Plans whose bill is not the sum of its chunks' bills: a minimum charge, commitments, graduated tiers. */
  const shapedPlans: Record<string, PlanInput> = {
    'per-unit': plan,
    // The generated months cost about 0–100: this minimum decides some of them and not others.
    'minimum charge': { ...plan, minimum_charge: '50' },
    commitments: {
      ...plan,
      minimum_charge: '40',
      commitments: [
        { meter: 'invocations', quantity: '2000000', unit_price: '0.00000015' },
        { meter: 'compute', quantity_gb_s: '300000', unit_price_per_gb_s: '0.0000125', bill_unused: true },
      ],
    },
    'graduated tiers': {
      ...plan,
      price_per_invocation: '0',
      charge_models: {
        invocations: {
          model: 'graduated',
          tiers: [
            { from: 0, up_to: 1_000_000, unit_price: '0.0000004' },
            { from: 1_000_000, up_to: 4_000_000, unit_price: '0.0000003', flat_fee: '1' },
            { from: 4_000_000, up_to: null, unit_price: '0.0000001' },
          ],
        },
      },
    },
  };

  for (const [shape, shaped] of Object.entries(shapedPlans)) {
    it(`month-end cost equals the bill of actual plus forecast usage for any usage, ${shape} (property)`, () => {
      const usage = fc.record({ invocations: fc.integer({ min: 0, max: 2_000_000 }), mbMs: fc.integer({ min: 0, max: 900_000_000_000 }), hour: fc.integer({ min: 0, max: 400 }) });
      fc.assert(
        fc.property(fc.array(usage, { maxLength: 6 }), fc.integer({ min: 0, max: 3_000_000 }), fc.double({ min: 0, max: 1e12, noNaN: true }), (actualUsage, invocations, mbMs) => {
          const chunks = actualUsage.map((u, i) => chunk(i % 2 === 0 ? 'a' : 'b', new Date(Date.parse(march.start) + u.hour * 3_600_000).toISOString(), u.invocations, String(u.mbMs)));
          const actual = computeBill(shaped, chunks, march);
          const part: ForecastPart = { plan: parsePlan(shaped), period: march, start: asOf, used: billByMeter(actual).quantity, expected: { invocations: 1, compute: 1, cold_starts: 0, cpu: 0 } };
          const priced = priceForecast([part], { invocations: exact(invocations), compute: exact(mbMs), cold_starts: exact(0), cpu: exact(0) }, actual);
          const union = computeBill(shaped, [...chunks, chunk(FORECAST_SERVICE, asOf, invocations, mbMs.toFixed(3))], march);
          if (shaped.minimum_charge === undefined) assert.equal(priced.cost.expected, union.total);
          else {
            // Where the minimum decides, the month-to-date usage priced as one line instead of one
            // per service may round to a cent per service line on the other side of it.
            const services = new Set(chunks.map((c) => c.service)).size;
            assert.ok(new Dec(priced.cost.expected).minus(union.total).abs().lte(new Dec('0.01').times(services)), `${priced.cost.expected} vs ${union.total}`);
          }
        }),
        { numRuns: 200 },
      );
    });
  }

  it('adds nothing for forecast usage that leaves the month under its minimum charge, and only the excess above it', () => {
    const minimum: PlanInput = { ...plan, minimum_charge: '100', free_tier_invocations: 0, free_tier_gb_s: '0', price_per_invocation: '0.001', price_per_gb_s: '0' };
    const actual = computeBill(minimum, [chunk('a', '2025-03-10T00:00:00Z', 20_000, '0')], march);
    assert.equal(actual.total, '100.00', 'usage of 20.00 topped up to the minimum');
    const part = (used: typeof actual): ForecastPart => ({ plan: parsePlan(minimum), period: march, start: asOf, used: billByMeter(used).quantity, expected: { invocations: 1, compute: 0, cold_starts: 0, cpu: 0 } });
    const usage = (invocations: number) => ({ invocations: exact(invocations), compute: exact(0), cold_starts: exact(0), cpu: exact(0) });
    // Another 20.00 of usage: still under the minimum, so the marginal cost is 0 and the month is 100.00.
    assert.equal(priceForecast([part(actual)], usage(20_000)).cost.expected, '0.00');
    assert.equal(priceForecast([part(actual)], usage(20_000), actual).cost.expected, '100.00');
    // Another 100.00: the month's usage is 120.00, above the minimum.
    assert.equal(priceForecast([part(actual)], usage(100_000), actual).cost.expected, '120.00');
  });
});
