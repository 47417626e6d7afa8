/**
 * `npm run eval:forecast`: an honest evaluation of the forecasting and anomaly cores, printed as
 * tables. Nothing here is tuned to the data: every forecast is `forecastSeries` choosing its model
 * by backtest on the training part only, with the defaults the forecast stage uses.
 *
 * 1. **Azure Functions trace** (fixtures/azure-functions-2019-500fn, CC-BY 4.0): 500 functions ×
 *    480 minutes, summed into 5-minute buckets (96 per function). The first 7 hours (84 buckets)
 *    train, the last hour (12 buckets) is forecast. The models are index-based, so on this series
 *    the "daily" season of 24 positions is 2 hours (it contains the 5/10/15/30/60-minute timer
 *    periods); the trace holds no days or weeks to learn from.
 * 2. **Synthetic workloads with known truth** (src/core/forecast/synthetic.ts, seeded): 8 weeks of
 *    hours train, the next week is forecast; kinds: daily + weekly seasonality, a strong trend, a
 *    level shift (up ×1.5–2.2 or down ×0.5–0.7) 1–6 days before the end of the history, three
 *    incidents (×3–5 for 3–8 hours) somewhere in the history, and intermittent usage.
 * 3. **Anomalies** on synthetic series (4 weeks + the examined 24 hours): half with an injected
 *    spike (×1.8–4) or drop (×0–0.4) of 2–6 hours, half clean (seasonal, level-shifted earlier, or a
 *    timer). A detection is a true positive when it overlaps the injected hours.
 *
 * Metrics, per series with a non-zero MASE scale (the in-sample MAE of the one-step seasonal-naive
 * forecast: season 24 buckets on the trace, 168 hours on synthetic series):
 * - **MASE median**: the MAE of the forecast's medians (`hour(h).median`) over that scale. MAE is
 *   the loss a median minimises, so the median is the point forecast it judges (on bursty usage the
 *   expected value, which a bill adds up, pays for the bursts in every quiet hour); **MASE mean**
 *   judges the expected values the same way, and **s-naive** / **naive** (last value) the baselines.
 *   Averaged (mean, median) over series.
 * - **wMASE**: the mean weighted by each series' share of the training usage, as the M5
 *   competition weighted its series: a function called ten times in seven hours counts for little
 *   in anyone's bill. Issue 8's "MASE < 0.9 on aggregate" is judged on it; the unweighted mean is
 *   printed beside it, with the best constant forecast chosen in hindsight as a reference.
 * - **MAE/s-naive**: Σ MAE(expected) / Σ MAE(seasonal-naive); **sMAPE** (2|a−f|/(|a|+|f|), 0 when
 *   both are 0) of the expected values.
 * - **cover 80% / 95%**: the share of forecast points inside the bands (bounds included). Under the
 *   trace's table the points whose 80% band has zero width (an exact forecast: the backtest errors
 *   were 0) are counted apart, with the coverage of the other points: on whole counts an exact
 *   forecast that is hit counts as covered at any nominal level, which no interval width changes.
 *
 * Synthetic rows besides the five kinds: the level shifts again with the deploy hour passed to
 * `forecastSeries` (as the forecast stage passes the hours new revisions began serving), and
 * seasonal series with a deploy that changed nothing (not in `all`).
 */
import { fileURLToPath } from 'node:url';
import { detectAnomalies, forecastSeries, type SeriesForecast } from '../src/core/forecast/index.js';
import { randomSource, seasonalNaiveScale, syntheticSeries, type SyntheticOptions } from '../src/core/forecast/synthetic.js';
import { loadAzureTrace } from '../src/demo/trace.js';

const traceDir = fileURLToPath(new URL('../fixtures/azure-functions-2019-500fn/', import.meta.url));

interface Tally {
  series: number;
  /** Per series with a non-zero scale: MASE of the expected-value and median forecasts and of the baselines. */
  maseModel: number[];
  maseMedian: number[];
  maseSeasonal: number[];
  maseNaive: number[];
  /** The same series' weights: their share of the training usage (M5's weighting). */
  weights: number[];
  maeModel: number;
  maeSeasonal: number;
  smape: number;
  points: number;
  in80: number;
  in95: number;
  /** Points whose 80% band has zero width (an exact forecast), and how many of them were hit. */
  exact: number;
  exactIn80: number;
  exactIn95: number;
}

const emptyTally = (): Tally => ({
  series: 0,
  maseModel: [],
  maseMedian: [],
  maseSeasonal: [],
  maseNaive: [],
  weights: [],
  maeModel: 0,
  maeSeasonal: 0,
  smape: 0,
  points: 0,
  in80: 0,
  in95: 0,
  exact: 0,
  exactIn80: 0,
  exactIn95: 0,
});

const mean = (values: readonly number[]): number => values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);
const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length === 0 ? NaN : sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
const mae = (actual: readonly number[], forecast: readonly number[]): number => mean(actual.map((a, i) => Math.abs(a - (forecast[i] ?? 0))));
const weightedMean = (values: readonly number[], weights: readonly number[]): number => {
  const total = weights.reduce((s, w) => s + w, 0);
  return values.reduce((s, v, i) => s + v * (weights[i] ?? 0), 0) / total;
};

/** Adds one series' hold-out to `tally`. */
function score(tally: Tally, train: readonly number[], test: readonly number[], forecast: SeriesForecast, season: number): void {
  const seasonal = test.map((_, k) => train[train.length - season + (k % season)] ?? 0);
  const naive = test.map(() => train[train.length - 1] ?? 0);
  const point = test.map((_, k) => forecast.point[k] ?? 0);
  const median = test.map((_, k) => forecast.hour(k + 1).median);
  const scale = seasonalNaiveScale([...train], season);
  const maeModel = mae(test, point);
  const maeSeasonal = mae(test, seasonal);
  tally.series++;
  if (scale > 0) {
    tally.maseModel.push(maeModel / scale);
    tally.maseMedian.push(mae(test, median) / scale);
    tally.maseSeasonal.push(maeSeasonal / scale);
    tally.maseNaive.push(mae(test, naive) / scale);
    tally.weights.push(train.reduce((s, v) => s + v, 0));
  }
  tally.maeModel += maeModel;
  tally.maeSeasonal += maeSeasonal;
  test.forEach((a, k) => {
    const f = point[k] ?? 0;
    tally.smape += a === 0 && f === 0 ? 0 : (2 * Math.abs(a - f)) / (Math.abs(a) + Math.abs(f));
    const band = forecast.hour(k + 1);
    tally.points++;
    const in80 = a >= band.lower80 && a <= band.upper80;
    const in95 = a >= band.lower95 && a <= band.upper95;
    if (in80) tally.in80++;
    if (in95) tally.in95++;
    if (band.upper80 === band.lower80) {
      tally.exact++;
      if (in80) tally.exactIn80++;
      if (in95) tally.exactIn95++;
    }
  });
}

const fixed = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : '—');

function printTable(title: string, rows: [string, Tally][]): void {
  console.log(`\n${title}`);
  const header = [
    'group',
    'series',
    'MASE median',
    'MASE mean',
    'MASE s-naive',
    'MASE naive',
    'wMASE median',
    'wMASE s-naive',
    'median MASE median',
    'median s-naive',
    'MAE/s-naive',
    'sMAPE',
    'cover 80%',
    'cover 95%',
  ];
  const lines = rows.map(([name, t]) => [
    name,
    String(t.series),
    fixed(mean(t.maseMedian)),
    fixed(mean(t.maseModel)),
    fixed(mean(t.maseSeasonal)),
    fixed(mean(t.maseNaive)),
    fixed(weightedMean(t.maseMedian, t.weights)),
    fixed(weightedMean(t.maseSeasonal, t.weights)),
    fixed(median(t.maseMedian)),
    fixed(median(t.maseSeasonal)),
    fixed(t.maeModel / t.maeSeasonal),
    fixed(t.smape / t.points),
    fixed(t.in80 / t.points),
    fixed(t.in95 / t.points),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  console.log(format(header));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const l of lines) console.log(format(l));
}

async function traceEvaluation(): Promise<void> {
  const trace = await loadAzureTrace(traceDir);
  const bucket = 5;
  const trainBuckets = 84;
  const byTrigger = new Map<string, Tally>();
  const all = emptyTally();
  const models = new Map<string, number>();
  // The best constant forecast of each hold-out chosen in hindsight (its median): a reference for
  // how much of the unweighted mean MASE no forecast made beforehand could remove.
  const hindsight: number[] = [];
  for (const fn of trace.functions) {
    const buckets: number[] = [];
    for (let m = 0; m < fn.invocationsPerMinute.length; m += bucket) buckets.push(fn.invocationsPerMinute.slice(m, m + bucket).reduce((s, v) => s + v, 0));
    const train = buckets.slice(0, trainBuckets);
    const test = buckets.slice(trainBuckets);
    const forecast = forecastSeries(train, { horizonHours: test.length });
    models.set(forecast.model, (models.get(forecast.model) ?? 0) + 1);
    const group = byTrigger.get(fn.trigger) ?? emptyTally();
    byTrigger.set(fn.trigger, group);
    score(group, train, test, forecast, 24);
    score(all, train, test, forecast, 24);
    const scale = seasonalNaiveScale(train, 24);
    const sorted = [...test].sort((a, b) => a - b);
    if (scale > 0) hindsight.push(mae(test, test.map(() => median(sorted))) / scale);
  }
  const groups = [...byTrigger.entries()].sort((a, b) => b[1].series - a[1].series);
  printTable(`Azure Functions 2019 trace: ${trace.functions.length} functions, 5-minute buckets, 7 h train → 1 h forecast (season 24 buckets = 2 h)`, [['all', all], ...groups]);
  const others = all.points - all.exact;
  console.log(
    `zero-width 80% bands: ${all.exact} of ${all.points} points (${fixed(all.exact / all.points)}), covering ${fixed(all.exactIn80 / all.exact)} (80%) / ${fixed(all.exactIn95 / all.exact)} (95%); ` +
      `the other points: ${fixed((all.in80 - all.exactIn80) / others)} / ${fixed((all.in95 - all.exactIn95) / others)}`,
  );
  console.log(`models chosen: ${[...models.entries()].map(([m, c]) => `${m} ${c}`).join(', ')}`);
  const aggregate = weightedMean(all.maseMedian, all.weights);
  const widthCoverage = (all.in80 - all.exactIn80) / others;
  const inRange = (coverage: number): boolean => coverage >= 0.75 && coverage <= 0.85;
  console.log(`\nTargets of issue 8 on the trace:`);
  console.log(
    `- MASE < 0.9 on aggregate: ${fixed(aggregate)} (${aggregate < 0.9 ? 'met' : 'NOT met'}), the mean MASE of the median forecasts weighted by each function's share of the training invocations (M5's weighting); ` +
      `seasonal-naive ${fixed(weightedMean(all.maseSeasonal, all.weights))}. Unweighted mean ${fixed(mean(all.maseMedian))} (${mean(all.maseMedian) < 0.9 ? 'met' : 'NOT met'}; seasonal-naive ${fixed(mean(all.maseSeasonal))}, ` +
      `the best constant in hindsight ${fixed(mean(hindsight))}: functions that were idle for hours and then burst dominate it).`,
  );
  console.log(
    `- 80% coverage in 0.75–0.85: ${fixed(all.in80 / all.points)} over all points (${inRange(all.in80 / all.points) ? 'met' : 'NOT met'}); ${fixed(widthCoverage)} (${inRange(widthCoverage) ? 'met' : 'NOT met'}) over the ${others} points whose band has a width; ` +
      `the other ${all.exact} are exact forecasts (every backtest error 0), hit ${fixed(all.exactIn80 / all.exact)} of the time, which no band of whole numbers can hold to 80%.`,
  );
}

type Kind = 'seasonal' | 'trend' | 'level shift' | 'outliers' | 'intermittent';

/** A synthetic series of `kind` (history + horizon hours), seeded, with the hour of its level shift (a deploy). */
function syntheticCase(kind: Kind, seed: number, hours: number, historyHours: number): { series: number[]; shiftAt: number | null } {
  const random = randomSource(seed * 7919);
  const options: SyntheticOptions = {
    hours,
    level: 50 + 200 * random.uniform(),
    trend: 0.02 * (random.uniform() - 0.5),
    dailyAmplitude: 10 + 40 * random.uniform(),
    weekendFactor: 0.4 + 0.6 * random.uniform(),
    noise: 2 + 8 * random.uniform(),
  };
  if (kind === 'trend') options.trend = 0.05 + 0.1 * random.uniform();
  if (kind === 'level shift') {
    // A shift 1–6 days before the end of the history, up (×1.5–2.2) or down (×0.5–0.7).
    const up = random.uniform() < 0.5;
    Object.assign(options, { shiftAt: historyHours - Math.round(24 * (1 + 5 * random.uniform())), shiftFactor: up ? 1.5 + 0.7 * random.uniform() : 0.5 + 0.2 * random.uniform() });
  }
  if (kind === 'intermittent') {
    const rate = 0.05 + 0.15 * random.uniform();
    return { series: Array.from({ length: hours }, () => (random.uniform() < rate ? Math.round(1 + 20 * random.uniform()) : 0)), shiftAt: null };
  }
  const series = syntheticSeries(seed, options);
  if (kind === 'outliers') {
    // Three incidents in the history (×3–5 for 3–8 hours): the next week should not expect them again.
    for (let i = 0; i < 3; i++) {
      const start = Math.floor((historyHours - 24) * random.uniform());
      const factor = 3 + 2 * random.uniform();
      for (let t = start; t < start + 3 + Math.floor(6 * random.uniform()); t++) series[t] = (series[t] ?? 0) * factor;
    }
  }
  return { series, shiftAt: options.shiftAt ?? null };
}

const synthetic = (kind: Kind, seed: number, hours: number, historyHours: number): number[] => syntheticCase(kind, seed, hours, historyHours).series;

function syntheticEvaluation(): void {
  const history = 8 * 168;
  const horizon = 168;
  const perKind = 15;
  const rows: [string, Tally][] = [];
  const all = emptyTally();
  // Besides the five kinds: the level shifts again with their deploy hour known (the forecast stage
  // passes the hours new revisions began serving), and seasonal series with a deploy that changed nothing.
  const variants = [
    ...(['seasonal', 'trend', 'level shift', 'outliers', 'intermittent'] as const).map((kind) => ({ name: kind, kind, deploy: 'none' as const })),
    { name: 'level shift, deploy known', kind: 'level shift' as const, deploy: 'at shift' as const },
    { name: 'seasonal, deploy, no shift', kind: 'seasonal' as const, deploy: 'random' as const },
  ];
  for (const { name, kind, deploy } of variants) {
    const tally = emptyTally();
    for (let seed = 1; seed <= perKind; seed++) {
      const { series, shiftAt } = syntheticCase(kind, seed + 1000 * kind.length, history + horizon, history);
      const train = series.slice(0, history);
      const test = series.slice(history);
      const deploys = deploy === 'at shift' && shiftAt !== null ? [shiftAt] : deploy === 'random' ? [history - 6 - ((seed * 37) % 150)] : [];
      const forecast = forecastSeries(train, { horizonHours: horizon, deploys });
      score(tally, train, test, forecast, 168);
      if (deploy === 'none') score(all, train, test, forecast, 168);
    }
    rows.push([name, tally]);
  }
  printTable(`Synthetic workloads: ${perKind} series per kind, 8 weeks train → 1 week forecast (hourly, season 168 h)`, [['all', all], ...rows]);
}

function anomalyEvaluation(): void {
  const history = 4 * 168;
  const window = 24;
  let injected = 0;
  let truePositives = 0;
  let falsePositives = 0;
  let detectedInjections = 0;
  const count = 160;
  for (let seed = 1; seed <= count; seed++) {
    const random = randomSource(seed * 104_729);
    const clean = seed % 4 === 0 ? synthetic('level shift', seed, history + window, history - 9 * 24) : seed % 8 === 1 ? Array.from({ length: history + window }, (_, t) => (t % 6 === 0 ? 12 : 0)) : synthetic('seasonal', seed, history + window, history);
    const series = [...clean];
    let span: [number, number] | undefined;
    if (seed % 2 === 0) {
      const length = 2 + Math.floor(5 * random.uniform());
      const start = history + Math.floor((window - length) * random.uniform());
      const factor = random.uniform() < 0.5 ? 1.8 + 2.2 * random.uniform() : 0.4 * random.uniform();
      for (let t = start; t < start + length; t++) series[t] = (series[t] ?? 0) * factor;
      span = [start, start + length];
      injected++;
    }
    let found = false;
    for (const a of detectAnomalies(series, { windowHours: window }).anomalies) {
      if (span && a.start < span[1] && a.end > span[0]) {
        truePositives++;
        found = true;
      } else falsePositives++;
    }
    if (found) detectedInjections++;
  }
  const precision = truePositives / Math.max(1, truePositives + falsePositives);
  const recall = detectedInjections / Math.max(1, injected);
  console.log(`\nAnomalies: ${count} synthetic series (4 weeks + 24 h examined), ${injected} with an injected spike or drop of 2–6 h`);
  console.log('| detections | true positives | false positives | precision | recall |');
  console.log('|---:|---:|---:|---:|---:|');
  console.log(`| ${truePositives + falsePositives} | ${truePositives} | ${falsePositives} | ${fixed(precision)} | ${fixed(recall)} |`);
}

const started = Date.now();
await traceEvaluation();
syntheticEvaluation();
anomalyEvaluation();
console.log(`\n(${((Date.now() - started) / 1000).toFixed(1)} s)`);
