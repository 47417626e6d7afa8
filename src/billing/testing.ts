/**
 * Test fixtures for billing (used by the billing, price and bench code): tenants, services,
 * plans, assignments and usage rows written straight into the real tables.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { planColumns } from '../adapters/plans.js';
import { parsePlan, type PlanInput } from '../core/pricing/index.js';

/** Creates a tenant; created_at defaults to 2000-01-01 so every test period is after it. */
export async function createTenant(
  db: Knex,
  options: { slug?: string; currency?: string; timezone?: string; createdAt?: string } = {},
): Promise<string> {
  const slug = options.slug ?? `t-${randomUUID().slice(0, 8)}`;
  const [row] = await db('tenants')
    .insert({ slug, name: slug, currency: options.currency ?? 'USD', timezone: options.timezone ?? 'UTC', created_at: options.createdAt ?? '2000-01-01T00:00:00Z' })
    .returning<{ id: string }[]>('id');
  if (!row) throw new Error('tenant not created');
  return row.id;
}

/** A service with one revision; ids of both. */
export async function createService(db: Knex, tenantId: string, name: string, memoryLimitMb?: number): Promise<{ serviceId: string; revisionId: string }> {
  const [service] = await db('services')
    .insert({ tenant_id: tenantId, name, memory_limit_mb: memoryLimitMb ?? null })
    .returning<{ id: string }[]>('id');
  if (!service) throw new Error('service not created');
  const [revision] = await db('revisions').insert({ service_id: service.id, name: `${name}-00001` }).returning<{ id: string }[]>('id');
  if (!revision) throw new Error('revision not created');
  return { serviceId: service.id, revisionId: revision.id };
}

/** Stores a plan (validated by the pricing core) and returns its id. */
export async function createPlan(db: Knex, input: PlanInput & { name: string }): Promise<string> {
  const plan = parsePlan(input);
  const [stored] = await db('pricing_plans')
    .insert(planColumns({ ...plan, name: input.name, version: plan.version ?? 1 }))
    .returning<{ id: string }[]>('id');
  if (!stored) throw new Error('plan not created');
  return stored.id;
}

/** Assigns a plan to a tenant over `[from, to)` (open-ended without `to`). */
export async function assignPlan(db: Knex, tenantId: string, planId: string, from: string, to?: string): Promise<void> {
  await db('tenant_plan_assignments').insert({ tenant_id: tenantId, plan_id: planId, effective_from: from, effective_to: to ?? null });
}

/** The id of the default plan of a currency. */
export async function defaultPlanId(db: Knex, currency: string): Promise<string> {
  const row = (await db('pricing_plans').select('id').where({ currency, default_for_currency: true }).first()) as { id: string } | undefined;
  if (!row) throw new Error(`no default plan for ${currency}`);
  return row.id;
}

/** One 1h usage_aggregate row to insert. */
export interface HourRow {
  tenantId: string;
  serviceId: string;
  revisionId: string;
  /** ISO instant of the window start (a whole hour in the tenant's zone). */
  start: string;
  invocations: number | string;
  billedMbMs: string;
  coldStarts?: number;
  cpuMs?: string;
  /** The plan the window was metered under (billed_plan_id). */
  planId: string | null;
}

/** Upserts 1h usage_aggregate rows as the aggregate stage would write them. */
export async function insertHours(db: Knex, rows: readonly HourRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db('usage_aggregate')
    .insert(
      rows.map((r) => ({
        window_size: '1h',
        window_start: r.start,
        window_end: new Date(Date.parse(r.start) + 3_600_000).toISOString(),
        tenant_id: r.tenantId,
        service_id: r.serviceId,
        revision_id: r.revisionId,
        invocations: String(r.invocations),
        events: String(r.invocations),
        billed_mb_ms: r.billedMbMs,
        mb_ms: r.billedMbMs,
        cold_starts: r.coldStarts ?? 0,
        total_cpu_ms: r.cpuMs ?? '0',
        billed_plan_id: r.planId,
        updated_at: db.fn.now(),
      })),
    )
    .onConflict(['window_size', 'tenant_id', 'service_id', 'revision_id', 'window_start'])
    .merge();
}

/** Inserts one usage_raw event (as save would store it). */
export async function insertRawEvent(
  db: Knex,
  e: { tenantId: string; serviceId: string; revisionId: string; time: string; invocations?: number; durationMs: string; memoryMb: string; cpuMs?: string; coldStart?: boolean; labels?: Record<string, string> },
): Promise<void> {
  await db('usage_raw').insert({
    time: e.time,
    tenant_id: e.tenantId,
    service_id: e.serviceId,
    revision_id: e.revisionId,
    source: '/test',
    event_id: randomUUID(),
    invocations: e.invocations ?? 1,
    duration_ms: e.durationMs,
    memory_mb: e.memoryMb,
    cpu_ms: e.cpuMs ?? '0',
    cold_start: e.coldStart ?? false,
    ...(e.labels ? { labels: JSON.stringify(e.labels) } : {}),
  });
}
