/**
 * The pure rules behind savings recommendations (src/stages/recommendations.ts reads the usage and
 * prices the results with the pricing simulator). Money is decimal throughout.
 *
 * - **Memory limit**: the observed p99 memory plus headroom (20% by default), rounded up to the
 *   plan's memory step; suggested only when it is below the current limit.
 * - **minScale**: keeping one instance warm avoids (most) cold starts. Its cost is the instance's
 *   memory for the whole period at the plan's compute price (the price of memory that is held,
 *   whether or not it is billed to the tenant); what it saves is the cold-start charges plus the
 *   extra billed time of cold invocations. minScale 1 is suggested when the saving exceeds the cost,
 *   scale to zero (minScale 0) when a service kept warm would cost less cold.
 * - **Duration vs memory**: where a service ran under several memory limits, how its duration per
 *   invocation moved with the limit (CPU is allotted in proportion to memory on most platforms):
 *   the elasticity e in duration ∝ limit^(−e), from the smallest and the largest limit, in [0, 1].
 *   A lower limit then lengthens durations by (suggested / current)^(−e).
 * - **Budget crossing**: at the month-end forecast's pace, the instant the month's cost reaches the
 *   budget — linear between now (month-to-date actual) and month end (the forecast).
 */
import type { Decimal } from 'decimal.js';
import { Dec } from '../pricing/index.js';

/** The smallest limit ≥ p99 · (1 + headroom), a multiple of `stepMb`; null when it is not below `limitMb`. */
export function suggestedMemoryLimit(p99Mb: number, limitMb: number, stepMb: number, headroom = 0.2): number | null {
  if (!(p99Mb > 0) || !(limitMb > 0) || !(stepMb > 0)) throw new RangeError('memory figures and the step must be positive');
  const suggested = Math.ceil((p99Mb * (1 + headroom)) / stepMb) * stepMb;
  return suggested < limitMb ? suggested : null;
}

/** One memory limit a service ran under, with what it did there. */
export interface LimitRun {
  limitMb: number;
  invocations: number;
  /** Mean duration per invocation, ms. */
  msPerInvocation: number;
}

/**
 * The elasticity of duration with respect to the memory limit (see the module comment), from the
 * smallest and largest limits with at least `minInvocations` each; null with fewer than two such
 * limits or a duration of 0.
 */
export function durationElasticity(runs: readonly LimitRun[], minInvocations = 100): number | null {
  const usable = runs.filter((r) => r.invocations >= minInvocations && r.limitMb > 0 && r.msPerInvocation > 0).sort((a, b) => a.limitMb - b.limitMb);
  const small = usable[0];
  const large = usable[usable.length - 1];
  if (!small || !large || small.limitMb === large.limitMb) return null;
  const e = -Math.log(large.msPerInvocation / small.msPerInvocation) / Math.log(large.limitMb / small.limitMb);
  return Math.min(1, Math.max(0, e));
}

export interface ScaleFacts {
  /** Events flagged cold_start over the period. */
  coldStarts: number;
  /** Mean extra duration of a cold invocation over a warm one, ms (≥ 0). */
  coldExtraMs: number;
  /** Billed memory of one instance, MB. */
  memoryMb: number;
  /** The period's length, ms. */
  periodMs: number;
  /** Cold starts expected if the service scaled to zero (its idle → busy transitions). */
  coldStartsIfScaledToZero: number;
  currentMinScale: number;
}

export interface ScalePrices {
  perColdStart: Decimal.Value;
  perMbMs: Decimal.Value;
}

export interface ScaleAdvice {
  minScale: 0 | 1;
  /** What the change saves over a period like this one (> 0). */
  saving: Decimal;
  /** The cost of one warm instance over the period, and the cold-start cost it trades against. */
  warmCost: Decimal;
  coldCost: Decimal;
}

/** The cost of `coldStarts` cold starts: their charges and their extra billed time. */
function coldStartCost(coldStarts: number, facts: ScaleFacts, prices: ScalePrices): Decimal {
  const extraMbMs = new Dec(coldStarts).times(facts.coldExtraMs.toFixed(3)).times(facts.memoryMb);
  return new Dec(coldStarts).times(prices.perColdStart).plus(extraMbMs.times(prices.perMbMs));
}

/** minScale advice for one service, or null when the current setting is the cheaper one. */
export function minScaleAdvice(facts: ScaleFacts, prices: ScalePrices): ScaleAdvice | null {
  const warmCost = new Dec(facts.memoryMb).times(facts.periodMs).times(prices.perMbMs);
  if (facts.currentMinScale < 1) {
    const coldCost = coldStartCost(facts.coldStarts, facts, prices);
    return coldCost.gt(warmCost) ? { minScale: 1, saving: coldCost.minus(warmCost), warmCost, coldCost } : null;
  }
  const coldCost = coldStartCost(facts.coldStartsIfScaledToZero, facts, prices);
  return warmCost.gt(coldCost) ? { minScale: 0, saving: warmCost.minus(coldCost), warmCost, coldCost } : null;
}

/**
 * When the month's cost reaches `budget`, at a constant pace from `actual` (now, `nowMs`) to
 * `forecast` (month end, `endMs`); null when the forecast stays under it. Already reached → now.
 */
export function budgetCrossing(budget: Decimal.Value, actual: Decimal.Value, forecast: Decimal.Value, nowMs: number, endMs: number): number | null {
  const limit = new Dec(budget);
  if (new Dec(actual).gte(limit)) return nowMs;
  if (new Dec(forecast).lt(limit)) return null;
  const share = limit.minus(actual).div(new Dec(forecast).minus(actual));
  return nowMs + Math.round(share.times(endMs - nowMs).toNumber());
}
