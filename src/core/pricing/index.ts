/**
 * The pure pricing core: plans, per-invocation billed quantities, bills and adjustments.
 * No I/O, no environment, no clock; plain data in and out; decimal arithmetic only (DESIGN §5).
 */
export { Dec, MB_MS_PER_GB_S, formatAmount, isCurrencyCode, minorUnitDigits, plain, roundHalfUp } from './money.js';
export {
  PlanValidationError,
  billedMemoryModes,
  defaultPlanRules,
  parsePlan,
  planRulesSchema,
  planSchema,
  safeParsePlan,
} from './plan.js';
export type { BilledMemoryMode, Commitment, Plan, PlanInput, PlanIssue, PlanParseResult, PlanRules } from './plan.js';
export { billedMbMsSql, billedQuantities } from './meter.js';
export type { BilledQuantities, MeteredInvocation } from './meter.js';
export { accruingLines, adjustmentLines, computeBill, isChargeLine, lineKinds, meters, normalisePeriod, sumLineAmounts } from './bill.js';
export type { AdjustmentLine, Bill, BillLine, BillOptions, BillingPeriod, GbSDisplay, LineKind, LineMeter, Meter, UsageChunk } from './bill.js';
export { seedPlans, standardRubPlan, standardUsdPlan } from './seed.js';
export { chargeModelSchema, describeModel, parseChargeModel, priceQuantity, safeParseChargeModel } from './tiers.js';
export type { ChargeModel, ChargeModelInput, PricedQuantity, TierCharge } from './tiers.js';
export type { ChargeModels } from './plan.js';
