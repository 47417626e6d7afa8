/**
 * The price stage: turns CloudEvents into billing-service calls and their outcome into a reply.
 *
 * - `faasbilling.usage.aggregated.v1` → the month-to-date running cost of the tenants named.
 * - `faasbilling.billing.close.v1` → generate and finalize a period's bills. With `tenant_id`
 *   (id or slug) it closes that tenant (period_start/period_end: that month's exact bounds in the
 *   tenant's zone; default its previous month) and replies `faasbilling.bill.generated.v1`.
 *   Without, it closes every tenant, each in its own zone (period_start names the calendar month,
 *   written as its first instant, e.g. 2026-10-01T00:00:00Z; default each tenant's previous month).
 * - A PingSource tick closes every tenant's previous month (a no-op for tenants already closed).
 *
 * One invocation can reply with one CloudEvent, so only a single-tenant close replies
 * bill.generated (its id is derived from bill id and status, so a redelivered close repeats the
 * same event id and consumers can drop the repeat); closing every tenant answers a JSON summary.
 * Bad input is a 422 problem; a database outage a retryable 503.
 */
import { CloudEvent } from 'cloudevents';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { z } from 'zod';
import type { Billing, BillSummary, CloseOptions } from '../billing/index.js';
import { BillingServiceError, monthLabelOf } from '../billing/index.js';
import { nextMonthLabel } from '../billing/periods.js';
import { createHash } from 'node:crypto';
import { EventType, billGeneratedData, billingCloseData, billsClosedData, budgetExceededData, eventSource, usageAggregatedData, type BillingCloseData } from '../contract/events.js';
import { BillingError } from '../contract/problem.js';
import { Dec, formatAmount } from '../core/pricing/index.js';
import { pingEventType } from '../contract/routing.js';
import type { FunctionRequest, FunctionResult } from '../runtime/function.js';
import type { Logger } from '../runtime/logger.js';

/** Metrics of the price stage, registered beside the common stage metrics. */
export function createPriceMetrics(registry: Registry) {
  const registers = [registry];
  return {
    billsClosed: new Counter({ name: 'faasbilling_bills_closed_total', help: 'Bills generated and finalized by a period close', registers }),
    billFailures: new Counter({
      name: 'faasbilling_bill_failures_total',
      help: 'Tenants whose bill or running cost could not be computed, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    runningCosts: new Counter({ name: 'faasbilling_running_costs_updated_total', help: 'Month-to-date running costs rewritten', registers }),
    budgetAlerts: new Counter({ name: 'faasbilling_budget_alerts_total', help: 'Budget thresholds crossed (each once per tenant, period and threshold)', registers }),
    seconds: new Histogram({
      name: 'faasbilling_price_seconds',
      help: 'Time of one price operation, by operation',
      labelNames: ['operation'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
  };
}
export type PriceMetrics = ReturnType<typeof createPriceMetrics>;

/** What the price stage works with. */
export interface PriceStageOptions {
  billing: Billing;
  metrics: PriceMetrics;
  logger: Logger;
  /** Throws when the database is unreachable (to tell an outage from a bug). */
  pingDb: () => Promise<void>;
}

function dataOf<T>(schema: z.ZodType<T>, event: CloudEvent<unknown>): T {
  const parsed = schema.safeParse(event.data ?? {});
  if (parsed.success) return parsed.data;
  const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ');
  throw new BillingError('invalid_event', `${event.type} data is not valid: ${detail}`);
}

const json = (body: object): FunctionResult => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body });

/** The bill.generated reply for one bill. */
const billData = (bill: BillSummary) =>
  billGeneratedData.parse({
    bill_id: bill.billId,
    tenant_id: bill.tenantId,
    status: bill.status,
    total: bill.total,
    currency: bill.currency,
    period_start: bill.periodStart,
    period_end: bill.periodEnd,
  });

/** The id of a bill's bill.generated event: the same whichever close produced it (webhooks dedup on it). */
export const billEventId = (billId: string, status: string): string => `bill-${billId}-${status}`;

export function billGeneratedEvent(bill: BillSummary): CloudEvent<unknown> {
  return new CloudEvent({ id: billEventId(bill.billId, bill.status), type: EventType.billGenerated, source: eventSource('price'), data: billData(bill) });
}

/** The bills one close of every tenant finalized, as one event (its id names exactly those bills). */
export function billsClosedEvent(bills: readonly BillSummary[]): CloudEvent<unknown> {
  const ids = bills.map((b) => b.billId).sort();
  const id = `bills-closed-${createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 32)}`;
  return new CloudEvent({ id, type: EventType.billsClosed, source: eventSource('price'), data: billsClosedData.parse({ bills: bills.map(billData) }) });
}

/** What a billing.close event asks for, as service options. */
export function closeOptionsOf(data: BillingCloseData): CloseOptions {
  if (data.tenant_id !== undefined) {
    return { tenants: [data.tenant_id], ...(data.period_start ? { period: { start: data.period_start, ...(data.period_end ? { end: data.period_end } : {}) } } : {}) };
  }
  if (data.period_start === undefined) {
    if (data.period_end !== undefined) throw new BillingServiceError('invalid_period', 'period_end without period_start: give period_start (the first instant of the month), or neither');
    return {};
  }
  const month = monthLabelOf(data.period_start);
  if (data.period_end !== undefined && monthLabelOf(data.period_end) !== nextMonthLabel(month)) {
    throw new BillingServiceError('invalid_period', `period_end ${data.period_end} is not the first instant of the month after ${month}`);
  }
  return { period: { month } };
}

/** The price stage's request handling (see the module comment). */
export class PriceStage {
  constructor(private readonly options: PriceStageOptions) {}

  /** Handles one request; never throws anything but a BillingError. */
  async handle(request: FunctionRequest): Promise<FunctionResult> {
    const event = request.cloudevent;
    if (!event) {
      throw new BillingError(
        'invalid_event',
        `price takes CloudEvents (${EventType.usageAggregated}, ${EventType.billingClose} or a PingSource tick), not a plain request body`,
      );
    }
    try {
      switch (event.type) {
        case EventType.usageAggregated:
          return await this.runningCost(event);
        case EventType.billingClose:
          return await this.close(dataOf(billingCloseData, event));
        case pingEventType:
          return await this.close({});
        default:
          throw new BillingError(
            'invalid_event',
            `price does not handle events of type ${JSON.stringify(event.type)}; it takes ${EventType.usageAggregated}, ${EventType.billingClose} and ${pingEventType}`,
          );
      }
    } catch (err) {
      throw await this.asBillingError(err);
    }
  }

  private async runningCost(event: CloudEvent<unknown>): Promise<FunctionResult> {
    const { tenants } = dataOf(usageAggregatedData, event);
    const { metrics } = this.options;
    const stop = metrics.seconds.startTimer({ operation: 'running_cost' });
    const result = await this.options.billing.updateRunningCost(tenants);
    stop();
    metrics.runningCosts.inc(result.updated);
    for (const f of result.failed) metrics.billFailures.inc({ reason: f.reason });
    if (result.unknown.length > 0) {
      throw new BillingError(
        'invalid_event',
        `unknown tenants ${result.unknown.map((t) => JSON.stringify(t)).join(', ')}; the running cost of the ${result.updated} other tenants was updated`,
      );
    }
    // Budget thresholds crossed for the first time this period are the reply (once each).
    if (result.alerts.length > 0) {
      metrics.budgetAlerts.inc(result.alerts.length);
      return new CloudEvent({ type: EventType.budgetExceeded, source: eventSource('price'), data: budgetExceededData.parse({ alerts: result.alerts }) });
    }
    return json({ updated: result.updated, failed: result.failed });
  }

  private async close(data: BillingCloseData): Promise<FunctionResult> {
    const { billing, metrics } = this.options;
    const options = closeOptionsOf(data);
    const stop = metrics.seconds.startTimer({ operation: 'close' });
    const result = await billing.closePeriod(options);
    stop();
    metrics.billsClosed.inc(result.closed.length);
    for (const f of result.failed) metrics.billFailures.inc({ reason: f.reason });
    if (options.tenants) {
      if (result.unknown.length > 0) throw new BillingServiceError('unknown_tenant', `tenant ${JSON.stringify(result.unknown[0])} does not exist (give its id or slug)`);
      const failure = result.failed[0];
      if (failure) throw new BillingError('invalid_event', `the bill of tenant ${failure.tenantId} cannot be computed: ${failure.message}`);
      const bill = result.closed[0] ?? result.alreadyFinal[0];
      if (bill) return billGeneratedEvent(bill);
    }
    // Every tenant's close: the bills it finalized are one event (webhooks get each tenant's own).
    if (result.closed.length > 0) return billsClosedEvent(result.closed);
    return json({
      closed: result.closed.length,
      already_final: result.alreadyFinal.length,
      skipped: result.skipped,
      failed: result.failed,
      total_by_currency: totalsByCurrency(result.closed),
    });
  }

  /** Bad input → 422; a database outage → 503 (retryable); anything else stays a 500. */
  private async asBillingError(err: unknown): Promise<unknown> {
    if (err instanceof BillingError) return err;
    if (err instanceof BillingServiceError) return new BillingError('invalid_event', err.message);
    try {
      await this.options.pingDb();
    } catch {
      return new BillingError('database_unavailable', 'PostgreSQL is not reachable; nothing was billed, retry later', true, undefined, { cause: err });
    }
    this.options.logger.error({ err }, 'price failed');
    return err;
  }
}

/** Sum of closed bill totals per currency, as decimal text. */
function totalsByCurrency(bills: readonly BillSummary[]): Record<string, string> {
  const sums = new Map<string, Dec>();
  for (const b of bills) sums.set(b.currency, (sums.get(b.currency) ?? new Dec(0)).plus(b.total));
  return Object.fromEntries([...sums].map(([currency, sum]) => [currency, formatAmount(sum, currency)]));
}
