/** Bills: the billing service (preview, draft, final, paid, monthly close, running cost) and its parts. */
export { Billing } from './service.js';
export type { BillChangeHook, BillSummary, BillingFailureReport, BillingOptions, CloseOptions, CloseResult, RunningCostResult, SimulatedBill } from './service.js';
export { BillingServiceError } from './errors.js';
export type { BillingFailure } from './errors.js';
export type { ComposedBill, PricedLine } from './compose.js';
export type { StoredBill, BillStatus } from './store.js';
export { currentPeriod, monthLabelOf, monthPeriod, previousPeriod, resolvePeriod } from './periods.js';
export type { PeriodRef } from './periods.js';
