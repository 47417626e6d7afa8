/**
 * The plan's per-invocation metering rule (src/core/pricing/meter.ts) on the aggregation hot path.
 *
 * `billedQuantities` (decimal.js) costs microseconds per event and `billedMbMsSql` (numeric
 * div/mod in PostgreSQL) about as much, which at a million events is several seconds — more than
 * the whole aggregation. usage_raw holds durations and memory with exactly 3 decimals
 * (numeric(14,3) / numeric(10,3)), so the same rule runs here on whole thousandths in float64
 * integers, exact below 2^53, with a bigint product where the result would not fit. The tests hold
 * it equal to `billedQuantities(...).mbMs` and to `billedMbMsSql` on PostgreSQL.
 */
import type { PlanRules } from '../core/pricing/index.js';

const COMMA = 44;
const DOT = 46;
const ZERO = 48;

/**
 * A comma-separated list of non-negative decimals with at most 3 places (numeric(·,3) text, as
 * string_agg returns it) as whole thousandths, exactly: "12.345,0.5,7" → [12345, 500, 7000].
 * Scanned by hand: splitting and Number() would cost more than the rest of the aggregation.
 * (x / 1000 of the result is the same double as Number(text): both are correctly rounded.)
 */
export function parseThousandths(text: string): Float64Array {
  let count = 1;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === COMMA) count++;
  const out = new Float64Array(count);
  let k = 0;
  let value = 0;
  let places = -1; // digits after the dot; -1 before it
  let digits = 0;
  const fail = (): never => {
    throw new RangeError(`not a list of decimals with at most 3 places: ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)}`);
  };
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : COMMA;
    if (c === COMMA) {
      if (digits === 0) fail();
      const scaled = value * 10 ** (3 - Math.max(places, 0));
      if (!Number.isSafeInteger(scaled)) fail();
      out[k++] = scaled;
      value = 0;
      places = -1;
      digits = 0;
    } else if (c === DOT && places < 0) {
      places = 0;
    } else if (c >= ZERO && c <= ZERO + 9) {
      value = value * 10 + (c - ZERO);
      digits++;
      if (places >= 0 && ++places > 3) fail();
    } else {
      fail();
    }
  }
  return out;
}

/** ceil(a / b) for safe non-negative integers a and positive b, exactly. */
function ceilDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  // The float quotient may be one off near an integer; the products below are exact.
  if (q * b > a) q -= 1;
  else if ((q + 1) * b <= a) q += 1;
  return q * b === a ? q : q + 1;
}

/**
 * Billed MB·ms of one usage event under `rules` (whole MB·ms: the rules are whole ms and MB):
 * invocations × max(ceil(duration / (invocations × g)) × g, minimum) × min(ceil(memory / step) × step, cap),
 * memory being the allocated limit when the plan bills allocated memory and one is known, else
 * the observed memory. A number when it is a safe integer, else a bigint.
 */
export function billedMbMsOfEvent(
  rules: PlanRules,
  invocations: number,
  durationThousandths: number,
  memoryThousandths: number,
  allocatedMemoryMb: number | null,
): number | bigint {
  const g = rules.duration_granularity_ms;
  const perInvocation = ceilDiv(durationThousandths, invocations * g * 1000) * g;
  const durationMs = Math.max(perInvocation, rules.min_billed_duration_ms);
  const memory = rules.billed_memory === 'allocated' && allocatedMemoryMb !== null ? allocatedMemoryMb * 1000 : memoryThousandths;
  const step = rules.memory_step_mb;
  const rounded = ceilDiv(memory, step * 1000) * step;
  const memoryMb = rules.max_memory_mb !== null && rounded > rules.max_memory_mb ? rules.max_memory_mb : rounded;
  const product = invocations * durationMs * memoryMb;
  // Rounding is monotone: a float product at or below 2^53 - 1 means the exact one is too.
  return product <= Number.MAX_SAFE_INTEGER ? product : BigInt(invocations) * BigInt(durationMs) * BigInt(memoryMb);
}
