/**
 * Price variants in computeBill (plan.price_variants): multipliers by architecture, spot and time
 * of day combine per invocation; the free tier is consumed in time order across variants; and
 * splitting the same usage into any chunks never changes the bill. Expected amounts are worked
 * out in the comments.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Dec, computeBill, parsePlan, safeParsePlan, type UsageChunk } from './index.js';

const october = { start: '2025-10-01T00:00:00Z', end: '2025-11-01T00:00:00Z' };
const plan = parsePlan({
  name: 'variants',
  currency: 'USD',
  price_per_invocation: '0.01',
  free_tier_invocations: '10',
  price_variants: {
    architectures: { arm64: { invocations: '0.8' } },
    spot: { invocations: '0.5' },
  },
});
const chunk = (day: number, n: number, v: Partial<UsageChunk> = {}): UsageChunk => ({
  service: 'fn',
  start: `2025-10-${String(day).padStart(2, '0')}T00:00:00Z`,
  invocations: n,
  billedMbMs: '0',
  coldStarts: 0,
  cpuMs: '0',
  ...v,
});

describe('price variants in bills', () => {
  it('multiplies the list price by each variant that applies, one line per variant, free units in time order', () => {
    // Day 1: 20 x86 (10 free) → 10 × 0.01 = 0.10; day 2: 20 arm64 → 20 × 0.008 = 0.16;
    // day 3: 20 arm64 spot → 20 × 0.004 = 0.08; day 4: 20 spot on an unpriced architecture → 20 × 0.005 = 0.10.
    const bill = computeBill(plan, [chunk(1, 20), chunk(2, 20, { architecture: 'arm64' }), chunk(3, 20, { architecture: 'arm64', spot: true }), chunk(4, 20, { architecture: 'riscv', spot: true })], october);
    assert.deepEqual(
      bill.lines.map((l) => [l.variant ?? null, l.freeQuantity, l.unitPrice, l.amount]),
      [
        [null, '10', '0.01', '0.10'],
        ['arm64', '0', '0.008', '0.16'],
        ['arm64 · spot', '0', '0.004', '0.08'],
        ['spot', '0', '0.005', '0.10'],
      ],
    );
    assert.equal(bill.total, '0.44');
    // The free units go to what came first, whatever its variant.
    const early = computeBill(plan, [chunk(1, 20, { architecture: 'arm64' }), chunk(2, 20)], october);
    assert.deepEqual(early.lines.map((l) => [l.variant ?? null, l.freeQuantity, l.amount]), [[null, '0', '0.20'], ['arm64', '10', '0.08']]);
  });

  it('applies a time-of-day multiplier and label given with the chunk, and ignores variants on a plan without them', () => {
    const bill = computeBill(plan, [chunk(5, 110, { timeOfDay: { multiplier: '0.7', label: 'night' } })], october);
    assert.deepEqual(bill.lines.map((l) => [l.variant, l.unitPrice, l.amount]), [['night', '0.007', '0.70']]);
    const flat = parsePlan({ name: 'flat', currency: 'USD', price_per_invocation: '0.01' });
    const same = computeBill(flat, [chunk(5, 100, { architecture: 'arm64', spot: true, timeOfDay: { multiplier: '0.7', label: 'night' } })], october);
    assert.deepEqual(same.lines.map((l) => [l.variant, l.amount]), [[undefined, '1.00']]);
  });

  it('property: splitting usage into any chunks (same instants and variants) never changes the bill', () => {
    const variantArb = fc.record({ architecture: fc.constantFrom(null, 'arm64', 'x86_64'), spot: fc.boolean() });
    fc.assert(
      fc.property(fc.array(fc.record({ day: fc.integer({ min: 1, max: 31 }), n: fc.integer({ min: 1, max: 50 }), v: variantArb }), { minLength: 1, maxLength: 10 }), fc.integer({ min: 2, max: 5 }), (usage, parts) => {
        const whole = computeBill(plan, usage.map((u) => chunk(u.day, u.n, u.v)), october);
        const split = usage.flatMap((u) => {
          const out: UsageChunk[] = [];
          let left = u.n;
          for (let i = 0; i < parts && left > 0; i++) {
            const take = i === parts - 1 ? left : Math.ceil(left / 2);
            out.push(chunk(u.day, take, u.v));
            left -= take;
          }
          return out;
        });
        const again = computeBill(plan, split.reverse(), october);
        assert.deepEqual(again, whole);
        assert.equal(
          whole.total,
          whole.lines.reduce((s, l) => s.plus(l.amount), new Dec(0)).toFixed(2),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('refuses variants that cannot be priced: a multiplier as a number, an unknown meter, a bad schedule', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ spot: { invocations: 0.5 } }, /multiplier must be a decimal string/],
      [{ spot: { memory: '0.5' } }, /a meter is one of/],
      [{ architectures: { 'ARM 64': { compute: '0.8' } } }, /label value/],
      [{ schedule: [{ days: ['mon'], from: '25:00', to: '06:00', multiplier: '0.5' }] }, /schedule\[0\]\.from/],
      [{ nights: [] }, /nights/],
    ];
    for (const [variants, message] of cases) {
      const r = safeParsePlan({ name: 'x', currency: 'USD', price_per_invocation: '0.01', price_variants: variants });
      assert.equal(r.ok, false, JSON.stringify(variants));
      if (!r.ok) assert.match(r.error.message, message);
    }
  });
});
