/**
 * Robust scale and outlier cleaning of hourly series, shared by forecasting (outliers in a history
 * must not teach a model to expect them again) and anomaly detection.
 */
import { DAY_HOURS, WEEK_HOURS } from './models.js';

/** The MAD of a normal distribution is 0.6745 σ: 1.4826 · MAD estimates σ. */
const MAD_TO_SIGMA = 1.4826;
/** Hours further than this many robust σ from both of their references are cleaned. */
const CLEANING_THRESHOLD = 6;

/** The median of `values` (0 for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Median and robust σ (1.4826 · MAD) of `values`. */
export function robustScale(values: readonly number[]): { center: number; sigma: number } {
  const center = median(values);
  return { center, sigma: MAD_TO_SIGMA * median(values.map((v) => Math.abs(v - center))) };
}

/**
 * The median of `y` at t ± k·`step` (k = 1 … `reach`, inside the series; t itself left out).
 */
function neighbourMedian(y: readonly number[], t: number, step: number, reach: number): number {
  const around: number[] = [];
  for (let k = 1; k <= reach; k++) {
    if (t - k * step >= 0) around.push(y[t - k * step] ?? 0);
    if (t + k * step < y.length) around.push(y[t + k * step] ?? 0);
  }
  return median(around);
}

/**
 * `history` with its outliers replaced. An hour is an outlier when it lies more than
 * CLEANING_THRESHOLD robust σ both from its **seasonal reference** (the median of the same hour of
 * the week in the other weeks, or of the same hour of the day when there are under two weeks) and
 * from its **local reference** (the median of the same hour on the three days before and after).
 * Both are needed: a weekend is far from the neighbouring weekdays but not from other weekends, and
 * the days after a level shift are far from earlier weeks but not from each other; an incident is
 * far from both. Each σ is 1.4826 · MAD of all hours' deviations from that reference. An outlier
 * takes its seasonal reference. Histories under two days are returned as they are.
 */
export function cleanHistory(history: readonly number[]): number[] {
  const n = history.length;
  if (n < 2 * DAY_HOURS) return [...history];
  const seasonal = n >= 2 * WEEK_HOURS ? history.map((_v, t) => neighbourMedian(history, t, WEEK_HOURS, n)) : history.map((_v, t) => neighbourMedian(history, t, DAY_HOURS, n));
  const local = history.map((_v, t) => neighbourMedian(history, t, DAY_HOURS, 3));
  const seasonalDeviation = history.map((v, t) => v - (seasonal[t] ?? 0));
  const localDeviation = history.map((v, t) => v - (local[t] ?? 0));
  const seasonalSigma = robustScale(seasonalDeviation).sigma;
  const localSigma = robustScale(localDeviation).sigma;
  if (seasonalSigma === 0 || localSigma === 0) return [...history];
  return history.map((v, t) =>
    Math.abs(seasonalDeviation[t] ?? 0) > CLEANING_THRESHOLD * seasonalSigma && Math.abs(localDeviation[t] ?? 0) > CLEANING_THRESHOLD * localSigma ? (seasonal[t] ?? v) : v,
  );
}

