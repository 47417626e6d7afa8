/** Charge models per meter: per_unit, graduated, volume and package pricing, free units, tier tables. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Dec, plain } from './money.js';
import {
  ChargeModelValidationError,
  chargeModelSchema,
  describeModel,
  parseChargeModel,
  priceQuantity,
  safeParseChargeModel,
  type ChargeModel,
  type ChargeModelInput,
  type Tier,
} from './tiers.js';

/** 0–1,000 @ 0.20; 1,000–10,000 @ 0.15; >10,000 @ 0.10 (optionally with flat fees 5 / 10 / 20). */
type TierInput = Extract<ChargeModelInput, { model: 'graduated' | 'volume' }>['tiers'][number];
const table = (fees = false): TierInput[] => [
  { from: '0', up_to: '1000', unit_price: '0.20', ...(fees ? { flat_fee: '5' } : {}) },
  { from: '1000', up_to: '10000', unit_price: '0.15', ...(fees ? { flat_fee: '10' } : {}) },
  { from: '10000', up_to: null, unit_price: '0.10', ...(fees ? { flat_fee: '20' } : {}) },
];
const graduated = (fees = false): ChargeModel => parseChargeModel({ model: 'graduated', tiers: table(fees) });
const volume = (fees = false): ChargeModel => parseChargeModel({ model: 'volume', tiers: table(fees) });
const amount = (model: ChargeModel, q: string, freeUnits?: string): string =>
  priceQuantity(model, q, freeUnits === undefined ? {} : { freeUnits }).amountUnrounded;

/** The messages a charge model is refused with. */
const errors = (input: unknown): string[] => {
  const r = safeParseChargeModel(input);
  assert.equal(r.ok, false, `the model should be rejected: ${JSON.stringify(input)}`);
  return r.ok ? [] : r.error.issues.map((i) => i.message);
};
const assertOneError = (input: unknown, pattern: RegExp): void => {
  const messages = errors(input);
  assert.ok(messages.some((m) => pattern.test(m)), `expected a message matching ${String(pattern)}, got ${JSON.stringify(messages)}`);
};

// ---- generators: decimal strings with up to 6 decimals ----

/** n / 10^k for 0 ≤ n ≤ max, 0 ≤ k ≤ 6, as canonical decimal text. */
const decimalArb = (max: bigint, min = 0n): fc.Arbitrary<string> =>
  fc.tuple(fc.bigInt({ min, max }), fc.integer({ min: 0, max: 6 })).map(([n, k]) => plain(new Dec(n.toString()).div(new Dec(10).pow(k))));
const quantityArb = decimalArb(10n ** 10n);
const priceArb = decimalArb(10n ** 8n);
const widthArb = decimalArb(10n ** 9n, 1n); // > 0

interface TierSpec {
  width: string;
  price: string;
  fee: string;
}
const tierSpecArb = (fees: boolean): fc.Arbitrary<TierSpec> =>
  fc.record({ width: widthArb, price: priceArb, fee: fees ? fc.oneof(fc.constant('0'), priceArb) : fc.constant('0') });

/** Contiguous tiers from 0 with the given widths; the last spec's width is unused (open-ended). */
function buildTiers(specs: readonly TierSpec[]): Tier[] {
  let from = new Dec(0);
  return specs.map((s, i) => {
    const last = i === specs.length - 1;
    const upTo = last ? null : from.plus(s.width);
    const t: Tier = { from: plain(from), up_to: upTo === null ? null : plain(upTo), unit_price: s.price, flat_fee: s.fee };
    if (upTo !== null) from = upTo;
    return t;
  });
}
const tiersArb = (fees: boolean): fc.Arbitrary<Tier[]> => fc.array(tierSpecArb(fees), { minLength: 1, maxLength: 6 }).map(buildTiers);
const modelArb: fc.Arbitrary<ChargeModel> = fc.oneof(
  priceArb.map((p) => parseChargeModel({ model: 'per_unit', unit_price: p })),
  tiersArb(true).map((tiers) => parseChargeModel({ model: 'graduated', tiers })),
  tiersArb(true).map((tiers) => parseChargeModel({ model: 'volume', tiers })),
  fc.tuple(fc.bigInt({ min: 1n, max: 10n ** 7n }), priceArb).map(([size, p]) => parseChargeModel({ model: 'package', package_size: size, package_price: p })),
);

/** The tier table left once the first `a` units are used: bounds shifted down by a, used-up tiers dropped. */
function remainingTiers(tiers: readonly Tier[], a: string): Tier[] {
  return tiers
    .filter((t) => t.up_to === null || new Dec(t.up_to).gt(a))
    .map((t) => ({ ...t, from: plain(Dec.max(new Dec(t.from).minus(a), 0)), up_to: t.up_to === null ? null : plain(new Dec(t.up_to).minus(a)) }));
}

const eq = (actual: string, expected: Dec | string, message?: string): void =>
  assert.ok(new Dec(actual).eq(expected), message ?? `${actual} ≠ ${plain(new Dec(expected))}`);

describe('pricing charge models (tiers.ts)', () => {
  describe('prices', () => {
    it('per_unit: quantity × unit price, at full precision', () => {
      const m = parseChargeModel({ model: 'per_unit', unit_price: '0.0000002' });
      // 3 000 000 × 0.0000002 = 0.6
      const r = priceQuantity(m, '3000000');
      assert.deepEqual(r, {
        amountUnrounded: '0.6',
        free: '0',
        billable: '3000000',
        breakdown: [{ tier: 0, from: '0', upTo: null, quantity: '3000000', unitPrice: '0.0000002', flatFee: '0', amount: '0.6' }],
      });
      // 1234.5 × 0.003 = 3.7035 (not rounded: that is the caller's job per line)
      assert.equal(amount(parseChargeModel({ model: 'per_unit', unit_price: '0.003' }), '1234.5'), '3.7035');
    });

    it('graduated: a quantity crossing two boundaries is priced slice by slice', () => {
      // 12 500 = 1 000 @ 0.20 + 9 000 @ 0.15 + 2 500 @ 0.10 = 200 + 1 350 + 250 = 1 800
      const r = priceQuantity(graduated(), '12500');
      assert.equal(r.amountUnrounded, '1800');
      assert.deepEqual(
        r.breakdown.map((b) => [b.tier, b.from, b.upTo, b.quantity, b.unitPrice, b.amount]),
        [
          [0, '0', '1000', '1000', '0.2', '200'],
          [1, '1000', '10000', '9000', '0.15', '1350'],
          [2, '10000', null, '2500', '0.1', '250'],
        ],
      );
      // The provider example: 12 000 000 = 1M @ 0.20 + 9M @ 0.15 + 2M @ 0.10 = 200 000 + 1 350 000 + 200 000 = 1 750 000
      const provider = parseChargeModel({
        model: 'graduated',
        tiers: [
          { from: '0', up_to: '1000000', unit_price: '0.20' },
          { from: '1000000', up_to: '10000000', unit_price: '0.15' },
          { from: '10000000', up_to: null, unit_price: '0.10' },
        ],
      });
      assert.equal(amount(provider, '12000000'), '1750000');
    });

    it('graduated: a quantity exactly at a boundary stays in the lower tier', () => {
      // 1 000 = 1 000 @ 0.20 = 200; nothing reaches tier 1
      const r = priceQuantity(graduated(), '1000');
      assert.equal(r.amountUnrounded, '200');
      assert.deepEqual(r.breakdown.map((b) => b.tier), [0]);
      // 10 000 = 1 000 @ 0.20 + 9 000 @ 0.15 = 200 + 1 350 = 1 550; tier 2 untouched
      const r2 = priceQuantity(graduated(), '10000');
      assert.equal(r2.amountUnrounded, '1550');
      assert.deepEqual(r2.breakdown.map((b) => b.tier), [0, 1]);
      // one unit more: 1 550 + 1 @ 0.10 = 1 550.1
      assert.equal(amount(graduated(), '10001'), '1550.1');
    });

    it('volume: just below, at and above a boundary', () => {
      // 999.999999 × 0.20 = 199.9999998 (tier 0)
      const below = priceQuantity(volume(), '999.999999');
      assert.equal(below.amountUnrounded, '199.9999998');
      assert.deepEqual(below.breakdown.map((b) => [b.tier, b.quantity, b.unitPrice]), [[0, '999.999999', '0.2']]);
      // 1 000 × 0.20 = 200 (a tier's up_to belongs to it: still tier 0)
      const at = priceQuantity(volume(), '1000');
      assert.equal(at.amountUnrounded, '200');
      assert.equal(at.breakdown[0]?.tier, 0);
      // 1 000.000001 × 0.15 = 150.00000015 (tier 1: the WHOLE quantity at 0.15, cheaper than at 1 000)
      const above = priceQuantity(volume(), '1000.000001');
      assert.equal(above.amountUnrounded, '150.00000015');
      assert.deepEqual(above.breakdown.map((b) => [b.tier, b.from, b.upTo, b.quantity]), [[1, '1000', '10000', '1000.000001']]);
      // 12 500 × 0.10 = 1 250 (last tier)
      assert.equal(amount(volume(), '12500'), '1250');
    });

    it('package: partial blocks round up; an exact multiple does not; zero costs nothing', () => {
      const m = parseChargeModel({ model: 'package', package_size: '1000', package_price: '0.50' });
      // 1 001 → ceil(1 001 / 1 000) = 2 blocks × 0.50 = 1
      const partial = priceQuantity(m, '1001');
      assert.equal(partial.amountUnrounded, '1');
      assert.deepEqual(partial.breakdown, [
        { tier: 0, from: '0', upTo: null, quantity: '1001', unitPrice: '0.5', flatFee: '0', amount: '1', blocks: '2', packageSize: '1000' },
      ]);
      // 2 000 → exactly 2 blocks × 0.50 = 1
      assert.equal(priceQuantity(m, '2000').breakdown[0]?.blocks, '2');
      assert.equal(amount(m, '2000'), '1');
      // 0.5 → 1 block (a fraction of a block is still a block) = 0.5
      assert.equal(amount(m, '0.5'), '0.5');
      // 0 → 0 blocks, no breakdown
      assert.deepEqual(priceQuantity(m, '0'), { amountUnrounded: '0', free: '0', billable: '0', breakdown: [] });
    });

    it('free units come off before the model, and more free units than quantity leave nothing to pay', () => {
      const perUnit = parseChargeModel({ model: 'per_unit', unit_price: '0.2' });
      // 500 used, 1 000 free → free 500, billable 0, amount 0
      assert.deepEqual(priceQuantity(perUnit, '500', { freeUnits: '1000' }), { amountUnrounded: '0', free: '500', billable: '0', breakdown: [] });
      // 1 500 used, 1 000 free → billable 500 × 0.2 = 100
      assert.deepEqual(
        [priceQuantity(perUnit, '1500', { freeUnits: '1000' })].map((r) => [r.free, r.billable, r.amountUnrounded]),
        [['1000', '500', '100']],
      );
      // graduated: 2 000 used, 1 000 free → billable 1 000 starts at tier 0: 1 000 @ 0.20 = 200
      // (not 1 000 @ 0.15 — free units are not "the first tier")
      assert.equal(amount(graduated(), '2000', '1000'), '200');
      // package: 1 500 used, 499.5 free → 1 000.5 billable → 2 blocks × 0.5 = 1
      assert.equal(amount(parseChargeModel({ model: 'package', package_size: 1000, package_price: '0.5' }), '1500', '499.5'), '1');
    });

    it('flat fees: once per tier the quantity reaches (graduated), the reached tier only (volume), none at zero', () => {
      // graduated 500 = 500 @ 0.20 + 5 = 105
      assert.equal(amount(graduated(true), '500'), '105');
      // graduated 1 000 (boundary) = 200 + 5 = 205; tier 1's fee is not due
      assert.equal(amount(graduated(true), '1000'), '205');
      // graduated 1 500 = (1 000 @ 0.20 + 5) + (500 @ 0.15 + 10) = 205 + 85 = 290
      const r = priceQuantity(graduated(true), '1500');
      assert.equal(r.amountUnrounded, '290');
      assert.deepEqual(r.breakdown.map((b) => [b.flatFee, b.amount]), [['5', '205'], ['10', '85']]);
      // graduated 12 500 = 205 + (1 350 + 10) + (250 + 20) = 1 835
      assert.equal(amount(graduated(true), '12500'), '1835');
      // volume 1 500 = 1 500 @ 0.15 + 10 = 235 (only the reached tier's fee)
      assert.equal(amount(volume(true), '1500'), '235');
      // nothing used (or all free): no tier reached, no fee
      assert.equal(amount(graduated(true), '0'), '0');
      assert.equal(amount(volume(true), '700', '700'), '0');
    });
  });

  describe('tier tables', () => {
    it('parses to canonical decimal text, frozen, and parsing a parsed model is the identity', () => {
      const m = parseChargeModel({
        model: 'graduated',
        tiers: [
          { from: 0, up_to: '1e3', unit_price: '0.200', flat_fee: '1.50' },
          { from: 1000n, up_to: null, unit_price: '.1' },
        ],
      });
      assert.deepEqual(m, {
        model: 'graduated',
        tiers: [
          { from: '0', up_to: '1000', unit_price: '0.2', flat_fee: '1.5' },
          { from: '1000', up_to: null, unit_price: '0.1', flat_fee: '0' },
        ],
      });
      assert.ok(Object.isFrozen(m));
      assert.equal(parseChargeModel(m), m);
      assert.deepEqual(parseChargeModel({ ...m }), m);
      assert.deepEqual(chargeModelSchema.parse(m), m);
      // a plain object of the output type is validated when priced
      const literal: ChargeModel = { model: 'volume', tiers: [{ from: '0', up_to: null, unit_price: '2', flat_fee: '0' }] };
      assert.equal(amount(literal, '3'), '6'); // 3 × 2
    });

    it('refuses a gap between tiers, naming both tiers', () => {
      assertOneError(
        { model: 'graduated', tiers: [{ from: '0', up_to: '1000', unit_price: '0.2' }, { from: '1500', up_to: null, unit_price: '0.1' }] },
        /^gap between tiers\[0\] and tiers\[1\]: tiers\[1\]\.from \(1500\) must equal tiers\[0\]\.up_to \(1000\)/,
      );
    });

    it('refuses overlapping tiers', () => {
      assertOneError(
        { model: 'volume', tiers: [{ from: '0', up_to: '1000', unit_price: '0.2' }, { from: '800', up_to: null, unit_price: '0.1' }] },
        /^tiers\[0\] and tiers\[1\] overlap: tiers\[1\]\.from \(800\) must equal tiers\[0\]\.up_to \(1000\)/,
      );
    });

    it('refuses an open-ended tier that is not the last, and a last tier that is not open-ended', () => {
      assertOneError(
        {
          model: 'graduated',
          tiers: [
            { from: '0', up_to: null, unit_price: '0.2' },
            { from: '1000', up_to: null, unit_price: '0.1' },
          ],
        },
        /^tiers\[0\]\.up_to is null \(open-ended\) but tiers\[0\] is not the last tier: only the last tier \(tiers\[1\]\) may be open-ended/,
      );
      assertOneError({ model: 'volume', tiers: [{ from: '0', up_to: '1000', unit_price: '0.2' }] }, /^tiers\[0\]\.up_to must be null: the last tier must be open-ended/);
      assertOneError({ model: 'volume', tiers: [{ from: '0', unit_price: '0.2' }] }, /^tiers\[0\]\.up_to must be a decimal string, or null for the open-ended last tier/);
    });

    it('refuses an up_to that is not above its from', () => {
      assertOneError(
        { model: 'graduated', tiers: [{ from: '0', up_to: '0', unit_price: '0.2' }, { from: '0', up_to: null, unit_price: '0.1' }] },
        /^tiers\[0\]\.up_to \(0\) must be greater than tiers\[0\]\.from \(0\)$/,
      );
    });

    it('refuses negative prices and fees, and prices given as JS numbers', () => {
      assertOneError(
        { model: 'graduated', tiers: [{ from: '0', up_to: '1000', unit_price: '0.2' }, { from: '1000', up_to: null, unit_price: '-0.1' }] },
        /^tiers\[1\]\.unit_price must not be negative \(got "-0.1"\)$/,
      );
      assertOneError({ model: 'volume', tiers: [{ from: '0', up_to: null, unit_price: '0.2', flat_fee: '-1' }] }, /^tiers\[0\]\.flat_fee must not be negative/);
      assertOneError({ model: 'per_unit', unit_price: '-0.0000002' }, /^unit_price must not be negative/);
      assertOneError({ model: 'per_unit', unit_price: 0.2 }, /^unit_price must be a decimal string such as "0.20", not a JS number \(got 0.2\)$/);
      assertOneError({ model: 'package', package_size: 10, package_price: '-1' }, /^package_price must not be negative/);
    });

    it('refuses a table that does not start at 0', () => {
      assertOneError(
        { model: 'graduated', tiers: [{ from: '100', up_to: '1000', unit_price: '0.2' }, { from: '1000', up_to: null, unit_price: '0.1' }] },
        /^tiers\[0\]\.from must be 0: the tiers start at quantity 0 \(got "100"\)$/,
      );
    });

    it('refuses a package size that is not a positive whole number', () => {
      assertOneError({ model: 'package', package_size: 0, package_price: '0.5' }, /^package_size must be a positive whole number of units \(got 0\)$/);
      assertOneError({ model: 'package', package_size: '1.5', package_price: '0.5' }, /^package_size must be a positive whole number/);
      assertOneError({ model: 'package', package_size: '-1000', package_price: '0.5' }, /^package_size must be a positive whole number/);
    });

    it('refuses unknown models and fields, empty tables, and lists every problem', () => {
      assertOneError({ model: 'stairstep', tiers: [] }, /^model must be one of "per_unit", "graduated", "volume", "package" \(got "stairstep"\)$/);
      assertOneError('per_unit', /^a charge model must be an object with a "model" field/);
      assertOneError({ model: 'per_unit', unit_price: '1', currency: 'USD' }, /^currency is not a field of a per_unit charge model$/);
      assertOneError({ model: 'volume', tiers: [{ from: '0', up_to: null, unit_price: '1', price: '2' }] }, /^tiers\[0\]\.price is not a tier field/);
      assertOneError({ model: 'graduated', tiers: [] }, /^tiers must be an array of 1 to 100 tiers \(got 0 tiers\)$/);
      const messages = errors({
        model: 'graduated',
        tiers: [
          { from: '5', up_to: '1000', unit_price: '0.2' },
          { from: '1200', up_to: null, unit_price: '0.1' },
          { from: '2000', up_to: '3000', unit_price: '0.1' },
        ],
      });
      // tiers[0] starts at 5, gap 1000–1200, tiers[1] open-ended but not last, tiers[2] last but closed
      assert.equal(messages.length, 4, JSON.stringify(messages));
      assert.throws(() => parseChargeModel({ model: 'package', package_size: 0, package_price: '-1' }), (e: unknown) => {
        assert.ok(e instanceof ChargeModelValidationError);
        assert.deepEqual(e.issues.map((i) => i.path), ['package_size', 'package_price']);
        assert.match(e.message, /^invalid charge model: package_size must be .*; package_price must not be negative/);
        return true;
      });
    });

    it('priceQuantity refuses an invalid model, quantity or free-unit count', () => {
      const bad = { model: 'graduated', tiers: [{ from: '0', up_to: '10', unit_price: '1', flat_fee: '0' }] } as ChargeModel;
      assert.throws(() => priceQuantity(bad, '1'), ChargeModelValidationError);
      const m = graduated();
      for (const q of ['-1', '', 'abc', '1,000']) assert.throws(() => priceQuantity(m, q), /^RangeError: quantity must be a decimal string ≥ 0/);
      assert.throws(() => priceQuantity(m, 5 as unknown as string), /quantity must be a decimal string ≥ 0 such as "1000000" \(got 5\)/);
      assert.throws(() => priceQuantity(m, '1', { freeUnits: '-5' }), /^RangeError: freeUnits must be a decimal string ≥ 0/);
    });
  });

  describe('describeModel', () => {
    it('describes each model in one short line', () => {
      const provider = parseChargeModel({
        model: 'graduated',
        tiers: [
          { from: '0', up_to: '1000000', unit_price: '0.20' },
          { from: '1000000', up_to: '10000000', unit_price: '0.15' },
          { from: '10000000', up_to: null, unit_price: '0.10' },
        ],
      });
      assert.equal(describeModel(provider), 'graduated: 0–1,000,000 @ 0.20; 1,000,000–10,000,000 @ 0.15; >10,000,000 @ 0.10');
      assert.equal(describeModel(volume(true)), 'volume: 0–1,000 @ 0.20 + 5.00 flat; 1,000–10,000 @ 0.15 + 10.00 flat; >10,000 @ 0.10 + 20.00 flat');
      assert.equal(describeModel(parseChargeModel({ model: 'per_unit', unit_price: '0.0000002' })), 'per_unit: 0.0000002 per unit');
      assert.equal(
        describeModel(parseChargeModel({ model: 'package', package_size: 1000, package_price: '0.5' })),
        'package: 0.50 per 1,000 units (partial blocks round up)',
      );
      // at least the currency's minor-unit digits: JPY has none, BHD three
      assert.equal(describeModel(parseChargeModel({ model: 'per_unit', unit_price: '3' }), { currency: 'JPY' }), 'per_unit: 3 per unit');
      assert.equal(describeModel(parseChargeModel({ model: 'per_unit', unit_price: '3' }), { currency: 'BHD' }), 'per_unit: 3.000 per unit');
      assert.equal(
        describeModel(parseChargeModel({ model: 'volume', tiers: [{ from: '0', up_to: '1234567.5', unit_price: '1' }, { from: '1234567.5', up_to: null, unit_price: '0' }] })),
        'volume: 0–1,234,567.5 @ 1.00; >1,234,567.5 @ 0.00',
      );
    });
  });

  describe('properties', () => {
    it('graduated is additive: pricing a + b = pricing a, then b against the tiers a left (no flat fees)', () => {
      fc.assert(
        fc.property(tiersArb(false), quantityArb, quantityArb, (tiers, a, b) => {
          const whole = parseChargeModel({ model: 'graduated', tiers });
          const rest = parseChargeModel({ model: 'graduated', tiers: remainingTiers(tiers, a) });
          eq(amount(whole, plain(new Dec(a).plus(b))), new Dec(amount(whole, a)).plus(amount(rest, b)));
        }),
      );
    });

    it('graduated (with flat fees) is monotone in quantity and equals the sum of its breakdown', () => {
      fc.assert(
        fc.property(tiersArb(true), quantityArb, quantityArb, (tiers, a, b) => {
          const m = parseChargeModel({ model: 'graduated', tiers });
          const [lo, hi] = new Dec(a).lte(b) ? [a, b] : [b, a];
          const rLo = priceQuantity(m, lo);
          const rHi = priceQuantity(m, hi);
          assert.ok(new Dec(rLo.amountUnrounded).lte(rHi.amountUnrounded), `${lo} → ${rLo.amountUnrounded} > ${hi} → ${rHi.amountUnrounded}`);
          for (const r of [rLo, rHi]) {
            eq(r.amountUnrounded, r.breakdown.reduce((s, x) => s.plus(x.amount), new Dec(0)));
            eq(r.billable, r.breakdown.reduce((s, x) => s.plus(x.quantity), new Dec(0)));
            for (const x of r.breakdown) eq(x.amount, new Dec(x.quantity).times(x.unitPrice).plus(x.flatFee));
          }
        }),
      );
    });

    it('with non-increasing tier prices and no flat fees, volume ≤ graduated', () => {
      // Volume charges ALL q units at p_k, the price of the tier q reaches; with non-increasing prices
      // p_k ≤ p_i for every tier i ≤ k, i.e. the lowest price reached. Graduated charges each slice s_i
      // at its own p_i ≥ p_k, so graduated = Σ s_i·p_i ≥ Σ s_i·p_k = q·p_k = volume. (Equal while q stays
      // in the first tier.)
      fc.assert(
        fc.property(fc.array(tierSpecArb(false), { minLength: 1, maxLength: 6 }), quantityArb, (specs, q) => {
          const prices = specs.map((s) => s.price).sort((x, y) => new Dec(y).cmp(x));
          const tiers = buildTiers(specs.map((s, i) => ({ ...s, price: prices[i] ?? '0' })));
          const g = amount(parseChargeModel({ model: 'graduated', tiers }), q);
          const v = amount(parseChargeModel({ model: 'volume', tiers }), q);
          assert.ok(new Dec(v).lte(g), `volume ${v} > graduated ${g} for ${q}`);
          if (tiers[0]?.up_to === null || new Dec(q).lte(tiers[0]?.up_to ?? '0')) eq(v, g);
        }),
      );
    });

    it('per_unit equals graduated (and volume) with a single open tier', () => {
      fc.assert(
        fc.property(priceArb, quantityArb, (p, q) => {
          const single = [{ from: '0', up_to: null, unit_price: p }];
          const perUnit = priceQuantity(parseChargeModel({ model: 'per_unit', unit_price: p }), q);
          assert.deepEqual(priceQuantity(parseChargeModel({ model: 'graduated', tiers: single }), q), perUnit);
          assert.deepEqual(priceQuantity(parseChargeModel({ model: 'volume', tiers: single }), q), perUnit);
          eq(perUnit.amountUnrounded, new Dec(q).times(p));
        }),
      );
    });

    it('package amount = ceil(q / size) × price', () => {
      fc.assert(
        fc.property(fc.bigInt({ min: 1n, max: 10n ** 7n }), priceArb, quantityArb, (size, p, q) => {
          // Exact integer reference: q has ≤ 6 decimals, so in millionths Q = q·10^6 and S = size·10^6
          // are integers and ceil(Q / S) = (Q + S − 1) div S.
          const Q = BigInt(new Dec(q).times(1_000_000).toFixed());
          const S = size * 1_000_000n;
          const blocks = (Q + S - 1n) / S;
          const m = parseChargeModel({ model: 'package', package_size: size, package_price: p });
          eq(amount(m, q), new Dec(blocks.toString()).times(p));
        }),
      );
    });

    it('free units never make an amount negative, and amount(q, free f) = amount(max(0, q − f))', () => {
      fc.assert(
        fc.property(modelArb, quantityArb, quantityArb, (m, q, f) => {
          const withFree = priceQuantity(m, q, { freeUnits: f });
          const rest = plain(Dec.max(new Dec(q).minus(f), 0));
          const direct = priceQuantity(m, rest);
          assert.ok(!new Dec(withFree.amountUnrounded).isNegative() || new Dec(withFree.amountUnrounded).isZero());
          assert.equal(withFree.amountUnrounded, direct.amountUnrounded);
          assert.deepEqual(withFree.breakdown, direct.breakdown);
          assert.equal(withFree.billable, rest);
          eq(withFree.free, Dec.min(q, f));
          eq(new Dec(withFree.free).plus(withFree.billable).toString(), q);
        }),
      );
    });
  });
});
