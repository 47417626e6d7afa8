/**
 * Synthetic hourly usage with known structure, for tests and model evaluations: a level, a linear
 * trend, a daily shape, a weekly (weekend) effect, Gaussian noise and an optional level shift,
 * drawn from a seeded generator so every run sees the same series. Also the baseline measures
 * (seasonal-naive forecast, MASE scale) the evaluations compare against.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export interface SyntheticOptions {
  hours: number;
  level?: number;
  /** Added per hour. */
  trend?: number;
  /** Amplitude of the daily shape. */
  dailyAmplitude?: number;
  /** Multiplies weekend hours (days 5 and 6 of each week). */
  weekendFactor?: number;
  /** Standard deviation of the noise. */
  noise?: number;
  /** From this hour on, the level is multiplied by `shiftFactor`. */
  shiftAt?: number;
  shiftFactor?: number;
}

/** A seeded source of uniform and normal variates. */
export function randomSource(seed: number): { uniform: () => number; normal: () => number } {
  const rng = xoroshiro128plus(seed);
  const uniform = (): number => uniformFloat64(rng);
  // Box–Muller; 1 − u keeps the logarithm finite.
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

/** The noise-free value of hour t. */
export function syntheticMean(t: number, o: SyntheticOptions, phase = 0): number {
  const hour = (t + phase) % 24;
  const day = Math.floor(t / 24) % 7;
  const amplitude = o.dailyAmplitude ?? 40;
  const daily = amplitude * Math.sin((2 * Math.PI * hour) / 24) + 0.4 * amplitude * Math.sin((4 * Math.PI * hour) / 24);
  const shifted = o.shiftAt !== undefined && t >= o.shiftAt ? (o.shiftFactor ?? 2) : 1;
  const weekday = day >= 5 ? (o.weekendFactor ?? 0.6) : 1;
  return shifted * weekday * ((o.level ?? 100) + (o.trend ?? 0.03) * t + daily);
}

/** A synthetic series (values clipped at 0, like usage). */
export function syntheticSeries(seed: number, o: SyntheticOptions): number[] {
  const random = randomSource(seed);
  const phase = Math.floor(random.uniform() * 24);
  return Array.from({ length: o.hours }, (_, t) => Math.max(0, syntheticMean(t, o, phase) + (o.noise ?? 6) * random.normal()));
}

/** Mean absolute error of `forecast` against `actual`. */
export function meanAbsoluteError(actual: readonly number[], forecast: readonly number[]): number {
  let sum = 0;
  actual.forEach((a, i) => (sum += Math.abs(a - (forecast[i] ?? 0))));
  return sum / actual.length;
}

/** In-sample MAE of the one-step seasonal-naive forecast with season m (the MASE scale). */
export function seasonalNaiveScale(history: readonly number[], m: number): number {
  let sum = 0;
  for (let t = m; t < history.length; t++) sum += Math.abs((history[t] ?? 0) - (history[t - m] ?? 0));
  return sum / (history.length - m);
}

/** The seasonal-naive forecast of the next `hours` hours with season m. */
export function seasonalNaiveForecast(history: readonly number[], m: number, hours: number): number[] {
  return Array.from({ length: hours }, (_, k) => history[history.length - m + (k % m)] ?? 0);
}
