/**
 * Additive Holt–Winters with a damped trend and one or two seasonal components (Taylor 2003,
 * "Short-term electricity demand forecasting using double seasonal exponential smoothing", with
 * additive seasonality). Written in error-correction form; with one-step error e_t:
 *
 *   ŷ_t   = l + φ·b + Σ_j s_j[t mod m_j]
 *   l     ← l + φ·b + α·e_t
 *   b     ← φ·b + α·β·e_t
 *   s_j[t mod m_j] ← s_j[t mod m_j] + γ_j·(1 − α)·e_t          (γ_1 = γ daily, γ_2 = ω weekly)
 *   ŷ_{t+k|t} = l + (φ + φ² + … + φ^k)·b + Σ_j s_j[(t+k) mod m_j]
 *
 * which is Taylor's recursion rearranged. Both seasons are modelled explicitly (rather than one
 * season plus an index) because hourly serverless load has a daily shape that differs between
 * weekdays and weekends: the weekly component carries that difference, the daily one what all days
 * share. The damped trend (φ < 1) keeps long horizons (a month) from extrapolating a short slope.
 *
 * Parameters are fitted by minimising the one-step sum of squared errors with Nelder–Mead, each
 * mapped onto a bounded interval. Initial state: level and trend from the means of the first
 * cycles of the longest season; seasonal indices from the detrended averages of those cycles.
 */
import { bounded, nelderMead, unbounded } from './nelder-mead.js';

/** [lo, hi] of each parameter, in the order of the search vector. */
const alphaBounds = [0.005, 0.95] as const;
const betaBounds = [0.001, 0.5] as const;
// φ damps the trend once per hour: the usual yearly/monthly range (0.8–0.98) would erase a slope
// within a day, so hourly series need φ near 1 (0.9995 still carries a slope for weeks).
const phiBounds = [0.95, 0.9995] as const;
const gammaBounds = [0.001, 0.95] as const;
/** Where the search starts: a slowly moving level, nearly no trend, seasons that adapt slowly. */
const startValues = { alpha: 0.1, beta: 0.02, phi: 0.995, gamma: 0.1 };
/** Cycles of the longest season used to initialise the state (more cycles, steadier indices). */
const initCycles = (longest: number): number => (longest <= 24 ? 7 : 2);

export interface HoltWintersState {
  level: number;
  trend: number;
  seasonal: Float64Array[];
}

export interface HoltWintersFit {
  seasons: readonly number[];
  /** alpha, beta, phi, and gamma (daily) / omega (weekly) per season. */
  params: Readonly<Record<string, number>>;
  /** The unconstrained search vector (a warm start for a refit). */
  raw: readonly number[];
  /** One-step SSE on the training series. */
  sse: number;
  /** A filter at the initial state, ready to observe the series from position 0. */
  filter(): HoltWintersFilter;
}

/** Runs the recursion; `observe` returns the one-step error of the value it took. */
export class HoltWintersFilter {
  private level: number;
  private trend: number;
  private readonly seasonal: Float64Array[];
  private t = 0;

  constructor(
    private readonly seasons: readonly number[],
    private readonly alpha: number,
    private readonly beta: number,
    private readonly phi: number,
    private readonly gammas: readonly number[],
    initial: HoltWintersState,
  ) {
    this.level = initial.level;
    this.trend = initial.trend;
    this.seasonal = initial.seasonal.map((s) => s.slice());
  }

  observe(y: number): number {
    const { seasons, seasonal, alpha, beta, phi, gammas } = this;
    let predicted = this.level + phi * this.trend;
    for (let j = 0; j < seasons.length; j++) predicted += seasonal[j]?.[this.t % (seasons[j] ?? 1)] ?? 0;
    const error = y - predicted;
    this.level += phi * this.trend + alpha * error;
    this.trend = phi * this.trend + alpha * beta * error;
    for (let j = 0; j < seasons.length; j++) {
      const s = seasonal[j];
      const slot = this.t % (seasons[j] ?? 1);
      if (s) s[slot] = (s[slot] ?? 0) + (gammas[j] ?? 0) * (1 - alpha) * error;
    }
    this.t++;
    return error;
  }

  /** Fills `out` with the forecasts of the next out.length positions. */
  forecast(out: Float64Array): void {
    let damped = 0;
    let power = 1;
    for (let k = 1; k <= out.length; k++) {
      power *= this.phi;
      damped += power;
      let value = this.level + damped * this.trend;
      for (let j = 0; j < this.seasons.length; j++) value += this.seasonal[j]?.[(this.t - 1 + k) % (this.seasons[j] ?? 1)] ?? 0;
      out[k - 1] = value;
    }
  }
}

function mean(values: ArrayLike<number>, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += values[i] ?? 0;
  return to > from ? sum / (to - from) : 0;
}

/** The initial state from the first cycles of the longest season (see the module comment). */
export function initialState(y: ArrayLike<number>, seasons: readonly number[]): HoltWintersState {
  const longest = Math.max(...seasons);
  const cycles = Math.min(Math.floor(y.length / longest), initCycles(longest));
  if (cycles < 1) throw new RangeError(`Holt–Winters needs at least ${longest} points to start (got ${y.length})`);
  const span = cycles * longest;
  const first = mean(y, 0, longest);
  const lastCycle = mean(y, (cycles - 1) * longest, span);
  const trend = cycles > 1 ? (lastCycle - first) / ((cycles - 1) * longest) : 0;
  // Detrended values of the initial span, the trend line passing through each cycle's middle.
  const detrended = new Float64Array(span);
  for (let t = 0; t < span; t++) detrended[t] = (y[t] ?? 0) - (first + trend * (t - (longest - 1) / 2));
  const seasonal: Float64Array[] = [];
  // Shorter seasons first: each longer season takes what the shorter ones left.
  for (const m of seasons) {
    const sums = new Float64Array(m);
    const counts = new Float64Array(m);
    for (let t = 0; t < span; t++) {
      let rest = detrended[t] ?? 0;
      seasonal.forEach((s, j) => (rest -= s[t % (seasons[j] ?? 1)] ?? 0));
      sums[t % m] = (sums[t % m] ?? 0) + rest;
      counts[t % m] = (counts[t % m] ?? 0) + 1;
    }
    const indices = sums.map((s, i) => s / (counts[i] || 1));
    const centre = mean(indices, 0, m);
    seasonal.push(indices.map((v) => v - centre));
  }
  // The level just before position 0, so that level + trend lands on the trend line at t = 0.
  return { level: first - trend * ((longest - 1) / 2 + 1), trend, seasonal };
}

/**
 * The one-step SSE of the recursion over `y` — the same arithmetic as HoltWintersFilter.observe,
 * written flat because the fit evaluates it a few thousand times.
 */
function oneStepSse(y: Float64Array, seasons: readonly number[], p: ReturnType<typeof decode>, initial: HoltWintersState): number {
  const { alpha, beta, phi } = p;
  const m1 = seasons[0] ?? 1;
  const m2 = seasons[1] ?? 1;
  const s1 = (initial.seasonal[0] ?? new Float64Array(1)).slice();
  const s2 = (initial.seasonal[1] ?? new Float64Array(1)).slice();
  const g1 = (p.gammas[0] ?? 0) * (1 - alpha);
  const g2 = (p.gammas[1] ?? 0) * (1 - alpha);
  let level = initial.level;
  let trend = initial.trend;
  let i1 = 0;
  let i2 = 0;
  let sse = 0;
  for (let t = 0; t < y.length; t++) {
    const e = (y[t] as number) - (level + phi * trend + (s1[i1] as number) + (s2[i2] as number));
    level += phi * trend + alpha * e;
    trend = phi * trend + alpha * beta * e;
    s1[i1] = (s1[i1] as number) + g1 * e;
    s2[i2] = (s2[i2] as number) + g2 * e;
    if (++i1 === m1) i1 = 0;
    if (++i2 === m2) i2 = 0;
    sse += e * e;
  }
  return sse;
}

function decode(raw: readonly number[], seasonCount: number): { alpha: number; beta: number; phi: number; gammas: number[] } {
  return {
    alpha: bounded(raw[0] ?? 0, ...alphaBounds),
    beta: bounded(raw[1] ?? 0, ...betaBounds),
    phi: bounded(raw[2] ?? 0, ...phiBounds),
    gammas: Array.from({ length: seasonCount }, (_, j) => bounded(raw[3 + j] ?? 0, ...gammaBounds)),
  };
}

/**
 * Fits the parameters on `y` by minimising the one-step SSE. `warmStart` (a fit on a prefix of
 * `y`) starts the search from its parameters, which saves most of the evaluations of a refit.
 */
export function fitHoltWinters(y: ArrayLike<number>, seasons: readonly number[], warmStart?: HoltWintersFit): HoltWintersFit {
  const initial = initialState(y, seasons);
  const values = Float64Array.from(y);
  const sseOf = (raw: readonly number[]): number => oneStepSse(values, seasons, decode(raw, seasons.length), initial);
  const start = warmStart?.raw.slice() ?? [
    unbounded(startValues.alpha, ...alphaBounds),
    unbounded(startValues.beta, ...betaBounds),
    unbounded(startValues.phi, ...phiBounds),
    ...seasons.map(() => unbounded(startValues.gamma, ...gammaBounds)),
  ];
  let best = nelderMead(sseOf, start, { step: warmStart ? 0.3 : 1, maxEvaluations: warmStart ? 150 * start.length : 300 * start.length });
  // One restart from the best point: Nelder–Mead can stall on a collapsed simplex.
  const again = nelderMead(sseOf, best.x, { step: 0.3, maxEvaluations: 100 * start.length });
  if (again.value <= best.value) best = again;
  const p = decode(best.x, seasons.length);
  const names = seasons.length === 1 ? ['gamma'] : ['gamma', 'omega'];
  const params: Record<string, number> = { alpha: p.alpha, beta: p.beta, phi: p.phi };
  p.gammas.forEach((g, j) => (params[names[j] ?? `gamma${j}`] = g));
  return {
    seasons,
    params,
    raw: best.x,
    sse: best.value,
    filter: () => new HoltWintersFilter(seasons, p.alpha, p.beta, p.phi, p.gammas, initial),
  };
}
