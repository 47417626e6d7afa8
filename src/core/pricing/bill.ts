/**
 * Bill computation (DESIGN §5): usage chunks of one tenant and one billing period in, line items
 * and totals out. Pure: plain data in and out, decimal arithmetic only.
 *
 * - **Meters**: `invocations` (count), `compute` (billed MB·ms, already rounded per invocation —
 *   see meter.ts), `cold_starts` (count), `cpu` (CPU-ms). Each is priced per unit.
 * - **Free tier** (invocations and MB·ms per billing period) is consumed in time order across all
 *   services: chunks are taken by start instant, ties broken by service name (code-unit order),
 *   each chunk taking min(its quantity, what is left). Chunks with the same (service, start) are
 *   merged first, so splitting a chunk into any sub-chunks never changes the bill.
 * - **Line items**: one per (service, meter), services in code-unit order, meters in the order
 *   above. amountUnrounded = billableQuantity × unitPrice at full precision; amount = that rounded
 *   half-up to the currency's minor unit. A line is kept when its quantity is > 0 and the plan
 *   prices the meter or gave free units of it — so lines wholly covered by the free tier show
 *   (amount 0) — and omitted when the quantity is 0 or the meter is neither priced nor free
 *   (e.g. cold starts on a plan whose cold-start price is 0). Zero usage gives no lines and a total
 *   of 0 (e.g. "0.00").
 * - **Total** = the sum of the rounded line amounts (not the rounding of the unrounded sum);
 *   totalUnrounded = the sum of the unrounded amounts, kept beside it.
 * - **GB-s**: compute lines also carry `gbS`, their quantities and unit price in GB-s
 *   (MB·ms / 1 024 000; exact), for display only — amounts are computed in MB·ms.
 */
import type { Decimal } from 'decimal.js';
import { Dec, MB_MS_PER_GB_S, minorUnitDigits, plain, roundHalfUp } from './money.js';
import type { Plan, PlanInput } from './plan.js';
import { parsePlan } from './plan.js';
import { priceQuantity, type ChargeModel } from './tiers.js';

export const meters = ['invocations', 'compute', 'cold_starts', 'cpu'] as const;
export type Meter = (typeof meters)[number];

/**
 * What a line is: `usage` (a meter's usage, or a charge model's tier/fee line), `commitment` (the
 * committed-use discount and unused commitment of a meter), `minimum` (the top-up to the plan's
 * minimum charge), `credit` (a coupon or prepaid credit, negative). Only usage lines are
 * reconciled against late usage; the others are decided once, on the bill that carries them.
 */
export const lineKinds = ['usage', 'commitment', 'minimum', 'credit'] as const;
export type LineKind = (typeof lineKinds)[number];
/** The meter column of a line: a usage meter, or `minimum` / `credit` for those lines. */
export type LineMeter = Meter | 'minimum' | 'credit';

/** Usage of one service over one time slice (e.g. an hour), billed quantities already applied. */
export interface UsageChunk {
  service: string;
  /** Start of the slice, an ISO 8601 instant inside the billing period. */
  start: string;
  /** Whole number ≥ 0. */
  invocations: number | bigint | string;
  /** Billed MB·ms (per-invocation rules applied), decimal string ≥ 0. */
  billedMbMs: string;
  /** Whole number ≥ 0. */
  coldStarts: number | bigint | string;
  /** CPU-ms, decimal string ≥ 0. */
  cpuMs: string;
  /** The invocations' architecture (event label `architecture`), for plans priced by it. */
  architecture?: string | null;
  /** Low-priority invocations (event label `priority=spot`). */
  spot?: boolean;
  /** The plan schedule's multiplier and label over the chunk (the caller splits usage at its boundaries). */
  timeOfDay?: { multiplier: string; label: string | null };
}

/** A billing period `[start, end)`, ISO 8601 instants (a calendar month in the tenant's zone). */
export interface BillingPeriod {
  start: string;
  end: string;
}

/** Compute quantities and price in GB-s (display only). */
export interface GbSDisplay {
  quantity: string;
  freeQuantity: string;
  billableQuantity: string;
  unitPrice: string;
}

export interface BillLine {
  service: string;
  meter: LineMeter;
  /** Absent: `usage`. */
  kind?: LineKind;
  /** The price variant of a usage line ("arm64 · spot · night"); absent at list prices. */
  variant?: string;
  description: string;
  quantity: string;
  freeQuantity: string;
  billableQuantity: string;
  unit: string;
  unitPrice: string;
  /** billableQuantity × unitPrice, full precision. */
  amountUnrounded: string;
  /** Rounded half-up to the minor unit, with exactly that many decimals. */
  amount: string;
  /** Compute lines only. */
  gbS?: GbSDisplay;
}

export interface Bill {
  plan: { id?: string; name?: string; version?: number };
  currency: string;
  minorUnitDigits: number;
  period: BillingPeriod;
  lines: BillLine[];
  /** Sum of the rounded line amounts. */
  total: string;
  /** Sum of the unrounded line amounts. */
  totalUnrounded: string;
}

interface MeterDefinition {
  meter: Meter;
  unit: string;
  label: string;
  unitPrice(plan: Plan): string;
  /** Free units per billing period ("0" when the plan gives none). */
  freeAllowance(plan: Plan): string;
}

/**
 * The meters, in line order. A new charge model (tiers, time-of-day, ...) replaces the per-unit
 * pricing of a meter here; the free-tier walk and line assembly stay as they are.
 */
const meterDefinitions: readonly MeterDefinition[] = [
  { meter: 'invocations', unit: 'invocation', label: 'Invocations', unitPrice: (p) => p.price_per_invocation, freeAllowance: (p) => p.free_tier_invocations },
  { meter: 'compute', unit: 'MB-ms', label: 'Compute', unitPrice: (p) => p.price_per_mb_ms, freeAllowance: (p) => p.free_tier_mb_ms },
  { meter: 'cold_starts', unit: 'cold-start', label: 'Cold starts', unitPrice: (p) => p.price_per_cold_start, freeAllowance: () => '0' },
  { meter: 'cpu', unit: 'CPU-ms', label: 'CPU time', unitPrice: (p) => p.price_per_cpu_ms, freeAllowance: (p) => p.free_tier_cpu_ms },
];

const isoInstant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/i;

function instant(value: unknown, what: string): number {
  const ms = typeof value === 'string' && isoInstant.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw new RangeError(`${what} must be an ISO 8601 instant such as 2025-01-01T00:00:00Z (got ${JSON.stringify(value)})`);
  return ms;
}

const decimalText = /^\s*\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

function quantity(value: unknown, what: string, whole: boolean): Decimal {
  let d: Decimal | undefined;
  if (whole && typeof value === 'number' && Number.isSafeInteger(value)) d = new Dec(value);
  else if (whole && typeof value === 'bigint') d = new Dec(value.toString());
  else if (typeof value === 'string' && decimalText.test(value)) d = new Dec(value.trim());
  if (d === undefined || (whole && !d.isInteger()) || d.isNegative()) {
    const kind = whole ? 'a whole number ≥ 0' : 'a decimal string ≥ 0';
    throw new RangeError(`${what} must be ${kind} (got ${typeof value === 'bigint' ? `${value}n` : JSON.stringify(value)})`);
  }
  return d;
}

/** Normalises and checks a billing period. */
export function normalisePeriod(period: BillingPeriod): BillingPeriod & { startMs: number; endMs: number } {
  const startMs = instant(period.start, 'period.start');
  const endMs = instant(period.end, 'period.end');
  if (endMs <= startMs) throw new RangeError(`period.end (${period.end}) must be after period.start (${period.start})`);
  return { start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString(), startMs, endMs };
}

function gbSDisplay(quantity: Decimal, free: Decimal, billable: Decimal, unitPrice: Decimal): GbSDisplay {
  return {
    quantity: plain(quantity.div(MB_MS_PER_GB_S)),
    freeQuantity: plain(free.div(MB_MS_PER_GB_S)),
    billableQuantity: plain(billable.div(MB_MS_PER_GB_S)),
    unitPrice: plain(unitPrice.times(MB_MS_PER_GB_S)),
  };
}

function makeLine(
  def: MeterDefinition,
  service: string,
  currency: string,
  q: { quantity: Decimal; free: Decimal; billable: Decimal; unitPrice: Decimal; amountUnrounded: Decimal; amount: Decimal },
  description: string,
  unit: string = def.unit,
): BillLine {
  const digits = minorUnitDigits(currency);
  return {
    service,
    meter: def.meter,
    description,
    quantity: plain(q.quantity),
    freeQuantity: plain(q.free),
    billableQuantity: plain(q.billable),
    unit,
    unitPrice: plain(q.unitPrice),
    amountUnrounded: plain(q.amountUnrounded),
    amount: (q.amount.isZero() ? new Dec(0) : q.amount).toFixed(digits),
    ...(def.meter === 'compute' && unit === def.unit ? { gbS: gbSDisplay(q.quantity, q.free, q.billable, q.unitPrice) } : {}),
  };
}

/** The `service` of the tenant-wide lines of a meter priced by a charge model (never a service name: those are Kubernetes names). */
export const chargeLineService = (tier: number, kind: 'tier' | 'fee'): string => `*${kind === 'fee' ? 'fee' : 'tier'}-${tier + 1}`;

/**
 * The lines that accrue as usage happens: usage lines and commitment discounts. A month-to-date
 * figure (running cost, budgets, a forecast's actual part) counts these; the minimum charge's
 * top-up and an unused commitment are owed only at the period's end, credits when it is finalized.
 */
export const accruingLines = <L extends Pick<BillLine, 'kind' | 'service'>>(lines: readonly L[]): L[] => lines.filter((l) => (l.kind ?? 'usage') === 'usage' || l.service === '*commitment');

/** Whether a line is one of a charge model's tier or fee lines (which re-count usage the services' lines already hold). */
export const isChargeLine = (line: Pick<BillLine, 'service'>): boolean => /^\*(tier|fee)-\d+$/.test(line.service);

/**
 * The tenant-wide lines of a meter priced by a charge model: one per tier reached (quantity, that
 * tier's unit price) or per block count (package), plus one per flat fee; each rounded on its own.
 */
function chargeModelLines(def: MeterDefinition, model: ChargeModel, billable: Decimal, currency: string): BillLine[] {
  const priced = priceQuantity(model, plain(billable));
  const kind = model.model === 'per_unit' ? 'per unit' : model.model;
  const out: BillLine[] = [];
  for (const b of priced.breakdown) {
    const range = b.upTo === null ? `over ${b.from}` : `${b.from}–${b.upTo}`;
    const isPackage = b.blocks !== undefined;
    const quantity = new Dec(isPackage ? (b.blocks ?? '0') : b.quantity);
    const unitPrice = new Dec(b.unitPrice);
    if (!quantity.isZero()) {
      const amountUnrounded = quantity.times(unitPrice);
      const description = isPackage
        ? `All services: ${def.label}, ${b.quantity} ${def.unit} in blocks of ${b.packageSize ?? '?'}`
        : `All services: ${def.label}, ${kind} tier ${b.tier + 1} (${range} ${def.unit})`;
      out.push(
        makeLine(
          def,
          chargeLineService(b.tier, 'tier'),
          currency,
          { quantity, free: new Dec(0), billable: quantity, unitPrice, amountUnrounded, amount: roundHalfUp(amountUnrounded, currency) },
          description,
          isPackage ? `block of ${b.packageSize ?? '?'} ${def.unit}` : def.unit,
        ),
      );
    }
    const fee = new Dec(b.flatFee);
    if (!fee.isZero()) {
      out.push(
        makeLine(
          def,
          chargeLineService(b.tier, 'fee'),
          currency,
          { quantity: new Dec(1), free: new Dec(0), billable: new Dec(1), unitPrice: fee, amountUnrounded: fee, amount: roundHalfUp(fee, currency) },
          `All services: ${def.label}, flat fee of tier ${b.tier + 1} (${range} ${def.unit})`,
          'fee',
        ),
      );
    }
  }
  return out;
}

export interface BillOptions {
  /**
   * The share of a billing period this bill covers ("1", the default: all of it). A plan in force
   * for part of a period (a mid-period change) has its commitments and minimum charge prorated by
   * it, as its free allowances are (the caller prorates those).
   */
  share?: string;
}

/**
 * Lines decided on a bill's usage as a whole, after the usage lines:
 * - per commitment (plan.ts `Commitment`), the committed quantity Q = quantity × share (counts
 *   rounded down) covers the first min(billable usage, Q) units: a `commitment` line credits
 *   them at (commitment price − list price) per unit, so covered usage costs the commitment price
 *   and the rest the list price; with `bill_unused`, a second line bills Q − used at the
 *   commitment price;
 * - then, when the rounded subtotal so far is below the minimum charge × share (rounded half-up),
 *   a `minimum` line tops it up to it.
 */
function periodChargeLines(plan: Plan, usageLines: readonly BillLine[], share: string): BillLine[] {
  const currency = plan.currency;
  const digits = minorUnitDigits(currency);
  const out: BillLine[] = [];
  const fixed = (
    service: string,
    meter: LineMeter,
    kind: LineKind,
    description: string,
    quantity: Decimal,
    unit: string,
    unitPrice: Decimal,
  ): BillLine => {
    const amountUnrounded = quantity.times(unitPrice);
    const amount = roundHalfUp(amountUnrounded, currency);
    return {
      service,
      meter,
      kind,
      description,
      quantity: plain(quantity),
      freeQuantity: '0',
      billableQuantity: plain(quantity),
      unit,
      unitPrice: plain(unitPrice),
      amountUnrounded: plain(amountUnrounded),
      amount: (amount.isZero() ? new Dec(0) : amount).toFixed(digits),
      ...(meter === 'compute'
        ? { gbS: gbSDisplay(quantity, new Dec(0), quantity, unitPrice) }
        : {}),
    };
  };
  for (const c of plan.commitments) {
    const def = meterDefinitions.find((d) => d.meter === c.meter);
    if (!def) continue;
    let committed = new Dec(c.quantity).times(share);
    if (c.meter === 'invocations' || c.meter === 'cold_starts') committed = committed.floor();
    let billable = new Dec(0);
    for (const l of usageLines) if (l.meter === c.meter && (l.kind ?? 'usage') === 'usage') billable = billable.plus(l.billableQuantity);
    const used = Dec.min(billable, committed);
    const list = new Dec(def.unitPrice(plan));
    const price = new Dec(c.unit_price);
    const show = (q: Decimal): string => (c.meter === 'compute' ? `${plain(q.div(MB_MS_PER_GB_S))} GB-s` : `${plain(q)} ${def.unit}`);
    const perUnit = (p: Decimal): string => (c.meter === 'compute' ? `${plain(p.times(MB_MS_PER_GB_S))}/GB-s` : `${plain(p)}/${def.unit}`);
    if (used.gt(0) && list.gt(price)) {
      out.push(
        fixed('*commitment', c.meter, 'commitment', `Commitment: ${def.label}, ${show(used)} of the committed ${show(committed)} at ${perUnit(price)} instead of ${perUnit(list)}`, used, def.unit, price.minus(list)),
      );
    }
    const unused = committed.minus(used);
    if (c.bill_unused && unused.gt(0) && price.gt(0)) {
      out.push(fixed('*commitment-unused', c.meter, 'commitment', `Unused commitment: ${def.label}, ${show(unused)} of ${show(committed)} at ${perUnit(price)}`, unused, def.unit, price));
    }
  }
  const minimum = roundHalfUp(new Dec(plan.minimum_charge).times(share), currency);
  if (minimum.gt(0)) {
    const subtotal = new Dec(sumLineAmounts([...usageLines, ...out], currency).total);
    if (subtotal.lt(minimum)) {
      const topUp = minimum.minus(subtotal);
      out.push(fixed('*minimum', 'minimum', 'minimum', `Minimum charge ${minimum.toFixed(digits)} ${currency}: top-up of usage ${subtotal.toFixed(digits)}`, new Dec(1), 'period', topUp));
    }
  }
  return out;
}

/** Sums rounded and unrounded line amounts: { total, totalUnrounded } as text. */
export function sumLineAmounts(lines: readonly Pick<BillLine, 'amount' | 'amountUnrounded'>[], currency: string): { total: string; totalUnrounded: string } {
  let total = new Dec(0);
  let unrounded = new Dec(0);
  for (const l of lines) {
    total = total.plus(l.amount);
    unrounded = unrounded.plus(l.amountUnrounded);
  }
  return { total: total.toFixed(minorUnitDigits(currency)), totalUnrounded: plain(unrounded) };
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A price variant of usage: its key ("" for list prices) and price multiplier per meter. */
interface Variant {
  key: string;
  multipliers: Partial<Record<Meter, string>>;
}
const LIST_PRICES: Variant = { key: '', multipliers: {} };

/**
 * The price variant of a chunk under the plan's price_variants (plan.ts `PriceVariants`): the
 * product of its architecture's, spot's and time-of-day multipliers per meter. The key names
 * what applies ("arm64 · spot · night"); attributes the plan does not price are ignored.
 */
function variantOf(plan: Plan, chunk: UsageChunk): Variant {
  const v = plan.price_variants;
  if (!v) return LIST_PRICES;
  const parts: string[] = [];
  const product: Partial<Record<Meter, Decimal>> = {};
  const apply = (multipliers: Partial<Record<Meter, string>>): void => {
    for (const [meter, m] of Object.entries(multipliers) as [Meter, string][]) product[meter] = (product[meter] ?? new Dec(1)).times(m);
  };
  const arch = chunk.architecture ?? null;
  const archMultipliers = arch !== null && Object.hasOwn(v.architectures, arch) ? v.architectures[arch] : undefined;
  if (arch !== null && archMultipliers) {
    parts.push(arch);
    apply(archMultipliers);
  }
  if (chunk.spot === true && Object.keys(v.spot).length > 0) {
    parts.push('spot');
    apply(v.spot);
  }
  const tod = chunk.timeOfDay;
  if (tod && !new Dec(tod.multiplier).eq(1)) {
    parts.push(tod.label ?? `×${tod.multiplier}`);
    apply(Object.fromEntries(meters.map((m) => [m, tod.multiplier])));
  }
  if (parts.length === 0) return LIST_PRICES;
  return { key: parts.join(' · '), multipliers: Object.fromEntries(Object.entries(product).map(([m, d]) => [m, plain(d)])) };
}

const isMeter = (m: string): m is Meter => (meters as readonly string[]).includes(m);

/**
 * Prices one tenant's usage for one billing period. `plan` may be a parsed Plan or anything
 * `parsePlan` accepts; every chunk must start inside `[period.start, period.end)`.
 */
export function computeBill(planInput: Plan | PlanInput, usage: readonly UsageChunk[], period: BillingPeriod, options: BillOptions = {}): Bill {
  const plan = parsePlan(planInput);
  const currency = plan.currency;
  const p = normalisePeriod(period);

  // Merge chunks by (start instant, service, price variant).
  interface Group {
    startMs: number;
    service: string;
    variant: Variant;
    q: Decimal[]; // by meter index
  }
  const groups = new Map<string, Group>();
  usage.forEach((c, i) => {
    const at = `usage[${i}]`;
    if (typeof c.service !== 'string' || c.service.length === 0) throw new RangeError(`${at}.service must be a non-empty string`);
    const startMs = instant(c.start, `${at}.start`);
    if (startMs < p.startMs || startMs >= p.endMs) {
      throw new RangeError(`${at}.start (${c.start}) is outside the billing period [${p.start}, ${p.end})`);
    }
    const q = [
      quantity(c.invocations, `${at}.invocations`, true),
      quantity(c.billedMbMs, `${at}.billedMbMs`, false),
      quantity(c.coldStarts, `${at}.coldStarts`, true),
      quantity(c.cpuMs, `${at}.cpuMs`, false),
    ];
    const variant = variantOf(plan, c);
    const key = `${startMs}\u0000${c.service}\u0000${variant.key}`;
    const g = groups.get(key);
    if (g) g.q = g.q.map((v, m) => v.plus(q[m] ?? 0));
    else groups.set(key, { startMs, service: c.service, variant, q });
  });
  const ordered = [...groups.values()].sort((a, b) => a.startMs - b.startMs || byCodeUnits(a.service, b.service) || byCodeUnits(a.variant.key, b.variant.key));

  // Walk in time order, consuming each meter's free allowance.
  const remaining = meterDefinitions.map((d) => new Dec(d.freeAllowance(plan)));
  const perService = new Map<string, { service: string; variant: Variant; quantity: Decimal[]; free: Decimal[] }>();
  for (const g of ordered) {
    const k = `${g.service}\u0000${g.variant.key}`;
    let s = perService.get(k);
    if (!s) {
      s = { service: g.service, variant: g.variant, quantity: meterDefinitions.map(() => new Dec(0)), free: meterDefinitions.map(() => new Dec(0)) };
      perService.set(k, s);
    }
    for (let m = 0; m < meterDefinitions.length; m++) {
      const q = g.q[m] ?? new Dec(0);
      const left = remaining[m] ?? new Dec(0);
      const free = Dec.min(q, left);
      remaining[m] = left.minus(free);
      s.quantity[m] = (s.quantity[m] ?? new Dec(0)).plus(q);
      s.free[m] = (s.free[m] ?? new Dec(0)).plus(free);
    }
  }

  const lines: BillLine[] = [];
  const modelOf = (def: MeterDefinition): ChargeModel | undefined => plan.charge_models[def.meter];
  const byServiceAndVariant = [...perService.values()].sort((a, b) => byCodeUnits(a.service, b.service) || byCodeUnits(a.variant.key, b.variant.key));
  for (const s of byServiceAndVariant) {
    const service = s.service;
    const variant = s.variant.key === '' ? {} : { variant: s.variant.key };
    meterDefinitions.forEach((def, m) => {
      const qty = s.quantity[m] ?? new Dec(0);
      const free = s.free[m] ?? new Dec(0);
      const multiplier = s.variant.multipliers[def.meter];
      const unitPrice = multiplier === undefined ? new Dec(def.unitPrice(plan)) : new Dec(def.unitPrice(plan)).times(multiplier);
      // A meter with a charge model: each service's line shows its quantity and free part (no
      // amount); the tenant-wide tier lines below carry the money.
      if (modelOf(def) && !qty.isZero()) {
        lines.push(makeLine(def, service, currency, { quantity: qty, free, billable: qty.minus(free), unitPrice, amountUnrounded: new Dec(0), amount: new Dec(0) }, `${service}: ${def.label} (priced by the tiers below)`));
        return;
      }
      if (qty.isZero() || (new Dec(def.unitPrice(plan)).isZero() && free.isZero())) return;
      const billable = qty.minus(free);
      const amountUnrounded = billable.times(unitPrice);
      const label = s.variant.key === '' ? '' : ` (${s.variant.key}${multiplier !== undefined ? `, ×${multiplier}` : ''})`;
      lines.push({
        ...makeLine(def, service, currency, { quantity: qty, free, billable, unitPrice, amountUnrounded, amount: roundHalfUp(amountUnrounded, currency) }, `${service}: ${def.label}${label}`),
        ...variant,
      });
    });
  }

  meterDefinitions.forEach((def, m) => {
    const model = modelOf(def);
    if (!model) return;
    let billable = new Dec(0);
    for (const s of perService.values()) billable = billable.plus((s.quantity[m] ?? new Dec(0)).minus(s.free[m] ?? new Dec(0)));
    lines.push(...chargeModelLines(def, model, billable, currency));
  });
  lines.push(...periodChargeLines(plan, lines, options.share ?? '1'));

  return {
    plan: { ...(plan.id ? { id: plan.id } : {}), ...(plan.name ? { name: plan.name } : {}), ...(plan.version ? { version: plan.version } : {}) },
    currency,
    minorUnitDigits: minorUnitDigits(currency),
    period: { start: p.start, end: p.end },
    lines,
    ...sumLineAmounts(lines, currency),
  };
}

/** A line of a later bill correcting a finalized bill of `originalPeriod`. */
export interface AdjustmentLine extends BillLine {
  isAdjustment: true;
  originalPeriod: BillingPeriod;
}

/**
 * Lines that turn a finalized bill into its recomputation (late usage for a closed period), to be
 * put on the next bill; the finalized bill itself never changes. For each (service, meter) the
 * quantities and the unrounded amount are the differences, and `amount` is the difference of the
 * two rounded amounts, so finalized total + Σ adjustment amounts = recomputed total exactly.
 * Late usage earlier in the period takes free units first, so a service without late usage can
 * get an adjustment too (its usage moved out of the free tier); a recomputation with less usage
 * (a correction) gives negative lines. Lines with no difference are omitted.
 * `previousAdjustments` are adjustment lines already issued for the same period (a second batch of
 * late usage is then adjusted only for what is still missing). Both bills must share currency,
 * period and unit prices (recompute with the plan version the finalized bill used).
 */
export function adjustmentLines(
  finalizedBill: Bill,
  recomputedBill: Bill,
  previousAdjustments: readonly AdjustmentLine[] = [],
): AdjustmentLine[] {
  if (finalizedBill.currency !== recomputedBill.currency) {
    throw new RangeError(`cannot adjust a ${finalizedBill.currency} bill with a ${recomputedBill.currency} recomputation`);
  }
  const currency = finalizedBill.currency;
  const period = normalisePeriod(finalizedBill.period);
  const other = normalisePeriod(recomputedBill.period);
  if (period.startMs !== other.startMs || period.endMs !== other.endMs) {
    throw new RangeError(`the recomputed bill covers [${other.start}, ${other.end}), the finalized one [${period.start}, ${period.end})`);
  }
  for (const a of previousAdjustments) {
    const ap = normalisePeriod(a.originalPeriod);
    if (ap.startMs !== period.startMs || ap.endMs !== period.endMs) {
      throw new RangeError(`a previous adjustment is for [${ap.start}, ${ap.end}), not [${period.start}, ${period.end})`);
    }
  }

  interface Side {
    quantity: Decimal;
    free: Decimal;
    billable: Decimal;
    amountUnrounded: Decimal;
    amount: Decimal;
    unitPrice: string | undefined;
  }
  const empty = (): Side => ({ quantity: new Dec(0), free: new Dec(0), billable: new Dec(0), amountUnrounded: new Dec(0), amount: new Dec(0), unitPrice: undefined });
  const keyOf = (l: BillLine): string => `${l.service}\u0000${l.meter}\u0000${l.variant ?? ''}`;
  const entries = new Map<string, { service: string; meter: Meter; variant: string | undefined; unit: string; description: string; before: Side; after: Side }>();
  const add = (l: BillLine, side: 'before' | 'after', what: string): void => {
    if ((l.kind ?? 'usage') !== 'usage') return; // commitment, minimum and credit lines are not reconciled
    if (!isMeter(l.meter)) throw new RangeError(`${what} has an unknown meter "${String(l.meter)}"`);
    const meter = l.meter;
    let e = entries.get(keyOf(l));
    if (!e) {
      e = { service: l.service, meter, variant: l.variant, unit: l.unit, description: l.description, before: empty(), after: empty() };
      entries.set(keyOf(l), e);
    }
    // Name the line after a bill line of its own, never after an earlier adjustment's description.
    if (what !== 'previous adjustments' && e.description.startsWith('Adjustment for ')) e.description = l.description;
    const s = e[side];
    if (s.unitPrice !== undefined && !new Dec(s.unitPrice).eq(l.unitPrice)) {
      throw new RangeError(`${what}: ${l.service} ${l.meter} has two unit prices (${s.unitPrice}, ${l.unitPrice})`);
    }
    s.unitPrice = l.unitPrice;
    s.quantity = s.quantity.plus(l.quantity);
    s.free = s.free.plus(l.freeQuantity);
    s.billable = s.billable.plus(l.billableQuantity);
    s.amountUnrounded = s.amountUnrounded.plus(l.amountUnrounded);
    s.amount = s.amount.plus(l.amount);
  };
  // What the tenant has been billed for the period: the finalized bill's own lines (not adjustments
  // it carries for earlier periods) plus adjustments already issued for this period.
  for (const l of finalizedBill.lines) if (!('isAdjustment' in l && l.isAdjustment === true)) add(l, 'before', 'finalized bill');
  for (const l of previousAdjustments) add(l, 'before', 'previous adjustments');
  for (const l of recomputedBill.lines) if (!('isAdjustment' in l && l.isAdjustment === true)) add(l, 'after', 'recomputed bill');

  const label = `${period.start} – ${period.end}`;
  const out: AdjustmentLine[] = [];
  const ordered = [...entries.values()].sort((a, b) => byCodeUnits(a.service, b.service) || byCodeUnits(a.variant ?? '', b.variant ?? '') || meters.indexOf(a.meter) - meters.indexOf(b.meter));
  for (const e of ordered) {
    const { before, after } = e;
    if (before.unitPrice !== undefined && after.unitPrice !== undefined && !new Dec(before.unitPrice).eq(after.unitPrice)) {
      throw new RangeError(
        `${e.service} ${e.meter}: unit price ${after.unitPrice} differs from the finalized ${before.unitPrice}; recompute with the plan version of the finalized bill`,
      );
    }
    const d = {
      quantity: after.quantity.minus(before.quantity),
      free: after.free.minus(before.free),
      billable: after.billable.minus(before.billable),
      unitPrice: new Dec(after.unitPrice ?? before.unitPrice ?? '0'),
      amountUnrounded: after.amountUnrounded.minus(before.amountUnrounded),
      amount: after.amount.minus(before.amount),
    };
    if (d.quantity.isZero() && d.free.isZero() && d.billable.isZero() && d.amountUnrounded.isZero() && d.amount.isZero()) continue;
    const def = meterDefinitions.find((m) => m.meter === e.meter);
    if (!def) continue;
    const what = e.service.startsWith('*') ? e.description : `${e.service}: ${def.label}`;
    out.push({
      ...makeLine(def, e.service, currency, d, `Adjustment for ${label}: ${what}${e.variant ? ` (${e.variant})` : ''}`, e.unit),
      ...(e.variant ? { variant: e.variant } : {}),
      isAdjustment: true,
      originalPeriod: { start: period.start, end: period.end },
    });
  }
  return out;
}
