/**
 * Tenant isolation, in one place. A tenant-scoped key (role tenant or ingest) sees exactly its
 * own tenant:
 * - a resource addressed by id (tenant, service, bill, artifact) of another tenant answers the
 *   same 404 as one that does not exist, so ids leak nothing;
 * - a filter naming another tenant answers 403 whether or not that tenant exists;
 * - lists are always restricted to the key's tenant.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { ApiError, notFound } from './errors.js';
import type { Principal } from './keys.js';

export const tenantSchema = z.object({
  id: z.uuid(),
  slug: z.string(),
  name: z.string(),
  billing_email: z.string().nullable(),
  currency: z.string(),
  timezone: z.string(),
  tax_rate: z.string().describe('tax (VAT) rate as a fraction, "0.2" = 20%'),
  tax_label: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type Tenant = z.infer<typeof tenantSchema>;

interface TenantRow {
  id: string;
  slug: string;
  name: string;
  billing_email: string | null;
  currency: string;
  timezone: string;
  tax_rate: string;
  tax_label: string;
  created_at: Date;
  updated_at: Date;
}

export const tenantOf = (row: TenantRow): Tenant => ({
  id: row.id,
  slug: row.slug,
  name: row.name,
  billing_email: row.billing_email,
  currency: row.currency.trim(),
  timezone: row.timezone,
  tax_rate: row.tax_rate.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, ''),
  tax_label: row.tax_label,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

export const isUuid = (value: string): boolean => z.uuid().safeParse(value).success;

/** A tenant by id or slug (the seed's examples name tenants like "demo"). */
export async function findTenant(db: Knex, ref: string): Promise<Tenant | undefined> {
  const row = (await db('tenants')
    .where(isUuid(ref) ? { id: ref } : { slug: ref })
    .first()) as TenantRow | undefined;
  return row ? tenantOf(row) : undefined;
}

/** Whether the caller may see a tenant's data. */
export const canSee = (principal: Principal, tenantId: string): boolean => principal.role === 'admin' || principal.tenantId === tenantId;

/** A tenant addressed in a path: 404 when missing or not the caller's. */
export async function visibleTenant(db: Knex, principal: Principal, ref: string): Promise<Tenant> {
  const tenant = await findTenant(db, ref);
  if (!tenant || !canSee(principal, tenant.id)) throw notFound('tenant', ref);
  return tenant;
}

/**
 * A tenant named in a filter or body. For an admin: the tenant (404 when missing). For a
 * tenant-scoped key: its own tenant when `ref` is absent or names it, otherwise 403 (decided
 * before any lookup, so the answer says nothing about whether `ref` exists).
 */
export async function scopedTenant(db: Knex, principal: Principal, ref: string | undefined): Promise<Tenant | undefined> {
  if (principal.role !== 'admin') {
    const own = principal.tenantId;
    if (!own) throw new ApiError('forbidden', 'this key has no tenant');
    const tenant = await findTenant(db, own);
    if (!tenant) throw new ApiError('forbidden', 'the tenant of this key no longer exists');
    if (ref !== undefined && ref !== tenant.id && ref !== tenant.slug) {
      throw new ApiError('forbidden', 'this key can only use its own tenant');
    }
    return tenant;
  }
  if (ref === undefined) return undefined;
  const tenant = await findTenant(db, ref);
  if (!tenant) throw notFound('tenant', ref);
  return tenant;
}

/** Like scopedTenant, but a tenant is required (admins must name one). */
export async function requiredTenant(db: Knex, principal: Principal, ref: string | undefined, field = 'body.tenant_id'): Promise<Tenant> {
  const tenant = await scopedTenant(db, principal, ref);
  if (!tenant) throw new ApiError('validation_failed', `${field.replace(/^body\./, '')} is required with an admin key (a tenant key implies its own tenant)`, [{ name: field, reason: 'required for an admin key' }]);
  return tenant;
}
