/**
 * A small Nelder–Mead minimiser for the few smoothing parameters of the exponential-smoothing
 * models. Written here rather than taken from npm: the maintained optimisation packages are large
 * numeric libraries, and the one small minimiser published there is unmaintained; the method is
 * thirty lines. Standard coefficients (reflection 1, expansion 2, contraction ½, shrink ½).
 */

export interface MinimiseOptions {
  /** Largest number of objective evaluations. */
  maxEvaluations?: number;
  /** Stops when the spread of objective values in the simplex falls below this (relative). */
  tolerance?: number;
  /** Size of the initial simplex along each axis. */
  step?: number;
}

export interface Minimum {
  x: number[];
  value: number;
  evaluations: number;
}

/** Minimises `objective` from `start` (unconstrained; map bounded parameters before calling). */
export function nelderMead(objective: (x: readonly number[]) => number, start: readonly number[], options: MinimiseOptions = {}): Minimum {
  const maxEvaluations = options.maxEvaluations ?? 200 * start.length;
  const tolerance = options.tolerance ?? 1e-7;
  const step = options.step ?? 0.5;
  const dim = start.length;
  let evaluations = 0;
  // A NaN objective (a diverging filter) ranks last instead of poisoning the comparisons.
  const f = (x: number[]): number => {
    evaluations++;
    const v = objective(x);
    return Number.isFinite(v) ? v : Number.MAX_VALUE;
  };

  let simplex = [start.slice()];
  for (let i = 0; i < dim; i++) {
    const vertex = start.slice();
    vertex[i] = (vertex[i] ?? 0) + step;
    simplex.push(vertex);
  }
  let values = simplex.map(f);

  const along = (from: readonly number[], to: readonly number[], t: number): number[] => from.map((v, i) => v + t * ((to[i] ?? 0) - v));

  while (evaluations < maxEvaluations) {
    const order = values.map((_, i) => i).sort((a, b) => (values[a] ?? 0) - (values[b] ?? 0));
    simplex = order.map((i) => simplex[i] ?? []);
    values = order.map((i) => values[i] ?? Number.MAX_VALUE);
    const best = values[0] ?? 0;
    const worst = values[dim] ?? 0;
    if (Math.abs(worst - best) <= tolerance * (Math.abs(best) + 1e-30)) break;

    const centroid = new Array<number>(dim).fill(0);
    for (let v = 0; v < dim; v++) for (let i = 0; i < dim; i++) centroid[i] = (centroid[i] ?? 0) + (simplex[v]?.[i] ?? 0) / dim;
    const worstVertex = simplex[dim] ?? [];

    const reflected = along(centroid, worstVertex, -1);
    const fr = f(reflected);
    if (fr < best) {
      const expanded = along(centroid, worstVertex, -2);
      const fe = f(expanded);
      [simplex[dim], values[dim]] = fe < fr ? [expanded, fe] : [reflected, fr];
      continue;
    }
    if (fr < (values[dim - 1] ?? Number.MAX_VALUE)) {
      [simplex[dim], values[dim]] = [reflected, fr];
      continue;
    }
    const contracted = fr < worst ? along(centroid, reflected, 0.5) : along(centroid, worstVertex, 0.5);
    const fc = f(contracted);
    if (fc < Math.min(fr, worst)) {
      [simplex[dim], values[dim]] = [contracted, fc];
      continue;
    }
    const bestVertex = simplex[0] ?? [];
    for (let v = 1; v <= dim; v++) {
      simplex[v] = along(bestVertex, simplex[v] ?? [], 0.5);
      values[v] = f(simplex[v] ?? []);
    }
  }
  let bestIndex = 0;
  values.forEach((v, i) => {
    if (v < (values[bestIndex] ?? Number.MAX_VALUE)) bestIndex = i;
  });
  return { x: simplex[bestIndex] ?? start.slice(), value: values[bestIndex] ?? Number.MAX_VALUE, evaluations };
}

/** Maps an unconstrained real onto `[lo, hi]` (logistic), so the minimiser can search freely. */
export function bounded(raw: number, lo: number, hi: number): number {
  return lo + (hi - lo) / (1 + Math.exp(-raw));
}

/** The inverse of {@link bounded}, for a starting point. */
export function unbounded(value: number, lo: number, hi: number): number {
  const p = (value - lo) / (hi - lo);
  return Math.log(p / (1 - p));
}
