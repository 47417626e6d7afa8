/**
 * Which pricing plan bills a tenant when: its assignment history (tenant_plan_assignments), and
 * where no assignment is in force, the default plan of the tenant's currency (migration 0002).
 * Plans come back parsed by the pricing core, so every stage reads a plan the same way.
 */
import { parsePlan, type Plan } from '../core/pricing/index.js';
import type { Db } from './postgres.js';

/** A plan as stored: id, name and version always present. */
export interface StoredPlan extends Plan {
  id: string;
  name: string;
  version: number;
}

/** The plan in force over `[from, to)`. */
export interface PlanSegment {
  plan: StoredPlan;
  from: Date;
  to: Date;
  /** True when no assignment covered the span and the currency default applies. */
  isDefault: boolean;
}

export class UnknownTenantError extends Error {
  constructor(readonly tenantId: string) {
    super(`tenant ${tenantId} does not exist`);
    this.name = 'UnknownTenantError';
  }
}

export class NoPlanError extends Error {
  constructor(
    readonly tenantId: string,
    readonly currency: string,
  ) {
    super(`tenant ${tenantId} has no plan assignment in force and there is no default plan for ${currency}`);
    this.name = 'NoPlanError';
  }
}

/** The pricing_plans columns of a parsed plan (name and version default to "plan" and 1). */
export function planColumns(plan: Plan): Record<string, string | number | null> {
  return {
    name: plan.name ?? 'plan',
    version: plan.version ?? 1,
    currency: plan.currency,
    price_per_invocation: plan.price_per_invocation,
    price_per_mb_ms: plan.price_per_mb_ms,
    price_per_cold_start: plan.price_per_cold_start,
    price_per_cpu_ms: plan.price_per_cpu_ms,
    free_tier_invocations: plan.free_tier_invocations,
    free_tier_mb_ms: plan.free_tier_mb_ms,
    free_tier_cpu_ms: plan.free_tier_cpu_ms,
    rules: JSON.stringify(plan.rules),
    charge_models: JSON.stringify(plan.charge_models),
    minimum_charge: plan.minimum_charge,
    commitments: JSON.stringify(plan.commitments),
    price_variants: plan.price_variants === null ? null : JSON.stringify(plan.price_variants),
  };
}

interface PlanRow {
  id: string;
  name: string;
  version: number;
  [column: string]: unknown;
}

function toStoredPlan(row: PlanRow): StoredPlan {
  const plan = parsePlan(row);
  return { ...plan, id: row.id, name: row.name, version: row.version };
}

export class PlanStore {
  private readonly byId = new Map<string, StoredPlan>();

  constructor(private readonly db: Db) {}

  /** A plan by id (cached: a stored plan version never changes). */
  async plan(id: string): Promise<StoredPlan> {
    const cached = this.byId.get(id);
    if (cached) return cached;
    const row = (await this.db('pricing_plans').where({ id }).first()) as PlanRow | undefined;
    if (!row) throw new Error(`pricing plan ${id} does not exist`);
    const plan = toStoredPlan(row);
    this.byId.set(id, plan);
    return plan;
  }

  /** The default plan of a currency, if one is set. */
  async defaultPlan(currency: string): Promise<StoredPlan | undefined> {
    const row = (await this.db('pricing_plans').where({ currency, default_for_currency: true }).first()) as PlanRow | undefined;
    return row ? toStoredPlan(row) : undefined;
  }

  /**
   * The plans in force for a tenant over `[from, to)`, in time order, covering the span without
   * gaps (spans with no assignment take the currency default).
   */
  async segments(tenantId: string, from: Date, to: Date): Promise<PlanSegment[]> {
    const tenant = (await this.db('tenants').select('currency').where({ id: tenantId }).first()) as { currency: string } | undefined;
    if (!tenant) throw new UnknownTenantError(tenantId);
    const assignments = (await this.db('tenant_plan_assignments')
      .select('plan_id', 'effective_from', 'effective_to')
      .where({ tenant_id: tenantId })
      .where('effective_from', '<', to)
      .where((q) => void q.whereNull('effective_to').orWhere('effective_to', '>', from))
      .orderBy('effective_from')) as { plan_id: string; effective_from: Date; effective_to: Date | null }[];
    const out: PlanSegment[] = [];
    let cursor = from;
    let fallback: StoredPlan | undefined;
    const fill = async (until: Date): Promise<void> => {
      if (until <= cursor) return;
      fallback ??= await this.defaultPlan(tenant.currency);
      if (!fallback) throw new NoPlanError(tenantId, tenant.currency);
      out.push({ plan: fallback, from: cursor, to: until, isDefault: true });
      cursor = until;
    };
    for (const a of assignments) {
      const start = a.effective_from > cursor ? a.effective_from : cursor;
      const end = a.effective_to && a.effective_to < to ? a.effective_to : to;
      if (end <= start) continue;
      await fill(start);
      out.push({ plan: await this.plan(a.plan_id), from: start, to: end, isDefault: false });
      cursor = end;
    }
    await fill(to);
    return out;
  }

  /** The plan in force for a tenant at an instant. */
  async planAt(tenantId: string, at: Date): Promise<StoredPlan> {
    const [segment] = await this.segments(tenantId, at, new Date(at.getTime() + 1));
    if (!segment) throw new NoPlanError(tenantId, '?');
    return segment.plan;
  }
}
