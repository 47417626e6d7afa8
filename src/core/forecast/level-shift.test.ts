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

  it('judges known deploys newest first, on hours of evidence, and not in intermittent usage nor under 12 hours', () => {
    const at = HISTORY - 16;
    const shift = levelShiftAtDeploy(syntheticSeries(5, { ...base, shiftAt: at, shiftFactor: 0.5 }), [at - 100, at]);
    assert.equal(shift?.at, at);
    assert.equal(shift?.cause, 'deploy');
    assert.ok(shift && Math.abs(shift.factor - 0.5) < 0.08, `factor ${shift?.factor}`);
    // A neutral newer deploy does not hide an older one that shifted the level.
    const older = HISTORY - 40;
    assert.equal(levelShiftAtDeploy(syntheticSeries(5, { ...base, shiftAt: older, shiftFactor: 1.8 }), [older, HISTORY - 14])?.at, older);
    const timer = Array.from({ length: HISTORY }, (_, t) => (t % 6 === 0 ? (t >= at ? 30 : 10) : 0));
    assert.equal(levelShiftAtDeploy(timer, [at]), null);
    assert.equal(levelShiftAtDeploy(syntheticSeries(5, { ...base, shiftAt: HISTORY - 8, shiftFactor: 0.5 }), [HISTORY - 8]), null);
  });

  it('takes no new level from a burst or an outage of a few hours after a deploy, nor from noise', () => {
    let found = 0;
    for (let seed = 1; seed <= 40; seed++) {
      // Three times the traffic for 8 of the 24 hours since a deploy (a retry storm, a restart burst).
      const burst = syntheticSeries(seed, base);
      for (let t = HISTORY - 24; t < HISTORY - 16; t++) burst[t] = (burst[t] ?? 0) * 3;
      // Nothing for 3 of the 12 hours since (a bad release, rolled back).
      const outage = syntheticSeries(seed, base);
      for (let t = HISTORY - 12; t < HISTORY - 9; t++) outage[t] = 0;
      // No change at all on a noisy series (noise 30 on a level of 100).
      const noisy = syntheticSeries(seed, { ...base, noise: 30 });
      for (const [y, at] of [
        [burst, HISTORY - 24],
        [outage, HISTORY - 12],
        [noisy, HISTORY - 12 - ((seed * 37) % 150)],
      ] as const) {
        if (levelShiftAtDeploy(y, [at]) !== null) found++;
      }
    }
    assert.equal(found, 0, `${found} of 120 series took a new level`);
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
