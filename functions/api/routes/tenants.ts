/** Tenants: create, list, get, update (admin; a tenant key sees only its own). */
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { audit } from '../../../src/api/audit.js';
import { ApiError } from '../../../src/api/errors.js';
import { reply, route } from '../../../src/api/route.js';
import { tenantOf, tenantSchema, visibleTenant, type Tenant } from '../../../src/api/tenancy.js';
import { isCurrencyCode } from '../../../src/core/pricing/index.js';
import { idParams, limitQuery, page } from './common.js';
import type { ApiDeps } from './index.js';

const timezone = z.string().refine((z) => IANAZone.isValidZone(z), { message: 'must be an IANA time zone such as "Europe/Berlin" or "UTC"' });
const currency = z.string().refine(isCurrencyCode, { message: 'must be an upper-case ISO 4217 code such as "USD", "RUB" or "JPY"' });
const slug = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit, at most 128');

const taxRate = z
  .string()
  .regex(/^(0(\.\d{1,6})?|1(\.0{1,6})?)$/, 'a fraction between 0 and 1 with at most 6 decimals, e.g. "0.2" for 20%')
  .describe('tax (VAT) rate applied on the rounded subtotal of each bill');
const createBody = z.strictObject({
  slug: slug.describe('short unique name used in usage events (tenant_id) and URLs'),
  name: z.string().trim().min(1).max(255),
  billing_email: z.email().max(255).nullish(),
  currency: currency.default('USD'),
  timezone: timezone.default('UTC'),
  tax_rate: taxRate.default('0'),
  tax_label: z.string().trim().min(1).max(50).default('VAT'),
});
const updateBody = z
  .strictObject({
    name: z.string().trim().min(1).max(255),
    billing_email: z.email().max(255).nullable(),
    currency,
    timezone,
    tax_rate: taxRate,
    tax_label: z.string().trim().min(1).max(50),
  })
  .partial();

type Row = Parameters<typeof tenantOf>[0];

export const tenantRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  const update = async (principal: Parameters<typeof audit>[1], id: string, body: z.output<typeof updateBody>): Promise<Tenant> => {
    const tenant = await visibleTenant(db, principal, id);
    return db.transaction(async (trx) => {
      if (body.timezone && body.timezone !== tenant.timezone) {
        const bills = (await trx('bills').where({ tenant_id: tenant.id }).count<{ n: string }[]>({ n: '*' }))[0]?.n ?? '0';
        if (Number(bills) > 0) {
          throw new ApiError('conflict', `the time zone of ${tenant.slug} cannot change: it has bills for months in ${tenant.timezone}, and months in another zone would overlap them or leave gaps`);
        }
      }
      if (body.currency && body.currency !== tenant.currency) {
        const bills = (await trx('bills').where({ tenant_id: tenant.id }).count<{ n: string }[]>({ n: '*' }))[0]?.n ?? '0';
        if (Number(bills) > 0) throw new ApiError('conflict', `the currency of ${tenant.slug} cannot change: it already has bills in ${tenant.currency}`);
        const assigned = (await trx('tenant_plan_assignments').where({ tenant_id: tenant.id }).count<{ n: string }[]>({ n: '*' }))[0]?.n ?? '0';
        if (Number(assigned) > 0) throw new ApiError('conflict', `the currency of ${tenant.slug} cannot change: it has plan assignments in ${tenant.currency}`);
      }
      const changes = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
      const [row] = (await trx('tenants')
        .where({ id: tenant.id })
        .update({ ...changes, updated_at: trx.fn.now() })
        .returning('*')) as Row[];
      if (!row) throw new ApiError('not_found', `tenant ${id} was not found`);
      await audit(trx, principal, { action: 'tenant.update', entityType: 'tenant', entityId: tenant.id, tenantId: tenant.id, details: { before: tenant, changes } });
      return tenantOf(row);
    });
  };
  const updateSpec = {
    path: '/tenants/:id',
    summary: 'Update a tenant (name, billing e-mail, tax rate for bills computed from now on; time zone and currency only before its first bill)',
    description: 'A time zone change applies to windows and periods aggregated and billed from then on.',
    tag: 'tenants',
    auth: ['admin'] as const,
    params: idParams,
    body: updateBody,
    responses: { 200: { description: 'The updated tenant', schema: tenantSchema } },
  };
  return [
    route({
      method: 'post',
      path: '/tenants',
      summary: 'Create a tenant',
      tag: 'tenants',
      auth: ['admin'],
      body: createBody,
      responses: { 201: { description: 'Created', schema: tenantSchema }, 409: { description: 'The slug is taken' } },
      handle: async ({ principal, body }) =>
        db.transaction(async (trx) => {
          const [row] = (await trx('tenants')
            .insert({ slug: body.slug, name: body.name, billing_email: body.billing_email ?? null, currency: body.currency, timezone: body.timezone, tax_rate: body.tax_rate, tax_label: body.tax_label })
            .onConflict('slug')
            .ignore()
            .returning('*')) as Row[];
          if (!row) throw new ApiError('conflict', `a tenant with slug ${JSON.stringify(body.slug)} already exists`);
          const tenant = tenantOf(row);
          await audit(trx, principal, { action: 'tenant.create', entityType: 'tenant', entityId: tenant.id, tenantId: tenant.id, details: { after: tenant } });
          return reply(201, tenant, { Location: `/api/v1/tenants/${tenant.id}` });
        }),
    }),
    route({
      method: 'get',
      path: '/tenants',
      summary: 'List tenants (a tenant key sees only its own)',
      tag: 'tenants',
      auth: ['admin', 'tenant'],
      query: z.strictObject({ limit: limitQuery, cursor: z.string().max(128).optional().describe('slug of the last tenant of the previous page') }),
      responses: { 200: { description: 'Tenants by slug', schema: page(tenantSchema) } },
      handle: async ({ principal, query }) => {
        const q = db('tenants').orderBy('slug').limit(query.limit + 1);
        if (principal.role !== 'admin') void q.where({ id: principal.tenantId });
        if (query.cursor) void q.where('slug', '>', query.cursor);
        const rows = ((await q) as Row[]).map(tenantOf);
        const items = rows.slice(0, query.limit);
        return { items, next_cursor: rows.length > query.limit ? (items.at(-1)?.slug ?? null) : null };
      },
    }),
    route({
      method: 'get',
      path: '/tenants/:id',
      summary: 'A tenant by id or slug',
      tag: 'tenants',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'The tenant', schema: tenantSchema }, 404: { description: 'No such tenant (or not yours)' } },
      handle: ({ principal, params }) => visibleTenant(db, principal, params.id),
    }),
    route({ ...updateSpec, method: 'patch', handle: ({ principal, params, body }) => update(principal, params.id, body) }),
    route({ ...updateSpec, method: 'put', handle: ({ principal, params, body }) => update(principal, params.id, body) }),
  ];
};
