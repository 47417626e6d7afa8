/** Level-shift detection and the forecast after a shift, on seeded synthetic series with a known shift. */
import assert from 'node:assert/strict';
import { forecastSeries } from './forecast.js';
import { detectLevelShift, levelShiftAtDeploy, rescaleBeforeShift } from './level-shift.js';
import { WEEK_HOURS } from './models.js';
import { syntheticSeries, type SyntheticOptions } from './synthetic.js';

const HISTORY = 6 * WEEK_HOURS;
const base: SyntheticOptions = { hours: HISTORY, level: 120, trend: 0.01, dailyAmplitude: 40, weekendFactor: 0.6, noise: 5 };

describe('level shifts', function () {
  this.timeout(60_000);

  for (const [factor, daysAgo] of [
    [1.8, 3],
    [0.5, 5],
    [2.2, 2],
  ] as const) {
    it(`finds a ×${factor} shift ${daysAgo} days before the end, at its day and with about its factor`, () => {
      const shiftAt = HISTORY - daysAgo * 24;
      const shift = detectLevelShift(syntheticSeries(3, { ...base, shiftAt, shiftFactor: factor }));
      assert.ok(shift, 'no shift found');
      // Days are cut from the end of the history, so the shift is found at its day boundary.
      assert.equal(shift.at, shiftAt);
      assert.ok(Math.abs(shift.factor / factor - 1) < 0.1, `factor ${shift.factor}`);
    });
  }

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`finds none in plain seasonality with trend and noise (seed ${seed})`, () => {
      assert.equal(detectLevelShift(syntheticSeries(seed, { ...base, trend: 0.05 })), null);
    });
  }

  it('finds none for a single abnormal day, nor in intermittent usage, nor in under three weeks', () => {
    const spikedDay = syntheticSeries(7, base).map((v, t) => (t >= HISTORY - 24 ? v * 3 : v));
    assert.equal(detectLevelShift(spikedDay), null);
    const timer = Array.from({ length: HISTORY }, (_, t) => (t % 6 === 0 ? 10 : 0)).map((v, t) => (t > HISTORY - 72 ? v * 3 : v));
    assert.equal(detectLevelShift(timer), null);
    assert.equal(detectLevelShift(syntheticSeries(8, { ...base, hours: 2 * WEEK_HOURS, shiftAt: 2 * WEEK_HOURS - 72, shiftFactor: 2 })), null);
  });

  it('judges a known deploy on hours of evidence, and not in intermittent usage nor a deploy under 6 hours old', () => {
    const at = HISTORY - 8;
    const shift = levelShiftAtDeploy(syntheticSeries(5, { ...base, shiftAt: at, shiftFactor: 0.5 }), [at - 100, at]);
    // The latest deploy is judged.
    assert.equal(shift?.at, at);
    assert.ok(shift && Math.abs(shift.factor - 0.5) < 0.08, `factor ${shift?.factor}`);
    const timer = Array.from({ length: HISTORY }, (_, t) => (t % 6 === 0 ? (t >= at ? 30 : 10) : 0));
    assert.equal(levelShiftAtDeploy(timer, [at]), null);
    assert.equal(levelShiftAtDeploy(syntheticSeries(5, { ...base, shiftAt: HISTORY - 4, shiftFactor: 0.5 }), [HISTORY - 4]), null);
  });

  it('rescales only the hours before the shift', () => {
    const y = [1, 2, 3, 4];
    assert.deepEqual(rescaleBeforeShift(y, { at: 2, factor: 2, cause: 'detected' }), [2, 4, 3, 4]);
  });

  it('forecasts the week after a recent shift at the new level (within 10% of the truth)', () => {
    const options: SyntheticOptions = { ...base, hours: HISTORY + WEEK_HOURS, shiftAt: HISTORY - 3 * 24, shiftFactor: 1.8, noise: 3 };
    const series = syntheticSeries(9, options);
    const forecast = forecastSeries(series.slice(0, HISTORY), { horizonHours: WEEK_HOURS });
    assert.ok(forecast.levelShift, 'the shift was not seen');
    const expected = forecast.total(WEEK_HOURS).expected;
    const actual = series.slice(HISTORY).reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(expected / actual - 1) < 0.1, `forecast ${expected.toFixed(0)} vs actual ${actual.toFixed(0)}`);
  });
});
