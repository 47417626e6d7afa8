/**
 * The billing service: previews, drafts, final and paid bills, the monthly close and the
 * month-to-date running cost. Used by the price function and (later) the REST API.
 *
 * Lifecycle and guarantees:
 * - `calculate` prices a period without storing anything (a preview).
 * - `generate` stores a draft; generating again replaces the draft's content atomically (same id).
 * - `finalize` recomputes the draft from current usage and freezes it; afterwards the database
 *   refuses any change (migration 0004). Finalizing a final bill is a no-op.
 * - `markPaid` moves final → paid; paying a paid bill is a no-op.
 * - `closePeriod` generates and finalizes the previous calendar month of every tenant, each in its
 *   own time zone; tenants already closed are skipped, so a repeated tick changes nothing.
 * - Late usage: every bill computed (preview, draft, close) reconciles the tenant's earlier final
 *   bills whose usage changed and carries the difference as adjustment lines referencing them.
 *   Adjustments already on another final bill are subtracted, so each difference is billed
 *   exactly once however often a draft is regenerated.
 * All writes of a tenant are serialised by a transaction-scoped advisory lock.
 */
import type { Knex } from 'knex';
import { PlanStore, type StoredPlan } from '../adapters/plans.js';
import type { Db } from '../adapters/postgres.js';
import type { WindowBounds } from '../core/windows/index.js';
import type { Logger } from '../runtime/logger.js';
import type { BudgetAlert } from '../contract/events.js';
import { adjustmentsFor, composeBill, usageLines, type ComposedBill } from './compose.js';
import { BillingServiceError, type BillingFailure } from './errors.js';
import { currentPeriod, previousPeriod, resolvePeriod, type PeriodRef } from './periods.js';
import { fromStoredSegments, proratedAllowances, resolveSegments, type BillSegment } from './segments.js';
import {
  allTenants,
  billHead,
  billsAt,
  creditsFor,
  finalizedToReconcile,
  findTenants,
  getTenant,
  issuedAdjustments,
  loadBills,
  lockTenants,
  ownLines,
  saveBills,
  recordBudgetAlerts,
  saveRunningCosts,
  setPaid,
  type BillHead,
  type StoredBill,
  type TenantRow,
} from './store.js';
import { readSegmentUsage, type SegmentUsageQuery, type ServiceUsage } from './usage.js';

/** Dependencies and tuning of the billing service. */
export interface BillingOptions {
  db: Db;
  plans?: PlanStore;
  /** The clock (tests pin it); only used to pick periods — stored timestamps come from PostgreSQL. */
  now?: () => Date;
  /** Tenants priced per query and transaction by closePeriod / updateRunningCost. */
  batchTenants?: number;
  /** Batches closePeriod runs at once, each on its own connection (keep below the pool size). */
  concurrency?: number;
  logger?: Logger;
}

/** A tenant whose bill could not be computed, and why. */
export interface BillingFailureReport {
  tenantId: string;
  reason: BillingFailure | 'error';
  message: string;
}

/**
 * Work that must commit with a bill's status change (the API's audit entry and outbox event): runs
 * inside the transaction that changed it, with the bill as it now is; a rejection rolls the change back.
 */
export type BillChangeHook = (trx: Knex.Transaction, bill: StoredBill) => Promise<void>;

/** What a bill.generated event says about a bill. */
export interface BillSummary {
  billId: string;
  tenantId: string;
  status: 'draft' | 'final' | 'paid';
  total: string;
  currency: string;
  periodStart: string;
  periodEnd: string;
}

/** What closePeriod closes. */
export interface CloseOptions {
  /** The period to close (a month label applies to every tenant in its zone); default: each tenant's previous month. */
  period?: PeriodRef;
  /** Tenant ids or slugs; default every tenant (tenants created after the period are then skipped). */
  tenants?: readonly string[];
}

/** What closePeriod did, tenant by tenant. */
export interface CloseResult {
  /** Bills finalized by this call. */
  closed: BillSummary[];
  /** Bills of the asked tenants and period that were already final or paid (unchanged). */
  alreadyFinal: BillSummary[];
  /** Tenants created after their period ended (not billed for it). */
  skipped: number;
  failed: BillingFailureReport[];
  /** Tenant references that match no tenant. */
  unknown: string[];
}

/** What updateRunningCost did. */
export interface RunningCostResult {
  updated: number;
  failed: BillingFailureReport[];
  unknown: string[];
  /** Budget thresholds crossed for the first time in their period by this update. */
  alerts: BudgetAlert[];
}

interface Target {
  tenant: TenantRow;
  period: WindowBounds;
  /** Length free allowances are prorated against (a range preview: its calendar month); default the period's. */
  allowanceBasisMs?: number;
  /** A range preview prices only the range's usage: no adjustment lines for finalized periods. */
  withoutAdjustments?: boolean;
  /** The plans to price under instead of the tenant's assignments (the simulator). */
  segments?: BillSegment[];
}

/** One plan's price of a tenant's usage (the simulator). */
export interface SimulatedBill {
  plan: StoredPlan;
  bill: ComposedBill;
}

type Computed = { tenantId: string; bill: ComposedBill } | { tenantId: string; failure: BillingFailureReport };

function failureOf(tenantId: string, err: unknown): BillingFailureReport {
  if (err instanceof BillingServiceError) return { tenantId, reason: err.reason, message: err.message };
  return { tenantId, reason: 'error', message: err instanceof Error ? err.message : String(err) };
}

/** Runs `work` over `items` with at most `concurrency` at a time; rejects with the first failure. */
async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/**
 * Sort and hash memory of a close batch: its usage query sorts a month of hourly rows of a batch
 * of tenants for the free-tier walk, which spills to disk at PostgreSQL's 4 MB default.
 */
const BATCH_WORK_MEM = '64MB';

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const summaryOf = (b: BillHead): BillSummary => ({
  billId: b.id,
  tenantId: b.tenantId,
  status: b.status,
  total: b.total,
  currency: b.currency,
  periodStart: b.periodStart,
  periodEnd: b.periodEnd,
});

/** The billing service (see the module comment for its guarantees). */
export class Billing {
  private readonly db: Db;
  private readonly plans: PlanStore;
  private readonly now: () => Date;
  private readonly batchTenants: number;
  private readonly concurrency: number;
  private readonly logger: Logger | undefined;

  constructor(options: BillingOptions) {
    this.db = options.db;
    this.plans = options.plans ?? new PlanStore(options.db);
    this.now = options.now ?? (() => new Date());
    this.batchTenants = options.batchTenants ?? 500;
    this.concurrency = options.concurrency ?? 2;
    this.logger = options.logger;
  }

  /** Prices a period (default: the open one) without storing anything. */
  async calculate(tenantRef: string, period?: PeriodRef): Promise<ComposedBill> {
    const tenant = await getTenant(this.db, tenantRef);
    return this.computeOne(this.db, { tenant, period: resolvePeriod(period, tenant.timezone, this.now()) });
  }

  /**
   * Prices an arbitrary range `[start, end)` inside one calendar month of the tenant's zone
   * without storing anything (the seed's "calculate for a day"). The range is priced like a
   * period of its own whose free allowances are the month's prorated by the range's share of the
   * month (the proration rule of a plan change mid-period), so a day never gets a month's free tier.
   * Only the range's own usage is priced: adjustments for finalized periods belong to bills, not
   * to a slice of a month (summing day previews must not count them once per day).
   */
  async calculateRange(tenantRef: string, start: Date, end: Date): Promise<ComposedBill> {
    const tenant = await getTenant(this.db, tenantRef);
    if (!(start < end)) throw new BillingServiceError('invalid_period', `period_end (${end.toISOString()}) must be after period_start (${start.toISOString()})`);
    const month = currentPeriod(start, tenant.timezone);
    if (end > month.end) {
      throw new BillingServiceError(
        'invalid_period',
        `a range preview lies inside one calendar month of the tenant's time zone ${tenant.timezone}: [${start.toISOString()}, ${end.toISOString()}) crosses ${month.end.toISOString()}`,
      );
    }
    const allowanceBasisMs = month.end.getTime() - month.start.getTime();
    return this.computeOne(this.db, { tenant, period: { start, end }, allowanceBasisMs, withoutAdjustments: true });
  }

  /**
   * The simulator: what the tenant's usage over a period (a month, or a range inside one month as
   * in calculateRange) costs under each of `plans`, as if that plan had been in force over the
   * whole period (free allowances of a range prorated by its share of the month). Usage metered
   * under another plan's rules is re-metered from raw events under each plan's own rules. Nothing
   * is stored and no adjustments are included: only the period's own usage is compared.
   */
  async simulate(tenantRef: string, period: PeriodRef | { start: Date; end: Date } | undefined, plans: readonly StoredPlan[]): Promise<SimulatedBill[]> {
    const tenant = await getTenant(this.db, tenantRef);
    let bounds: WindowBounds;
    let basisMs: number;
    if (period && 'start' in period && period.start instanceof Date && period.end instanceof Date) {
      const month = currentPeriod(period.start, tenant.timezone);
      if (!(period.start < period.end) || period.end > month.end) {
        throw new BillingServiceError('invalid_period', `a simulated range lies inside one calendar month of the tenant's time zone ${tenant.timezone}`);
      }
      bounds = { start: period.start, end: period.end };
      basisMs = month.end.getTime() - month.start.getTime();
    } else {
      bounds = resolvePeriod(period, tenant.timezone, this.now());
      basisMs = bounds.end.getTime() - bounds.start.getTime();
    }
    const out: SimulatedBill[] = [];
    for (const plan of plans) {
      if (plan.currency !== tenant.currency.trim()) {
        throw new BillingServiceError('plan_currency', `plan ${plan.name} v${plan.version} is priced in ${plan.currency} but tenant ${tenant.slug} is billed in ${tenant.currency.trim()}`);
      }
      const segment: BillSegment = { plan, start: bounds.start, end: bounds.end, ...proratedAllowances(plan, bounds.end.getTime() - bounds.start.getTime(), basisMs) };
      out.push({ plan, bill: await this.computeOne(this.db, { tenant, period: bounds, withoutAdjustments: true, segments: [segment] }) });
    }
    return out;
  }

  /** Stores the period's bill as a draft, replacing an earlier draft; refuses a final period. */
  async generate(tenantRef: string, period: PeriodRef): Promise<StoredBill> {
    const tenant = await getTenant(this.db, tenantRef);
    const target = { tenant, period: resolvePeriod(period, tenant.timezone, this.now()) };
    return this.db.transaction(async (trx) => {
      await lockTenants(trx, [tenant.id]);
      const existing = (await billsAt(trx, [{ tenantId: tenant.id, periodStart: target.period.start }])).get(tenant.id);
      if (existing && existing.status !== 'draft') {
        throw new BillingServiceError(
          'bill_final',
          `the bill of ${tenant.slug} for [${target.period.start.toISOString()}, ${target.period.end.toISOString()}) is ${existing.status} (${existing.id}); late usage for it is billed as adjustments on the next bill`,
        );
      }
      const bill = await this.computeOne(trx, target);
      const id = (await saveBills(trx, [bill], false)).get(tenant.id);
      return this.loadOne(trx, id ?? '');
    });
  }

  /**
   * Finalizes a draft (recomputed from current usage first); a final or paid bill is returned
   * unchanged. `onFinalized` runs in the finalizing transaction, only when this call finalized it.
   */
  async finalize(billId: string, onFinalized?: BillChangeHook): Promise<StoredBill> {
    const head = await this.head(billId);
    if (head.status !== 'draft') return this.loadOne(this.db, billId);
    return this.db.transaction(async (trx) => {
      await lockTenants(trx, [head.tenant_id]);
      const current = await this.head(billId, trx);
      if (current.status !== 'draft') return this.loadOne(trx, billId);
      const tenant = await getTenant(trx, current.tenant_id);
      const period = resolvePeriod({ start: current.period_start }, tenant.timezone, this.now());
      const bill = await this.computeOne(trx, { tenant, period });
      await saveBills(trx, [bill], true);
      const finalized = await this.loadOne(trx, billId);
      await onFinalized?.(trx, finalized);
      return finalized;
    });
  }

  /**
   * Marks a final bill paid (at `paidAt`, default now); a paid bill is returned unchanged.
   * `onPaid` runs in the same transaction, only when this call marked it paid.
   */
  async markPaid(billId: string, paidAt: Date = this.now(), onPaid?: BillChangeHook): Promise<StoredBill> {
    return this.db.transaction(async (trx) => {
      const head = await this.head(billId, trx);
      await lockTenants(trx, [head.tenant_id]);
      const current = await this.head(billId, trx);
      if (current.status === 'draft') throw new BillingServiceError('bill_not_final', `bill ${billId} is a draft: finalize it before marking it paid`);
      if (current.status === 'final') {
        // A payment recorded for the future, or before the billed period began, is a typo (an
        // earlier date than the finalization is allowed: importing past payments).
        if (paidAt > this.now() || paidAt < current.period_start) {
          throw new BillingServiceError('invalid_period', `paid_at ${paidAt.toISOString()} must lie between the start of the billed period (${current.period_start.toISOString()}) and now`);
        }
        await setPaid(trx, billId, paidAt);
        const paid = await this.loadOne(trx, billId);
        await onPaid?.(trx, paid);
        return paid;
      }
      return this.loadOne(trx, billId);
    });
  }

  /** A stored bill with its lines. */
  async bill(billId: string): Promise<StoredBill> {
    return this.loadOne(this.db, billId);
  }

  /**
   * Generates and finalizes the bills of a period (default: each tenant's previous calendar
   * month in its own zone) for every tenant or the ones named. Tenants are processed in batches,
   * each batch in one transaction; a tenant that cannot be billed (no plan, ...) is reported in
   * `failed` and does not stop the others.
   */
  async closePeriod(options: CloseOptions = {}): Promise<CloseResult> {
    const result: CloseResult = { closed: [], alreadyFinal: [], skipped: 0, failed: [], unknown: [] };
    const targets = await this.closeTargets(options, result);
    // Tenants already closed are set aside with one query, so a repeated tick costs no transaction
    // (each batch checks again under its locks).
    const closedBefore = await billsAt(this.db, targets.map((t) => ({ tenantId: t.tenant.id, periodStart: t.period.start })));
    const open = targets.filter((t) => {
      const bill = closedBefore.get(t.tenant.id);
      if (bill && bill.status !== 'draft') result.alreadyFinal.push(summaryOf(bill));
      return !bill || bill.status === 'draft';
    });
    await inParallel(chunk(open, this.batchTenants), this.concurrency, (batch) => this.db.transaction((trx) => this.closeBatch(trx, batch, result)));
    for (const f of result.failed) this.logger?.error({ tenant: f.tenantId, reason: f.reason }, `bill not closed: ${f.message}`);
    return result;
  }

  /** The tenants and periods a close covers; unknown, failed and skipped tenants go into `result`. */
  private async closeTargets(options: CloseOptions, result: CloseResult): Promise<Target[]> {
    const now = this.now();
    let tenants: TenantRow[];
    if (options.tenants) ({ tenants, unknown: result.unknown } = await findTenants(this.db, options.tenants));
    else tenants = await allTenants(this.db);
    const byZone = new Map<string, WindowBounds | BillingServiceError>();
    const periodIn = (timeZone: string): WindowBounds | BillingServiceError => {
      let period = byZone.get(timeZone);
      if (!period) {
        try {
          period = options.period ? resolvePeriod(options.period, timeZone, now) : previousPeriod(now, timeZone);
        } catch (err) {
          period = err instanceof BillingServiceError ? err : new BillingServiceError('invalid_period', err instanceof Error ? err.message : String(err));
        }
        byZone.set(timeZone, period);
      }
      return period;
    };
    const targets: Target[] = [];
    for (const tenant of tenants) {
      const period = periodIn(tenant.timezone);
      if (period instanceof BillingServiceError) result.failed.push(failureOf(tenant.id, period));
      else if (!options.tenants && tenant.created_at >= period.end) result.skipped++;
      else targets.push({ tenant, period });
    }
    return targets;
  }

  /** Generates and finalizes one batch of bills in `trx`, recording the outcome in `result`. */
  private async closeBatch(trx: Knex.Transaction, batch: readonly Target[], result: CloseResult): Promise<void> {
    await trx.raw(`SET LOCAL work_mem = '${BATCH_WORK_MEM}'`);
    await lockTenants(trx, batch.map((t) => t.tenant.id));
    const existing = await billsAt(trx, batch.map((t) => ({ tenantId: t.tenant.id, periodStart: t.period.start })));
    result.alreadyFinal.push(...[...existing.values()].filter((b) => b.status !== 'draft').map(summaryOf));
    const todo = batch.filter((t) => (existing.get(t.tenant.id)?.status ?? 'draft') === 'draft');
    const computed = await this.computeMany(trx, todo);
    const bills = computed.flatMap((c) => ('bill' in c ? [c.bill] : []));
    result.failed.push(...computed.flatMap((c) => ('failure' in c ? [c.failure] : [])));
    const ids = await saveBills(trx, bills, true);
    // Summaries from the computed bills (what was just stored), without reading them back.
    for (const b of bills) {
      const billId = ids.get(b.tenantId);
      if (billId) {
        result.closed.push({ billId, tenantId: b.tenantId, status: 'final', total: b.total, currency: b.currency, periodStart: b.period.start, periodEnd: b.period.end });
      }
    }
  }

  /** Recomputes and stores the month-to-date cost of each tenant's open period. */
  async updateRunningCost(tenantRefs: readonly string[]): Promise<RunningCostResult> {
    const now = this.now();
    const { tenants, unknown } = await findTenants(this.db, tenantRefs);
    const result: RunningCostResult = { updated: 0, failed: [], unknown, alerts: [] };
    for (const batch of chunk(tenants, this.batchTenants)) {
      const computed = await this.computeMany(
        this.db,
        batch.map((tenant) => ({ tenant, period: currentPeriod(now, tenant.timezone) })),
      );
      const bills = computed.flatMap((c) => ('bill' in c ? [c.bill] : []));
      result.failed.push(...computed.flatMap((c) => ('failure' in c ? [c.failure] : [])));
      await saveRunningCosts(this.db, bills);
      result.alerts.push(...(await recordBudgetAlerts(this.db, bills)));
      result.updated += bills.length;
    }
    for (const f of result.failed) this.logger?.error({ tenant: f.tenantId, reason: f.reason }, `running cost not updated: ${f.message}`);
    return result;
  }

  private async head(billId: string, db: Knex = this.db) {
    const head = await billHead(db, billId);
    if (!head) throw new BillingServiceError('bill_not_found', `bill ${JSON.stringify(billId)} does not exist`);
    return head;
  }

  private async loadOne(db: Knex, billId: string): Promise<StoredBill> {
    const [bill] = await loadBills(db, [billId]);
    if (!bill) throw new BillingServiceError('bill_not_found', `bill ${JSON.stringify(billId)} does not exist`);
    return bill;
  }

  private async computeOne(db: Knex, target: Target): Promise<ComposedBill> {
    const [computed] = await this.computeMany(db, [target]);
    if (!computed) throw new Error(`no bill computed for tenant ${target.tenant.id}`);
    if ('failure' in computed) {
      const { reason, message } = computed.failure;
      throw reason === 'error' ? new Error(message) : new BillingServiceError(reason, message);
    }
    return computed.bill;
  }

  /**
   * Computes the bills of many tenants with a fixed number of queries: plan segments, finalized
   * bills to reconcile, usage of every segment (the period's and the finalized bills'), and the
   * lines of those finalized bills.
   */
  private async computeMany(db: Knex, targets: readonly Target[]): Promise<Computed[]> {
    if (targets.length === 0) return [];
    // Inside a transaction every read goes through it: the embedded database serves one session,
    // so a query on another pooled connection would wait for the transaction to end.
    const plans = db === this.db ? this.plans : new PlanStore(db);
    const segmentsByTenant = await resolveSegments(
      db,
      plans,
      targets.filter((t) => !t.segments).map((t) => ({ tenantId: t.tenant.id, currency: t.tenant.currency.trim(), start: t.period.start, end: t.period.end, allowanceBasisMs: t.allowanceBasisMs })),
    );
    for (const t of targets) if (t.segments) segmentsByTenant.set(t.tenant.id, t.segments);
    const priced = targets.filter((t) => Array.isArray(segmentsByTenant.get(t.tenant.id)));
    const finalizedRows = await finalizedToReconcile(
      db,
      priced.filter((t) => !t.withoutAdjustments).map((t) => ({ tenantId: t.tenant.id, before: t.period.start })),
    );
    const finalizedSegments = await Promise.all(finalizedRows.map((r) => fromStoredSegments(plans, r.segments)));

    // Every segment to read usage for, under a numeric key.
    const queries: SegmentUsageQuery[] = [];
    const zones = new Map(targets.map((t) => [t.tenant.id, t.tenant.timezone]));
    const keysOf = (tenantId: string, segments: readonly BillSegment[]): number[] =>
      segments.map((segment) => {
        queries.push({ key: queries.length, tenantId, segment, timeZone: zones.get(tenantId) ?? 'UTC' });
        return queries.length - 1;
      });
    const periodKeys = new Map(priced.map((t) => [t.tenant.id, keysOf(t.tenant.id, segmentsByTenant.get(t.tenant.id) as BillSegment[])]));
    const finalizedKeys = finalizedRows.map((r, i) => keysOf(r.tenant_id, finalizedSegments[i] ?? []));
    const usage = new Map<number, ServiceUsage[]>();
    for (const row of await readSegmentUsage(db, queries)) {
      const list = usage.get(row.key);
      if (list) list.push(row);
      else usage.set(row.key, [row]);
    }
    const finalizedIds = finalizedRows.map((r) => r.id);
    const [own, issued] = [await ownLines(db, finalizedIds), await issuedAdjustments(db, finalizedIds)];
    // Coupons and credits belong to bills, not to previews of a range or simulations.
    const credits = await creditsFor(
      db,
      priced.filter((t) => !t.withoutAdjustments).map((t) => ({ tenantId: t.tenant.id, currency: t.tenant.currency.trim(), start: t.period.start, end: t.period.end })),
    );

    return targets.map((t): Computed => {
      const tenantId = t.tenant.id;
      const segments = segmentsByTenant.get(tenantId);
      if (!Array.isArray(segments)) return { tenantId, failure: failureOf(tenantId, segments) };
      try {
        const adjustments = finalizedRows.flatMap((r, i) =>
          r.tenant_id !== tenantId
            ? []
            : adjustmentsFor({
                id: r.id,
                currency: r.currency.trim(),
                segments: finalizedSegments[i] ?? [],
                lines: own.get(r.id) ?? [],
                previousAdjustments: issued.get(r.id) ?? [],
                recomputedUsage: (finalizedKeys[i] ?? []).map((k) => usage.get(k) ?? []),
              }),
        );
        const bill = composeBill({
          tenantId,
          currency: t.tenant.currency.trim(),
          taxRate: t.tenant.tax_rate,
          adjustedBillTaxRates: new Map(finalizedRows.filter((r) => r.tenant_id === tenantId).map((r) => [r.id, r.tax_rate])),
          period: t.period,
          segments,
          usageLines: usageLines(segments, (periodKeys.get(tenantId) ?? []).map((k) => usage.get(k) ?? [])),
          adjustmentLines: adjustments,
          credits: credits.get(tenantId) ?? [],
        });
        return { tenantId, bill };
      } catch (err) {
        return { tenantId, failure: failureOf(tenantId, err) };
      }
    });
  }
}
