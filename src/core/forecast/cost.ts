/**
 * Forecast usage → money, only through the pricing core (decimal arithmetic; no float reaches an
 * amount). Usage forecasts are floats; they become decimal quantities here (counts rounded to whole
 * numbers, MB·ms and CPU-ms to 3 decimals, the precision usage_aggregate keeps) and are priced by
 * `computeBill`.
 *
 * **Marginal cost.** Forecast usage is priced as what it would add to its billing period's bill
 * given what the period has already used: the period's bill with the usage so far and the forecast
 * (after it in time) minus its bill with the usage so far alone. Free allowances, charge-model
 * tiers and commitments are therefore taken by the usage so far first, and the minimum charge
 * counts it: forecast usage that leaves the period under its minimum adds nothing, and a month-end
 * forecast (the month-to-date bill plus that difference) is the bill of the month's actual plus
 * forecast usage, minimum top-up and unused commitment included. (Pricing the forecast alone under
 * the plan with its free tier reduced, as before, charged a plan's minimum a second time: a month
 * forecast at 200.00 where the bill would be 100.00.) The usage so far enters as one line per meter
 * rather than one per service, so where the minimum charge decides, the result can differ from the
 * bill of the union by the rounding of the lines (about a cent per line); without a minimum it is
 * exact, per-line rounding included. The usage so far is priced at list prices: price variants
 * (architecture, spot, time of day) are not applied to it here. Components are the meters' usage lines, so a
 * commitment discount or minimum top-up shows in the total (`cost`) and not in a component. Coupons
 * and credits (applied when a bill is finalized) are not forecast.
 * A target that crosses into the next billing period is split there: the next period starts with
 * its full free tier.
 *
 * **Intervals.** Each bound prices the same bound of every component (all lower 80%, all upper
 * 95%, ...). Cost is non-decreasing in every component, so these are bounds of the cost if the
 * components move together (comonotone): a day with more invocations also has more compute. That
 * is how usage behaves; were the components independent, the true cost interval would be narrower.
 */
import type { Decimal } from 'decimal.js';
import { Dec, accruingLines, computeBill, isChargeLine, meters, sumLineAmounts, minorUnitDigits, parsePlan, plain, type Bill, type BillingPeriod, type Meter, type Plan, type PlanInput, type UsageChunk } from '../pricing/index.js';
import type { Band } from './intervals.js';

export const bandNames = ['expected', 'median', 'lower80', 'upper80', 'lower95', 'upper95'] as const;
export type BandName = (typeof bandNames)[number];

/** Usage per meter, as forecast (floats ≥ 0). */
export type MeterUsage = Record<Meter, number>;
/** Decimal text per band. */
export type BandText = Record<BandName, string>;

/**
 * The service name forecast usage is billed under. Knative service names are DNS labels
 * (lower-case letters, digits, '-'), so no real service can be named this.
 */
export const FORECAST_SERVICE = '*forecast*';

/** Decimal places kept for each meter's quantity (counts are whole). */
const quantityDecimals: Record<Meter, number> = { invocations: 0, compute: 3, cold_starts: 0, cpu: 3 };

/** A forecast quantity as decimal text: whole for counts, 3 decimals for MB·ms and CPU-ms. */
export function quantityText(meter: Meter, value: number): string {
  if (!Number.isFinite(value) || value < 0 || value >= 1e21) throw new RangeError(`a forecast ${meter} quantity must be a finite number in [0, 1e21) (got ${value})`);
  return plain(new Dec(value.toFixed(quantityDecimals[meter])));
}

const zeroUsage = (): Record<Meter, Decimal> => ({ invocations: new Dec(0), compute: new Dec(0), cold_starts: new Dec(0), cpu: new Dec(0) });

/** Quantity and amount per meter of a bill (summed over services). */
export function billByMeter(bill: Bill): { quantity: Record<Meter, Decimal>; amount: Record<Meter, Decimal> } {
  const quantity = zeroUsage();
  const amount = zeroUsage();
  for (const line of bill.lines) {
    // Usage lines only: commitment, minimum-charge and credit lines are not usage of a meter.
    if ((line.kind ?? 'usage') !== 'usage' || !(line.meter in quantity)) continue;
    const meter = line.meter as Meter;
    // A charge model's tier and fee lines price usage the services' lines already count.
    if (!isChargeLine(line)) quantity[meter] = quantity[meter].plus(line.quantity);
    amount[meter] = amount[meter].plus(line.amount);
  }
  return { quantity, amount };
}

/**
 * The service name the period's usage before a forecast is billed under when a forecast is priced
 * (like FORECAST_SERVICE, no Knative service can be named this).
 */
const USED_SERVICE = '*used*';

/** A usage chunk of `quantities` per meter, billed under `service` at `start`. */
function chunkOf(service: string, start: string, quantities: Record<Meter, string>): UsageChunk {
  return { service, start, invocations: quantities.invocations, billedMbMs: quantities.compute, coldStarts: quantities.cold_starts, cpuMs: quantities.cpu };
}

/** One billing period a forecast target touches. */
export interface ForecastPart {
  /** The plan in force (its currency is the forecast's). */
  plan: Plan | PlanInput;
  /** The billing period (a calendar month in the tenant's zone). */
  period: BillingPeriod;
  /** First instant of the forecast inside this period (ISO 8601). */
  start: string;
  /** Usage already in this period before `start` (the month-to-date bill's quantities); none for a later period. */
  used?: Record<Meter, Decimal>;
  /** Expected usage of the forecast hours in this part (to split each total band between parts). */
  expected: MeterUsage;
}

export interface PricedComponent {
  /** Forecast quantity per band (decimal text; plus the actual usage for a month-end target). */
  quantity: BandText;
  /** Cost per band, rounded to the currency's minor unit. */
  cost: BandText;
  /** Actual usage and its cost (month-end only). */
  actual?: { quantity: string; cost: string };
}

export interface PricedForecast {
  currency: string;
  cost: BandText;
  components: Record<Meter, PricedComponent>;
  /** The actual part (month-end only): what the month-to-date bill has accrued (accruingLines). */
  actualCost?: string;
}

/**
 * Prices a forecast target: `totals` are the usage bands of the whole target per meter, split
 * between `parts` in proportion to each part's expected usage. `actual`, when given (month-end),
 * is the month-to-date bill of the first part, included in every band.
 */
export function priceForecast(parts: readonly ForecastPart[], totals: Record<Meter, Band>, actual?: Bill): PricedForecast {
  if (parts.length === 0) throw new RangeError('a forecast target touches at least one billing period');
  const plans = parts.map((p) => parsePlan(p.plan));
  const currency = plans[0]?.currency ?? '';
  for (const plan of plans) {
    if (plan.currency !== currency) throw new RangeError(`the plans in force bill in ${currency} and ${plan.currency}: a forecast spanning both cannot be summed`);
  }
  if (actual && actual.currency !== currency) throw new RangeError(`the month-to-date bill is in ${actual.currency}, the plan in ${currency}`);
  const digits = minorUnitDigits(currency);
  const expectedSum = zeroUsageNumbers();
  for (const part of parts) for (const m of meters) expectedSum[m] += part.expected[m];

  const cost = {} as Record<BandName, Decimal>;
  const perMeter = Object.fromEntries(meters.map((m) => [m, { quantity: {} as Record<BandName, Decimal>, cost: {} as Record<BandName, Decimal> }])) as Record<
    Meter,
    { quantity: Record<BandName, Decimal>; cost: Record<BandName, Decimal> }
  >;
  const actualByMeter = actual ? billByMeter(actual) : undefined;

  // Each part's bill without the forecast: its period's usage so far (at the period's start, so it
  // takes the free allowances and the first tiers first), or nothing for a period not begun.
  const bases = parts.map(({ used, period }, i) => {
    const chunks = used ? [chunkOf(USED_SERVICE, period.start, Object.fromEntries(meters.map((m) => [m, plain(used[m])])) as Record<Meter, string>)] : [];
    const bill = computeBill(plans[i] as Plan, chunks, period);
    return { chunks, total: bill.total, amount: billByMeter(bill).amount };
  });

  for (const band of bandNames) {
    let bandCost = new Dec(actual?.total ?? 0);
    for (const m of meters) {
      perMeter[m].quantity[band] = actualByMeter?.quantity[m] ?? new Dec(0);
      perMeter[m].cost[band] = actualByMeter?.amount[m] ?? new Dec(0);
    }
    parts.forEach((part, i) => {
      const plan = plans[i] as Plan;
      const base = bases[i] as (typeof bases)[number];
      const quantities = {} as Record<Meter, string>;
      for (const m of meters) {
        // Each band of the whole target is shared between periods like its expected usage
        // (by hours when nothing is expected).
        const share = expectedSum[m] > 0 ? part.expected[m] / expectedSum[m] : 1 / parts.length;
        quantities[m] = quantityText(m, totals[m][band] * share);
      }
      // The marginal cost: the period's bill with the forecast usage minus its bill without it, so
      // free allowances, tiers, commitments and the minimum charge count the usage before it.
      const bill = computeBill(plan, [...base.chunks, chunkOf(FORECAST_SERVICE, part.start, quantities)], part.period);
      const priced = billByMeter(bill);
      bandCost = bandCost.plus(new Dec(bill.total).minus(base.total));
      for (const m of meters) {
        perMeter[m].quantity[band] = perMeter[m].quantity[band].plus(quantities[m]);
        perMeter[m].cost[band] = perMeter[m].cost[band].plus(priced.amount[m].minus(base.amount[m]));
      }
    });
    cost[band] = bandCost;
  }

  const money = (d: Decimal): string => d.toFixed(digits);
  const text = (bands: Record<BandName, Decimal>, format: (d: Decimal) => string): BandText =>
    Object.fromEntries(bandNames.map((b) => [b, format(bands[b])])) as BandText;
  const components = Object.fromEntries(
    meters.map((m) => {
      const component: PricedComponent = { quantity: text(perMeter[m].quantity, plain), cost: text(perMeter[m].cost, money) };
      if (actualByMeter) component.actual = { quantity: plain(actualByMeter.quantity[m]), cost: money(actualByMeter.amount[m]) };
      return [m, component];
    }),
  ) as Record<Meter, PricedComponent>;
  // The actual part is what has accrued so far; the month's minimum top-up and unused commitment are in the forecast total only.
  return { currency, cost: text(cost, money), components, ...(actual ? { actualCost: sumLineAmounts(accruingLines(actual.lines), currency).total } : {}) };
}

function zeroUsageNumbers(): MeterUsage {
  return { invocations: 0, compute: 0, cold_starts: 0, cpu: 0 };
}

/**
 * How sure the cost forecast is, in [0, 1]: 1 − half the width of the 80% interval relative to
 * the point forecast (so ±10% gives 0.9). A zero forecast with a zero-width interval is certain (1).
 * Four decimals, as ml_predictions.confidence keeps.
 */
export function costConfidence(cost: BandText): string {
  const expected = new Dec(cost.expected);
  const halfWidth = new Dec(cost.upper80).minus(cost.lower80).div(2);
  if (expected.isZero()) return halfWidth.isZero() ? '1.0000' : '0.0000';
  const confidence = Dec.min(1, Dec.max(0, new Dec(1).minus(halfWidth.div(expected))));
  return confidence.toDecimalPlaces(4, Dec.ROUND_HALF_UP).toFixed(4);
}
