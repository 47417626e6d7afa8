/**
 * Anomaly detection on one hourly series (invocations, duration p95, memory, errors or cost of a
 * service): the recent hours are compared with what the forecasting core expected for them from the
 * history before them, and the residuals are scored robustly.
 *
 * **Expected.** The last `windowHours` hours are the ones examined; the model is chosen and fitted
 * by `forecastSeries` on the hours before them only, so an anomaly cannot pull its own expectation
 * towards itself. Outliers already in that history (an earlier incident, a holiday) are replaced
 * by forecastSeries before it fits (clean.ts), so one bad day does not teach the model a spike it
 * will expect again, while weekends and a level shift that has lasted a few days are kept.
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
 * first hour in the window (`since`): an incident that began before the window starts at the
 * window's first hour, so telling that the runs of successive scans are one incident is left to
 * the caller (src/stages/anomaly-outbox.ts).
 */
import { robustScale } from './clean.js';
import { forecastSeries } from './forecast.js';
import { DAY_HOURS, WEEK_HOURS, type ModelName } from './models.js';

/** The scale is never below this share of the expected value. */
const RELATIVE_SCALE_FLOOR = 0.05;
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

  const forecast = forecastSeries(series.slice(0, historyLength), { horizonHours: window });
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
