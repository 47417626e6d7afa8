/**
 * Pricing plans (CRUD) and tenant assignments. A plan version that anything refers to (a bill, a
 * line, an assignment, an aggregate, or being its currency's default) is never edited: PUT
 * creates the next version and moves the open assignments (and the default flag) to it from
 * `effective_from`; DELETE of such a plan retires it (inactive, kept for history). Assignments
 * are append-only history with effective dates; a change inside a finalized period is refused.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { audit } from '../../../src/api/audit.js';
import { ApiError, notFound } from '../../../src/api/errors.js';
import type { Principal } from '../../../src/api/keys.js';
import { reply, route } from '../../../src/api/route.js';
import { isUuid, requiredTenant, visibleTenant } from '../../../src/api/tenancy.js';
import { BillingServiceError, currentPeriod, monthPeriod } from '../../../src/billing/index.js';
import { PlanStore, planColumns } from '../../../src/adapters/plans.js';
import { Dec, minorUnitDigits } from '../../../src/core/pricing/index.js';
import { billedMemoryModes, safeParsePlan, type Plan } from '../../../src/core/pricing/index.js';
import { decimalText, idParams, instant, iso, tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

const price = z.string().regex(/^\d+(\.\d+)?$/, 'a non-negative decimal written as a string, e.g. "0.0000002"');
const planFields = {
  name: z.string().trim().min(1).max(255),
  currency: z.string().describe('ISO 4217 code'),
  price_per_invocation: price.optional(),
  price_per_mb_ms: price.optional(),
  price_per_gb_s: price.optional().describe('alternative to price_per_mb_ms (÷ 1 024 000)'),
  price_per_cold_start: price.optional(),
  price_per_cpu_ms: price.optional(),
  free_tier_invocations: z.union([z.string(), z.number().int()]).optional(),
  free_tier_mb_ms: z.union([z.string(), z.number()]).optional(),
  free_tier_gb_s: z.union([z.string(), z.number()]).optional(),
  price_per_vcpu_s: price.optional().describe('alternative to price_per_cpu_ms (÷ 1000)'),
  price_per_ghz_s: price.optional().describe('alternative to price_per_cpu_ms: per GHz-second of CPU time at cpu_ghz'),
  cpu_ghz: price.optional().describe('the clock of the CPU allocation, for the GHz-s fields'),
  free_tier_cpu_ms: z.union([z.string(), z.number()]).optional(),
  free_tier_vcpu_s: z.union([z.string(), z.number()]).optional(),
  free_tier_ghz_s: z.union([z.string(), z.number()]).optional().describe('free GHz-seconds at cpu_ghz'),
  rules: z
    .strictObject({
      duration_granularity_ms: z.number().int().optional(),
      min_billed_duration_ms: z.number().int().optional(),
      memory_step_mb: z.number().int().optional(),
      billed_memory: z.enum(billedMemoryModes).optional(),
      max_memory_mb: z.number().int().nullable().optional().describe('cap on billed memory (a multiple of memory_step_mb); null: none'),
    })
    .optional(),
  charge_models: z
    .partialRecord(z.enum(['invocations', 'compute', 'cold_starts', 'cpu']), z.unknown())
    .optional()
    .describe(
      'per meter, a charge model instead of the flat price: {"model":"per_unit","unit_price"} | {"model":"graduated"|"volume","tiers":[{"from","up_to","unit_price","flat_fee"}]} | {"model":"package","package_size","package_price"}; compute in MB·ms',
    ),
  minimum_charge: price.optional().describe('the least billed per period before tax and credits (prorated on a mid-period plan change); default "0"'),
  commitments: z
    .array(
      z.strictObject({
        meter: z.enum(['invocations', 'compute', 'cold_starts', 'cpu']),
        quantity: price.optional().describe('committed units per period (compute: MB·ms)'),
        unit_price: price.optional().describe('price per committed unit, at most the list price'),
        quantity_gb_s: price.optional().describe('compute: committed GB-s per period'),
        unit_price_per_gb_s: price.optional().describe('compute: price per committed GB-s'),
        bill_unused: z.boolean().optional().describe('bill the unused part of the commitment (default true)'),
      }),
    )
    .optional()
    .describe('reserved capacity, at most one per meter: usage up to the committed quantity at the committed price, the rest at the list price'),
  price_variants: z
    .strictObject({
      architectures: z.record(z.string(), z.partialRecord(z.enum(['invocations', 'compute', 'cold_starts', 'cpu']), price)).optional().describe('by the event label "architecture": {"arm64": {"compute": "0.8"}}'),
      spot: z.partialRecord(z.enum(['invocations', 'compute', 'cold_starts', 'cpu']), price).optional().describe('for events labelled priority=spot: {"compute": "0.6"}'),
      schedule: z
        .array(z.strictObject({ days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])), from: z.string(), to: z.string(), multiplier: price, label: z.string().optional() }))
        .optional()
        .describe('time-of-day / day-of-week multipliers on the tenant’s clock, first match wins: [{"days":["sat","sun"],"from":"00:00","to":"24:00","multiplier":"0.7","label":"weekend"}]'),
    })
    .nullish()
    .describe('price multipliers of flat meter prices by architecture, spot priority and time of day (multiplied together per invocation)'),
};
const createBody = z.strictObject({
  ...planFields,
  tenant_id: z.uuid().nullish().describe('a private plan of one tenant; null for a public plan'),
  default_for_currency: z.boolean().optional().describe('make it the plan of tenants of its currency without an assignment'),
});
const updateBody = z.strictObject({
  ...planFields,
  effective_from: instant.optional().describe('when tenants on the old version move to the new one (default now)'),
});

export const planSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  version: z.number().int(),
  previous_version_id: z.uuid().nullable(),
  tenant_id: z.uuid().nullable(),
  currency: z.string(),
  price_per_invocation: decimalText,
  price_per_mb_ms: decimalText,
  price_per_gb_s: decimalText,
  price_per_cold_start: decimalText,
  price_per_cpu_ms: decimalText,
  free_tier_invocations: decimalText,
  free_tier_mb_ms: decimalText,
  free_tier_gb_s: decimalText,
  free_tier_cpu_ms: decimalText,
  rules: z.object({ duration_granularity_ms: z.number(), min_billed_duration_ms: z.number(), memory_step_mb: z.number(), billed_memory: z.enum(billedMemoryModes), max_memory_mb: z.number().nullable() }),
  charge_models: z.record(z.string(), z.unknown()),
  minimum_charge: decimalText,
  price_variants: z.record(z.string(), z.unknown()).nullable(),
  commitments: z.array(
    z.object({
      meter: z.string(),
      quantity: decimalText,
      unit_price: decimalText,
      quantity_gb_s: decimalText.optional(),
      unit_price_per_gb_s: decimalText.optional(),
      bill_unused: z.boolean(),
    }),
  ),
  active: z.boolean(),
  default_for_currency: z.boolean(),
  created_at: z.string(),
});
export type PlanOut = z.infer<typeof planSchema>;

interface PlanRow {
  id: string;
  name: string;
  version: number;
  previous_version_id: string | null;
  tenant_id: string | null;
  active: boolean;
  default_for_currency: boolean;
  created_at: Date;
  [column: string]: unknown;
}

export function planOut(row: PlanRow): PlanOut {
  const parsed = safeParsePlan(row);
  if (!parsed.ok) throw parsed.error;
  const p = parsed.plan;
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    previous_version_id: row.previous_version_id,
    tenant_id: row.tenant_id,
    currency: p.currency,
    price_per_invocation: p.price_per_invocation,
    price_per_mb_ms: p.price_per_mb_ms,
    price_per_gb_s: p.price_per_gb_s,
    price_per_cold_start: p.price_per_cold_start,
    price_per_cpu_ms: p.price_per_cpu_ms,
    free_tier_invocations: p.free_tier_invocations,
    free_tier_mb_ms: p.free_tier_mb_ms,
    free_tier_gb_s: p.free_tier_gb_s,
    free_tier_cpu_ms: p.free_tier_cpu_ms,
    rules: p.rules,
    charge_models: p.charge_models,
    minimum_charge: p.minimum_charge,
    commitments: p.commitments.map((c) => ({ ...c })),
    price_variants: p.price_variants === null ? null : { ...p.price_variants },
    active: row.active,
    default_for_currency: row.default_for_currency,
    created_at: row.created_at.toISOString(),
  };
}

/** The pricing core's verdict on a plan body: the canonical plan, or 422 with every issue. */
function validPlan(body: Record<string, unknown>): Plan {
  const input = Object.fromEntries(Object.entries(body).filter(([k, v]) => v !== undefined && !['tenant_id', 'default_for_currency', 'effective_from'].includes(k)));
  const parsed = safeParsePlan(input);
  if (parsed.ok) return parsed.plan;
  const fields = parsed.error.issues.map((i) => ({ name: `body.${i.path || '(plan)'}`, reason: i.message }));
  throw new ApiError('validation_failed', `the plan is not valid: ${parsed.error.message}`, fields);
}

/** Why a plan version cannot be edited in place (null when nothing refers to it). */
async function usedBy(db: Knex, id: string): Promise<string | null> {
  const checks: [string, string][] = [
    ['bills', 'SELECT 1 FROM bills WHERE plan_id = ? LIMIT 1'],
    ['bill lines', 'SELECT 1 FROM bill_line_items WHERE plan_id = ? LIMIT 1'],
    ['tenant assignments', 'SELECT 1 FROM tenant_plan_assignments WHERE plan_id = ? LIMIT 1'],
    ['metered usage', 'SELECT 1 FROM usage_aggregate WHERE billed_plan_id = ? LIMIT 1'],
    ['being its currency default', 'SELECT 1 FROM pricing_plans WHERE id = ? AND default_for_currency LIMIT 1'],
  ];
  for (const [what, sql] of checks) {
    const r = await db.raw<{ rows: unknown[] }>(sql, [id]);
    if (r.rows.length > 0) return what;
  }
  return null;
}

/**
 * Before the default flag of a currency moves to a new version at `at`: the default has no
 * effective dates, so every tenant of the currency that relied on it before `at` (no assignment
 * yet, i.e. the span before its first assignment) gets that span pinned to the old version as an
 * explicit assignment. Periods before `at` keep being priced as they were; the new default applies
 * from `at` on.
 */
async function pinDefaultHistory(trx: Knex.Transaction, plan: PlanRow, at: Date): Promise<void> {
  await trx.raw(
    `INSERT INTO tenant_plan_assignments (tenant_id, plan_id, effective_from, effective_to, created_by)
     SELECT t.id, ?::uuid, timestamptz '1970-01-01 00:00:00+00', least(?::timestamptz, first.effective_from), 'default plan versioned'
       FROM tenants t
       LEFT JOIN LATERAL (SELECT min(a.effective_from) AS effective_from FROM tenant_plan_assignments a WHERE a.tenant_id = t.id) first ON true
      WHERE t.currency = ? AND least(?::timestamptz, first.effective_from) > timestamptz '1970-01-01 00:00:00+00'`,
    [plan.id, at.toISOString(), String(plan.currency).trim(), at.toISOString()],
  );
}

/** Plans a caller may see: public ones and (tenant keys) their own private ones; admins all. */
function visiblePlans(db: Knex, principal: Principal) {
  const q = db('pricing_plans');
  if (principal.role !== 'admin') void q.where((w) => void w.whereNull('tenant_id').orWhere('tenant_id', principal.tenantId));
  return q;
}

async function visiblePlan(db: Knex, principal: Principal, id: string): Promise<PlanRow> {
  const row = isUuid(id) ? ((await visiblePlans(db, principal).where({ id }).first()) as PlanRow | undefined) : undefined;
  if (!row) throw notFound('pricing plan', id);
  return row;
}

const assignmentSchema = z.object({
  id: z.uuid(),
  plan_id: z.uuid(),
  plan_name: z.string(),
  plan_version: z.number().int(),
  effective_from: z.string(),
  effective_to: z.string().nullable(),
  created_at: z.string(),
  created_by: z.string().nullable(),
});
const currentPlanSchema = z.object({
  tenant_id: z.uuid(),
  plan: planSchema,
  source: z.enum(['assignment', 'currency_default']),
  assignment: assignmentSchema.nullable(),
  history: z.array(assignmentSchema),
});

async function history(db: Knex, tenantId: string): Promise<z.infer<typeof assignmentSchema>[]> {
  const rows = (await db('tenant_plan_assignments as a')
    .join('pricing_plans as p', 'p.id', 'a.plan_id')
    .select('a.id', 'a.plan_id', 'p.name as plan_name', 'p.version as plan_version', 'a.effective_from', 'a.effective_to', 'a.created_at', 'a.created_by')
    .where('a.tenant_id', tenantId)
    .orderBy('a.effective_from')) as { id: string; plan_id: string; plan_name: string; plan_version: number; effective_from: Date; effective_to: Date | null; created_at: Date; created_by: string | null }[];
  return rows.map((r) => ({ ...r, effective_from: r.effective_from.toISOString(), effective_to: iso(r.effective_to), created_at: r.created_at.toISOString() }));
}

/** Closes the open assignment of a tenant at `at` and opens one of `planId`; refuses to rewrite history or a finalized period. */
async function assign(trx: Knex.Transaction, principal: Principal, tenantId: string, planId: string, at: Date): Promise<void> {
  await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [`faasbilling:assign:${tenantId}`]);
  const later = (await trx('tenant_plan_assignments').where({ tenant_id: tenantId }).where('effective_from', '>=', at).first()) as { effective_from: Date } | undefined;
  if (later) {
    throw new ApiError('conflict', `an assignment already starts at ${later.effective_from.toISOString()}; assignment history is append-only, so effective_from must be after it`);
  }
  const frozen = (await trx('bills').where({ tenant_id: tenantId }).whereNot({ status: 'draft' }).where('period_end', '>', at).first()) as { id: string; period_end: Date } | undefined;
  if (frozen) {
    throw new ApiError('bill_final', `bill ${frozen.id} is final up to ${frozen.period_end.toISOString()}; a plan change must take effect after it`);
  }
  // Whatever is in force at `at` ends there: the open assignment, or a closed one reaching past it
  // (the span pinned to an old default version when the default was versioned for later).
  await trx('tenant_plan_assignments')
    .where({ tenant_id: tenantId })
    .where('effective_from', '<', at)
    .where((w) => void w.whereNull('effective_to').orWhere('effective_to', '>', at))
    .update({ effective_to: at });
  await trx('tenant_plan_assignments').insert({ tenant_id: tenantId, plan_id: planId, effective_from: at, created_by: `key:${principal.keyId}` });
}

export const planRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  const list = {
    summary: 'List pricing plans (active ones unless include_inactive=true)',
    tag: 'plans',
    auth: ['admin', 'tenant'] as const,
    query: z.strictObject({
      currency: z.string().optional(),
      include_inactive: z.enum(['true', 'false']).default('false'),
    }),
    responses: { 200: { description: 'Plans by name and version', schema: z.object({ items: z.array(planSchema) }) } },
  };
  const listPlans = async (principal: Principal, query: { currency?: string | undefined; include_inactive: 'true' | 'false' }) => {
    const q = visiblePlans(db, principal).orderBy([{ column: 'name' }, { column: 'version' }]);
    if (query.include_inactive !== 'true') void q.where({ active: true });
    if (query.currency) void q.where({ currency: query.currency });
    return { items: ((await q) as PlanRow[]).map(planOut) };
  };
  return [
    route({ ...list, method: 'get', path: '/pricing/plans', handle: ({ principal, query }) => listPlans(principal, query) }),
    route({ ...list, method: 'get', path: '/pricing-plans', summary: 'List pricing plans (seed path; same as GET /pricing/plans)', handle: ({ principal, query }) => listPlans(principal, query) }),
    route({
      method: 'get',
      path: '/pricing/plans/:id',
      summary: 'A pricing plan version',
      tag: 'plans',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'The plan', schema: planSchema } },
      handle: async ({ principal, params }) => planOut(await visiblePlan(db, principal, params.id)),
    }),
    route({
      method: 'post',
      path: '/pricing/plans',
      summary: 'Create a pricing plan (version 1)',
      description: 'Prices are decimal strings (exact). Compute may be given per MB·ms or per GB-s, the free tier in MB·ms or GB-s.',
      tag: 'plans',
      auth: ['admin'],
      body: createBody,
      responses: { 201: { description: 'Created', schema: planSchema }, 409: { description: 'A plan of that name exists' } },
      handle: async ({ principal, body }) => {
        const plan = validPlan(body);
        if (body.tenant_id && body.default_for_currency) {
          throw new ApiError('validation_failed', 'a private plan (tenant_id) cannot be the default of its currency', [{ name: 'body.default_for_currency', reason: 'not with tenant_id' }]);
        }
        return db.transaction(async (trx) => {
          if (body.tenant_id) {
            const tenant = (await trx('tenants').where({ id: body.tenant_id }).first()) as { currency: string } | undefined;
            if (!tenant) throw new ApiError('validation_failed', `tenant ${body.tenant_id} does not exist`, [{ name: 'body.tenant_id', reason: 'unknown tenant' }]);
            if (tenant.currency.trim() !== plan.currency) {
              throw new ApiError('validation_failed', `the tenant is billed in ${tenant.currency.trim()}, the plan is priced in ${plan.currency}`, [{ name: 'body.currency', reason: 'differs from the tenant’s currency' }]);
            }
          }
          const exists = (await trx('pricing_plans').where({ name: body.name }).first()) as PlanRow | undefined;
          if (exists) throw new ApiError('conflict', `a plan named ${JSON.stringify(body.name)} exists; PUT /pricing/plans/{id} creates its next version`);
          if (body.default_for_currency) {
            // The new default applies from now on; who relied on the old one keeps it before now.
            const previous = (await trx('pricing_plans').where({ currency: plan.currency, default_for_currency: true }).first()) as PlanRow | undefined;
            if (previous) {
              await pinDefaultHistory(trx, previous, deps.now());
              await trx('pricing_plans').where({ id: previous.id }).update({ default_for_currency: false });
              await audit(trx, principal, { action: 'plan.default_moved', entityType: 'pricing_plan', entityId: previous.id, tenantId: null, details: { currency: plan.currency, at: deps.now().toISOString() } });
            }
          }
          const [row] = (await trx('pricing_plans')
            .insert({ ...planColumns({ ...plan, name: body.name, version: 1 }), tenant_id: body.tenant_id ?? null, default_for_currency: body.default_for_currency ?? false })
            .returning('*')) as PlanRow[];
          if (!row) throw new Error('plan insert returned no row');
          const out = planOut(row);
          await audit(trx, principal, { action: 'plan.create', entityType: 'pricing_plan', entityId: row.id, tenantId: row.tenant_id, details: { after: out } });
          return reply(201, out, { Location: `/api/v1/pricing/plans/${row.id}` });
        });
      },
    }),
    route({
      method: 'put',
      path: '/pricing/plans/:id',
      summary: 'Change a plan: edits it in place if nothing refers to it, else creates its next version',
      description:
        'A version referred to by bills, assignments, metered usage or the currency default is never edited. The new version takes over the open assignments and the default flag from effective_from (default now); final bills keep the version they were priced with.',
      tag: 'plans',
      auth: ['admin'],
      params: idParams,
      body: updateBody,
      responses: { 200: { description: 'Edited in place (unused version)', schema: planSchema }, 201: { description: 'New version created', schema: planSchema } },
      handle: async ({ principal, params, body }) => {
        const current = await visiblePlan(db, principal, params.id);
        const plan = validPlan(body);
        if (plan.currency !== String(current.currency).trim()) throw new ApiError('validation_failed', 'a plan keeps its currency; create a new plan for another currency', [{ name: 'body.currency', reason: 'differs from the plan' }]);
        const at = body.effective_from ? new Date(body.effective_from) : deps.now();
        return db.transaction(async (trx) => {
          await trx.raw('SELECT 1 FROM pricing_plans WHERE id = ? FOR UPDATE', [current.id]);
          const newer = (await trx('pricing_plans').where({ previous_version_id: current.id }).first()) as PlanRow | undefined;
          if (newer) throw new ApiError('conflict', `plan ${current.id} already has a newer version; change the latest version`);
          if (body.name !== current.name) {
            const taken = (await trx('pricing_plans').where({ name: body.name }).first()) as PlanRow | undefined;
            if (taken) throw new ApiError('conflict', `a plan named ${JSON.stringify(body.name)} exists; choose another name`);
          }
          const inUse = await usedBy(trx, current.id);
          if (!inUse) {
            const [row] = (await trx('pricing_plans')
              .where({ id: current.id })
              .update({ ...planColumns({ ...plan, name: body.name, version: current.version }) })
              .returning('*')) as PlanRow[];
            if (!row) throw notFound('pricing plan', current.id);
            const out = planOut(row);
            await audit(trx, principal, { action: 'plan.update', entityType: 'pricing_plan', entityId: row.id, tenantId: row.tenant_id, details: { before: planOut(current), after: out } });
            return out;
          }
          const wasDefault = current.default_for_currency;
          if (wasDefault) {
            await pinDefaultHistory(trx, current, at);
            await trx('pricing_plans').where({ id: current.id }).update({ default_for_currency: false });
          }
          await trx('pricing_plans').where({ id: current.id }).update({ active: false });
          const [row] = (await trx('pricing_plans')
            .insert({ ...planColumns({ ...plan, name: body.name, version: current.version + 1 }), previous_version_id: current.id, tenant_id: current.tenant_id, default_for_currency: wasDefault })
            .returning('*')) as PlanRow[];
          if (!row) throw new Error('plan insert returned no row');
          const open: { tenant_id: string }[] = await trx('tenant_plan_assignments').where({ plan_id: current.id }).whereNull('effective_to').select('tenant_id');
          for (const a of open) await assign(trx, principal, a.tenant_id, row.id, at);
          const out = planOut(row);
          await audit(trx, principal, {
            action: 'plan.version',
            entityType: 'pricing_plan',
            entityId: row.id,
            tenantId: row.tenant_id,
            details: { previous_version_id: current.id, reason: `version ${current.version} is in use (${inUse})`, moved_tenants: open.map((a) => a.tenant_id), effective_from: at.toISOString(), after: out },
          });
          return reply(201, out, { Location: `/api/v1/pricing/plans/${row.id}` });
        });
      },
    }),
    route({
      method: 'delete',
      path: '/pricing/plans/:id',
      summary: 'Delete an unused plan version, or retire (deactivate) one in use',
      tag: 'plans',
      auth: ['admin'],
      params: idParams,
      responses: {
        200: { description: 'Retired: kept for history, no longer offered or assignable', schema: z.object({ id: z.uuid(), deleted: z.boolean(), retired: z.boolean() }) },
        409: { description: 'It is its currency’s default, or tenants are assigned to it' },
      },
      handle: async ({ principal, params }) => {
        const current = await visiblePlan(db, principal, params.id);
        return db.transaction(async (trx) => {
          if (current.default_for_currency) throw new ApiError('plan_in_use', `plan ${current.id} is the default of ${String(current.currency)}; make another plan the default first`);
          const open = (await trx('tenant_plan_assignments').where({ plan_id: current.id }).whereNull('effective_to').first()) as { id: string } | undefined;
          if (open) throw new ApiError('plan_in_use', `tenants are assigned to plan ${current.id}; assign them another plan first`);
          const inUse = await usedBy(trx, current.id);
          if (inUse) await trx('pricing_plans').where({ id: current.id }).update({ active: false });
          else await trx('pricing_plans').where({ id: current.id }).delete();
          await audit(trx, principal, { action: inUse ? 'plan.retire' : 'plan.delete', entityType: 'pricing_plan', entityId: current.id, tenantId: current.tenant_id, details: { before: planOut(current) } });
          return { id: current.id, deleted: !inUse, retired: Boolean(inUse) };
        });
      },
    }),
    route({
      method: 'put',
      path: '/tenants/:id/pricing-plan',
      summary: 'Assign a pricing plan to a tenant from an effective date (history kept)',
      tag: 'plans',
      auth: ['admin'],
      params: idParams,
      body: z.strictObject({ pricing_plan_id: z.uuid(), effective_from: instant.optional().describe('default now') }),
      responses: { 200: { description: 'The tenant’s plan after the change', schema: currentPlanSchema } },
      handle: async ({ principal, params, body }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        const at = body.effective_from ? new Date(body.effective_from) : deps.now();
        await db.transaction(async (trx) => {
          const plan = (await trx('pricing_plans').where({ id: body.pricing_plan_id }).first()) as PlanRow | undefined;
          if (!plan) throw new ApiError('validation_failed', `pricing plan ${body.pricing_plan_id} does not exist`, [{ name: 'body.pricing_plan_id', reason: 'unknown plan' }]);
          if (!plan.active) throw new ApiError('validation_failed', `plan ${plan.name} v${plan.version} is retired; assign its latest version`, [{ name: 'body.pricing_plan_id', reason: 'retired plan' }]);
          if (String(plan.currency).trim() !== tenant.currency) throw new ApiError('validation_failed', `plan ${plan.name} is priced in ${String(plan.currency)}, tenant ${tenant.slug} is billed in ${tenant.currency}`, [{ name: 'body.pricing_plan_id', reason: 'currency differs' }]);
          if (plan.tenant_id && plan.tenant_id !== tenant.id) throw new ApiError('validation_failed', `plan ${plan.id} is private to another tenant`, [{ name: 'body.pricing_plan_id', reason: 'private plan' }]);
          await assign(trx, principal, tenant.id, plan.id, at);
          await audit(trx, principal, { action: 'tenant.assign_plan', entityType: 'tenant', entityId: tenant.id, tenantId: tenant.id, details: { plan_id: plan.id, effective_from: at.toISOString() } });
        });
        return currentPlan(db, tenant.id, at > deps.now() ? at : deps.now());
      },
    }),
    route({
      method: 'get',
      path: '/tenants/:id/pricing-plan',
      summary: 'The plan billing a tenant now, with its assignment history',
      tag: 'plans',
      auth: ['admin', 'tenant'],
      params: idParams,
      query: z.strictObject({ at: instant.optional().describe('the plan in force at this instant (default now)') }),
      responses: { 200: { description: 'Current plan and history', schema: currentPlanSchema } },
      handle: async ({ principal, params, query }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        return currentPlan(db, tenant.id, query.at ? new Date(query.at) : deps.now());
      },
    }),
  ];
};

const simulationSchema = z.object({
  tenant_id: z.uuid(),
  currency: z.string(),
  period_start: z.string(),
  period_end: z.string(),
  current: z.object({ total: decimalText.describe('the period’s usage under the plans actually in force (no adjustments)'), plan_ids: z.array(z.string()) }),
  results: z.array(
    z.object({
      plan: z.object({ id: z.uuid(), name: z.string(), version: z.number().int() }),
      total: decimalText,
      total_unrounded: decimalText,
      saving: decimalText.describe('current total − this total (positive: this plan is cheaper)'),
      line_items: z.array(z.object({ service: z.string(), meter: z.string(), description: z.string(), quantity: decimalText, billable_quantity: decimalText, unit: z.string(), unit_price: decimalText, amount: decimalText })),
    }),
  ),
});

/** The simulator: the tenant's usage over a period priced under every plan (or the ones named). */
export const simulateRoute = (deps: ApiDeps) =>
  route({
    method: 'post',
    path: '/pricing/simulate',
    summary: 'What a tenant’s usage over a period costs under each plan (cheapest first)',
    description:
      'Body: tenant_id, and month (YYYY-MM) or period_start/period_end inside one month (default: the open month). plan_ids limits the comparison; by default every active plan of the tenant’s currency it may use. Usage is re-metered under each plan’s own rules; nothing is stored.',
    tag: 'plans',
    auth: ['admin', 'tenant'],
    limit: 'expensive',
    body: z.strictObject({
      tenant_id: tenantRef.optional(),
      month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/).optional(),
      period_start: instant.optional(),
      period_end: instant.optional(),
      plan_ids: z.array(z.uuid()).min(1).max(50).optional(),
    }),
    responses: { 200: { description: 'Each plan’s total and lines, and the saving against the plans in force', schema: simulationSchema } },
    handle: async ({ principal, body }) => {
      const { db } = deps;
      const tenant = await requiredTenant(db, principal, body.tenant_id);
      const bounds = body.month
        ? monthPeriod(body.month, tenant.timezone)
        : body.period_start && body.period_end
          ? { start: new Date(body.period_start), end: new Date(body.period_end) }
          : body.period_start || body.period_end
            ? undefined
            : currentPeriod(deps.now(), tenant.timezone);
      if (!bounds) throw new ApiError('validation_failed', 'give month, or both period_start and period_end', [{ name: 'body.period_start', reason: 'period_start and period_end go together' }]);
      const q = visiblePlans(db, principal).where({ currency: tenant.currency, active: true }).where((w) => void w.whereNull('tenant_id').orWhere('tenant_id', tenant.id));
      if (body.plan_ids) void q.whereIn('id', body.plan_ids);
      const rows = (await q.orderBy([{ column: 'name' }, { column: 'version' }])) as PlanRow[];
      if (body.plan_ids && rows.length !== new Set(body.plan_ids).size) {
        throw new ApiError('validation_failed', 'some plan_ids are unknown, retired, private to another tenant or in another currency', [{ name: 'body.plan_ids', reason: 'not all usable' }]);
      }
      const store = new PlanStore(db);
      const plans = await Promise.all(rows.map((r) => store.plan(r.id)));
      try {
        const current = await deps.billing.calculateRange(tenant.id, bounds.start, bounds.end);
        const simulated = await deps.billing.simulate(tenant.id, bounds, plans);
        const results = simulated
          .map(({ plan, bill }) => ({
            plan: { id: plan.id, name: plan.name, version: plan.version },
            total: bill.total,
            total_unrounded: bill.totalUnrounded,
            saving: new Dec(current.total).minus(bill.total).toFixed(minorUnitDigits(tenant.currency)),
            line_items: bill.lines.map((l) => ({ service: l.service, meter: l.meter, description: l.description, quantity: l.quantity, billable_quantity: l.billableQuantity, unit: l.unit, unit_price: l.unitPrice, amount: l.amount })),
          }))
          .sort((a, b) => new Dec(a.total).comparedTo(b.total) || a.plan.name.localeCompare(b.plan.name));
        return {
          tenant_id: tenant.id,
          currency: tenant.currency,
          period_start: bounds.start.toISOString(),
          period_end: bounds.end.toISOString(),
          current: { total: current.total, plan_ids: [...new Set(current.segments.map((s) => s.plan_id))] },
          results,
        };
      } catch (err) {
        if (err instanceof BillingServiceError) throw new ApiError(err.reason === 'invalid_period' ? 'validation_failed' : 'conflict', err.message);
        throw err;
      }
    },
  });

async function currentPlan(db: Knex, tenantId: string, at: Date): Promise<z.infer<typeof currentPlanSchema>> {
  const all = await history(db, tenantId);
  const inForce = all.find((a) => new Date(a.effective_from) <= at && (a.effective_to === null || at < new Date(a.effective_to))) ?? null;
  let plan: PlanRow | undefined;
  if (inForce) plan = (await db('pricing_plans').where({ id: inForce.plan_id }).first()) as PlanRow | undefined;
  else {
    const tenant = (await db('tenants').where({ id: tenantId }).first()) as { currency: string };
    plan = (await db('pricing_plans').where({ currency: tenant.currency.trim(), default_for_currency: true }).first()) as PlanRow | undefined;
  }
  if (!plan) throw new ApiError('not_found', `tenant ${tenantId} has no plan in force at ${at.toISOString()} and its currency has no default plan; assign one with PUT /api/v1/tenants/${tenantId}/pricing-plan`);
  return { tenant_id: tenantId, plan: planOut(plan), source: inForce ? 'assignment' : 'currency_default', assignment: inForce, history: all };
}
