/**
 * Errors of the billing service, each with a reason a caller can branch on. The price function
 * answers them as 422 problems; the REST API can map `unknown_tenant` / `bill_not_found` to 404
 * and `bill_final` / `bill_not_final` to 409.
 */

export type BillingFailure =
  | 'unknown_tenant'
  | 'bill_not_found'
  | 'bill_final'
  | 'bill_not_final'
  | 'invalid_period'
  | 'no_plan'
  | 'plan_currency';

/** A billing request that cannot succeed as asked (retrying it unchanged will not help). */
export class BillingServiceError extends Error {
  constructor(
    readonly reason: BillingFailure,
    message: string,
  ) {
    super(message);
    this.name = 'BillingServiceError';
  }
}
