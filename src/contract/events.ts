/**
 * The event contract: every CloudEvent type FaaS Billing sends or receives, with a zod schema for
 * its `data`. Handlers, the eventing/ manifests' tests and the local broker import names from here;
 * change a name only here and in eventing/ together.
 */
import { z } from 'zod';

/** CloudEvent `type` names, one per event of DESIGN §3. */
export const EventType = {
  usage: 'faasbilling.usage.v1',
  bufferFlush: 'faasbilling.buffer.flush.v1',
  usageSaved: 'faasbilling.usage.saved.v1',
  aggregateTick: 'faasbilling.aggregate.tick.v1',
  usageAggregated: 'faasbilling.usage.aggregated.v1',
  billingClose: 'faasbilling.billing.close.v1',
  billGenerated: 'faasbilling.bill.generated.v1',
  billsClosed: 'faasbilling.bills.closed.v1',
  budgetExceeded: 'faasbilling.budget.exceeded.v1',
  forecastTick: 'faasbilling.forecast.tick.v1',
  anomalyDetected: 'faasbilling.anomaly.detected.v1',
} as const;
export type EventTypeName = (typeof EventType)[keyof typeof EventType];

/** The CloudEvent `source` our own functions put on the events they emit. */
export const eventSource = (functionName: string): string => `/faasbilling/${functionName}`;

const isoTime = z.iso.datetime({ offset: true });
const count = z.number().int().nonnegative();
const windowSize = z.enum(['5m', '1h', '1d']);
/** A decimal amount as a string (money never travels as a JS number). */
export const decimalString = z.string().regex(/^-?\d+(\.\d+)?$/, 'a decimal number as a string, e.g. "12.34"');

export const bufferFlushData = z.object({ reason: z.string().max(200).optional() }).strict();
export const usageSavedData = z.object({
  inserted: count,
  duplicates: count,
  dead_lettered: count,
  min_time: isoTime.nullable(),
  max_time: isoTime.nullable(),
  tenants: z.array(z.string()),
});
export const aggregateTickData = z.object({ window_sizes: z.array(windowSize).optional() }).strict();
export const usageAggregatedData = z.object({
  windows: count,
  tenants: z.array(z.string()),
  from: isoTime.nullable(),
  to: isoTime.nullable(),
});
export const billingCloseData = z
  .object({ tenant_id: z.string().optional(), period_start: isoTime.optional(), period_end: isoTime.optional() })
  .strict();
export const billGeneratedData = z.object({
  bill_id: z.string(),
  tenant_id: z.string(),
  status: z.enum(['draft', 'final', 'paid']),
  total: decimalString,
  currency: z.string().length(3),
  period_start: isoTime,
  period_end: isoTime,
});
/** The bills a close of every tenant's period finalized (the single-tenant close replies bill.generated). */
export const billsClosedData = z.object({ bills: z.array(billGeneratedData).min(1) });
export type BillsClosedData = z.infer<typeof billsClosedData>;
/** One threshold of a tenant's monthly budget crossed by its month-to-date cost. */
export const budgetAlert = z.object({
  /** The alert's own id: notifications delivers each alert once under it. */
  alert_id: z.string(),
  tenant_id: z.string(),
  budget_id: z.string(),
  /** Percent of the budget. */
  threshold: z.number().int(),
  /** Month-to-date cost when it was crossed. */
  amount: decimalString,
  /** The budget. */
  limit: decimalString,
  currency: z.string().length(3),
  period_start: isoTime,
});
/** The thresholds newly crossed by one running-cost update (each alert happens once per period). */
export const budgetExceededData = z.object({ alerts: z.array(budgetAlert).min(1) });
export type BudgetAlert = z.infer<typeof budgetAlert>;
export const forecastTickData = z
  .object({ horizons: z.array(z.enum(['1h', '1d', '1w', '30d', 'month_end'])).optional() })
  .strict();
/**
 * One anomaly of one service's metric (invocations, duration_p95_ms, memory_mb, errors, cost):
 * `expected` and `observed` are the metric over the anomaly's hours (summed for counts and cost,
 * averaged for duration and memory), `score` the mean robust z-score. The optional fields explain
 * it further; older consumers may ignore them.
 */
export const anomalyFinding = z.object({
  tenant_id: z.string(),
  service: z.string(),
  metric: z.string(),
  score: z.number(),
  expected: z.number(),
  observed: z.number(),
  since: isoTime,
  /** End of the last abnormal hour (exclusive). */
  until: isoTime.optional(),
  direction: z.enum(['spike', 'drop']).optional(),
  /** Cost of the service over the anomaly's hours minus its expected cost, at the plan's unit prices (an estimate, not a bill). */
  cost_impact: decimalString.optional(),
  currency: z.string().length(3).optional(),
  /** One sentence a person can act on. */
  explanation: z.string().optional(),
});
/** A stored anomaly as announced: the finding and its own id (one per incident, however many runs saw it). */
export const anomalyAlert = anomalyFinding.extend({
  /** The anomaly's own id: notifications delivers each anomaly once under it. */
  anomaly_id: z.string(),
});
/** The anomalies a forecast run found that notifications has not handled yet (new ones and repeats). */
export const anomalyDetectedData = z.object({ anomalies: z.array(anomalyAlert).min(1) });
export type AnomalyFinding = z.infer<typeof anomalyFinding>;
export type AnomalyAlert = z.infer<typeof anomalyAlert>;

export type BufferFlushData = z.infer<typeof bufferFlushData>;
export type UsageSavedData = z.infer<typeof usageSavedData>;
export type AggregateTickData = z.infer<typeof aggregateTickData>;
export type UsageAggregatedData = z.infer<typeof usageAggregatedData>;
export type BillingCloseData = z.infer<typeof billingCloseData>;
export type BillGeneratedData = z.infer<typeof billGeneratedData>;
export type BudgetExceededData = z.infer<typeof budgetExceededData>;
export type ForecastTickData = z.infer<typeof forecastTickData>;
export type AnomalyDetectedData = z.infer<typeof anomalyDetectedData>;

// The usage event's own schema lives in usage.ts (it has limits and a compatibility shape);
// this table maps every other type to its data schema.
export const dataSchemas = {
  [EventType.bufferFlush]: bufferFlushData,
  [EventType.usageSaved]: usageSavedData,
  [EventType.aggregateTick]: aggregateTickData,
  [EventType.usageAggregated]: usageAggregatedData,
  [EventType.billingClose]: billingCloseData,
  [EventType.billGenerated]: billGeneratedData,
  [EventType.billsClosed]: billsClosedData,
  [EventType.budgetExceeded]: budgetExceededData,
  [EventType.forecastTick]: forecastTickData,
  [EventType.anomalyDetected]: anomalyDetectedData,
} as const;
