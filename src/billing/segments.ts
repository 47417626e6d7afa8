/**
 * The plans a bill is priced under: the tenant's assignment history over the period (gaps take
 * the default plan of the tenant's currency, as PlanStore.segments does), resolved for many
 * tenants with one query.
 *
 * Plan change mid-period: each segment is billed under its own plan (its prices and metering
 * rules), and the plan's free allowances are prorated by the segment's share of the period —
 * invocations rounded down to a whole number, MB·ms down to 0.001 (the precision of billed MB·ms)
 * — so a tenant never gets more than one period's free tier. A whole-period segment keeps the
 * allowances exactly. Adjacent segments of the same plan are merged first.
 */
import { z } from 'zod';
import { Dec, plain } from '../core/pricing/index.js';
import type { PlanStore, StoredPlan } from '../adapters/plans.js';
import type { Db } from '../adapters/postgres.js';
import { BillingServiceError } from './errors.js';

/** One plan in force over `[start, end)` of a bill, with the free allowances it gets there. */
export interface BillSegment {
  plan: StoredPlan;
  start: Date;
  end: Date;
  /** Whole invocations free in this segment. */
  freeInvocations: string;
  /** MB·ms free in this segment. */
  freeMbMs: string;
  /** CPU-ms free in this segment (absent: none, as for segments stored before CPU allowances). */
  freeCpuMs?: string;
  /**
   * The segment's share of the period ("1" for the whole period): free allowances, charge-model
   * tier bounds and flat fees are prorated by it, so splitting a period among plan versions never
   * gives more than one period's allowances or restarts tiers at 0 with full bounds.
   */
  share?: string;
}

/** How a segment is kept in bills.segments (a finalized bill is recomputed with exactly these). */
export const storedSegmentSchema = z.object({
  plan_id: z.string(),
  plan: z.string(),
  version: z.number().int(),
  start: z.iso.datetime(),
  end: z.iso.datetime(),
  free_tier_invocations: z.string(),
  free_tier_mb_ms: z.string(),
  free_tier_cpu_ms: z.string().optional(),
  /** Absent in segments stored before shares were kept: those were priced as whole. */
  share: z.string().optional(),
});
export type StoredSegment = z.infer<typeof storedSegmentSchema>;

/** A segment as bills.segments keeps it. */
export function toStoredSegment(s: BillSegment): StoredSegment {
  return {
    plan_id: s.plan.id,
    plan: s.plan.name,
    version: s.plan.version,
    start: s.start.toISOString(),
    end: s.end.toISOString(),
    free_tier_invocations: s.freeInvocations,
    free_tier_mb_ms: s.freeMbMs,
    ...(s.freeCpuMs !== undefined && s.freeCpuMs !== '0' ? { free_tier_cpu_ms: s.freeCpuMs } : {}),
    ...(s.share !== undefined && s.share !== '1' ? { share: s.share } : {}),
  };
}

/** Rebuilds the segments a bill was priced under (plans by id: a stored plan version never changes). */
export async function fromStoredSegments(plans: PlanStore, stored: unknown): Promise<BillSegment[]> {
  const parsed = z.array(storedSegmentSchema).parse(stored);
  return Promise.all(
    parsed.map(async (s) => ({
      plan: await plans.plan(s.plan_id),
      start: new Date(s.start),
      end: new Date(s.end),
      freeInvocations: s.free_tier_invocations,
      freeMbMs: s.free_tier_mb_ms,
      ...(s.free_tier_cpu_ms !== undefined ? { freeCpuMs: s.free_tier_cpu_ms } : {}),
      ...(s.share !== undefined ? { share: s.share } : {}),
    })),
  );
}

interface Assignment {
  tenant_id: string;
  plan_id: string;
  effective_from: Date;
  effective_to: Date | null;
}

/** What to resolve: a tenant, its currency and the period of its bill. */
export interface SegmentRequest {
  tenantId: string;
  currency: string;
  start: Date;
  end: Date;
  /** Length the allowances are prorated against; default the period's own (end - start). */
  allowanceBasisMs?: number | undefined;
}

/** The free allowances of `plan` for a segment of `segmentMs` out of a period of `periodMs`. */
export function proratedAllowances(plan: StoredPlan, segmentMs: number, periodMs: number): { freeInvocations: string; freeMbMs: string; freeCpuMs: string; share: string } {
  if (segmentMs === periodMs) return { freeInvocations: plan.free_tier_invocations, freeMbMs: plan.free_tier_mb_ms, freeCpuMs: plan.free_tier_cpu_ms, share: '1' };
  const share = (value: string, places: number): string =>
    plain(new Dec(value).times(segmentMs).div(periodMs).toDecimalPlaces(places, Dec.ROUND_DOWN));
  return {
    freeInvocations: share(plan.free_tier_invocations, 0),
    freeMbMs: share(plan.free_tier_mb_ms, 3),
    freeCpuMs: share(plan.free_tier_cpu_ms, 3),
    // 12 places: a share of a tier bound of 10^15 units stays exact to the unit.
    share: plain(new Dec(segmentMs).div(periodMs).toDecimalPlaces(12, Dec.ROUND_HALF_UP)),
  };
}

/**
 * Resolves the segments of each request: assignments in force over its period in time order,
 * gaps filled with the currency's default plan, adjacent equal plans merged, allowances prorated.
 * A tenant with no plan, or a plan in another currency, gets a BillingServiceError instead (the
 * other tenants are unaffected). The returned map is keyed by tenant id.
 */
export async function resolveSegments(
  db: Db,
  plans: PlanStore,
  requests: readonly SegmentRequest[],
): Promise<Map<string, BillSegment[] | BillingServiceError>> {
  const out = new Map<string, BillSegment[] | BillingServiceError>();
  if (requests.length === 0) return out;
  const rows = (await db('tenant_plan_assignments')
    .select('tenant_id', 'plan_id', 'effective_from', 'effective_to')
    .whereIn('tenant_id', [...new Set(requests.map((r) => r.tenantId))])
    .orderBy([{ column: 'tenant_id' }, { column: 'effective_from' }])) as Assignment[];
  const byTenant = new Map<string, Assignment[]>();
  for (const row of rows) {
    const list = byTenant.get(row.tenant_id);
    if (list) list.push(row);
    else byTenant.set(row.tenant_id, [row]);
  }
  const defaults = new Map<string, StoredPlan | undefined>();
  for (const r of requests) {
    if (!defaults.has(r.currency)) defaults.set(r.currency, await plans.defaultPlan(r.currency));
    try {
      out.set(r.tenantId, await segmentsOf(r, byTenant.get(r.tenantId) ?? [], defaults.get(r.currency), plans));
    } catch (err) {
      if (!(err instanceof BillingServiceError)) throw err;
      out.set(r.tenantId, err);
    }
  }
  return out;
}

/** One tenant's segments (see resolveSegments). */
async function segmentsOf(r: SegmentRequest, assignments: readonly Assignment[], fallback: StoredPlan | undefined, plans: PlanStore): Promise<BillSegment[]> {
  const spans: { planId: string | undefined; from: Date; to: Date }[] = [];
  let cursor = r.start;
  for (const a of assignments) {
    const from = a.effective_from > cursor ? a.effective_from : cursor;
    const to = a.effective_to && a.effective_to < r.end ? a.effective_to : r.end;
    if (to <= from) continue;
    if (from > cursor) spans.push({ planId: undefined, from: cursor, to: from });
    spans.push({ planId: a.plan_id, from, to });
    cursor = to;
  }
  if (cursor < r.end) spans.push({ planId: undefined, from: cursor, to: r.end });

  const periodMs = r.allowanceBasisMs ?? r.end.getTime() - r.start.getTime();
  const segments: BillSegment[] = [];
  for (const span of spans) {
    const plan = span.planId === undefined ? fallback : await plans.plan(span.planId);
    if (!plan) {
      throw new BillingServiceError('no_plan', `tenant ${r.tenantId} has no plan assignment in force from ${span.from.toISOString()} and there is no default plan for ${r.currency}`);
    }
    if (plan.currency !== r.currency) {
      throw new BillingServiceError('plan_currency', `plan ${plan.name} v${plan.version} is priced in ${plan.currency} but tenant ${r.tenantId} is billed in ${r.currency}`);
    }
    const last = segments.at(-1);
    if (last && last.plan.id === plan.id) last.end = span.to;
    else segments.push({ plan, start: span.from, end: span.to, freeInvocations: '0', freeMbMs: '0' });
  }
  for (const s of segments) Object.assign(s, proratedAllowances(s.plan, s.end.getTime() - s.start.getTime(), periodMs));
  return segments;
}
