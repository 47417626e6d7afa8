/**
 * Assembles one tenant's bill from its plan segments, their usage and the adjustments owed for
 * finalized periods. Pure: computeBill and adjustmentLines (src/core/pricing) do all the money;
 * this module only feeds them a segment at a time and labels the lines.
 *
 * - Each segment is priced by computeBill under its plan with its prorated free allowances; with
 *   more than one segment a line's description names its plan and span.
 * - Adjustments are computed per segment of the finalized bill (a segment has one set of unit
 *   prices), against the finalized lines plus adjustments already issued on other final bills.
 * - subtotal = sum of every rounded line (usage and adjustments); the unrounded sum is kept beside
 *   it; tax = subtotal × the tenant's rate, rounded half-up once per rate (adjustment lines at the
 *   rate of the bill they correct); total = subtotal + tax.
 */
import {
  Dec,
  accruingLines,
  adjustmentLines,
  computeBill,
  minorUnitDigits,
  plain,
  roundHalfUp,
  parsePlan,
  sumLineAmounts,
  type AdjustmentLine,
  type Bill,
  type BillLine,
  type ChargeModel,
  type LineKind,
  type Plan,
  type PlanInput,
} from '../core/pricing/index.js';
import { toStoredSegment, type BillSegment, type StoredSegment } from './segments.js';
import { usageChunks, type ServiceUsage } from './usage.js';

/** A bill line with where it came from. */
export interface PricedLine extends BillLine {
  kind: LineKind;
  /** Credit lines: the tenant credit (coupon or prepaid credit) they draw on. */
  creditId: string | null;
  isAdjustment: boolean;
  /** The plan the line was priced under. */
  planId: string;
  /** The segment of the priced period (for an adjustment: of the finalized bill it corrects). */
  segmentStart: string;
  segmentEnd: string;
  serviceId: string | null;
  /** Adjustment lines: the finalized bill they correct. */
  adjustsBillId: string | null;
}

/** A bill as computed, before it is stored (or as a preview). */
export interface ComposedBill {
  tenantId: string;
  currency: string;
  period: { start: string; end: string };
  /** The plan in force at the end of the period. */
  planId: string;
  segments: StoredSegment[];
  lines: PricedLine[];
  /** Sum of every rounded line (usage and adjustments), before tax. */
  subtotal: string;
  /** The tenant's tax rate (a fraction, "0.2" = 20%). */
  taxRate: string;
  /** subtotal × taxRate, rounded half-up to the minor unit once, on the rounded subtotal. */
  taxAmount: string;
  /** subtotal + taxAmount. */
  total: string;
  /** Sum of the unrounded lines (before tax). */
  totalUnrounded: string;
  /** Month-to-date: the rounded usage lines of the period itself after commitment discounts (no minimum charge, unused commitment or credits). */
  usageTotal: string;
  /** Sum of the rounded adjustment lines. */
  adjustmentsTotal: string;
  /** Sum of the credit lines (≤ 0). */
  creditsTotal: string;
}

/** A finalized bill to reconcile with its recomputed usage. */
export interface FinalizedBill {
  id: string;
  currency: string;
  segments: BillSegment[];
  /** Its own (non-adjustment) lines, as stored. */
  lines: PricedLine[];
  /** Adjustment lines for it already on other final bills. */
  previousAdjustments: PricedLine[];
  /** Its usage read again, per segment (same order as `segments`). */
  recomputedUsage: ServiceUsage[][];
}

const iso = (d: Date): string => d.toISOString();

/**
 * Charge models of a segment covering `share` of the period: tier bounds and flat fees scale with
 * the share (as free allowances do), so a plan split into versions mid-month bills like the
 * whole month; unit and package prices stay as they are.
 */
function proratedChargeModels(models: Plan['charge_models'], share: string): Plan['charge_models'] {
  if (share === '1') return models;
  const scale = (v: string): string => plain(new Dec(v).times(share));
  const out: Record<string, ChargeModel> = {};
  for (const [meter, model] of Object.entries(models)) {
    out[meter] =
      model.model === 'graduated' || model.model === 'volume'
        ? { ...model, tiers: model.tiers.map((t) => ({ ...t, from: scale(t.from), up_to: t.up_to === null ? null : scale(t.up_to), flat_fee: scale(t.flat_fee) })) }
        : model;
  }
  return out;
}

/** Parsed segment plans by (plan id, allowances, share): a stored plan version never changes. */
const segmentPlans = new Map<string, Plan>();

/** The plan of a segment with its prorated allowances, parsed once (a close prices thousands alike). */
function segmentPlan(segment: BillSegment): Plan {
  const share = segment.share ?? '1';
  const key = `${segment.plan.id}|${segment.freeInvocations}|${segment.freeMbMs}|${segment.freeCpuMs ?? '0'}|${share}`;
  let plan = segmentPlans.get(key);
  if (!plan) {
    const { free_tier_gb_s: _display, ...prices } = segment.plan;
    const input: PlanInput = {
      ...prices,
      free_tier_invocations: segment.freeInvocations,
      free_tier_mb_ms: segment.freeMbMs,
      free_tier_cpu_ms: segment.freeCpuMs ?? '0',
      charge_models: proratedChargeModels(segment.plan.charge_models, share),
    };
    plan = parsePlan(input);
    if (segmentPlans.size >= 1000) segmentPlans.clear();
    segmentPlans.set(key, plan);
  }
  return plan;
}

function priceSegment(segment: BillSegment, usage: readonly ServiceUsage[]): Bill {
  return computeBill(segmentPlan(segment), usageChunks(usage, segment), { start: iso(segment.start), end: iso(segment.end) }, { share: segment.share ?? '1' });
}

function serviceIds(usage: readonly ServiceUsage[], lines: readonly PricedLine[] = []): Map<string, string> {
  const ids = new Map<string, string>();
  for (const l of lines) if (l.serviceId) ids.set(l.service, l.serviceId);
  for (const u of usage) ids.set(u.service, u.serviceId);
  return ids;
}

/** Lines of a period's own usage, segment by segment (usage[i] is segments[i]'s usage). */
export function usageLines(segments: readonly BillSegment[], usage: readonly (readonly ServiceUsage[])[]): PricedLine[] {
  return segments.flatMap((segment, i) => {
    const rows = usage[i] ?? [];
    const ids = serviceIds(rows);
    const note = segments.length > 1 ? ` (${segment.plan.name} v${segment.plan.version}, ${iso(segment.start)} – ${iso(segment.end)})` : '';
    return priceSegment(segment, rows).lines.map(
      (line): PricedLine => ({
        ...line,
        kind: line.kind ?? 'usage',
        creditId: null,
        description: line.description + note,
        isAdjustment: false,
        planId: segment.plan.id,
        segmentStart: iso(segment.start),
        segmentEnd: iso(segment.end),
        serviceId: ids.get(line.service) ?? null,
        adjustsBillId: null,
      }),
    );
  });
}

function asBill(currency: string, segment: BillSegment, lines: BillLine[]): Bill {
  return {
    plan: { id: segment.plan.id, name: segment.plan.name, version: segment.plan.version },
    currency,
    minorUnitDigits: minorUnitDigits(currency),
    period: { start: iso(segment.start), end: iso(segment.end) },
    lines,
    ...sumLineAmounts(lines, currency),
  };
}

const inSegment = (segment: BillSegment) => (l: PricedLine) => new Date(l.segmentStart).getTime() === segment.start.getTime();

/** The adjustment lines still owed for a finalized bill (none when its usage has not changed). */
export function adjustmentsFor(finalized: FinalizedBill): PricedLine[] {
  return finalized.segments.flatMap((segment, i) => {
    const usage = finalized.recomputedUsage[i] ?? [];
    const own = finalized.lines.filter(inSegment(segment));
    const previous: AdjustmentLine[] = finalized.previousAdjustments
      .filter(inSegment(segment))
      .map((l) => ({ ...l, isAdjustment: true, originalPeriod: { start: iso(segment.start), end: iso(segment.end) } }));
    const ids = serviceIds(usage, [...own, ...finalized.previousAdjustments]);
    const recomputed = priceSegment(segment, usage);
    return adjustmentLines(asBill(finalized.currency, segment, own), recomputed, previous).map(
      ({ originalPeriod: _period, isAdjustment: _flag, ...line }): PricedLine => ({
        ...line,
        kind: 'usage',
        creditId: null,
        isAdjustment: true,
        planId: segment.plan.id,
        segmentStart: iso(segment.start),
        segmentEnd: iso(segment.end),
        serviceId: ids.get(line.service) ?? null,
        adjustsBillId: finalized.id,
      }),
    );
  });
}

/**
 * A coupon or prepaid credit of the tenant valid for the bill's period (tenant_credits), as
 * composeBill applies it. `remaining`: for a credit, its amount less what final and paid bills
 * have drawn; coupons have none.
 */
export interface TenantCredit {
  id: string;
  code: string;
  kind: 'credit' | 'coupon';
  /** Coupons: percent off, (0, 100]. */
  percent: string | null;
  /** Credits: what is left to draw, > 0. */
  remaining: string | null;
  /** The most it gives on one bill (null: no cap). */
  maxAmountPerBill: string | null;
}

/**
 * Credit lines (negative) for the period: coupons first, then credits, in the order given. The
 * base is the rounded subtotal of the lines taxed at the tenant's own rate (at most the whole
 * subtotal): a coupon gives percent × base (rounded half-up), a credit what it has left; each at
 * most its per-bill cap and what is left of the base, so credits never take a bill below 0.
 */
export function creditLines(credits: readonly TenantCredit[], base: string, currency: string, at: { planId: string; start: string; end: string }): PricedLine[] {
  const digits = minorUnitDigits(currency);
  let left = new Dec(base);
  const initial = left;
  const out: PricedLine[] = [];
  const ordered = [...credits.filter((c) => c.kind === 'coupon'), ...credits.filter((c) => c.kind === 'credit')];
  for (const c of ordered) {
    if (!left.gt(0)) break;
    let give = c.kind === 'coupon' ? roundHalfUp(initial.times(c.percent ?? '0').div(100), currency) : new Dec(c.remaining ?? '0');
    if (c.maxAmountPerBill !== null) give = Dec.min(give, c.maxAmountPerBill);
    give = Dec.min(give, left);
    if (!give.gt(0)) continue;
    left = left.minus(give);
    const amount = give.negated();
    const description =
      c.kind === 'coupon'
        ? `Coupon ${c.code}: ${plain(new Dec(c.percent ?? '0'))}% off${c.maxAmountPerBill !== null ? ` (at most ${new Dec(c.maxAmountPerBill).toFixed(digits)})` : ''}`
        : `Credit ${c.code}: ${give.toFixed(digits)} of ${new Dec(c.remaining ?? '0').toFixed(digits)} ${currency} left`;
    out.push({
      service: '*credit',
      meter: 'credit',
      kind: 'credit',
      creditId: c.id,
      description,
      quantity: '1',
      freeQuantity: '0',
      billableQuantity: '1',
      unit: c.kind,
      unitPrice: plain(amount),
      amountUnrounded: plain(amount),
      amount: amount.toFixed(digits),
      isAdjustment: false,
      planId: at.planId,
      segmentStart: at.start,
      segmentEnd: at.end,
      serviceId: null,
      adjustsBillId: null,
    });
  }
  return out;
}

/**
 * The whole bill: usage lines of the period, then adjustments, then credits; totals of the
 * rounded lines.
 */
export function composeBill(input: {
  tenantId: string;
  currency: string;
  /** The tenant's tax rate as a fraction; default 0. */
  taxRate?: string;
  /** The rate each corrected bill was taxed at (by bill id): its adjustment lines are taxed at it. */
  adjustedBillTaxRates?: ReadonlyMap<string, string>;
  period: { start: Date; end: Date };
  segments: BillSegment[];
  usageLines: PricedLine[];
  adjustmentLines: PricedLine[];
  /** Coupons and credits valid for the period (none for previews of a range or simulations). */
  credits?: readonly TenantCredit[];
}): ComposedBill {
  const last = input.segments.at(-1);
  if (!last) throw new RangeError(`no plan segment for tenant ${input.tenantId}`);
  const taxRate = input.taxRate ?? '0';
  const rateOf = (l: PricedLine): string => plain(new Dec((l.adjustsBillId ? input.adjustedBillTaxRates?.get(l.adjustsBillId) : undefined) ?? taxRate));
  const charged = [...input.usageLines, ...input.adjustmentLines];
  const ownRate = plain(new Dec(taxRate));
  const base = Dec.min(sumLineAmounts(charged, input.currency).total, sumLineAmounts(charged.filter((l) => rateOf(l) === ownRate), input.currency).total);
  const credits = creditLines(input.credits ?? [], plain(base), input.currency, { planId: last.plan.id, start: iso(input.period.start), end: iso(input.period.end) });
  const lines = [...charged, ...credits];
  const all = sumLineAmounts(lines, input.currency);
  // Tax once per rate on the rounded subtotal of the lines taxed at it: the period's own lines
  // (and credits) at today's rate, each correction at the rate of the bill it corrects.
  const byRate = new Map<string, PricedLine[]>();
  for (const l of lines) byRate.set(rateOf(l), [...(byRate.get(rateOf(l)) ?? []), l]);
  let taxAmount = new Dec(0);
  for (const [rate, group] of byRate) taxAmount = taxAmount.plus(roundHalfUp(new Dec(sumLineAmounts(group, input.currency).total).times(rate), input.currency));
  const digits = minorUnitDigits(input.currency);
  // Month-to-date (running cost, budgets) counts usage at its price after commitment discounts;
  // the minimum charge and an unused commitment are only owed at the period's end.
  const accruing = accruingLines(input.usageLines);
  return {
    tenantId: input.tenantId,
    currency: input.currency,
    period: { start: iso(input.period.start), end: iso(input.period.end) },
    planId: last.plan.id,
    segments: input.segments.map(toStoredSegment),
    lines,
    subtotal: all.total,
    taxRate: ownRate,
    taxAmount: (taxAmount.isZero() ? new Dec(0) : taxAmount).toFixed(digits),
    total: new Dec(all.total).plus(taxAmount).toFixed(digits),
    totalUnrounded: all.totalUnrounded,
    usageTotal: sumLineAmounts(accruing, input.currency).total,
    adjustmentsTotal: sumLineAmounts(input.adjustmentLines, input.currency).total,
    creditsTotal: sumLineAmounts(credits, input.currency).total,
  };
}
