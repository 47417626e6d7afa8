/**
 * Commitments (reserved capacity) and minimum charges in computeBill: the committed-use discount,
 * the unused commitment, the minimum top-up, their proration by a bill's share of a period, and
 * the plan validation that goes with them. Expected amounts are worked out in the comments; the
 * property tests check the pricing identities on random usage.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Dec, adjustmentLines, computeBill, parsePlan, safeParsePlan, type UsageChunk } from './index.js';

const october = { start: '2025-10-01T00:00:00Z', end: '2025-11-01T00:00:00Z' };
const chunk = (service: string, day: number, invocations: number, billedMbMs = '0'): UsageChunk => ({
  service,
  start: `2025-10-${String(day).padStart(2, '0')}T00:00:00Z`,
  invocations,
  billedMbMs,
  coldStarts: 0,
  cpuMs: '0',
});

// Invocations at 0.001 each, 100 free; 1 000 committed at 0.0006 (take-or-pay); minimum 2.00.
const committed = parsePlan({
  name: 'committed',
  currency: 'USD',
  price_per_invocation: '0.001',
  free_tier_invocations: '100',
  commitments: [{ meter: 'invocations', quantity: '1000', unit_price: '0.0006' }],
  minimum_charge: '2',
});

const kinds = (lines: readonly { kind?: string; service: string; amount: string }[]) => lines.map((l) => [l.kind ?? 'usage', l.service, l.amount]);

describe('commitments and minimum charges', () => {
  it('covers the first committed units after the free tier at the committed price, the rest at list', () => {
    // 1 600 invocations, 100 free → 1 500 billable: list 1.50; 1 000 covered: −(0.001 − 0.0006) × 1 000 = −0.40 → 1.10.
    const bill = computeBill({ ...committed, minimum_charge: '0' }, [chunk('a', 1, 900), chunk('b', 2, 700)], october);
    assert.deepEqual(kinds(bill.lines), [
      ['usage', 'a', '0.80'],
      ['usage', 'b', '0.70'],
      ['commitment', '*commitment', '-0.40'],
    ]);
    assert.equal(bill.total, '1.10');
    // With the plan's minimum of 2.00, the 1.10 is topped up by 0.90.
    const topped = computeBill(committed, [chunk('a', 1, 900), chunk('b', 2, 700)], october);
    assert.deepEqual(kinds(topped.lines).at(-1), ['minimum', '*minimum', '0.90']);
    assert.equal(topped.total, '2.00');
    assert.equal(bill.lines[2]?.quantity, '1000');
    assert.equal(bill.lines[2]?.unitPrice, '-0.0004');
  });

  it('bills the unused part of a take-or-pay commitment, then tops up to the minimum charge', () => {
    // 400 billable (500 − 100 free): 0.40 − 0.16 = 0.24 at 0.0006; unused 600 × 0.0006 = 0.36 → 0.60; minimum 2.00 → top-up 1.40.
    const bill = computeBill(committed, [chunk('a', 3, 500)], october);
    assert.deepEqual(kinds(bill.lines), [
      ['usage', 'a', '0.40'],
      ['commitment', '*commitment', '-0.16'],
      ['commitment', '*commitment-unused', '0.36'],
      ['minimum', '*minimum', '1.40'],
    ]);
    assert.equal(bill.total, '2.00');
    assert.equal(bill.lines[3]?.meter, 'minimum');
  });

  it('prorates the commitment and the minimum by the bill’s share of the period (and share 1 is no proration)', () => {
    const usage = [chunk('a', 3, 500)];
    assert.deepEqual(computeBill(committed, usage, october, { share: '1' }), computeBill(committed, usage, october));
    // Half a period: 500 committed (all covered by 400 billable + 100 unused), minimum 1.00.
    const half = computeBill(committed, usage, october, { share: '0.5' });
    assert.deepEqual(kinds(half.lines), [
      ['usage', 'a', '0.40'],
      ['commitment', '*commitment', '-0.16'],
      ['commitment', '*commitment-unused', '0.06'],
      ['minimum', '*minimum', '0.70'],
    ]);
    assert.equal(half.total, '1.00');
    // A share that leaves a fraction of a count rounds the committed count down: 1 000 × 1/3 → 333.
    const third = computeBill(committed, [], october, { share: '0.333333333333' });
    assert.equal(third.lines.find((l) => l.service === '*commitment-unused')?.quantity, '333');
  });

  it('a compute commitment is written in GB-s and shows GB-s; without bill_unused only the discount applies', () => {
    const plan = parsePlan({
      name: 'gb-s',
      currency: 'USD',
      price_per_gb_s: '0.0000166667',
      commitments: [{ meter: 'compute', quantity_gb_s: '100000', unit_price_per_gb_s: '0.0000125', bill_unused: false }],
    });
    assert.equal(plan.commitments[0]?.quantity, '102400000000');
    // 40 000 GB-s used: 40 000 × 0.0000166667 = 0.666668 → 0.67; discount 40 000 × −0.0000041667 = −0.166668 → −0.17.
    const bill = computeBill(plan, [chunk('fn', 1, 1, new Dec(40_000).times(1_024_000).toFixed())], october);
    assert.deepEqual(kinds(bill.lines), [
      ['usage', 'fn', '0.67'],
      ['commitment', '*commitment', '-0.17'],
    ]);
    assert.equal(bill.lines[1]?.gbS?.quantity, '40000');
    assert.equal(bill.lines[1]?.gbS?.unitPrice, '-0.0000041667');
    assert.equal(bill.total, '0.50');
  });

  it('reconciles late usage on usage lines only: commitment and minimum lines are decided on the bill', () => {
    const before = computeBill(committed, [chunk('a', 3, 500)], october);
    const after = computeBill(committed, [chunk('a', 3, 500), chunk('a', 20, 300)], october);
    const adjustments = adjustmentLines(before, after);
    assert.deepEqual(adjustments.map((l) => [l.service, l.meter, l.amount]), [['a', 'invocations', '0.30']]);
  });

  it('refuses commitments that cannot be priced', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ price_per_invocation: '0.001', commitments: [{ meter: 'invocations', quantity: '10', unit_price: '0.002' }] }, /above the list price/],
      [{ price_per_invocation: '0.001', commitments: [{ meter: 'invocations', quantity: '10.5', unit_price: '0.0005' }] }, /whole number/],
      [{ price_per_invocation: '0.001', commitments: [{ meter: 'invocations', quantity: '0', unit_price: '0.0005' }] }, /above 0/],
      [{ price_per_invocation: '0.001', commitments: [{ meter: 'disk', quantity: '1', unit_price: '0' }] }, /meter must be one of/],
      [{ price_per_gb_s: '0.01', commitments: [{ meter: 'compute', quantity: '1024000', quantity_gb_s: '2', unit_price_per_gb_s: '0.005' }] }, /disagree/],
      [{ price_per_invocation: '0.001', commitments: [{ meter: 'invocations', quantity: '1', unit_price: '0.0005', extra: 1 }] }, /extra/],
      [{ minimum_charge: -1 }, /minimum_charge/],
    ];
    for (const [fields, message] of cases) {
      const r = safeParsePlan({ name: 'x', currency: 'USD', ...fields });
      assert.equal(r.ok, false, JSON.stringify(fields));
      if (!r.ok) assert.match(r.error.message, message);
    }
  });

  it('property: the total is list price × billable − discount + unused, and never below the minimum', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ day: fc.integer({ min: 1, max: 31 }), n: fc.integer({ min: 0, max: 5000 }) }), { maxLength: 12 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        (usage, commit, minimum, billUnused) => {
          const plan = parsePlan({
            name: 'p',
            currency: 'USD',
            price_per_invocation: '0.001',
            free_tier_invocations: '100',
            minimum_charge: new Dec(minimum).div(100).toFixed(),
            ...(commit > 0 ? { commitments: [{ meter: 'invocations', quantity: String(commit), unit_price: '0.0006', bill_unused: billUnused }] } : {}),
          });
          const bill = computeBill(plan, usage.map((u, i) => chunk(`s${i % 3}`, u.day, u.n)), october);
          const billable = Math.max(0, usage.reduce((s, u) => s + u.n, 0) - 100);
          const covered = Math.min(billable, commit);
          // Whole invocations × prices in tenths of a cent: exact in integers (units of 0.0001).
          const usageLines = bill.lines.filter((l) => (l.kind ?? 'usage') === 'usage');
          const listTotal = usageLines.reduce((s, l) => s.plus(l.amount), new Dec(0));
          const discount = new Dec(covered * -4).div(10000).toDecimalPlaces(2, Dec.ROUND_HALF_UP);
          const unused = billUnused ? new Dec((commit - covered) * 6).div(10000).toDecimalPlaces(2, Dec.ROUND_HALF_UP) : new Dec(0);
          const beforeMinimum = listTotal.plus(discount).plus(unused);
          const expected = Dec.max(beforeMinimum, new Dec(minimum).div(100));
          assert.equal(bill.total, expected.toFixed(2));
          assert.ok(new Dec(bill.total).gte(new Dec(minimum).div(100)));
        },
      ),
      { numRuns: 300 },
    );
  });
});
