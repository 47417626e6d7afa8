/**
 * Charge models in bills (plan.charge_models → computeBill): tier lines per meter on the tenant's
 * total after free units, per-service lines showing quantities, adjustments tier by tier, and the
 * plan validation that goes with them. Expected amounts are computed by hand in the comments.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Dec, adjustmentLines, computeBill, parsePlan, safeParsePlan, type UsageChunk } from './index.js';

const october = { start: '2025-10-01T00:00:00Z', end: '2025-11-01T00:00:00Z' };
const at = (day: number, hour = 0): string => `2025-10-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:00:00Z`;
const chunk = (service: string, start: string, q: Partial<Omit<UsageChunk, 'service' | 'start'>> = {}): UsageChunk => ({
  service,
  start,
  invocations: q.invocations ?? 0,
  billedMbMs: q.billedMbMs ?? '0',
  coldStarts: q.coldStarts ?? 0,
  cpuMs: q.cpuMs ?? '0',
});

// Invocations: (0, 1 000] @ 0.01, (1 000, 5 000] @ 0.008 + a 5.00 flat fee, over 5 000 @ 0.005; 500 free.
const graduated = parsePlan({
  name: 'graduated',
  currency: 'USD',
  free_tier_invocations: '500',
  charge_models: {
    invocations: {
      model: 'graduated',
      tiers: [
        { from: 0, up_to: 1000, unit_price: '0.01' },
        { from: 1000, up_to: 5000, unit_price: '0.008', flat_fee: '5' },
        { from: 5000, up_to: null, unit_price: '0.005' },
      ],
    },
  },
});

describe('charge models in bills', () => {
  it('graduated: free units first (in time order), then each tier slice at its price, plus the flat fee', () => {
    // a: 3 000 on day 1 (takes the 500 free), b: 4 000 on day 2 → billable 6 500:
    // tier 1 1 000 × 0.01 = 10.00; tier 2 4 000 × 0.008 = 32.00 + fee 5.00; tier 3 1 500 × 0.005 = 7.50 → 54.50.
    const bill = computeBill(graduated, [chunk('a', at(1), { invocations: 3000 }), chunk('b', at(2), { invocations: 4000 })], october);
    const view = bill.lines.map((l) => [l.service, l.quantity, l.freeQuantity, l.unitPrice, l.amount]);
    assert.deepEqual(view, [
      ['a', '3000', '500', '0', '0.00'],
      ['b', '4000', '0', '0', '0.00'],
      ['*tier-1', '1000', '0', '0.01', '10.00'],
      ['*tier-2', '4000', '0', '0.008', '32.00'],
      ['*fee-2', '1', '0', '5', '5.00'],
      ['*tier-3', '1500', '0', '0.005', '7.50'],
    ]);
    assert.equal(bill.total, '54.50');
    assert.equal(bill.lines.find((l) => l.service === '*fee-2')?.unit, 'fee');
  });

  it('volume: the whole billable quantity at the price of the tier it reaches', () => {
    // Compute in MB·ms: (0, 1e9] @ 0.000000002, over 1e9 @ 0.000000001. 1.5e9 MB·ms → 1.5e9 × 0.000000001 = 1.50.
    const plan = parsePlan({
      name: 'volume',
      currency: 'USD',
      charge_models: {
        compute: { model: 'volume', tiers: [{ from: 0, up_to: 1_000_000_000, unit_price: '0.000000002' }, { from: 1_000_000_000, up_to: null, unit_price: '0.000000001' }] },
      },
    });
    const bill = computeBill(plan, [chunk('a', at(3), { billedMbMs: '1000000000' }), chunk('b', at(4), { billedMbMs: '500000000' })], october);
    const tiers = bill.lines.filter((l) => l.service.startsWith('*'));
    assert.deepEqual(tiers.map((l) => [l.service, l.quantity, l.unitPrice, l.amount]), [['*tier-2', '1500000000', '0.000000001', '1.50']]);
    assert.equal(bill.total, '1.50');
  });

  it('package: per started block (250 cold starts at 0.50 per 100 → 3 blocks = 1.50)', () => {
    const plan = parsePlan({ name: 'package', currency: 'USD', charge_models: { cold_starts: { model: 'package', package_size: 100, package_price: '0.50' } } });
    const bill = computeBill(plan, [chunk('a', at(5), { coldStarts: 250 })], october);
    const block = bill.lines.find((l) => l.service === '*tier-1');
    assert.deepEqual([block?.quantity, block?.unit, block?.unitPrice, block?.amount], ['3', 'block of 100 cold-start', '0.5', '1.50']);
    assert.equal(bill.total, '1.50');
  });

  it('a meter with a charge model keeps no flat price; an unknown meter or a bad table is refused', () => {
    const bad = (input: Record<string, unknown>): string => {
      const r = safeParsePlan({ name: 'x', currency: 'USD', ...input });
      assert.equal(r.ok, false);
      return r.ok ? '' : r.error.message;
    };
    assert.match(bad({ price_per_invocation: '0.1', charge_models: { invocations: { model: 'per_unit', unit_price: '0.2' } } }), /replaces price_per_invocation/);
    assert.match(bad({ charge_models: { memory: { model: 'per_unit', unit_price: '0.2' } } }), /not a meter/);
    assert.match(bad({ charge_models: { invocations: { model: 'graduated', tiers: [{ from: 0, up_to: 10, unit_price: '1' }, { from: 20, up_to: null, unit_price: '1' }] } } }), /gap/);
  });

  it('late usage is adjusted tier by tier: finalized + adjustments = recomputed', () => {
    const before = computeBill(graduated, [chunk('a', at(1), { invocations: 3000 })], october);
    // 2 500 billable: 10.00 + 12.00 + 5.00 = 27.00.
    assert.equal(before.total, '27.00');
    const after = computeBill(graduated, [chunk('a', at(1), { invocations: 3000 }), chunk('b', at(20), { invocations: 4000 })], october);
    const adjustments = adjustmentLines(before, after);
    const sum = adjustments.reduce((acc, l) => acc.plus(l.amount), new Dec(0));
    assert.equal(new Dec(before.total).plus(sum).toFixed(2), after.total);
    assert.deepEqual(
      adjustments.filter((l) => l.service.startsWith('*')).map((l) => [l.service, l.quantity, l.amount]),
      [
        ['*tier-2', '2500', '20.00'],
        ['*tier-3', '1500', '7.50'],
      ],
    );
  });

  it('property: splitting the same usage into any chunks never changes the bill', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 1, max: 28 }), fc.integer({ min: 0, max: 4000 })), { minLength: 1, maxLength: 12 }), fc.integer({ min: 2, max: 5 }), (items, parts) => {
        const whole = items.map(([s, d, n]) => chunk(s, at(d), { invocations: n }));
        const split = items.flatMap(([s, d, n]) => {
          const each = Math.floor(n / parts);
          return Array.from({ length: parts }, (_, i) => chunk(s, at(d), { invocations: i === parts - 1 ? n - each * (parts - 1) : each }));
        });
        assert.deepEqual(computeBill(graduated, split, october), computeBill(graduated, whole, october));
      }),
      { numRuns: 200 },
    );
  });
});
