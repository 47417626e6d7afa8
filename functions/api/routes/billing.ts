/**
 * Bills: preview (calculate), draft (generate), finalize, mark paid, read, download (CSV, PDF),
 * and the per-tenant report. A final bill cannot be changed through any endpoint: generate
 * answers 409 for a final period, finalize and mark-paid are idempotent, and the database
 * refuses any other change (migration 0004).
 */
import type { Knex } from 'knex';
import { DateTime } from 'luxon';
import { z } from 'zod';
import { CloudEvent } from 'cloudevents';
import { audit } from '../../../src/api/audit.js';
import { billCsv, billPdf } from '../../../src/api/documents.js';
import { ApiError, notFound } from '../../../src/api/errors.js';
import type { Principal } from '../../../src/api/keys.js';
import { Reply, reply, route } from '../../../src/api/route.js';
import { canSee, findTenant, isUuid, requiredTenant, scopedTenant, visibleTenant } from '../../../src/api/tenancy.js';
import { BillingServiceError, type BillChangeHook, type ComposedBill, type StoredBill } from '../../../src/billing/index.js';
import { lockTenants } from '../../../src/billing/store.js';
import { EventType, billGeneratedData, eventSource } from '../../../src/contract/events.js';
import { recordEvent, sendRecorded } from '../../../src/stages/api-event-outbox.js';
import { billEventId } from '../../../src/stages/price.js';
import { Dec, lineKinds, minorUnitDigits } from '../../../src/core/pricing/index.js';
import { decimalText, idParams, instant, limitQuery, page, tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

const month = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'a month written YYYY-MM');
const periodBody = z
  .strictObject({
    tenant_id: tenantRef.optional().describe('required for an admin key; a tenant key may omit it'),
    month: month.optional().describe('a calendar month in the tenant’s time zone'),
    period_start: instant.optional(),
    period_end: instant.optional(),
  })
  .refine((b) => !(b.month && (b.period_start || b.period_end)), { message: 'give month or period_start/period_end, not both', path: ['month'] })
  .refine((b) => !(b.period_end && !b.period_start), { message: 'period_end needs period_start', path: ['period_start'] });

const lineSchema = z.object({
  service: z.string().describe('service id (or name) the line is for'),
  service_id: z.string().nullable(),
  meter: z.string().describe('invocations | compute | cold_starts | cpu; minimum or credit for those lines'),
  kind: z.enum(lineKinds).describe('usage | commitment (committed-use discount, unused commitment) | minimum (top-up to the plan minimum) | credit (coupon or prepaid credit)'),
  credit_id: z.string().nullable().describe('credit lines: the tenant credit drawn on'),
  variant: z.string().nullable().describe('usage priced by a plan price variant: e.g. "arm64 · spot · night"; null at list prices'),
  description: z.string(),
  quantity: decimalText,
  free_quantity: decimalText,
  billable_quantity: decimalText,
  unit: z.string(),
  unit_price: decimalText,
  amount_unrounded: decimalText,
  amount: decimalText.describe('rounded half-up to the currency’s minor unit'),
  is_adjustment: z.boolean(),
  adjusts_bill_id: z.string().nullable(),
  plan_id: z.string(),
  segment_start: z.string(),
  segment_end: z.string(),
});
const segmentSchema = z.object({
  plan_id: z.string(),
  plan: z.string(),
  version: z.number(),
  start: z.string(),
  end: z.string(),
  free_tier_invocations: z.string(),
  free_tier_mb_ms: z.string(),
  share: z.string().optional().describe('the segment’s share of the period (absent: the whole period); allowances, tier bounds and flat fees are prorated by it'),
});
const billSchema = z.object({
  id: z.string().nullable().describe('null for a preview'),
  tenant_id: z.string(),
  status: z.enum(['preview', 'draft', 'final', 'paid']),
  currency: z.string(),
  period_start: z.string(),
  period_end: z.string(),
  plan_id: z.string().nullable(),
  number: z.string().nullable().describe('invoice number, given at finalization, gapless per tenant'),
  subtotal: decimalText.describe('sum of the rounded lines'),
  tax_rate: decimalText,
  tax_amount: decimalText.describe('subtotal × tax_rate, rounded half-up once'),
  total: decimalText.describe('subtotal + tax_amount'),
  total_unrounded: decimalText.describe('sum of the unrounded lines, before tax'),
  segments: z.array(segmentSchema),
  line_items: z.array(lineSchema),
  usage_as_of: z.string().nullable(),
  finalized_at: z.string().nullable(),
  paid_at: z.string().nullable(),
});
type BillOut = z.infer<typeof billSchema>;

const linesOut = (lines: ComposedBill['lines']): BillOut['line_items'] =>
  lines.map((l) => ({
    service: l.service,
    service_id: l.serviceId,
    meter: l.meter,
    kind: l.kind,
    credit_id: l.creditId,
    variant: l.variant ?? null,
    description: l.description,
    quantity: l.quantity,
    free_quantity: l.freeQuantity,
    billable_quantity: l.billableQuantity,
    unit: l.unit,
    unit_price: l.unitPrice,
    amount_unrounded: l.amountUnrounded,
    amount: l.amount,
    is_adjustment: l.isAdjustment,
    adjusts_bill_id: l.adjustsBillId,
    plan_id: l.planId,
    segment_start: l.segmentStart,
    segment_end: l.segmentEnd,
  }));

const previewOut = (b: ComposedBill): BillOut => ({
  id: null,
  tenant_id: b.tenantId,
  status: 'preview',
  currency: b.currency,
  period_start: b.period.start,
  period_end: b.period.end,
  plan_id: b.planId,
  number: null,
  subtotal: b.subtotal,
  tax_rate: b.taxRate,
  tax_amount: b.taxAmount,
  total: b.total,
  total_unrounded: b.totalUnrounded,
  segments: b.segments,
  line_items: linesOut(b.lines),
  usage_as_of: null,
  finalized_at: null,
  paid_at: null,
});

export const storedOut = (b: StoredBill): BillOut => ({
  id: b.id,
  tenant_id: b.tenantId,
  status: b.status,
  currency: b.currency,
  period_start: b.periodStart,
  period_end: b.periodEnd,
  plan_id: b.planId,
  number: b.number,
  subtotal: b.subtotal,
  tax_rate: b.taxRate,
  tax_amount: b.taxAmount,
  total: b.total,
  total_unrounded: b.totalUnrounded,
  segments: b.segments,
  line_items: linesOut(b.lines),
  usage_as_of: b.usageAsOf,
  finalized_at: b.finalizedAt,
  paid_at: b.paidAt,
});

/** Billing's own errors as API problems. */
export function fromBillingError(err: unknown): unknown {
  if (!(err instanceof BillingServiceError)) return err;
  switch (err.reason) {
    case 'unknown_tenant':
    case 'bill_not_found':
      return new ApiError('not_found', err.message);
    case 'bill_final':
      return new ApiError('bill_final', err.message);
    case 'bill_not_final':
      return new ApiError('bill_not_final', err.message);
    case 'invalid_period':
      return new ApiError('validation_failed', err.message, [{ name: 'body.period', reason: err.message }]);
    case 'no_plan':
    case 'plan_currency':
      return new ApiError('conflict', err.message);
  }
}

async function billing<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw fromBillingError(err);
  }
}

/**
 * The seed writes a day as [00:00:00, 23:59:59]: an end on the last second of an hour in the
 * tenant's zone (hh:59:59, no fraction) is read as inclusive, i.e. up to the next full hour.
 */
function exclusiveEnd(text: string, timeZone: string): Date {
  const end = new Date(text);
  const local = DateTime.fromJSDate(end, { zone: timeZone });
  return local.minute === 59 && local.second === 59 && local.millisecond === 0 ? new Date(end.getTime() + 1000) : end;
}

/** A bill the caller may see (404 otherwise, the same as a missing one). */
async function visibleBill(deps: ApiDeps, principal: Principal, id: string): Promise<StoredBill> {
  if (!isUuid(id)) throw notFound('bill', id);
  const bill = await billing(() => deps.billing.bill(id)).catch((err: unknown) => {
    throw err instanceof ApiError && err.code === 'not_found' ? notFound('bill', id) : err;
  });
  if (!canSee(principal, bill.tenantId)) throw notFound('bill', id);
  return bill;
}

const creditNoteSchema = z.object({
  id: z.uuid(),
  bill_id: z.uuid(),
  tenant_id: z.uuid(),
  number: z.string(),
  amount: decimalText,
  currency: z.string(),
  reason: z.string(),
  created_at: z.string(),
});
interface CreditNoteRow {
  id: string;
  bill_id: string;
  tenant_id: string;
  number: string;
  amount: string;
  currency: string;
  reason: string;
  created_at: Date;
}
const creditNoteOut = (r: CreditNoteRow): z.infer<typeof creditNoteSchema> => {
  const currency = r.currency.trim();
  return { id: r.id, bill_id: r.bill_id, tenant_id: r.tenant_id, number: r.number, amount: new Dec(r.amount).toFixed(minorUnitDigits(currency)), currency, reason: r.reason, created_at: r.created_at.toISOString() };
};

const reportSchema = z.object({
  tenant: z.object({ id: z.string(), slug: z.string(), name: z.string(), currency: z.string(), timezone: z.string() }),
  bills: z.array(z.object({ id: z.string(), period_start: z.string(), period_end: z.string(), month: z.string(), status: z.string(), total: decimalText, finalized_at: z.string().nullable(), paid_at: z.string().nullable() })),
  by_month: z.array(z.object({ month: z.string(), total: decimalText, status: z.string() })),
  by_service: z.array(z.object({ service_id: z.string().nullable(), service: z.string(), total: decimalText })),
  totals: z.object({ billed: decimalText.describe('final and paid bills, with tax'), paid: decimalText, outstanding: decimalText.describe('final bills not yet paid (credit notes are listed apart, in credited)'), draft: decimalText, credited: decimalText.describe('credit notes issued on these bills') }),
});

async function report(db: Knex, tenant: { id: string; slug: string; name: string; currency: string; timezone: string }, from?: Date, to?: Date): Promise<z.infer<typeof reportSchema>> {
  const digits = minorUnitDigits(tenant.currency);
  const fixed = (v: string | number | InstanceType<typeof Dec>): string => new Dec(v).toFixed(digits);
  const q = db('bills').where({ tenant_id: tenant.id }).orderBy('period_start');
  if (from) void q.where('period_end', '>', from);
  if (to) void q.where('period_start', '<', to);
  const rows: {
    id: string;
    period_start: Date;
    period_end: Date;
    status: string;
    total_amount: string;
    finalized_at: Date | null;
    paid_at: Date | null;
  }[] = await q.select('id', 'period_start', 'period_end', 'status', 'total_amount', 'finalized_at', 'paid_at');
  const monthOf = (d: Date): string => DateTime.fromJSDate(d, { zone: tenant.timezone }).toFormat('yyyy-MM');
  const bills = rows.map((r) => ({
    id: r.id,
    period_start: r.period_start.toISOString(),
    period_end: r.period_end.toISOString(),
    month: monthOf(r.period_start),
    status: r.status,
    total: fixed(r.total_amount),
    finalized_at: r.finalized_at?.toISOString() ?? null,
    paid_at: r.paid_at?.toISOString() ?? null,
  }));
  const services = (await db('bill_line_items as l')
    .leftJoin('services as s', 's.id', 'l.service_id')
    .whereIn(
      'l.bill_id',
      rows.map((r) => r.id),
    )
    .groupBy('l.service_id', 's.name')
    .select('l.service_id', 's.name')
    .sum({ total: 'l.amount' })
    .orderBy('total', 'desc')) as { service_id: string | null; name: string | null; total: string }[];
  const sum = (status: string[]): string => fixed(rows.filter((r) => status.includes(r.status)).reduce((a, r) => a.plus(r.total_amount), new Dec(0)));
  return {
    tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name, currency: tenant.currency, timezone: tenant.timezone },
    bills,
    by_month: bills.map((b) => ({ month: b.month, total: b.total, status: b.status })),
    by_service: services.map((s) => ({ service_id: s.service_id, service: s.name ?? (s.service_id ? s.service_id : 'tenant-wide'), total: fixed(s.total) })),
    totals: {
      billed: sum(['final', 'paid']),
      paid: sum(['paid']),
      outstanding: sum(['final']),
      draft: sum(['draft']),
      credited: fixed(
        ((await db('credit_notes')
          .whereIn(
            'bill_id',
            rows.map((r) => r.id),
          )
          .sum({ total: 'amount' })
          .first()) as { total: string | null } | undefined)?.total ?? 0,
      ),
    },
  };
}

export const billingRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  /**
   * A bill that became final or paid here is announced as the bill.generated a close would send:
   * the event and the audit entry are written in the transaction of the change (the event in the
   * outbox, src/stages/api-event-outbox.ts), and the event goes to the Broker after the commit.
   * Returns the hook for the billing service and what to do once the change has committed.
   */
  const announcing = (principal: Principal, action: string, details: (bill: StoredBill) => Record<string, unknown>) => {
    let recorded: CloudEvent<unknown> | undefined;
    const hook: BillChangeHook = async (trx, bill) => {
      await audit(trx, principal, { action, entityType: 'bill', entityId: bill.id, tenantId: bill.tenantId, details: details(bill) });
      recorded = new CloudEvent<unknown>({
        id: billEventId(bill.id, bill.status),
        type: EventType.billGenerated,
        source: eventSource('api'),
        data: billGeneratedData.parse({ bill_id: bill.id, tenant_id: bill.tenantId, status: bill.status, total: bill.total, currency: bill.currency, period_start: bill.periodStart, period_end: bill.periodEnd }),
      });
      await recordEvent(trx, recorded, bill.tenantId);
    };
    const afterCommit = async (): Promise<void> => {
      if (recorded) await sendRecorded(db, deps.events, recorded, deps.logger);
    };
    return { hook, afterCommit };
  };
  const finalize = async (principal: Principal, id: string): Promise<BillOut> => {
    const bill = await visibleBill(deps, principal, id);
    const { hook, afterCommit } = announcing(principal, 'bill.finalize', (done) => ({ total: done.total, currency: done.currency }));
    const done = await billing(() => deps.billing.finalize(bill.id, hook));
    await afterCommit();
    return storedOut(done);
  };
  const markPaid = async (principal: Principal, id: string, paidAt: string | undefined): Promise<BillOut> => {
    const bill = await visibleBill(deps, principal, id);
    const { hook, afterCommit } = announcing(principal, 'bill.mark_paid', (done) => ({ paid_at: done.paidAt }));
    const done = await billing(() => deps.billing.markPaid(bill.id, paidAt ? new Date(paidAt) : deps.now(), hook));
    await afterCommit();
    return storedOut(done);
  };
  const document = async (principal: Principal, id: string, kind: 'csv' | 'pdf'): Promise<Reply> => {
    const bill = await visibleBill(deps, principal, id);
    const tenant = await findTenant(db, bill.tenantId);
    if (!tenant) throw notFound('bill', id);
    const doc = { bill, tenant };
    const name = `bill-${tenant.slug}-${DateTime.fromISO(bill.periodStart, { zone: tenant.timezone }).toFormat('yyyy-MM')}-${bill.id.slice(0, 8)}.${kind}`;
    const headers = { 'Content-Disposition': `attachment; filename="${name}"` };
    return kind === 'csv'
      ? new Reply(200, undefined, headers, { data: billCsv(doc), contentType: 'text/csv; charset=utf-8' })
      : new Reply(200, undefined, headers, { data: await billPdf(doc), contentType: 'application/pdf' });
  };
  const billIdBody = z.strictObject({ bill_id: z.string().min(1) });
  return [
    route({
      method: 'post',
      path: '/billing/calculate',
      summary: 'Price a period without storing a bill (preview)',
      description:
        'Body: tenant_id and either month (YYYY-MM, the tenant’s zone), or period_start/period_end. A range inside one month (e.g. a day) is priced with the month’s free allowances prorated by its share; an end written hh:59:59 counts as inclusive. Without a period: the open month to date.',
      tag: 'billing',
      auth: ['admin', 'tenant'],
      limit: 'expensive',
      body: periodBody,
      responses: { 200: { description: 'The preview', schema: billSchema } },
      handle: async ({ principal, body }) => {
        const tenant = await requiredTenant(db, principal, body.tenant_id);
        if (body.month) return previewOut(await billing(() => deps.billing.calculate(tenant.id, { month: body.month ?? '' })));
        if (!body.period_start) return previewOut(await billing(() => deps.billing.calculate(tenant.id)));
        const start = body.period_start;
        const end = body.period_end;
        // A whole calendar month prices like the bill; anything else is a range preview.
        const whole = await billing(() => deps.billing.calculate(tenant.id, { start, ...(end ? { end: exclusiveEnd(end, tenant.timezone).toISOString() } : {}) })).catch((err: unknown) => {
          if (err instanceof ApiError && err.code === 'validation_failed') return undefined;
          throw err;
        });
        if (whole) return previewOut(whole);
        if (!end) throw new ApiError('validation_failed', 'period_end is required for a range that is not a calendar month', [{ name: 'body.period_end', reason: 'required' }]);
        return previewOut(await billing(() => deps.billing.calculateRange(tenant.id, new Date(start), exclusiveEnd(end, tenant.timezone))));
      },
    }),
    route({
      method: 'post',
      path: '/billing/generate',
      summary: 'Compute and store a period’s bill as a draft (regenerating replaces the draft)',
      tag: 'billing',
      auth: ['admin'],
      limit: 'expensive',
      body: periodBody,
      responses: { 201: { description: 'The draft', schema: billSchema }, 409: { description: 'The period’s bill is already final' } },
      handle: async ({ principal, body }) => {
        const tenant = await requiredTenant(db, principal, body.tenant_id);
        const period = body.month ? { month: body.month } : body.period_start ? { start: body.period_start, ...(body.period_end ? { end: exclusiveEnd(body.period_end, tenant.timezone).toISOString() } : {}) } : undefined;
        if (!period) throw new ApiError('validation_failed', 'give month (YYYY-MM) or period_start', [{ name: 'body.month', reason: 'required' }]);
        const bill = await billing(() => deps.billing.generate(tenant.id, period));
        await audit(db, principal, { action: 'bill.generate', entityType: 'bill', entityId: bill.id, tenantId: tenant.id, details: { period_start: bill.periodStart, total: bill.total } });
        return reply(201, storedOut(bill), { Location: `/api/v1/bills/${bill.id}` });
      },
    }),
    route({
      method: 'post',
      path: '/billing/finalize',
      summary: 'Finalize a draft bill (recomputed first; immutable afterwards); finalizing again is a no-op',
      tag: 'billing',
      auth: ['admin'],
      body: billIdBody,
      responses: { 200: { description: 'The final bill', schema: billSchema } },
      handle: ({ principal, body }) => finalize(principal, body.bill_id),
    }),
    route({
      method: 'post',
      path: '/billing/mark-paid',
      summary: 'Mark a final bill paid; paying again is a no-op',
      tag: 'billing',
      auth: ['admin'],
      body: z.strictObject({ bill_id: z.string().min(1), paid_at: instant.optional() }),
      responses: { 200: { description: 'The paid bill', schema: billSchema }, 409: { description: 'The bill is a draft' } },
      handle: ({ principal, body }) => markPaid(principal, body.bill_id, body.paid_at),
    }),
    ...(['csv', 'pdf'] as const).map((kind) =>
      route({
        method: 'get',
        path: `/bills/:id.${kind}`,
        openapiPath: `/bills/{id}.${kind}`,
        summary: kind === 'csv' ? 'A bill as CSV (tenant, period, currency, line items, total)' : 'A bill as PDF',
        tag: 'billing',
        auth: ['admin', 'tenant'],
        params: idParams,
        responses: { 200: { description: `${kind.toUpperCase()} document`, contentType: kind === 'csv' ? 'text/csv' : 'application/pdf' } },
        handle: ({ principal, params }) => document(principal, params.id, kind),
      }),
    ),
    route({
      method: 'get',
      path: '/bills',
      summary: 'Bills, newest period first (a tenant key sees its own)',
      tag: 'billing',
      auth: ['admin', 'tenant'],
      query: z.strictObject({ tenant_id: tenantRef.optional(), status: z.enum(['draft', 'final', 'paid']).optional(), limit: limitQuery, cursor: z.string().optional().describe('opaque, from next_cursor') }),
      responses: { 200: { description: 'Bills without line items', schema: page(z.object({ id: z.string(), tenant_id: z.string(), status: z.string(), currency: z.string(), period_start: z.string(), period_end: z.string(), total: decimalText })) } },
      handle: async ({ principal, query }) => {
        const tenant = await scopedTenant(db, principal, query.tenant_id);
        const q = db('bills').orderBy([{ column: 'period_start', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(query.limit + 1);
        if (tenant) void q.where({ tenant_id: tenant.id });
        if (query.status) void q.where({ status: query.status });
        if (query.cursor) {
          const [at, id] = Buffer.from(query.cursor, 'base64url').toString('utf8').split('|');
          if (!at || !id || Number.isNaN(Date.parse(at)) || !isUuid(id)) throw new ApiError('validation_failed', 'cursor is not one this API issued', [{ name: 'query.cursor', reason: 'invalid' }]);
          void q.whereRaw('(period_start, id) < (?::timestamptz, ?::uuid)', [at, id]);
        }
        const rows: { id: string; tenant_id: string; status: string; currency: string; period_start: Date; period_end: Date; total_amount: string }[] = await q.select('id', 'tenant_id', 'status', 'currency', 'period_start', 'period_end', 'total_amount');
        const items = rows.slice(0, query.limit).map((r) => ({
          id: r.id,
          tenant_id: r.tenant_id,
          status: r.status,
          currency: r.currency.trim(),
          period_start: r.period_start.toISOString(),
          period_end: r.period_end.toISOString(),
          total: new Dec(r.total_amount).toFixed(minorUnitDigits(r.currency.trim())),
        }));
        const last = items.at(-1);
        return { items, next_cursor: rows.length > query.limit && last ? Buffer.from(`${last.period_start}|${last.id}`).toString('base64url') : null };
      },
    }),
    route({
      method: 'get',
      path: '/bills/:id',
      summary: 'A bill with its line items',
      tag: 'billing',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'The bill', schema: billSchema } },
      handle: async ({ principal, params }) => storedOut(await visibleBill(deps, principal, params.id)),
    }),
    route({
      method: 'post',
      path: '/bills/:id/finalize',
      summary: 'Finalize a draft bill (same as POST /billing/finalize)',
      tag: 'billing',
      auth: ['admin'],
      params: idParams,
      responses: { 200: { description: 'The final bill', schema: billSchema } },
      handle: ({ principal, params }) => finalize(principal, params.id),
    }),
    route({
      method: 'post',
      path: '/bills/:id/mark-paid',
      summary: 'Mark a final bill paid (same as POST /billing/mark-paid)',
      tag: 'billing',
      auth: ['admin'],
      params: idParams,
      body: z.strictObject({ paid_at: instant.optional() }),
      responses: { 200: { description: 'The paid bill', schema: billSchema } },
      handle: ({ principal, params, body }) => markPaid(principal, params.id, body.paid_at),
    }),
    route({
      method: 'post',
      path: '/bills/:id/credit-notes',
      summary: 'Issue a credit note against a final or paid bill (the bill itself never changes)',
      description: 'amount defaults to what is left to credit on the bill; credit notes of a bill never exceed its total. Numbered CN-<slug>-00001 per tenant.',
      tag: 'billing',
      auth: ['admin'],
      params: idParams,
      body: z.strictObject({ amount: z.string().regex(/^\d+(\.\d+)?$/, 'a positive decimal string').optional(), reason: z.string().trim().min(1).max(1000) }),
      responses: { 201: { description: 'The credit note', schema: creditNoteSchema }, 409: { description: 'The bill is a draft (regenerate it instead)' } },
      handle: async ({ principal, params, body }) => {
        const bill = await visibleBill(deps, principal, params.id);
        if (bill.status === 'draft') throw new ApiError('bill_not_final', `bill ${bill.id} is a draft: regenerate it instead of crediting it`);
        const digits = minorUnitDigits(bill.currency);
        return db.transaction(async (trx) => {
          await lockTenants(trx, [bill.tenantId]);
          const credited = new Dec(((await trx('credit_notes').where({ bill_id: bill.id }).sum({ total: 'amount' }).first()) as { total: string | null } | undefined)?.total ?? 0);
          const left = new Dec(bill.total).minus(credited);
          const amount = new Dec(body.amount ?? left);
          if (amount.decimalPlaces() > digits) throw new ApiError('validation_failed', `amount has more decimals than ${bill.currency} has (${digits})`, [{ name: 'body.amount', reason: 'too many decimals' }]);
          if (amount.lte(0) || amount.gt(left)) {
            throw new ApiError('validation_failed', `amount must be above 0 and at most what is left to credit on bill ${bill.id}: ${left.toFixed(digits)} ${bill.currency}`, [{ name: 'body.amount', reason: 'out of range' }]);
          }
          const tenant = (await trx('tenants').select('slug').where({ id: bill.tenantId }).first()) as { slug: string };
          const issued = Number(((await trx('credit_notes').where({ tenant_id: bill.tenantId }).count<{ n: string }[]>({ n: '*' }))[0]?.n ?? 0));
          const number = `CN-${tenant.slug}-${String(issued + 1).padStart(5, '0')}`;
          const [row] = (await trx('credit_notes')
            .insert({ bill_id: bill.id, tenant_id: bill.tenantId, number, amount: amount.toFixed(digits), currency: bill.currency, reason: body.reason, created_by: `key:${principal.keyId}` })
            .returning('*')) as CreditNoteRow[];
          if (!row) throw new Error('credit note insert returned no row');
          await audit(trx, principal, { action: 'bill.credit_note', entityType: 'credit_note', entityId: row.id, tenantId: bill.tenantId, details: { bill_id: bill.id, number, amount: row.amount } });
          return reply(201, creditNoteOut(row));
        });
      },
    }),
    route({
      method: 'get',
      path: '/bills/:id/credit-notes',
      summary: 'Credit notes issued against a bill',
      tag: 'billing',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'Credit notes, oldest first', schema: z.object({ items: z.array(creditNoteSchema) }) } },
      handle: async ({ principal, params }) => {
        const bill = await visibleBill(deps, principal, params.id);
        return { items: ((await db('credit_notes').where({ bill_id: bill.id }).orderBy('created_at')) as CreditNoteRow[]).map(creditNoteOut) };
      },
    }),
    route({
      method: 'get',
      path: '/billing/reports/:tenant_id',
      summary: 'Bill history of a tenant with totals by month and by service',
      tag: 'billing',
      auth: ['admin', 'tenant'],
      params: z.strictObject({ tenant_id: tenantRef }),
      query: z.strictObject({ from: instant.optional(), to: instant.optional() }),
      responses: { 200: { description: 'The report', schema: reportSchema } },
      handle: async ({ principal, params, query }) => {
        const tenant = await visibleTenant(db, principal, params.tenant_id);
        return report(db, tenant, query.from ? new Date(query.from) : undefined, query.to ? new Date(query.to) : undefined);
      },
    }),
  ];
};


