/**
 * The forecasting models, behind one shape: a `ModelSpec` fits its parameters on a training
 * series and returns a `FittedModel`, which runs over any series that starts with that training
 * data and forecasts from chosen origins. Running one pass and forecasting from many origins is
 * what makes the rolling-origin backtest cheap (forecast.ts).
 *
 * Series are hourly, index-based: position t is the t-th consecutive 1h window, so the daily season
 * is 24 positions and the weekly one 168. (Across a DST change the local daily pattern moves by one
 * position; the seasonal smoothing re-learns it within days, and the backtest errors include it.)
 *
 * Models (names are stored with every prediction):
 * - `zero`: always 0 (a series with no usage at all).
 * - `mean`: the mean of everything seen so far; `drift`: the last value plus the average change
 *   per hour so far, carried at most as far ahead as the history is long (both for histories too
 *   short for a season).
 * - `seasonal_naive_daily` / `seasonal_naive_weekly`: the value one season (24 / 168 h) earlier —
 *   the floor every other model has to beat.
 * - `seasonal_median_daily` / `seasonal_median_weekly`: the median of the same position in the
 *   last three seasons (two before three are observed): seasonal-naive without repeating one odd
 *   hour (a timer's extra run, a burst) for a whole season.
 * - `ses`: simple exponential smoothing, a level that follows the data at rate alpha (chosen on a
 *   grid by one-step squared error) and is carried flat: the model for a series without a season
 *   or trend worth modelling, between `mean` (alpha → 0) and the last value (alpha = 1).
 * - `croston`: Croston's method with the Syntetos–Boylan bias correction, for intermittent series
 *   (a timer function, a service used a few times a day): a flat rate = demand size / interval.
 * - `holt_winters_daily` / `holt_winters_double`: additive Holt–Winters with a damped trend and one
 *   (24 h) or two (24 h and 168 h, Taylor's double-seasonal method) seasonal components
 *   (holt-winters.ts).
 * - `…_multiplicative`: the same fitted on log(1 + y), so seasons and trend act as factors (a
 *   weekend at 60% of a weekday stays at 60% as usage grows, which additive seasons cannot follow).
 *   Forecasts are transformed back with exp(·) − 1 and multiplied by exp(σ²/2) (σ² the one-step
 *   variance in log space), so they estimate the mean rather than the median.
 */
import { fitHoltWinters, type HoltWintersFit } from './holt-winters.js';

export const modelNames = [
  'zero',
  'mean',
  'drift',
  'seasonal_naive_daily',
  'seasonal_naive_weekly',
  'seasonal_median_daily',
  'seasonal_median_weekly',
  'croston',
  'ses',
  'holt_winters_daily',
  'holt_winters_double',
  'holt_winters_daily_multiplicative',
  'holt_winters_double_multiplicative',
] as const;
export type ModelName = (typeof modelNames)[number];

export const DAY_HOURS = 24;
export const WEEK_HOURS = 168;

/** A model with its parameters fixed. */
export interface FittedModel {
  name: ModelName;
  /** Fitted parameters, for the record (stored with predictions). */
  params: Readonly<Record<string, number>>;
  /**
   * Forecast paths over `series` (which must start with the data the model was fitted on): for each
   * origin t (ascending; y[0..t] observed), the forecasts of t+1 … t+horizon. Not clipped at 0.
   */
  paths(series: ArrayLike<number>, origins: readonly number[], horizon: number): Float64Array[];
}

/** A model that can be fitted. */
export interface ModelSpec {
  name: ModelName;
  /** Fewest training points the model can be fitted on. */
  minHistory: number;
  /** Fits on `train`; `warmStart` is an earlier fit of the same model (on a prefix) to start from. */
  fit(train: ArrayLike<number>, warmStart?: FittedModel): FittedModel;
}

/**
 * Runs a one-pass model: `observe(t)` takes y[t] into the state, `forecast(t, out)` fills the path
 * from origin t. Origins must be ascending.
 */
function runOnePass(
  length: number,
  origins: readonly number[],
  horizon: number,
  observe: (t: number) => void,
  forecast: (t: number, out: Float64Array) => void,
): Float64Array[] {
  const out: Float64Array[] = [];
  let next = 0;
  const last = origins.length > 0 ? Math.min(length - 1, origins[origins.length - 1] ?? -1) : -1;
  for (let t = 0; t <= last; t++) {
    observe(t);
    while (next < origins.length && origins[next] === t) {
      const path = new Float64Array(horizon);
      forecast(t, path);
      out.push(path);
      next++;
    }
  }
  if (out.length !== origins.length) throw new RangeError('forecast origins must be ascending indices inside the series');
  return out;
}

/** A model whose forecast from origin t depends on the data only (no state, nothing fitted). */
function stateless(name: ModelName, params: Record<string, number>, fill: (y: ArrayLike<number>, t: number, out: Float64Array) => void): FittedModel {
  return {
    name,
    params,
    paths: (y, origins, horizon) =>
      runOnePass(
        y.length,
        origins,
        horizon,
        () => undefined,
        (t, out) => fill(y, t, out),
      ),
  };
}

export const zeroModel: ModelSpec = { name: 'zero', minHistory: 0, fit: () => stateless('zero', {}, (_y, _t, out) => out.fill(0)) };

export const meanModel: ModelSpec = {
  name: 'mean',
  minHistory: 1,
  fit: () => ({
    name: 'mean',
    params: {},
    paths: (y, origins, horizon) => {
      let sum = 0;
      return runOnePass(
        y.length,
        origins,
        horizon,
        (t) => (sum += y[t] ?? 0),
        (t, out) => out.fill(sum / (t + 1)),
      );
    },
  }),
};

export const driftModel: ModelSpec = {
  name: 'drift',
  minHistory: 2,
  fit: () =>
    stateless('drift', {}, (y, t, out) => {
      const last = y[t] ?? 0;
      const slope = t > 0 ? (last - (y[0] ?? 0)) / t : 0;
      // A slope seen over t hours is not carried further than t hours ahead.
      for (let h = 1; h <= out.length; h++) out[h - 1] = last + Math.min(h, t) * slope;
    }),
};

function seasonalNaive(name: ModelName, season: number): ModelSpec {
  return {
    name,
    minHistory: season,
    fit: () =>
      stateless(name, { season }, (y, t, out) => {
        for (let h = 1; h <= out.length; h++) {
          // The same position of the latest season observed; the last value before a full season.
          const back = t + h - season * Math.ceil(h / season);
          out[h - 1] = back >= 0 ? (y[back] ?? 0) : (y[t] ?? 0);
        }
      }),
  };
}

export const seasonalNaiveDaily = seasonalNaive('seasonal_naive_daily', DAY_HOURS);
export const seasonalNaiveWeekly = seasonalNaive('seasonal_naive_weekly', WEEK_HOURS);

/** Seasons the seasonal median looks back over. */
const MEDIAN_SEASONS = 3;

/** The median of a, b and c. */
const median3 = (a: number, b: number, c: number): number => Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));

function seasonalMedian(name: ModelName, season: number): ModelSpec {
  return {
    name,
    minHistory: 2 * season,
    fit: () =>
      stateless(name, { season, seasons: MEDIAN_SEASONS }, (y, t, out) => {
        for (let h = 1; h <= out.length; h++) {
          // The same position in each of the last three seasons observed (two when only two are).
          const back = t + h - season * Math.ceil(h / season);
          const a = y[back] ?? 0;
          const b = back - season >= 0 ? (y[back - season] ?? 0) : a;
          const c = back - 2 * season >= 0 ? (y[back - 2 * season] ?? 0) : (a + b) / 2;
          out[h - 1] = back >= 0 ? median3(a, b, c) : (y[t] ?? 0);
        }
      }),
  };
}

export const seasonalMedianDaily = seasonalMedian('seasonal_median_daily', DAY_HOURS);
export const seasonalMedianWeekly = seasonalMedian('seasonal_median_weekly', WEEK_HOURS);

/** Croston–SBA over y with smoothing `alpha`; calls `emit` after each observation with the rate. */
function crostonPass(y: ArrayLike<number>, alpha: number, last: number, emit: (t: number, rate: number) => void): void {
  let size = 0;
  let interval = 0;
  let sinceDemand = 0;
  let seen = false;
  for (let t = 0; t <= last; t++) {
    const v = y[t] ?? 0;
    sinceDemand++;
    if (v > 0) {
      if (!seen) {
        size = v;
        interval = sinceDemand;
        seen = true;
      } else {
        size += alpha * (v - size);
        interval += alpha * (sinceDemand - interval);
      }
      sinceDemand = 0;
    }
    emit(t, seen ? ((1 - alpha / 2) * size) / interval : 0);
  }
}

const crostonAlphas = [0.05, 0.1, 0.2, 0.3];
const sesAlphas = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1];

/** Runs simple exponential smoothing over y[0..last], calling `emit` with the level after each value. */
function sesPass(y: ArrayLike<number>, alpha: number, last: number, emit: (t: number, level: number) => void): void {
  let level = y[0] ?? 0;
  for (let t = 0; t <= last; t++) {
    if (t > 0) level += alpha * ((y[t] ?? 0) - level);
    emit(t, level);
  }
}

export const sesModel: ModelSpec = {
  name: 'ses',
  minHistory: 2,
  fit: (train) => {
    let best = { alpha: 1, sse: Infinity };
    for (const alpha of sesAlphas) {
      let sse = 0;
      let previous = 0;
      sesPass(train, alpha, train.length - 1, (t, level) => {
        if (t > 0) sse += ((train[t] ?? 0) - previous) ** 2;
        previous = level;
      });
      if (sse < best.sse) best = { alpha, sse };
    }
    const alpha = best.alpha;
    return {
      name: 'ses',
      params: { alpha },
      paths: (y, origins, horizon) => {
        let level = 0;
        return runOnePass(
          y.length,
          origins,
          horizon,
          (t) => (level = t === 0 ? (y[0] ?? 0) : level + alpha * ((y[t] ?? 0) - level)),
          (_t, out) => out.fill(level),
        );
      },
    };
  },
};

export const crostonModel: ModelSpec = {
  name: 'croston',
  minHistory: 4,
  fit: (train) => {
    // A one-dimensional choice: a small grid is as good as a search and cannot diverge.
    let best = { alpha: 0.1, sse: Infinity };
    for (const alpha of crostonAlphas) {
      let sse = 0;
      let previous = 0;
      crostonPass(train, alpha, train.length - 1, (t, rate) => {
        if (t > 0) sse += ((train[t] ?? 0) - previous) ** 2;
        previous = rate;
      });
      if (sse < best.sse) best = { alpha, sse };
    }
    const alpha = best.alpha;
    return {
      name: 'croston',
      params: { alpha },
      paths: (y, origins, horizon) => {
        const out: Float64Array[] = [];
        let next = 0;
        crostonPass(y, alpha, Math.min(y.length - 1, origins[origins.length - 1] ?? -1), (t, rate) => {
          while (next < origins.length && origins[next] === t) {
            out.push(new Float64Array(horizon).fill(rate));
            next++;
          }
        });
        if (out.length !== origins.length) throw new RangeError('forecast origins must be ascending indices inside the series');
        return out;
      },
    };
  },
};

function holtWinters(name: ModelName, seasons: readonly number[], scale: 'additive' | 'multiplicative'): ModelSpec {
  const longest = Math.max(...seasons);
  const toModel = scale === 'additive' ? (y: ArrayLike<number>): ArrayLike<number> => y : (y: ArrayLike<number>): ArrayLike<number> => Float64Array.from(y, Math.log1p);
  return {
    name,
    // Two full cycles of the longest season: one to set the seasonal indices, one to see a trend.
    minHistory: 2 * longest,
    fit: (train, warmStart) => {
      const previous = warmStart && 'fit' in warmStart ? (warmStart as FittedHoltWinters).fit : undefined;
      const fit = fitHoltWinters(toModel(train), seasons, previous);
      const bias = Math.exp(fit.sse / Math.max(1, train.length) / 2);
      const fromModel = scale === 'additive' ? (v: number): number => v : (v: number): number => Math.expm1(v) * bias;
      const fitted: FittedHoltWinters = {
        name,
        fit,
        params: { ...fit.params },
        paths: (y, origins, horizon) => {
          const filter = fit.filter();
          const values = toModel(y);
          return runOnePass(
            values.length,
            origins,
            horizon,
            (t) => filter.observe(values[t] ?? 0),
            (_t, out) => {
              filter.forecast(out);
              for (let k = 0; k < out.length; k++) out[k] = fromModel(out[k] ?? 0);
            },
          );
        },
      };
      return fitted;
    },
  };
}

interface FittedHoltWinters extends FittedModel {
  fit: HoltWintersFit;
}

export const holtWintersDaily = holtWinters('holt_winters_daily', [DAY_HOURS], 'additive');
export const holtWintersDouble = holtWinters('holt_winters_double', [DAY_HOURS, WEEK_HOURS], 'additive');
export const holtWintersDailyMultiplicative = holtWinters('holt_winters_daily_multiplicative', [DAY_HOURS], 'multiplicative');
export const holtWintersDoubleMultiplicative = holtWinters('holt_winters_double_multiplicative', [DAY_HOURS, WEEK_HOURS], 'multiplicative');
