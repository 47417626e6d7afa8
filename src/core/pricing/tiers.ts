/**
 * Charge models: how one meter's quantity in one billing period becomes an amount. Pure: plain
 * data in and out, decimal arithmetic only (`Dec`); quantities, boundaries and prices are decimal
 * strings, never JS numbers.
 *
 * Free units (`options.freeUnits`, per period) come off first: billable = max(0, quantity − free),
 * free = min(quantity, free). The model then prices the billable quantity:
 *
 * - **per_unit** — billable × unit_price.
 *   `{ model: 'per_unit', unit_price: '0.0000002' }`, 3 000 000 units → 3 000 000 × 0.0000002 = 0.6.
 *
 * - **graduated** — each slice of the quantity is priced at its own tier's price; a tier's flat fee
 *   is added once when any quantity falls in that tier.
 *   Tiers 0–1 000 000 @ 0.20, 1 000 000–10 000 000 @ 0.15, >10 000 000 @ 0.10, 12 000 000 units →
 *   1 000 000 × 0.20 + 9 000 000 × 0.15 + 2 000 000 × 0.10 = 200 000 + 1 350 000 + 200 000 = 1 750 000.
 *
 * - **volume** — the WHOLE quantity at the price of the tier the total falls into, plus that tier's
 *   flat fee. Same tiers, 12 000 000 units → 12 000 000 × 0.10 = 1 200 000; 1 000 000 units (the
 *   boundary, see below) → 1 000 000 × 0.20 = 200 000.
 *
 * - **package** — package_price per block of package_size units, a partial block counts as a
 *   whole one. `{ model: 'package', package_size: '1000', package_price: '0.50' }`, 1 001 units →
 *   ceil(1 001 / 1 000) = 2 blocks × 0.50 = 1.00; 1 000 units → 1 block = 0.50; 0 units → 0.
 *
 * Tier tables (graduated and volume): `tiers[i] = { from, up_to, unit_price, flat_fee? }`. They
 * start at 0, are contiguous (`tiers[i + 1].from == tiers[i].up_to`: no gaps, no overlaps), each
 * `up_to` is greater than its `from`, and exactly the last tier is open-ended (`up_to: null`), so
 * every quantity has a price. A tier covers the quantities (from, up_to] — its upper bound
 * belongs to it, like providers' "first 1M requests" — so for volume pricing a total of exactly
 * `up_to` is priced by the lower tier, and a graduated quantity of exactly `up_to` touches no unit
 * of the next tier (nor its flat fee). A quantity of 0 falls in no tier: amount 0, no flat fee.
 *
 * Amounts are unrounded (full precision); rounding to the currency's minor unit is the caller's
 * job, once per line item (see money.ts `roundHalfUp`).
 */
import { z } from 'zod';
import type { Decimal } from 'decimal.js';
import { Dec, minorUnitDigits, plain } from './money.js';

export const chargeModels = ['per_unit', 'graduated', 'volume', 'package'] as const;
export type ChargeModelKind = (typeof chargeModels)[number];

/** Most tiers a table may have. */
export const MAX_TIERS = 100;
/** Prices, fees, boundaries and package sizes stay below 10^18 (as plan.ts). */
const MAX_VALUE = new Dec('1e18');

type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

const show = (v: unknown): string => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) ?? String(v));

const decimalPattern = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

/** A decimal string; a safe integer or bigint too when `allowIntegers` (never for money). */
function parseDecimalText(input: unknown, what: string, allowIntegers: boolean): Checked<Decimal> {
  if (typeof input === 'bigint' && allowIntegers) return { ok: true, value: new Dec(input.toString()) };
  if (typeof input === 'number' && allowIntegers && Number.isSafeInteger(input)) return { ok: true, value: new Dec(input) };
  if (typeof input === 'number') {
    return { ok: false, message: `${what} must be a decimal string such as "0.20", not a JS number (got ${show(input)})` };
  }
  if (typeof input !== 'string' || !decimalPattern.test(input)) {
    return { ok: false, message: `${what} must be a decimal string such as "0.20" (got ${show(input)})` };
  }
  return { ok: true, value: new Dec(input.trim()) };
}

/** A price or fee: decimal string ≥ 0, below 10^18; canonical text. */
function checkPrice(input: unknown, what: string): Checked<string> {
  const r = parseDecimalText(input, what, false);
  if (!r.ok) return r;
  if (r.value.isNegative() && !r.value.isZero()) return { ok: false, message: `${what} must not be negative (got ${show(input)})` };
  if (r.value.gte(MAX_VALUE)) return { ok: false, message: `${what} must be below 10^18 (got ${show(input)})` };
  return { ok: true, value: plain(r.value) };
}

/** A quantity boundary: decimal string (or whole number) ≥ 0, below 10^18; canonical text. */
function checkBoundary(input: unknown, what: string): Checked<string> {
  const r = parseDecimalText(input, what, true);
  if (!r.ok) return r;
  if (r.value.isNegative() && !r.value.isZero()) return { ok: false, message: `${what} must not be negative (got ${show(input)})` };
  if (r.value.gte(MAX_VALUE)) return { ok: false, message: `${what} must be below 10^18 (got ${show(input)})` };
  return { ok: true, value: plain(r.value) };
}

/** A zod field checked by a plain function that returns a value or one clear message. */
function checkedField<T>(check: (input: unknown) => Checked<T>) {
  return z.unknown().transform((input, ctx): T => {
    const r = check(input);
    if (r.ok) return r.value;
    ctx.issues.push({ code: 'custom', message: r.message, input });
    return z.NEVER;
  });
}

/** One tier of a graduated or volume table, after parsing (canonical decimal text). */
export interface Tier {
  /** Lower bound (exclusive, except 0 for the first tier): the previous tier's up_to. */
  from: string;
  /** Upper bound (inclusive); null for the last, open-ended tier. */
  up_to: string | null;
  /** Price per unit of the quantity in this tier. */
  unit_price: string;
  /** Added once when any quantity falls in this tier ("0" when none). */
  flat_fee: string;
}

const tierFields = new Set(['from', 'up_to', 'unit_price', 'flat_fee']);

/** Checks one tier on its own; messages name it (`tiers[1].unit_price must ...`). */
function checkTier(input: unknown, i: number): { value?: Tier; issues: { path: (string | number)[]; message: string }[] } {
  const at = `tiers[${i}]`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { issues: [{ path: [i], message: `${at} must be an object { from, up_to, unit_price, flat_fee? } (got ${show(input)})` }] };
  }
  const t = input as Record<string, unknown>;
  const issues: { path: (string | number)[]; message: string }[] = [];
  for (const k of Object.keys(t)) {
    if (!tierFields.has(k)) issues.push({ path: [i, k], message: `${at}.${k} is not a tier field (from, up_to, unit_price, flat_fee)` });
  }
  const from = checkBoundary(t.from, `${at}.from`);
  const upTo: Checked<string | null> =
    t.up_to === null
      ? { ok: true, value: null }
      : t.up_to === undefined
        ? { ok: false, message: `${at}.up_to must be a decimal string, or null for the open-ended last tier (got undefined)` }
        : checkBoundary(t.up_to, `${at}.up_to`);
  const unitPrice = checkPrice(t.unit_price, `${at}.unit_price`);
  const flatFee = t.flat_fee === undefined ? ({ ok: true, value: '0' } as const) : checkPrice(t.flat_fee, `${at}.flat_fee`);
  const fields = [
    ['from', from],
    ['up_to', upTo],
    ['unit_price', unitPrice],
    ['flat_fee', flatFee],
  ] as const;
  for (const [k, r] of fields) if (!r.ok) issues.push({ path: [i, k], message: r.message });
  if (issues.length > 0 || !from.ok || !upTo.ok || !unitPrice.ok || !flatFee.ok) return { issues };
  return { value: { from: from.value, up_to: upTo.value, unit_price: unitPrice.value, flat_fee: flatFee.value }, issues };
}

/** A tier table, each tier checked on its own (the table as a whole is checked by the refine). */
const tiersField = z.unknown().transform((input, ctx): Tier[] => {
  if (!Array.isArray(input) || input.length < 1 || input.length > MAX_TIERS) {
    ctx.issues.push({ code: 'custom', message: `tiers must be an array of 1 to ${MAX_TIERS} tiers (got ${Array.isArray(input) ? `${input.length} tiers` : show(input)})`, input });
    return z.NEVER;
  }
  const out: Tier[] = [];
  (input as unknown[]).forEach((t, i) => {
    const r = checkTier(t, i);
    for (const issue of r.issues) ctx.issues.push({ code: 'custom', message: issue.message, input: t, path: issue.path });
    if (r.value) out.push(r.value);
  });
  return out.length === input.length ? out : z.NEVER;
});

/** Cross-tier rules of a table; each message names the tier(s) at fault. */
function tableIssues(tiers: readonly Tier[]): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const last = tiers.length - 1;
  tiers.forEach((t, i) => {
    const from = new Dec(t.from);
    if (i === 0 && !from.isZero()) {
      issues.push({ path: ['tiers', 0, 'from'], message: `tiers[0].from must be 0: the tiers start at quantity 0 (got "${t.from}")` });
    }
    if (t.up_to !== null && !new Dec(t.up_to).gt(from)) {
      issues.push({ path: ['tiers', i, 'up_to'], message: `tiers[${i}].up_to (${t.up_to}) must be greater than tiers[${i}].from (${t.from})` });
    }
    const prev = i > 0 ? tiers[i - 1] : undefined;
    if (prev && prev.up_to !== null && !from.eq(prev.up_to)) {
      const issue = from.gt(prev.up_to)
        ? `gap between tiers[${i - 1}] and tiers[${i}]: tiers[${i}].from (${t.from}) must equal tiers[${i - 1}].up_to (${prev.up_to}); quantities in between would have no price`
        : `tiers[${i - 1}] and tiers[${i}] overlap: tiers[${i}].from (${t.from}) must equal tiers[${i - 1}].up_to (${prev.up_to})`;
      issues.push({ path: ['tiers', i, 'from'], message: issue });
    }
    if (i < last && t.up_to === null) {
      issues.push({
        path: ['tiers', i, 'up_to'],
        message: `tiers[${i}].up_to is null (open-ended) but tiers[${i}] is not the last tier: only the last tier (tiers[${last}]) may be open-ended`,
      });
    }
    if (i === last && t.up_to !== null) {
      issues.push({
        path: ['tiers', i, 'up_to'],
        message: `tiers[${i}].up_to must be null: the last tier must be open-ended so every quantity has a price (got "${t.up_to}")`,
      });
    }
  });
  return issues;
}

/** Unknown keys of a model object: one message per key, naming the model. */
function modelObjectError(model: ChargeModelKind) {
  return (issue: { code?: string; keys?: string[] }): string | undefined =>
    issue.code === 'unrecognized_keys' && issue.keys ? issue.keys.map((k) => `${k} is not a field of a ${model} charge model`).join('; ') : undefined;
}

const packageSize = checkedField<string>((input) => {
  const r = parseDecimalText(input, 'package_size', true);
  if (!r.ok) return r;
  if (!r.value.isInteger() || !r.value.gt(0)) return { ok: false, message: `package_size must be a positive whole number of units (got ${show(input)})` };
  if (r.value.gte(MAX_VALUE)) return { ok: false, message: `package_size must be below 10^18 (got ${show(input)})` };
  return { ok: true, value: plain(r.value) };
});

/**
 * A charge model: a discriminated union on `model`, then a refine checking tier tables as a whole
 * (start at 0, contiguous, up_to > from, only and always the last tier open-ended). After parsing
 * every number is canonical decimal text (no exponent, no trailing zeros); `flat_fee` defaults to
 * "0"; `package_size` is a whole number as text. Parsing a parsed model gives it back unchanged.
 */
export const chargeModelSchema = z
  .discriminatedUnion(
    'model',
    [
      z.strictObject({ model: z.literal('per_unit'), unit_price: checkedField((i) => checkPrice(i, 'unit_price')) }, { error: modelObjectError('per_unit') }),
      z.strictObject({ model: z.literal('graduated'), tiers: tiersField }, { error: modelObjectError('graduated') }),
      z.strictObject({ model: z.literal('volume'), tiers: tiersField }, { error: modelObjectError('volume') }),
      z.strictObject(
        { model: z.literal('package'), package_size: packageSize, package_price: checkedField((i) => checkPrice(i, 'package_price')) },
        { error: modelObjectError('package') },
      ),
    ],
    {
      error: (issue) => {
        const input: unknown = issue.input;
        const model = typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>).model : undefined;
        if (typeof input !== 'object' || input === null || Array.isArray(input)) return `a charge model must be an object with a "model" field (got ${show(input)})`;
        return `model must be one of ${chargeModels.map((m) => `"${m}"`).join(', ')} (got ${show(model)})`;
      },
    },
  )
  .superRefine((m, ctx) => {
    if (m.model !== 'graduated' && m.model !== 'volume') return;
    if (!Array.isArray(m.tiers)) return; // the tiers themselves were refused
    for (const issue of tableIssues(m.tiers)) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path, input: m.tiers });
  });

export type ChargeModel = z.output<typeof chargeModelSchema>;

/** What a charge model may be written as (prices as decimal strings; boundaries also as whole numbers). */
export type ChargeModelInput =
  | { model: 'per_unit'; unit_price: string }
  | { model: 'graduated' | 'volume'; tiers: { from: string | number | bigint; up_to: string | number | bigint | null; unit_price: string; flat_fee?: string }[] }
  | { model: 'package'; package_size: string | number | bigint; package_price: string };

/** One problem found in a charge model: where (dotted path, "" for the whole model) and what. */
export interface ChargeModelIssue {
  path: string;
  message: string;
}

export class ChargeModelValidationError extends Error {
  readonly issues: ChargeModelIssue[];
  constructor(issues: ChargeModelIssue[]) {
    super(`invalid charge model: ${issues.map((i) => i.message).join('; ')}`);
    this.name = 'ChargeModelValidationError';
    this.issues = issues;
  }
}

export type ChargeModelParseResult = { ok: true; model: ChargeModel } | { ok: false; error: ChargeModelValidationError };

/** Models this module produced: frozen, so one passed back in is known valid and not parsed again. */
const parsedModels = new WeakSet<object>();

/** Validates a charge model; never throws. A model it returned before comes back as it is. */
export function safeParseChargeModel(input: unknown): ChargeModelParseResult {
  if (typeof input === 'object' && input !== null && parsedModels.has(input)) return { ok: true, model: input as ChargeModel };
  const r = chargeModelSchema.safeParse(input);
  if (!r.success) {
    return { ok: false, error: new ChargeModelValidationError(r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }))) };
  }
  const m = r.data;
  const model: ChargeModel = Object.freeze(
    m.model === 'graduated' || m.model === 'volume' ? { ...m, tiers: Object.freeze(m.tiers.map((t) => Object.freeze({ ...t }))) as Tier[] } : { ...m },
  );
  parsedModels.add(model);
  return { ok: true, model };
}

/** Validates a charge model; throws ChargeModelValidationError listing every problem. */
export function parseChargeModel(input: unknown): ChargeModel {
  const r = safeParseChargeModel(input);
  if (!r.ok) throw r.error;
  return r.model;
}

/** One priced slice of the billable quantity. */
export interface TierCharge {
  /** Tier index (0 for per_unit and package). */
  tier: number;
  /** The tier's bounds ("0" / null for per_unit and package). */
  from: string;
  upTo: string | null;
  /** Units priced here: the slice in this tier (graduated), or the whole billable quantity. */
  quantity: string;
  /** Price per unit; for package, the price per block of `packageSize` units. */
  unitPrice: string;
  /** The tier's flat fee, applied ("0" when none). */
  flatFee: string;
  /** quantity × unitPrice + flatFee (package: blocks × unitPrice); unrounded. */
  amount: string;
  /** Package only: blocks billed, ceil(quantity / packageSize). */
  blocks?: string;
  /** Package only: units per block. */
  packageSize?: string;
}

export interface PricedQuantity {
  /** Σ breakdown amounts, full precision (not rounded to the currency's minor unit). */
  amountUnrounded: string;
  /** Units covered by free units: min(quantity, freeUnits). */
  free: string;
  /** Units priced: max(0, quantity − freeUnits). */
  billable: string;
  /** The priced slices, in tier order; only slices with quantity > 0 (so [] when billable is 0). */
  breakdown: TierCharge[];
}

export interface PriceQuantityOptions {
  /** Free units of this meter for the period, applied before the model; decimal string ≥ 0. */
  freeUnits?: string;
}

const nonNegativeDecimal = /^\s*\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

function quantityArg(value: unknown, what: string): Decimal {
  if (typeof value !== 'string' || !nonNegativeDecimal.test(value)) {
    throw new RangeError(`${what} must be a decimal string ≥ 0 such as "1000000" (got ${show(value)})`);
  }
  return new Dec(value.trim());
}

function modelOf(model: ChargeModel): ChargeModel {
  return parsedModels.has(model) ? model : parseChargeModel(model);
}

/**
 * Prices one meter's quantity for one period: free units first, then the model. Throws
 * ChargeModelValidationError for an invalid model and RangeError for a quantity or free-unit
 * count that is not a decimal string ≥ 0.
 */
export function priceQuantity(model: ChargeModel, quantity: string, options: PriceQuantityOptions = {}): PricedQuantity {
  const m = modelOf(model);
  const q = quantityArg(quantity, 'quantity');
  const freeUnits = options.freeUnits === undefined ? new Dec(0) : quantityArg(options.freeUnits, 'freeUnits');
  const free = Dec.min(q, freeUnits);
  const billable = q.minus(free);
  const breakdown: TierCharge[] = [];
  if (billable.gt(0)) {
    switch (m.model) {
      case 'per_unit': {
        const amount = billable.times(m.unit_price);
        breakdown.push({ tier: 0, from: '0', upTo: null, quantity: plain(billable), unitPrice: m.unit_price, flatFee: '0', amount: plain(amount) });
        break;
      }
      case 'graduated': {
        m.tiers.forEach((t, i) => {
          const from = new Dec(t.from);
          if (!billable.gt(from)) return;
          const top = t.up_to === null ? billable : Dec.min(billable, t.up_to);
          const slice = top.minus(from);
          const amount = slice.times(t.unit_price).plus(t.flat_fee);
          breakdown.push({ tier: i, from: t.from, upTo: t.up_to, quantity: plain(slice), unitPrice: t.unit_price, flatFee: t.flat_fee, amount: plain(amount) });
        });
        break;
      }
      case 'volume': {
        // The tier covering (from, up_to] that holds the total; the last tier is open-ended.
        const i = m.tiers.findIndex((t) => t.up_to === null || billable.lte(t.up_to));
        const t = m.tiers[i];
        if (!t) throw new Error('unreachable: a validated tier table ends with an open-ended tier');
        const amount = billable.times(t.unit_price).plus(t.flat_fee);
        breakdown.push({ tier: i, from: t.from, upTo: t.up_to, quantity: plain(billable), unitPrice: t.unit_price, flatFee: t.flat_fee, amount: plain(amount) });
        break;
      }
      case 'package': {
        // Whole blocks by exact integer division, plus one for a partial block.
        const size = new Dec(m.package_size);
        const whole = billable.divToInt(size);
        const blocks = billable.minus(whole.times(size)).gt(0) ? whole.plus(1) : whole;
        const amount = blocks.times(m.package_price);
        breakdown.push({
          tier: 0,
          from: '0',
          upTo: null,
          quantity: plain(billable),
          unitPrice: m.package_price,
          flatFee: '0',
          amount: plain(amount),
          blocks: plain(blocks),
          packageSize: m.package_size,
        });
        break;
      }
    }
  }
  const total = breakdown.reduce((sum, b) => sum.plus(b.amount), new Dec(0));
  return { amountUnrounded: plain(total), free: plain(free), billable: plain(billable), breakdown };
}

/** "1234567.5" → "1,234,567.5" (text only, no float). */
function groupThousands(text: string): string {
  const [int = '', frac] = text.split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/** A price with at least `minDigits` decimals ("0.2" → "0.20"), never cut short. */
function showPrice(price: string, minDigits: number): string {
  const d = new Dec(price);
  return d.decimalPlaces() >= minDigits ? plain(d) : d.toFixed(minDigits);
}

export interface DescribeModelOptions {
  /** Prices are shown with at least this currency's minor-unit digits (default: 2). */
  currency?: string;
}

/**
 * A short description for invoices, e.g.
 * "graduated: 0–1,000,000 @ 0.20; 1,000,000–10,000,000 @ 0.15; >10,000,000 @ 0.10",
 * "volume: 0–1,000 @ 0.20 + 5.00 flat; >1,000 @ 0.10", "per_unit: 0.0000002 per unit",
 * "package: 0.50 per 1,000 units (partial blocks round up)". Free units are not part of a model.
 */
export function describeModel(model: ChargeModel, options: DescribeModelOptions = {}): string {
  const m = modelOf(model);
  const digits = options.currency === undefined ? 2 : minorUnitDigits(options.currency);
  const price = (p: string): string => showPrice(p, digits);
  switch (m.model) {
    case 'per_unit':
      return `per_unit: ${price(m.unit_price)} per unit`;
    case 'package':
      return `package: ${price(m.package_price)} per ${groupThousands(m.package_size)} units (partial blocks round up)`;
    case 'graduated':
    case 'volume': {
      const tiers = m.tiers.map((t) => {
        const range = t.up_to === null ? `>${groupThousands(t.from)}` : `${groupThousands(t.from)}–${groupThousands(t.up_to)}`;
        const fee = new Dec(t.flat_fee).isZero() ? '' : ` + ${price(t.flat_fee)} flat`;
        return `${range} @ ${price(t.unit_price)}${fee}`;
      });
      return `${m.model}: ${tiers.join('; ')}`;
    }
  }
}
