/**
 * Default pricing plans, as data for the schema seed (pricing_plans rows; prices as decimal text).
 * Both are EXAMPLES modelled on public price lists, not quotes of them:
 *
 * - `standard-usd`: AWS Lambda x86 on-demand (us-east-1): $0.20 per 1M requests, $0.0000166667
 *   per GB-s, duration rounded up to 1 ms, billed on configured (allocated) memory in 1 MB steps;
 *   free each month 1M requests and 400,000 GB-s. Its MB·ms price is
 *   0.0000166667 / 1 024 000 = 0.00000000001627607421875 (23 decimals).
 * - `standard-rub`: in the manner of Yandex Cloud Functions (RUB prices chosen as plausible
 *   examples): 16 ₽ per 1M invocations, 3.42 ₽ per GB·hour (= 0.00095 ₽ per GB-s), duration
 *   rounded up to 100 ms (at least 100 ms), allocated memory in 128 MB steps; free each month
 *   1M invocations and 10 GB·hour (36,000 GB-s).
 *
 * Neither charges cold starts or CPU time separately (prices 0), as those providers do not.
 */
import type { PlanInput } from './plan.js';

export const standardUsdPlan = {
  name: 'standard-usd',
  version: 1,
  currency: 'USD',
  price_per_invocation: '0.0000002',
  price_per_gb_s: '0.0000166667',
  price_per_cold_start: '0',
  price_per_cpu_ms: '0',
  free_tier_invocations: '1000000',
  free_tier_gb_s: '400000',
  rules: { duration_granularity_ms: 1, min_billed_duration_ms: 1, memory_step_mb: 1, billed_memory: 'allocated' },
} as const satisfies PlanInput;

export const standardRubPlan = {
  name: 'standard-rub',
  version: 1,
  currency: 'RUB',
  price_per_invocation: '0.000016',
  price_per_gb_s: '0.00095',
  price_per_cold_start: '0',
  price_per_cpu_ms: '0',
  free_tier_invocations: '1000000',
  free_tier_gb_s: '36000',
  rules: { duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128, billed_memory: 'allocated' },
} as const satisfies PlanInput;

/** The plans the schema seed inserts; parse each with `parsePlan` for the column values. */
export const seedPlans: readonly PlanInput[] = [standardRubPlan, standardUsdPlan];
