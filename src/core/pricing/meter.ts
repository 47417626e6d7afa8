/**
 * Billed quantities per invocation (DESIGN §5, issue 3 part 3): the plan's metering rules apply to
 * each invocation, the way providers bill, and the bill sums those exact per-invocation quantities
 * — it is never computed from averages (an hour's average duration rounded up once is not the sum
 * of each invocation rounded up).
 *
 * For one usage event carrying `invocations` = n and a total `duration_ms` = d (the
 * `faasbilling.usage.v1` contract: duration_ms is the total wall time of the n invocations):
 *
 *   per-invocation duration  = ceil(d / (n·g)) · g           g = duration_granularity_ms
 *   billed duration          = max(that, min_billed_duration_ms)
 *   billed memory            = min(ceil(m / s) · s, cap)       s = memory_step_mb, cap = max_memory_mb
 *                              m = allocated limit when billed_memory = 'allocated' and one is
 *                                  known, else the observed memory_mb
 *   billed MB·ms             = n · billed duration · billed memory
 *
 * An event of n invocations is thus billed as n invocations of its mean duration, rounded per
 * invocation and then multiplied (an event of one invocation is exact). Every step is exact
 * decimal arithmetic, in TypeScript (`billedQuantities`) and in PostgreSQL (`billedMbMsSql`,
 * integer division `div`/`mod` on numeric, never a rounded quotient), so the two agree digit for
 * digit and the price stage can sum billed quantities in SQL over usage_raw.
 */
import type { Decimal } from 'decimal.js';
import { Dec } from './money.js';
import type { PlanRules } from './plan.js';
import { planRulesSchema } from './plan.js';

/** One usage event as metering sees it (usage_raw's columns). Numbers are exact decimals here. */
export interface MeteredInvocation {
  /** Invocations in the event, a whole number ≥ 1. */
  invocations: Decimal.Value;
  /** Total wall time of those invocations, ms, ≥ 0. */
  durationMs: Decimal.Value;
  /** Observed memory, MB, > 0. */
  memoryMb: Decimal.Value;
  /** The revision's (else service's) memory limit, MB, when known. */
  allocatedMemoryMb?: Decimal.Value | null | undefined;
}

export interface BilledQuantities {
  invocations: Decimal;
  /** Billed duration of each invocation, ms (rounded up, at least the minimum). */
  durationMsPerInvocation: Decimal;
  /** Billed memory, MB (rounded up to the step). */
  memoryMb: Decimal;
  /** durationMsPerInvocation × memoryMb. */
  mbMsPerInvocation: Decimal;
  /** invocations × durationMsPerInvocation. */
  durationMs: Decimal;
  /** invocations × mbMsPerInvocation: what the compute meter sums. */
  mbMs: Decimal;
}

/** ceil(x / k) for x ≥ 0 and k > 0, exactly (integer quotient and remainder, no rounded quotient). */
function ceilDiv(x: Decimal, k: Decimal): Decimal {
  const q = x.divToInt(k);
  return x.minus(q.times(k)).gt(0) ? q.plus(1) : q;
}

function decimalOf(value: Decimal.Value, what: string): Decimal {
  let d: Decimal;
  try {
    d = new Dec(value);
  } catch {
    throw new RangeError(`${what} is not a number: ${String(value)}`);
  }
  if (!d.isFinite()) throw new RangeError(`${what} must be finite (got ${String(value)})`);
  return d;
}

/** Applies the plan's metering rules to one usage event (see the module comment). */
export function billedQuantities(invocation: MeteredInvocation, rules: PlanRules): BilledQuantities {
  const n = decimalOf(invocation.invocations, 'invocations');
  if (!n.isInteger() || n.lt(1)) throw new RangeError(`invocations must be a whole number ≥ 1 (got ${n.toFixed()})`);
  const d = decimalOf(invocation.durationMs, 'durationMs');
  if (d.isNegative() && !d.isZero()) throw new RangeError(`durationMs must not be negative (got ${d.toFixed()})`);
  const observed = decimalOf(invocation.memoryMb, 'memoryMb');
  if (!observed.gt(0)) throw new RangeError(`memoryMb must be positive (got ${observed.toFixed()})`);
  let memory = observed;
  if (rules.billed_memory === 'allocated' && invocation.allocatedMemoryMb != null) {
    memory = decimalOf(invocation.allocatedMemoryMb, 'allocatedMemoryMb');
    if (!memory.gt(0)) throw new RangeError(`allocatedMemoryMb must be positive (got ${memory.toFixed()})`);
  }

  const granularity = new Dec(rules.duration_granularity_ms);
  const rounded = ceilDiv(d, n.times(granularity)).times(granularity);
  const minimum = new Dec(rules.min_billed_duration_ms);
  const durationMsPerInvocation = rounded.lt(minimum) ? minimum : rounded;
  const step = new Dec(rules.memory_step_mb);
  const roundedMemory = ceilDiv(memory, step).times(step);
  const memoryMb = rules.max_memory_mb !== null && roundedMemory.gt(rules.max_memory_mb) ? new Dec(rules.max_memory_mb) : roundedMemory;
  const mbMsPerInvocation = durationMsPerInvocation.times(memoryMb);
  return {
    invocations: n,
    durationMsPerInvocation,
    memoryMb,
    mbMsPerInvocation,
    durationMs: n.times(durationMsPerInvocation),
    mbMs: n.times(mbMsPerInvocation),
  };
}

/** A column reference: identifier or "quoted identifier", optionally qualified (a.b, "x"."y"). */
const columnRef = /^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\0]|"")+")(?:\.(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\0]|"")+")){0,2}$/;

function column(ref: string, what: string): string {
  if (!columnRef.test(ref)) {
    throw new RangeError(`${what} must be a column reference such as u.duration_ms (got ${JSON.stringify(ref)})`);
  }
  return `(${ref})::numeric`;
}

/** ceil(x / k) in SQL for x ≥ 0; `div`/`mod` on numeric are exact (truncating) in PostgreSQL. */
function ceilDivSql(x: string, k: string): string {
  return `(div(${x}, ${k}) + CASE WHEN mod(${x}, ${k}) > 0 THEN 1 ELSE 0 END)`;
}

/**
 * The same rule as `billedQuantities(...).mbMs`, as a PostgreSQL expression over usage_raw-like
 * columns, to `sum()` in SQL. The rules are validated whole numbers and appear only as numeric
 * literals; the column arguments must be plain (optionally qualified or quoted) column references.
 * With `billed_memory: 'allocated'`, pass `allocatedMemoryColumn` (e.g. COALESCE of the revision
 * and service limits computed in a subquery/join column); rows where it is NULL bill the observed
 * memory, as in TypeScript. Omitting it for an 'allocated' plan is an error, not a silent fallback.
 */
export function billedMbMsSql(
  rules: PlanRules,
  durationColumn: string,
  memoryColumn: string,
  invocationsColumn: string,
  allocatedMemoryColumn?: string,
): string {
  const parsed = planRulesSchema.safeParse(rules); // literals below are validated whole numbers
  if (!parsed.success) throw new RangeError(`invalid metering rules: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  const r = parsed.data;
  const d = column(durationColumn, 'durationColumn');
  const observed = column(memoryColumn, 'memoryColumn');
  const n = column(invocationsColumn, 'invocationsColumn');
  let memory = observed;
  if (r.billed_memory === 'allocated') {
    if (allocatedMemoryColumn === undefined) {
      throw new RangeError("billed_memory 'allocated' needs allocatedMemoryColumn (the memory limit column, NULL when unknown)");
    }
    memory = `COALESCE(${column(allocatedMemoryColumn, 'allocatedMemoryColumn')}, ${observed})`;
  }
  const g = String(r.duration_granularity_ms);
  const s = String(r.memory_step_mb);
  const duration = `GREATEST(${ceilDivSql(d, `(${n} * ${g})`)} * ${g}, ${String(r.min_billed_duration_ms)})`;
  const billedMemory = r.max_memory_mb === null ? `${ceilDivSql(memory, s)} * ${s}` : `LEAST(${ceilDivSql(memory, s)} * ${s}, ${String(r.max_memory_mb)})`;
  return `(${n} * ${duration} * ${billedMemory})`;
}
