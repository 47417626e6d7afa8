/**
 * Anomaly detection on synthetic hourly series (seeded): injected spikes and drops are found where
 * they were put, plain seasonality, trend and noise raise nothing, short incidents and small
 * wobbles stay under the minimum duration and magnitude, and an earlier incident in the history
 * does not hide a later one.
 */
import assert from 'node:assert/strict';
import { detectAnomalies } from './anomaly.js';
import { cleanHistory, robustScale } from './clean.js';
import { WEEK_HOURS } from './models.js';
import { syntheticSeries, type SyntheticOptions } from './synthetic.js';

const HISTORY = 4 * WEEK_HOURS;
const seasonal: SyntheticOptions = { hours: HISTORY + 24, level: 100, trend: 0.02, dailyAmplitude: 40, weekendFactor: 0.6, noise: 5 };

/** The series with hours [from, to) multiplied by `factor`. */
function inject(series: readonly number[], from: number, to: number, factor: number): number[] {
  return series.map((v, t) => (t >= from && t < to ? v * factor : v));
}

describe('anomaly detection', function () {
  this.timeout(120_000);

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`raises nothing on plain daily and weekly seasonality with trend and noise (seed ${seed})`, () => {
      const scan = detectAnomalies(syntheticSeries(seed, seasonal));
      assert.deepEqual(scan.anomalies, [], JSON.stringify(scan.anomalies));
      assert.equal(scan.hours.length, 24);
      assert.ok(scan.model !== null);
    });
  }

  it('finds a three-hour spike where it was injected, with its expected and observed totals', () => {
    const clean = syntheticSeries(7, seasonal);
    const from = HISTORY + 10;
    const series = inject(clean, from, from + 3, 3);
    const scan = detectAnomalies(series);
    assert.equal(scan.anomalies.length, 1, JSON.stringify(scan.anomalies));
    const [anomaly] = scan.anomalies;
    assert.ok(anomaly);
    assert.equal(anomaly.direction, 'spike');
    assert.equal(anomaly.start, from);
    assert.equal(anomaly.end, from + 3);
    const observed = series.slice(from, from + 3).reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(anomaly.observed - observed) < 1e-9);
    // Expected is near the clean series (the model did not see the spike).
    const truth = clean.slice(from, from + 3).reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(anomaly.expected - truth) / truth < 0.25, `expected ${anomaly.expected} vs clean ${truth}`);
    assert.ok(anomaly.score > 4);
  });

  it('finds an outage (usage dropping to nothing) as a drop', () => {
    const from = HISTORY + 12;
    const scan = detectAnomalies(inject(syntheticSeries(8, seasonal), from, from + 4, 0));
    assert.equal(scan.anomalies.length, 1, JSON.stringify(scan.anomalies));
    assert.equal(scan.anomalies[0]?.direction, 'drop');
    assert.equal(scan.anomalies[0]?.start, from);
    assert.ok((scan.anomalies[0]?.score ?? 0) < -4);
  });

  it('reports a spike of one hour only when one hour is enough (minimum duration)', () => {
    const from = HISTORY + 15;
    const series = inject(syntheticSeries(9, seasonal), from, from + 1, 4);
    assert.equal(detectAnomalies(series).anomalies.length, 0);
    assert.equal(detectAnomalies(series, { minHours: 1 }).anomalies.length, 1);
  });

  it('ignores a shift smaller than the minimum magnitude even when it is statistically clear', () => {
    // Almost no noise: a 30% rise scores far beyond the threshold but is below minRelative 0.5.
    const quiet = syntheticSeries(10, { ...seasonal, noise: 0.2 });
    const from = HISTORY + 8;
    const series = inject(quiet, from, from + 6, 1.3);
    assert.equal(detectAnomalies(series).anomalies.length, 0);
    assert.equal(detectAnomalies(series, { minRelative: 0.1 }).anomalies.length, 1);
  });

  it('still finds today’s spike when the history had an incident of its own (the history is cleaned)', () => {
    const earlier = HISTORY - 3 * 24 + 10;
    const from = HISTORY + 10;
    const series = inject(inject(syntheticSeries(11, seasonal), earlier, earlier + 3, 5), from, from + 3, 3);
    const scan = detectAnomalies(series);
    assert.equal(scan.anomalies.length, 1, JSON.stringify(scan.anomalies));
    assert.equal(scan.anomalies[0]?.start, from);
  });

  it('raises nothing on an intermittent timer series that keeps its schedule', () => {
    const timer = Array.from({ length: HISTORY + 24 }, (_, t) => (t % 6 === 0 ? 12 : 0));
    assert.deepEqual(detectAnomalies(timer).anomalies, []);
  });

  it('judges nothing with under a week of history', () => {
    const scan = detectAnomalies(syntheticSeries(12, { ...seasonal, hours: 160 }).map((v, t) => (t > 140 ? v * 10 : v)));
    assert.equal(scan.model, null);
    assert.deepEqual(scan.anomalies, []);
  });

  it('cleans an outlier from the history and leaves ordinary hours alone', () => {
    const history = syntheticSeries(13, { ...seasonal, hours: HISTORY });
    const spiked = inject(history, 100, 101, 20);
    const cleaned = cleanHistory(spiked);
    assert.ok((cleaned[100] ?? 0) < (spiked[100] ?? 0) / 5, `hour 100 stayed ${cleaned[100]}`);
    const changed = cleaned.filter((v, t) => v !== spiked[t]).length;
    assert.ok(changed <= 3, `${changed} hours changed`);
  });

  it('keeps weekends and a level shift that lasted days: they are far from one reference but not from both', () => {
    const weekly = syntheticSeries(14, { ...seasonal, hours: HISTORY, weekendFactor: 0.3, noise: 2 });
    assert.deepEqual(cleanHistory(weekly), weekly);
    const shifted = syntheticSeries(15, { ...seasonal, hours: HISTORY, shiftAt: HISTORY - 12 * 24, shiftFactor: 2, noise: 2 });
    const cleaned = cleanHistory(shifted);
    const changed = cleaned.filter((v, t) => t >= HISTORY - 9 * 24 && v !== shifted[t]).length;
    assert.equal(changed, 0, `${changed} hours after the shift were cleaned`);
  });

  it('measures scale robustly: one huge value does not move the median or the MAD much', () => {
    const base = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const withOutlier = [...base.slice(0, 8), 1e6];
    assert.equal(robustScale(base).center, 5);
    assert.ok(Math.abs(robustScale(withOutlier).sigma - robustScale(base).sigma) < 1.5);
  });

  it('refuses a window or minimum duration that is not a whole number ≥ 1', () => {
    assert.throws(() => detectAnomalies([1, 2, 3], { windowHours: 0 }), RangeError);
    assert.throws(() => detectAnomalies([1, 2, 3], { minHours: 1.5 }), RangeError);
  });
});
