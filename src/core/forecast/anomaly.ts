/**
 * Anomaly detection on one hourly series (invocations, duration p95, memory, errors or cost of a
 * service): the recent hours are compared with what the forecasting core expected for them from the
 * history before them, and the residuals are scored robustly.
 *
 * **Expected.** The last `windowHours` hours are the ones examined; the model is chosen and fitted
 * by `forecastSeries` on the hours before them only, so an anomaly cannot pull its own expectation
 * towards itself. Outliers already in that history (an earlier incident, a holiday) are first
 * replaced (`cleanHistory`), so one bad day does not teach the model a spike it will expect again,
 * while weekends and a level shift that has lasted a few days are kept.
 *
 * **Score.** A robust z-score: (residual − median) / (1.4826 · MAD) of the chosen model's backtest
 * errors at the same horizon — the errors it makes on normal data — so plain seasonality the model
 * follows scores low, and a few past incidents in the backtest do not inflate the scale the way a
 * standard deviation would. The scale is at least 5% of the expected value (a near-constant series
 * has a MAD of ~0; a 1% wobble there is not an incident).
 *
 * **An anomaly** is a run of at least `minHours` consecutive hours that all score beyond
 * `threshold` on the same side *and* differ from the expected value by at least `minRelative` of
 * it and at least `minAbsolute` (minimum duration and magnitude); a single ordinary hour between
 * two abnormal ones on the same side does not end the run. Each run is reported once, by its
 * first hour (`since`), which is what deduplicates alerts: the same incident seen by two runs has
 * the same start.
 */
import { forecastSeries } from './forecast.js';
import { DAY_HOURS, WEEK_HOURS, type ModelName } from './models.js';

/** The MAD of a normal distribution is 0.6745 σ: 1.4826 · MAD estimates σ. */
const MAD_TO_SIGMA = 1.4826;
/** The scale is never below this share of the expected value. */
const RELATIVE_SCALE_FLOOR = 0.05;
/** History hours further than this many robust σ from both of their references are cleaned. */
const CLEANING_THRESHOLD = 6;
/**
 * Fewer history hours than this (a week) say too little about normal to call anything abnormal:
 * with two days, a first weekend looks like an outage (measured on the forecast function's test
 * tenant: a Sunday evening scored −15 against a model fitted on Friday and Saturday).
 */
export const MIN_ANOMALY_HISTORY = WEEK_HOURS;

export interface AnomalyOptions {
  /** Hours at the end of the series to examine (default 24). */
  windowHours?: number;
  /** |robust z| from which an hour is abnormal (default 4). */
  threshold?: number;
  /** Consecutive abnormal hours an anomaly needs (default 2). */
  minHours?: number;
  /** Smallest |observed − expected| as a share of expected (default 0.5). */
  minRelative?: number;
  /** Smallest |observed − expected| in the series' unit (default 0). */
  minAbsolute?: number;
}

export interface DetectedAnomaly {
  /** Index of the first abnormal hour in the series, and one past the last. */
  start: number;
  end: number;
  direction: 'spike' | 'drop';
  /** Sums over the anomaly's hours. */
  expected: number;
  observed: number;
  /** Mean robust z-score of its hours (signed: negative for a drop). */
  score: number;
}

export interface AnomalyScan {
  /** The model that produced the expectation (null when the history was too short to judge). */
  model: ModelName | null;
  /** Expected and observed value and robust z-score of each examined hour. */
  hours: { index: number; expected: number; observed: number; score: number }[];
  anomalies: DetectedAnomaly[];
}

function median(values: readonly number[]): number {
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

/** Scans the last `windowHours` of an hourly series (values ≥ 0, oldest first) for anomalies. */
export function detectAnomalies(series: readonly number[], options: AnomalyOptions = {}): AnomalyScan {
  const windowHours = options.windowHours ?? DAY_HOURS;
  const threshold = options.threshold ?? 4;
  const minHours = options.minHours ?? 2;
  const minRelative = options.minRelative ?? 0.5;
  const minAbsolute = options.minAbsolute ?? 0;
  if (!Number.isInteger(windowHours) || windowHours < 1) throw new RangeError(`windowHours must be a whole number ≥ 1 (got ${windowHours})`);
  if (!Number.isInteger(minHours) || minHours < 1) throw new RangeError(`minHours must be a whole number ≥ 1 (got ${minHours})`);
  const window = Math.min(windowHours, series.length);
  const historyLength = series.length - window;
  if (historyLength < MIN_ANOMALY_HISTORY) return { model: null, hours: [], anomalies: [] };

  const forecast = forecastSeries(cleanHistory(series.slice(0, historyLength)), { horizonHours: window });
  const hours = Array.from({ length: window }, (_, k) => {
    const index = historyLength + k;
    const expected = forecast.point[k] ?? 0;
    const observed = series[index] ?? 0;
    const { center, sigma } = robustScale(forecast.errorsAt(k + 1));
    const scale = Math.max(sigma, RELATIVE_SCALE_FLOOR * expected, Number.EPSILON);
    return { index, expected, observed, score: (observed - expected - center) / scale };
  });

  const abnormal = (h: (typeof hours)[number]): -1 | 0 | 1 => {
    const gap = h.observed - h.expected;
    if (Math.abs(h.score) < threshold || Math.abs(gap) < Math.max(minAbsolute, minRelative * h.expected)) return 0;
    return Math.sign(h.score) === Math.sign(gap) ? (Math.sign(gap) as -1 | 1) : 0;
  };
  const anomalies: DetectedAnomaly[] = [];
  let k = 0;
  while (k < hours.length) {
    const side = abnormal(hours[k] as (typeof hours)[number]);
    let end = k + 1;
    if (side !== 0) {
      // One ordinary hour inside an incident (a score that dipped under the threshold) does not split it.
      for (;;) {
        if (end < hours.length && abnormal(hours[end] as (typeof hours)[number]) === side) end++;
        else if (end + 1 < hours.length && abnormal(hours[end + 1] as (typeof hours)[number]) === side) end += 2;
        else break;
      }
    }
    if (side !== 0 && end - k >= minHours) {
      const run = hours.slice(k, end);
      anomalies.push({
        start: historyLength + k,
        end: historyLength + end,
        direction: side > 0 ? 'spike' : 'drop',
        expected: run.reduce((s, h) => s + h.expected, 0),
        observed: run.reduce((s, h) => s + h.observed, 0),
        score: run.reduce((s, h) => s + h.score, 0) / run.length,
      });
    }
    k = end;
  }
  return { model: forecast.model, hours, anomalies };
}
