/**
 * Bills in PostgreSQL: tenants to bill, the finalized bills to reconcile, storing drafts and
 * final bills, running costs. Every write runs inside the caller's transaction; the immutability
 * of final bills is the database's job (migration 0004's triggers), not this module's.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { Dec, MB_MS_PER_GB_S, lineKinds, meters, minorUnitDigits, plain } from '../core/pricing/index.js';
import type { ComposedBill, PricedLine, TenantCredit } from './compose.js';
import { BillingServiceError } from './errors.js';
import type { BudgetAlert } from '../contract/events.js';
import type { StoredSegment } from './segments.js';
import { lockKeys } from '../adapters/postgres.js';

export type BillStatus = 'draft' | 'final' | 'paid';

/** A tenant as billing sees it. */
export interface TenantRow {
  id: string;
  slug: string;
  currency: string;
  timezone: string;
  created_at: Date;
  /** Tax (VAT) rate as a fraction, decimal text. */
  tax_rate: string;
}

/** A stored bill with its lines. */
export interface StoredBill {
  id: string;
  tenantId: string;
  status: BillStatus;
  currency: string;
  periodStart: string;
  periodEnd: string;
  planId: string | null;
  /** Invoice number (final and paid bills), gapless per tenant. */
  number: string | null;
  /** Sum of the rounded lines, before tax. */
  subtotal: string;
  taxRate: string;
  taxAmount: string;
  /** subtotal + taxAmount. */
  total: string;
  totalUnrounded: string;
  segments: StoredSegment[];
  lines: PricedLine[];
  usageAsOf: string | null;
  finalizedAt: string | null;
  paidAt: string | null;
}

/** Bills read back from the table: period and segments of a finalized bill to reconcile. */
export interface FinalizedBillRow {
  id: string;
  tenant_id: string;
  currency: string;
  period_start: Date;
  period_end: Date;
  segments: unknown;
  /** The tax rate the finalized bill was taxed at: its adjustments are taxed at it too. */
  tax_rate: string;
}

const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Usage rows updated this long before the last reconciliation still count as possibly unseen: an
 * aggregate transaction stamps updated_at when it starts and may commit after a bill read usage.
 */
const RECONCILE_MARGIN = "interval '1 hour'";

const tenantColumns = ['id', 'slug', 'currency', 'timezone', 'created_at', 'tax_rate'] as const;

/** Tenants by id or slug; `unknown` lists the references that match none. */
export async function findTenants(db: Knex, refs: readonly string[]): Promise<{ tenants: TenantRow[]; unknown: string[] }> {
  const unique = [...new Set(refs)];
  if (unique.length === 0) return { tenants: [], unknown: [] };
  const ids = unique.filter((r) => uuidText.test(r));
  const rows = (await db('tenants')
    .select(...tenantColumns)
    .where((q) => void q.whereIn('slug', unique).orWhereIn('id', ids))) as TenantRow[];
  const found = new Set(rows.flatMap((r) => [r.id, r.slug]));
  return { tenants: rows, unknown: unique.filter((r) => !found.has(r)) };
}

/** One tenant by id or slug, or an unknown_tenant error. */
export async function getTenant(db: Knex, ref: string): Promise<TenantRow> {
  const { tenants } = await findTenants(db, [ref]);
  const tenant = tenants[0];
  if (!tenant) throw new BillingServiceError('unknown_tenant', `tenant ${JSON.stringify(ref)} does not exist (give its id or slug)`);
  return tenant;
}

/** Every tenant, in id order. */
export async function allTenants(db: Knex): Promise<TenantRow[]> {
  return (await db('tenants').select(...tenantColumns).orderBy('id')) as TenantRow[];
}

/** Serialises billing writes per tenant for the rest of the transaction (ids sorted: no deadlock). */
export async function lockTenants(trx: Knex.Transaction, tenantIds: readonly string[]): Promise<void> {
  await lockKeys(trx, 'bill', tenantIds);
}

/** A bill's head: what a bill.generated event says about it. */
export interface BillHead {
  id: string;
  tenantId: string;
  status: BillStatus;
  total: string;
  currency: string;
  periodStart: string;
  periodEnd: string;
}

/** The bill of each (tenant, period start), if there is one (without lines). Keyed by tenant id. */
export async function billsAt(db: Knex, targets: readonly { tenantId: string; periodStart: Date }[]): Promise<Map<string, BillHead>> {
  if (targets.length === 0) return new Map();
  const result = await db.raw<{ rows: { id: string; tenant_id: string; status: BillStatus; total_amount: string; currency: string; period_start: Date; period_end: Date }[] }>(
    `SELECT b.id, b.tenant_id, b.status, b.total_amount, b.currency, b.period_start, b.period_end FROM bills b
       JOIN unnest(?::uuid[], ?::timestamptz[]) AS t(tenant_id, period_start)
         ON b.tenant_id = t.tenant_id AND b.period_start = t.period_start`,
    [targets.map((t) => t.tenantId), targets.map((t) => t.periodStart.toISOString())],
  );
  return new Map(
    result.rows.map((r) => {
      const currency = r.currency.trim();
      const head: BillHead = {
        id: r.id,
        tenantId: r.tenant_id,
        status: r.status,
        total: new Dec(r.total_amount).toFixed(minorUnitDigits(currency)),
        currency,
        periodStart: r.period_start.toISOString(),
        periodEnd: r.period_end.toISOString(),
      };
      return [r.tenant_id, head];
    }),
  );
}

/**
 * Final (or paid) bills of periods before `before` whose usage may have changed since it was
 * last read: a 1h aggregate row of the bill's period updated after the tenant's watermark (the
 * latest usage_as_of of its final bills before `before` — each bill generated reconciles every
 * earlier final bill, so that is when all of them were last compared with usage).
 */
export async function finalizedToReconcile(db: Knex, targets: readonly { tenantId: string; before: Date }[]): Promise<FinalizedBillRow[]> {
  if (targets.length === 0) return [];
  const result = await db.raw<{ rows: FinalizedBillRow[] }>(
    `WITH t AS (SELECT * FROM unnest(?::uuid[], ?::timestamptz[]) AS t(tenant_id, before)),
     fin AS (
       SELECT b.id, b.tenant_id, b.currency, b.period_start, b.period_end, b.segments, b.tax_rate,
              coalesce(b.usage_as_of, b.finalized_at, b.updated_at) AS as_of
         FROM bills b JOIN t ON b.tenant_id = t.tenant_id
        WHERE b.status <> 'draft' AND b.period_start < t.before
     ),
     mark AS (SELECT tenant_id, max(as_of) AS watermark FROM fin GROUP BY tenant_id)
     SELECT f.id, f.tenant_id, f.currency, f.period_start, f.period_end, f.segments, f.tax_rate
       FROM fin f JOIN mark m ON m.tenant_id = f.tenant_id
      WHERE EXISTS (
        SELECT 1 FROM usage_aggregate a
         WHERE a.tenant_id = f.tenant_id AND a.window_size = '1h'
           AND a.window_start < f.period_end AND a.window_start > f.period_start - interval '1 hour'
           AND a.updated_at > m.watermark - ${RECONCILE_MARGIN})
      ORDER BY f.tenant_id, f.period_start`,
    [targets.map((t) => t.tenantId), targets.map((t) => t.before.toISOString())],
  );
  return result.rows;
}

const lineRowSchema = z.object({
  bill_id: z.string(),
  service_id: z.string().nullable(),
  service: z.string().nullable(),
  meter: z.enum([...meters, 'minimum', 'credit']),
  description: z.string(),
  quantity: z.string(),
  free_quantity: z.string(),
  billable_quantity: z.string(),
  unit: z.string(),
  unit_price: z.string(),
  amount_unrounded: z.string(),
  amount: z.string(),
  is_adjustment: z.boolean(),
  kind: z.enum(lineKinds),
  credit_id: z.string().nullable(),
  variant: z.string().nullable(),
  plan_id: z.string().nullable(),
  segment_start: z.date().nullable(),
  segment_end: z.date().nullable(),
  adjusts_bill_id: z.string().nullable(),
  currency: z.string(),
});

const canonical = (value: string): string => plain(new Dec(value));

function toPricedLine(raw: unknown): PricedLine & { billId: string } {
  const r = lineRowSchema.parse(raw);
  const digits = minorUnitDigits(r.currency.trim());
  const line: PricedLine & { billId: string } = {
    billId: r.bill_id,
    service: r.service ?? '',
    meter: r.meter,
    description: r.description,
    quantity: canonical(r.quantity),
    freeQuantity: canonical(r.free_quantity),
    billableQuantity: canonical(r.billable_quantity),
    unit: r.unit,
    unitPrice: canonical(r.unit_price),
    amountUnrounded: canonical(r.amount_unrounded),
    amount: new Dec(r.amount).toFixed(digits),
    kind: r.kind,
    creditId: r.credit_id,
    ...(r.variant !== null ? { variant: r.variant } : {}),
    isAdjustment: r.is_adjustment,
    planId: r.plan_id ?? '',
    segmentStart: r.segment_start?.toISOString() ?? '',
    segmentEnd: r.segment_end?.toISOString() ?? '',
    serviceId: r.service_id,
    adjustsBillId: r.adjusts_bill_id,
  };
  if (line.meter === 'compute') {
    const gbS = (v: string): string => plain(new Dec(v).div(MB_MS_PER_GB_S));
    line.gbS = {
      quantity: gbS(line.quantity),
      freeQuantity: gbS(line.freeQuantity),
      billableQuantity: gbS(line.billableQuantity),
      unitPrice: plain(new Dec(line.unitPrice).times(MB_MS_PER_GB_S)),
    };
  }
  return line;
}

function lineQuery(db: Knex) {
  return db('bill_line_items as l')
    .join('bills as b', 'b.id', 'l.bill_id')
    .leftJoin('services as sv', 'sv.id', 'l.service_id')
    .select(
      'l.bill_id',
      'l.service_id',
      db.raw('coalesce(sv.name, l.service_label) as service'),
      'l.meter',
      'l.description',
      'l.quantity',
      'l.free_quantity',
      'l.billable_quantity',
      'l.unit',
      'l.unit_price',
      'l.amount_unrounded',
      'l.amount',
      'l.is_adjustment',
      'l.kind',
      'l.credit_id',
      'l.variant',
      'l.plan_id',
      'l.segment_start',
      'l.segment_end',
      'l.adjusts_bill_id',
      'b.currency',
    )
    .orderBy([{ column: 'l.bill_id' }, { column: 'l.position' }]);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/** The own (non-adjustment) lines of bills, by bill id. */
export async function ownLines(db: Knex, billIds: readonly string[]): Promise<Map<string, PricedLine[]>> {
  if (billIds.length === 0) return new Map();
  const rows = (await lineQuery(db).whereIn('l.bill_id', billIds).where('l.is_adjustment', false)) as unknown[];
  return groupBy(rows.map(toPricedLine), (l) => l.billId);
}

/** Adjustment lines already issued on final/paid bills for the given finalized bills, by corrected bill id. */
export async function issuedAdjustments(db: Knex, billIds: readonly string[]): Promise<Map<string, PricedLine[]>> {
  if (billIds.length === 0) return new Map();
  const rows = (await lineQuery(db).whereIn('l.adjusts_bill_id', billIds).whereNot('b.status', 'draft')) as unknown[];
  return groupBy(rows.map(toPricedLine), (l) => l.adjustsBillId ?? '');
}

interface BillRow {
  id: string;
  tenant_id: string;
  status: BillStatus;
  currency: string;
  period_start: Date;
  period_end: Date;
  plan_id: string | null;
  total_amount: string;
  total_unrounded: string;
  subtotal: string;
  tax_rate: string;
  tax_amount: string;
  number: string | null;
  segments: StoredSegment[];
  usage_as_of: Date | null;
  finalized_at: Date | null;
  paid_at: Date | null;
}

/** Bills by id with their lines, in the order asked (missing ids are left out). */
export async function loadBills(db: Knex, ids: readonly string[]): Promise<StoredBill[]> {
  if (ids.length === 0) return [];
  const rows = (await db('bills').whereIn('id', ids)) as BillRow[];
  const lines = groupBy(((await lineQuery(db).whereIn('l.bill_id', ids)) as unknown[]).map(toPricedLine), (l) => l.billId);
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.flatMap((id) => {
    const r = byId.get(id);
    if (!r) return [];
    const currency = r.currency.trim();
    return [
      {
        id: r.id,
        tenantId: r.tenant_id,
        status: r.status,
        currency,
        periodStart: r.period_start.toISOString(),
        periodEnd: r.period_end.toISOString(),
        planId: r.plan_id,
        number: r.number,
        subtotal: new Dec(r.subtotal).toFixed(minorUnitDigits(currency)),
        taxRate: canonical(r.tax_rate),
        taxAmount: new Dec(r.tax_amount).toFixed(minorUnitDigits(currency)),
        total: new Dec(r.total_amount).toFixed(minorUnitDigits(currency)),
        totalUnrounded: canonical(r.total_unrounded),
        segments: r.segments,
        lines: (lines.get(id) ?? []).map(({ billId: _bill, ...line }) => line),
        usageAsOf: r.usage_as_of?.toISOString() ?? null,
        finalizedAt: r.finalized_at?.toISOString() ?? null,
        paidAt: r.paid_at?.toISOString() ?? null,
      },
    ];
  });
}

/** A bill's id, tenant and status, or undefined. */
export async function billHead(db: Knex, id: string): Promise<{ id: string; tenant_id: string; status: BillStatus; period_start: Date } | undefined> {
  if (!uuidText.test(id)) return undefined;
  return (await db('bills').select('id', 'tenant_id', 'status', 'period_start').where({ id }).first()) as
    | { id: string; tenant_id: string; status: BillStatus; period_start: Date }
    | undefined;
}

/**
 * Stores bills as drafts (replacing the lines of an existing draft of the same tenant and period)
 * and, with `finalize`, makes them final in the same transaction. A bill that is already final
 * or paid is left untouched and not in the result. Returns the stored bill id per tenant id.
 */
export async function saveBills(trx: Knex.Transaction, bills: readonly ComposedBill[], finalize: boolean): Promise<Map<string, string>> {
  if (bills.length === 0) return new Map();
  // Columns as arrays (unnest), as for the lines below.
  const { rows: upserted } = await trx.raw<{ rows: { id: string; tenant_id: string }[] }>(
    `INSERT INTO bills (tenant_id, plan_id, period_start, period_end, total_amount, total_unrounded, currency, status, segments, usage_as_of,
                        subtotal, tax_rate, tax_amount)
     SELECT tenant_id, plan_id, period_start, period_end, total, total_unrounded, currency, 'draft', segments::jsonb, now(), subtotal, tax_rate, tax_amount
       FROM unnest(?::uuid[], ?::uuid[], ?::timestamptz[], ?::timestamptz[], ?::numeric[], ?::numeric[], ?::text[], ?::text[], ?::numeric[], ?::numeric[], ?::numeric[])
         AS b(tenant_id, plan_id, period_start, period_end, total, total_unrounded, currency, segments, subtotal, tax_rate, tax_amount)
     ON CONFLICT (tenant_id, period_start) DO UPDATE
        SET plan_id = EXCLUDED.plan_id, period_end = EXCLUDED.period_end, total_amount = EXCLUDED.total_amount,
            total_unrounded = EXCLUDED.total_unrounded, currency = EXCLUDED.currency, segments = EXCLUDED.segments,
            usage_as_of = EXCLUDED.usage_as_of, subtotal = EXCLUDED.subtotal, tax_rate = EXCLUDED.tax_rate,
            tax_amount = EXCLUDED.tax_amount, updated_at = now()
      WHERE bills.status = 'draft'
     RETURNING id, tenant_id`,
    [
      bills.map((b) => b.tenantId),
      bills.map((b) => b.planId),
      bills.map((b) => b.period.start),
      bills.map((b) => b.period.end),
      bills.map((b) => b.total),
      bills.map((b) => b.totalUnrounded),
      bills.map((b) => b.currency),
      bills.map((b) => JSON.stringify(b.segments)),
      bills.map((b) => b.subtotal),
      bills.map((b) => b.taxRate),
      bills.map((b) => b.taxAmount),
    ],
  );
  const ids = new Map(upserted.map((r) => [r.tenant_id, r.id]));
  if (ids.size === 0) return ids;
  await trx('bill_line_items').whereIn('bill_id', [...ids.values()]).delete();
  const lines = bills.flatMap((b) => {
    const billId = ids.get(b.tenantId);
    return billId ? b.lines.map((line, position) => ({ billId, line, position })) : [];
  });
  // One array per column (unnest): a statement's size no longer grows with rows × columns.
  // Nullable ids travel as '' (knex binds no arrays with nulls) and become NULL in SQL.
  const text = (pick: (l: (typeof lines)[number]) => string | null): string[] => lines.map((l) => pick(l) ?? '');
  await trx.raw(
    `INSERT INTO bill_line_items (bill_id, position, service_id, meter, description, quantity, free_quantity, billable_quantity, unit,
                                  unit_price, amount_unrounded, amount, is_adjustment, plan_id, segment_start, segment_end, adjusts_bill_id,
                                  service_label, kind, credit_id, variant)
     SELECT bill_id, position, nullif(service_id, '')::uuid, meter, description, quantity, free_quantity, billable_quantity, unit,
            unit_price, amount_unrounded, amount, is_adjustment, nullif(plan_id, '')::uuid, segment_start, segment_end,
            nullif(adjusts_bill_id, '')::uuid, CASE WHEN service_id = '' THEN nullif(service_label, '') END, kind, nullif(credit_id, '')::uuid, nullif(variant, '')
       FROM unnest(?::uuid[], ?::int[], ?::text[], ?::text[], ?::text[], ?::numeric[], ?::numeric[], ?::numeric[], ?::text[],
                   ?::numeric[], ?::numeric[], ?::numeric[], ?::boolean[], ?::text[], ?::timestamptz[], ?::timestamptz[], ?::text[], ?::text[],
                   ?::text[], ?::text[], ?::text[])
         AS l(bill_id, position, service_id, meter, description, quantity, free_quantity, billable_quantity, unit,
              unit_price, amount_unrounded, amount, is_adjustment, plan_id, segment_start, segment_end, adjusts_bill_id, service_label,
              kind, credit_id, variant)`,
    [
      text((l) => l.billId),
      lines.map((l) => l.position),
      text((l) => l.line.serviceId),
      text((l) => l.line.meter),
      text((l) => l.line.description),
      text((l) => l.line.quantity),
      text((l) => l.line.freeQuantity),
      text((l) => l.line.billableQuantity),
      text((l) => l.line.unit),
      text((l) => l.line.unitPrice),
      text((l) => l.line.amountUnrounded),
      text((l) => l.line.amount),
      lines.map((l) => l.line.isAdjustment),
      text((l) => l.line.planId),
      text((l) => l.line.segmentStart),
      text((l) => l.line.segmentEnd),
      text((l) => l.line.adjustsBillId),
      text((l) => l.line.service),
      text((l) => l.line.kind),
      text((l) => l.line.creditId),
      text((l) => l.line.variant ?? null),
    ],
  );
  if (finalize) {
    // Invoice numbers, gapless per tenant in finalization order: the caller holds each tenant's
    // billing lock (lockTenants), so counting the tenant's numbered bills cannot race.
    await trx.raw(
      `WITH todo AS (
         SELECT b.id, b.tenant_id, t.slug, row_number() OVER (PARTITION BY b.tenant_id ORDER BY b.period_start) AS k
           FROM bills b JOIN tenants t ON t.id = b.tenant_id
          WHERE b.id = ANY(?::uuid[]) AND b.status = 'draft'
       ),
       issued AS (
         SELECT tenant_id, count(*) AS n FROM bills WHERE number IS NOT NULL AND tenant_id IN (SELECT tenant_id FROM todo) GROUP BY tenant_id
       )
       UPDATE bills b
          SET status = 'final', finalized_at = now(), updated_at = now(),
              number = 'INV-' || todo.slug || '-' || lpad((coalesce(issued.n, 0) + todo.k)::text, greatest(5, length((coalesce(issued.n, 0) + todo.k)::text)), '0')
         FROM todo LEFT JOIN issued ON issued.tenant_id = todo.tenant_id
        WHERE b.id = todo.id`,
      [[...ids.values()]],
    );
  }
  return ids;
}

/** Marks a final bill paid (the one change a final bill allows). */
export async function setPaid(trx: Knex.Transaction, id: string, paidAt: Date): Promise<void> {
  await trx('bills').where({ id, status: 'final' }).update({ status: 'paid', paid_at: paidAt, updated_at: trx.fn.now() });
}

/** Writes the month-to-date cost of each tenant's open period. */
export async function saveRunningCosts(db: Knex, bills: readonly ComposedBill[]): Promise<void> {
  if (bills.length === 0) return;
  await db('tenant_running_costs')
    .insert(
      bills.map((b) => ({
        tenant_id: b.tenantId,
        period_start: b.period.start,
        period_end: b.period.end,
        currency: b.currency,
        plan_id: b.planId,
        total: b.usageTotal,
        total_unrounded: plain(b.lines.filter((l) => !l.isAdjustment).reduce((sum, l) => sum.plus(l.amountUnrounded), new Dec(0))),
        adjustments_total: b.adjustmentsTotal,
        lines: JSON.stringify(b.lines),
        usage_as_of: db.fn.now(),
        computed_at: db.fn.now(),
      })),
    )
    .onConflict(['tenant_id', 'period_start'])
    .merge();
}

/**
 * Records the budget thresholds each bill's month-to-date subtotal (usage and adjustments, before
 * tax — what GET /tenants/:id/budget shows as month_to_date) has reached, and returns every alert
 * of these tenants not yet handled by notifications (notified_at NULL): the new ones, and earlier
 * ones whose announcement was lost. The unique key makes each alert exist once per period.
 */
export async function recordBudgetAlerts(db: Knex, bills: readonly ComposedBill[]): Promise<BudgetAlert[]> {
  if (bills.length === 0) return [];
  await db.raw(
    `INSERT INTO budget_alerts (budget_id, tenant_id, period_start, threshold, amount, limit_amount, currency)
     SELECT b.id, b.tenant_id, c.period_start, t.threshold, c.total, b.amount, c.currency
       FROM unnest(?::uuid[], ?::timestamptz[], ?::numeric[], ?::text[]) AS c(tenant_id, period_start, total, currency)
       JOIN budgets b ON b.tenant_id = c.tenant_id
      CROSS JOIN LATERAL unnest(b.thresholds) AS t(threshold)
      WHERE c.total >= b.amount * t.threshold / 100
     ON CONFLICT (budget_id, period_start, threshold) DO NOTHING`,
    [bills.map((b) => b.tenantId), bills.map((b) => b.period.start), bills.map((b) => b.subtotal), bills.map((b) => b.currency)],
  );
  const result = await db.raw<{ rows: { id: string; tenant_id: string; budget_id: string; threshold: number; amount: string; limit_amount: string; currency: string; period_start: Date }[] }>(
    `SELECT id, tenant_id, budget_id, threshold, amount, limit_amount, currency, period_start FROM budget_alerts
      WHERE notified_at IS NULL AND tenant_id = ANY(?::uuid[])
      ORDER BY tenant_id, period_start, threshold`,
    [bills.map((b) => b.tenantId)],
  );
  return result.rows.map((r) => {
    const currency = r.currency.trim();
    const digits = minorUnitDigits(currency);
    return {
      alert_id: String(r.id),
      tenant_id: r.tenant_id,
      budget_id: r.budget_id,
      threshold: r.threshold,
      amount: new Dec(r.amount).toFixed(digits),
      limit: new Dec(r.limit_amount).toFixed(digits),
      currency,
      period_start: r.period_start.toISOString(),
    };
  });
}

/**
 * What final and paid bills have drawn from the credit `alias`.id: the sum of its (negative) credit
 * lines, 0 when none — drafts draw nothing, so a balance is only spent by a bill that is final.
 */
export const creditDrawnSql = (alias: string): string =>
  `coalesce((SELECT sum(l.amount) FROM bill_line_items l JOIN bills b ON b.id = l.bill_id WHERE l.credit_id = ${alias}.id AND b.status <> 'draft'), 0)`;

/**
 * The coupons and credits each tenant's bill for a period may use: not voided, in the tenant's
 * currency, valid at some instant of the period; a credit with what final and paid bills have not
 * drawn yet (skipped when nothing is left). Coupons in creation order, credits expiring first.
 */
export async function creditsFor(db: Knex, targets: readonly { tenantId: string; currency: string; start: Date; end: Date }[]): Promise<Map<string, TenantCredit[]>> {
  const out = new Map<string, TenantCredit[]>();
  if (targets.length === 0) return out;
  const { rows } = await db.raw<{
    rows: { tenant_id: string; id: string; code: string; kind: 'credit' | 'coupon'; percent: string | null; remaining: string | null; max_amount_per_bill: string | null }[];
  }>(
    `SELECT c.tenant_id, c.id, c.code, c.kind, c.percent::text, c.max_amount_per_bill::text,
            CASE WHEN c.kind = 'credit' THEN (c.amount + ${creditDrawnSql('c')})::text END AS remaining
       FROM unnest(?::uuid[], ?::text[], ?::timestamptz[], ?::timestamptz[]) AS t(tenant_id, currency, period_start, period_end)
       JOIN tenant_credits c ON c.tenant_id = t.tenant_id AND c.currency = t.currency AND c.voided_at IS NULL
        AND c.valid_from < t.period_end AND (c.valid_until IS NULL OR c.valid_until > t.period_start)
      ORDER BY c.tenant_id, c.kind DESC, c.valid_until NULLS LAST, c.created_at, c.id`,
    [targets.map((t) => t.tenantId), targets.map((t) => t.currency), targets.map((t) => t.start.toISOString()), targets.map((t) => t.end.toISOString())],
  );
  for (const r of rows) {
    if (r.kind === 'credit' && !new Dec(r.remaining ?? '0').gt(0)) continue;
    const list = out.get(r.tenant_id) ?? [];
    list.push({ id: r.id, code: r.code, kind: r.kind, percent: r.percent, remaining: r.remaining, maxAmountPerBill: r.max_amount_per_bill });
    out.set(r.tenant_id, list);
  }
  return out;
}
