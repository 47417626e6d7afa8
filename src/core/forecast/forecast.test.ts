/**
 * The pure forecasting core on synthetic hourly series with known structure (seeded, so every run
 * sees the same data): accuracy against seasonal-naive on a hold-out, interval widening and
 * calibration, short histories, zeros, intermittent series, level shifts.
 */
import assert from 'node:assert/strict';
import { WEEK_HOURS, forecastSeries, type Band, type SeriesForecast } from './index.js';
import { meanAbsoluteError, randomSource, seasonalNaiveForecast, seasonalNaiveScale, syntheticSeries, type SyntheticOptions } from './synthetic.js';

const WEEKS = 8;
const HISTORY = WEEKS * WEEK_HOURS;

function assertOrdered(band: Band, what: string): void {
  const { lower95, lower80, expected, upper80, upper95 } = band;
  assert.ok(0 <= lower95 && lower95 <= lower80 && lower80 <= expected && expected <= upper80 && upper80 <= upper95, `${what}: bounds out of order ${JSON.stringify(band)}`);
  for (const v of Object.values(band)) assert.ok(Number.isFinite(v), `${what}: ${v} is not finite`);
}

const width80 = (b: Band): number => b.upper80 - b.lower80;
const width95 = (b: Band): number => b.upper95 - b.lower95;
const points = (f: SeriesForecast, hours: number): number[] => Array.from({ length: hours }, (_, k) => f.hour(k + 1).expected);

describe('forecasting core', function () {
  // Fitting Holt–Winters on eight weeks of hours takes tens of milliseconds per series.
  this.timeout(120_000);

  describe('on series with daily and weekly seasonality, trend and noise', () => {
    const seasonal: SyntheticOptions = { hours: HISTORY + WEEK_HOURS, level: 100, trend: 0.03, dailyAmplitude: 40, weekendFactor: 0.6, noise: 6 };

    for (const seed of [11, 12, 13]) {
      it(`chooses a seasonal Holt–Winters model that beats seasonal-naive on a one-week hold-out (MASE, seed ${seed})`, () => {
        const series = syntheticSeries(seed, seasonal);
        const history = series.slice(0, HISTORY);
        const holdout = series.slice(HISTORY);
        const forecast = forecastSeries(history, { horizonHours: WEEK_HOURS });
        assert.ok(forecast.model.startsWith('holt_winters_double'), forecast.model);
        const scale = seasonalNaiveScale(history, WEEK_HOURS);
        const modelMase = meanAbsoluteError(holdout, forecast.point) / scale;
        const naiveMase = meanAbsoluteError(holdout, seasonalNaiveForecast(history, WEEK_HOURS, WEEK_HOURS)) / scale;
        assert.ok(modelMase < 0.9 * naiveMase, `MASE ${modelMase.toFixed(3)} vs seasonal-naive ${naiveMase.toFixed(3)}`);
        // The backtest saw the same thing on the history's own hold-out.
        const { mase, baselineMase, baseline } = forecast.backtest;
        assert.equal(baseline, 'seasonal_naive_weekly');
        assert.ok(mase !== null && baselineMase !== null && mase < baselineMase, JSON.stringify(forecast.backtest));
      });
    }

    it('widens its intervals with the horizon, for single hours and for totals', () => {
      const forecast = forecastSeries(syntheticSeries(21, seasonal).slice(0, HISTORY), { horizonHours: 744 });
      let previous: Band | undefined;
      for (let h = 1; h <= 744; h++) {
        const band = forecast.hour(h);
        assertOrdered(band, `hour ${h}`);
        if (previous && band.expected > 0 && previous.expected > 0) {
          // Offsets grow (the lower bound may be clipped at 0, so compare the upper side).
          assert.ok(band.upper80 - band.expected >= previous.upper80 - previous.expected - 1e-9, `hour ${h}: the 80% interval narrowed`);
          assert.ok(band.upper95 - band.expected >= previous.upper95 - previous.expected - 1e-9, `hour ${h}: the 95% interval narrowed`);
        }
        previous = band;
      }
      assert.ok(width80(forecast.hour(168)) > width80(forecast.hour(1)), 'a week ahead is less certain than an hour ahead');
      assert.ok(width95(forecast.hour(720)) > width95(forecast.hour(168)), 'a month ahead is less certain than a week ahead');
      const totals = [1, 24, 168, 720].map((k) => forecast.total(k));
      totals.forEach((t, i) => assertOrdered(t, `total ${i}`));
      for (let i = 1; i < totals.length; i++) assert.ok(width80((totals[i] as Band)) > width80(totals[i - 1] as Band), `total ${i} is not wider`);
    });

    it('covers about 80% (and 95%) of hold-out hours with its 80% (and 95%) intervals over 30 series', () => {
      let inside80 = 0;
      let inside95 = 0;
      let count = 0;
      const horizon = 48;
      for (let seed = 100; seed < 130; seed++) {
        const random = randomSource(seed);
        const options: SyntheticOptions = {
          hours: HISTORY + horizon,
          level: 50 + 200 * random.uniform(),
          trend: 0.05 * (random.uniform() - 0.5),
          dailyAmplitude: 10 + 40 * random.uniform(),
          weekendFactor: 0.4 + 0.6 * random.uniform(),
          noise: 3 + 10 * random.uniform(),
        };
        const series = syntheticSeries(seed, options);
        const forecast = forecastSeries(series.slice(0, HISTORY), { horizonHours: horizon });
        for (let h = 1; h <= horizon; h++) {
          const actual = series[HISTORY + h - 1] ?? NaN;
          const band = forecast.hour(h);
          if (actual >= band.lower80 && actual <= band.upper80) inside80++;
          if (actual >= band.lower95 && actual <= band.upper95) inside95++;
          count++;
        }
      }
      const coverage80 = inside80 / count;
      const coverage95 = inside95 / count;
      assert.ok(coverage80 >= 0.7 && coverage80 <= 0.9, `80% interval coverage ${coverage80.toFixed(3)}`);
      assert.ok(coverage95 >= 0.88 && coverage95 <= 0.995, `95% interval coverage ${coverage95.toFixed(3)}`);
    });

    it('gives the same forecast for the same series', () => {
      const history = syntheticSeries(31, seasonal).slice(0, HISTORY);
      const a = forecastSeries(history, { horizonHours: 48 });
      const b = forecastSeries(history, { horizonHours: 48 });
      assert.deepEqual(a.point, b.point);
      assert.deepEqual(a.total(48), b.total(48));
    });

    it('follows a level shift (a deploy that doubles usage) within days', () => {
      const shiftAt = HISTORY - 4 * 24;
      const series = syntheticSeries(41, { ...seasonal, trend: 0, hours: HISTORY + WEEK_HOURS, shiftAt, shiftFactor: 2 });
      const forecast = forecastSeries(series.slice(0, HISTORY), { horizonHours: WEEK_HOURS });
      const predicted = forecast.total(WEEK_HOURS).expected / WEEK_HOURS;
      const after = series.slice(HISTORY).reduce((a, b) => a + b, 0) / WEEK_HOURS;
      const before = series.slice(shiftAt - 2 * WEEK_HOURS, shiftAt - WEEK_HOURS).reduce((a, b) => a + b, 0) / WEEK_HOURS;
      assert.ok(Math.abs(predicted - after) < Math.abs(predicted - before), `forecast mean ${predicted.toFixed(1)}: new level ${after.toFixed(1)}, old ${before.toFixed(1)}`);
    });
  });

  describe('outliers in the history', () => {
    it('does not expect an incident again: the forecast of a history with one is close to that of the clean history', () => {
      const options: SyntheticOptions = { hours: HISTORY, level: 100, trend: 0.02, dailyAmplitude: 40, weekendFactor: 0.6, noise: 4 };
      const clean = syntheticSeries(71, options);
      // Five hours at five times the usual, exactly one week before the end: seasonal-naive and a
      // weekly season would repeat them next week.
      const incident = clean.map((v, t) => (t >= HISTORY - WEEK_HOURS + 10 && t < HISTORY - WEEK_HOURS + 15 ? v * 5 : v));
      const fromClean = forecastSeries(clean, { horizonHours: 24 });
      const fromIncident = forecastSeries(incident, { horizonHours: 24 });
      for (let h = 11; h <= 15; h++) {
        const a = fromClean.hour(h).expected;
        const b = fromIncident.hour(h).expected;
        assert.ok(Math.abs(b - a) < 0.15 * a, `hour ${h}: ${b.toFixed(1)} with the incident vs ${a.toFixed(1)} without`);
      }
    });
  });

  describe('short histories', () => {
    const cases: { hours: number; allowed: string[] }[] = [
      { hours: 1, allowed: ['mean'] },
      { hours: 5, allowed: ['mean'] },
      { hours: 12, allowed: ['mean', 'drift', 'ses'] },
      { hours: 40, allowed: ['mean', 'drift', 'ses', 'seasonal_naive_daily'] },
      { hours: 100, allowed: ['mean', 'ses', 'seasonal_naive_daily', 'seasonal_median_daily', 'holt_winters_daily'] },
      { hours: 300, allowed: ['mean', 'ses', 'seasonal_naive_daily', 'seasonal_median_daily', 'holt_winters_daily'] },
      { hours: 500, allowed: ['seasonal_naive_daily', 'seasonal_naive_weekly', 'seasonal_median_daily', 'seasonal_median_weekly', 'ses', 'holt_winters_daily', 'holt_winters_double'] },
    ];
    for (const { hours, allowed } of cases) {
      it(`falls back to a model the history supports with ${hours} hour(s), without throwing`, () => {
        const history = syntheticSeries(51, { hours });
        const forecast = forecastSeries(history, { horizonHours: 744 });
        assert.ok(allowed.includes(forecast.model), `${forecast.model} with ${hours} hours`);
        assert.equal(forecast.point.length, 744);
        forecast.point.forEach((v, k) => assert.ok(Number.isFinite(v) && v >= 0, `hour ${k + 1}: ${v}`));
        for (const k of [1, 24, 168, 744]) assertOrdered(forecast.total(k), `total of ${k} hours`);
        // With little history the intervals are wide: the truth is rarely known to ±10% a day ahead.
        if (hours < 48) assert.ok(width80(forecast.total(24)) >= 0.9 * forecast.total(24).expected);
      });
    }

    it('forecasts an empty history as zero', () => {
      const forecast = forecastSeries([], { horizonHours: 24 });
      assert.equal(forecast.model, 'zero');
      assert.deepEqual(forecast.total(24), { expected: 0, median: 0, lower80: 0, upper80: 0, lower95: 0, upper95: 0 });
    });
  });

  describe('zeros and intermittent series', () => {
    it('forecasts an all-zero series as exactly zero with zero-width intervals', () => {
      const forecast = forecastSeries(new Array<number>(HISTORY).fill(0), { horizonHours: 744 });
      assert.equal(forecast.model, 'zero');
      assert.ok(forecast.point.every((v) => v === 0));
      assert.deepEqual(forecast.total(744), { expected: 0, median: 0, lower80: 0, upper80: 0, lower95: 0, upper95: 0 });
      assert.equal(forecast.backtest.mase, null);
    });

    it('forecasts a sparse random series at about its average rate, never below zero', () => {
      const random = randomSource(61);
      // About one hour in fifteen has 1–5 invocations.
      const series = Array.from({ length: HISTORY }, () => (random.uniform() < 1 / 15 ? 1 + Math.floor(5 * random.uniform()) : 0));
      const rate = series.reduce((a, b) => a + b, 0) / series.length;
      const forecast = forecastSeries(series, { horizonHours: 168 });
      const week = forecast.total(168);
      assertOrdered(week, 'week');
      assert.ok(week.expected > 0.5 * rate * 168 && week.expected < 2 * rate * 168, `${forecast.model}: ${week.expected.toFixed(1)} for a week at ${rate.toFixed(3)}/h`);
      assert.ok(forecast.point.every((v) => v >= 0));
      assert.ok(week.upper80 > week.expected, 'an uncertain series has a real interval');
    });

    it('gives an hour of a series that is mostly 0 a lower bound of 0, and covers about 80% / 95% of its hours', () => {
      let inside80 = 0;
      let inside95 = 0;
      let count = 0;
      for (let seed = 62; seed < 68; seed++) {
        const random = randomSource(seed);
        // One hour in six has 1–20 invocations: 0 is the most likely value of any hour.
        const draw = (): number => (random.uniform() < 1 / 6 ? 1 + Math.floor(20 * random.uniform()) : 0);
        const series = Array.from({ length: HISTORY + 168 }, draw);
        const forecast = forecastSeries(series.slice(0, HISTORY), { horizonHours: 168 });
        series.slice(HISTORY).forEach((v, k) => {
          const band = forecast.hour(k + 1);
          assert.equal(band.lower80, 0, `seed ${seed}, hour ${k + 1}`);
          assert.equal(band.lower95, 0, `seed ${seed}, hour ${k + 1}`);
          if (v <= band.upper80) inside80++;
          if (v <= band.upper95) inside95++;
          count++;
        });
      }
      // A band from 0 holds the whole lower tail, so its top is the 80% (95%) point, not the 90% (97.5%) one.
      assert.ok(inside80 / count >= 0.75 && inside80 / count <= 0.86, `${inside80} of ${count} hours inside the 80% interval`);
      assert.ok(inside95 / count >= 0.9 && inside95 / count <= 0.98, `${inside95} of ${count} hours inside the 95% interval`);
      // A smooth series keeps a lower bound above 0.
      const smooth = forecastSeries(syntheticSeries(63, { hours: HISTORY }), { horizonHours: 24 });
      assert.ok(smooth.hour(1).lower80 > 0);
    });

    it('forecasts a timer that fires every 6 hours by its pattern', () => {
      const series = Array.from({ length: 4 * WEEK_HOURS }, (_, t) => (t % 6 === 0 ? 60 : 0));
      const forecast = forecastSeries(series, { horizonHours: 48 });
      points(forecast, 48).forEach((v, k) => assert.ok(Math.abs(v - ((series.length + k) % 6 === 0 ? 60 : 0)) < 1, `hour ${k + 1}: ${v}`));
      assert.ok(Math.abs(forecast.total(24).expected - 240) < 1);
    });
  });

  describe('odd hours, medians and deploys', () => {
    it('does not repeat one odd hour of the last day: a timer with a single extra burst is forecast by its seasonal median', () => {
      // Every 6 hours 12 calls, for 5 days; one extra burst of 40 calls 20 hours before the end.
      const series: number[] = Array.from({ length: 5 * 24 }, (_, t) => (t % 6 === 0 ? 12 : 0));
      const odd = series.length - 20;
      series[odd] = 40;
      const forecast = forecastSeries(series, { horizonHours: 24 });
      assert.equal(forecast.model, 'seasonal_median_daily');
      // The hour one day after the burst expects the timer's 0, not the burst again.
      assert.equal(forecast.hour(odd + 24 - series.length + 1).expected, 0);
      points(forecast, 24).forEach((v, k) => assert.equal(v, (series.length + k) % 6 === 0 ? 12 : 0, `hour ${k + 1}`));
    });

    it('gives every hour and total a median inside its 80% band, below the expected value for bursty usage', () => {
      const random = randomSource(404);
      // A quiet service: 0 most hours, a burst of 5–50 calls one hour in six.
      const series = Array.from({ length: 4 * WEEK_HOURS }, () => (random.uniform() < 1 / 6 ? Math.round(5 + 45 * random.uniform()) : 0));
      const forecast = forecastSeries(series, { horizonHours: 48 });
      for (let h = 1; h <= 48; h++) {
        const band = forecast.hour(h);
        assert.ok(band.lower80 <= band.median && band.median <= band.upper80, `hour ${h}: ${JSON.stringify(band)}`);
        // Usually nothing happens in an hour: the usual outcome is below the average.
        assert.ok(band.median < band.expected, `hour ${h}: median ${band.median} vs expected ${band.expected}`);
      }
      for (const k of [1, 24, 48]) {
        const total = forecast.total(k);
        assert.ok(total.lower80 <= total.median && total.median <= total.upper80, `total ${k}: ${JSON.stringify(total)}`);
      }
      // A smooth series' median is close to its expected value.
      const smooth = forecastSeries(syntheticSeries(65, { hours: HISTORY, noise: 4 }), { horizonHours: 24 });
      for (let h = 1; h <= 24; h++) assert.ok(Math.abs(smooth.hour(h).median - smooth.hour(h).expected) < 4, `smooth hour ${h}`);
    });

    it('takes a new level at a known deploy after hours, not days, and leaves a deploy that changed nothing alone', () => {
      const hours = 4 * WEEK_HOURS;
      const base: SyntheticOptions = { hours, level: 100, trend: 0, dailyAmplitude: 30, weekendFactor: 0.7, noise: 4 };
      const deployAt = hours - 14;
      const shifted = syntheticSeries(71, { ...base, shiftAt: deployAt, shiftFactor: 2 });
      const withDeploy = forecastSeries(shifted, { horizonHours: 24, deploys: [deployAt] });
      assert.equal(withDeploy.levelShift?.at, deployAt);
      assert.equal(withDeploy.levelShift?.cause, 'deploy');
      assert.ok(Math.abs((withDeploy.levelShift?.factor ?? 0) - 2) < 0.2, `factor ${withDeploy.levelShift?.factor}`);
      // The truth of the next day: the same shape at twice the level.
      const truth = syntheticSeries(71, { ...base, hours: hours + 24, shiftAt: deployAt, shiftFactor: 2, noise: 0 }).slice(hours);
      const truthTotal = truth.reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(withDeploy.total(24).expected / truthTotal - 1) < 0.1, `with the deploy: ${withDeploy.total(24).expected} vs ${truthTotal}`);
      // Without the deploy, 14 hours are not a new level (detectLevelShift wants two days).
      const withoutDeploy = forecastSeries(shifted, { horizonHours: 24 });
      assert.equal(withoutDeploy.levelShift, null);
      assert.ok(withoutDeploy.total(24).expected < 0.85 * truthTotal);
      // A deploy that changed nothing, one older than a week, and one only 3 hours old: no shift.
      // (levelShiftAtDeploy's own tests cover bursts, outages and noise after a deploy.)
      const plain = syntheticSeries(72, base);
      assert.equal(forecastSeries(plain, { horizonHours: 24, deploys: [hours - 30] }).levelShift, null);
      assert.equal(forecastSeries(syntheticSeries(71, { ...base, shiftAt: hours - 200, shiftFactor: 2 }), { horizonHours: 24, deploys: [hours - 200] }).levelShift, null);
      assert.equal(forecastSeries(syntheticSeries(71, { ...base, shiftAt: hours - 3, shiftFactor: 2 }), { horizonHours: 24, deploys: [hours - 3] }).levelShift, null);
    });
  });

  describe('input checks', () => {
    it('refuses negative, NaN and infinite values with a RangeError naming the position', () => {
      for (const bad of [-1, NaN, Infinity]) {
        assert.throws(() => forecastSeries([1, 2, bad, 4], { horizonHours: 2 }), (err: unknown) => err instanceof RangeError && err.message.includes('series[2]'));
      }
    });

    it('refuses a horizon that is not a whole number of hours ≥ 1', () => {
      for (const horizonHours of [0, -3, 1.5]) assert.throws(() => forecastSeries([1, 2, 3], { horizonHours }), RangeError);
    });
  });
});
