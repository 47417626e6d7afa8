/**
 * Coupons and credits of a tenant (tenant_credits, migration 0013). An admin grants them; the
 * tenant sees them with what they have given. Bills apply them as negative credit lines
 * (src/billing/compose.ts `creditLines`): coupons take a percentage off a bill (optionally capped
 * per bill), credits draw down an amount bill after bill; neither takes a bill below zero. Only
 * final and paid bills draw a credit down, so a credit is never spent twice. A credit is voided,
 * never deleted: bills that used it keep referring to it.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { audit } from '../../../src/api/audit.js';
import { ApiError } from '../../../src/api/errors.js';
import { reply, route } from '../../../src/api/route.js';
import { visibleTenant, type Tenant } from '../../../src/api/tenancy.js';
import { creditDrawnSql } from '../../../src/billing/store.js';
import { Dec, minorUnitDigits } from '../../../src/core/pricing/index.js';
import { decimalText, instant, iso } from './common.js';
import type { ApiDeps } from './index.js';

const creditSchema = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  code: z.string(),
  kind: z.enum(['credit', 'coupon']),
  description: z.string().nullable(),
  currency: z.string(),
  amount: decimalText.nullable().describe('credits: the amount granted'),
  percent: decimalText.nullable().describe('coupons: percent off a bill'),
  max_amount_per_bill: decimalText.nullable(),
  valid_from: z.string(),
  valid_until: z.string().nullable(),
  used: decimalText.describe('what final and paid bills have taken from it'),
  remaining: decimalText.nullable().describe('credits: amount − used'),
  voided_at: z.string().nullable(),
  created_at: z.string(),
});
type CreditOut = z.infer<typeof creditSchema>;

interface CreditRow {
  id: string;
  tenant_id: string;
  code: string;
  kind: 'credit' | 'coupon';
  description: string | null;
  currency: string;
  amount: string | null;
  percent: string | null;
  max_amount_per_bill: string | null;
  valid_from: Date;
  valid_until: Date | null;
  voided_at: Date | null;
  created_at: Date;
  used: string;
}

const money = z.string().regex(/^\d{1,15}(\.\d+)?$/, 'a positive decimal string in the tenant’s currency (at most 15 integer digits)');

const createBody = z.strictObject({
  code: z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, "_", "." or "-", at most 64').describe('shown on invoices; unique per tenant'),
  kind: z.enum(['credit', 'coupon']),
  amount: money.optional().describe('credits: the amount granted, in the tenant’s currency'),
  percent: z.string().regex(/^\d{1,3}(\.\d{1,4})?$/, 'a percentage such as "15" or "12.5"').optional().describe('coupons: percent off each bill, (0, 100]'),
  max_amount_per_bill: money.optional().describe('the most it gives on one bill'),
  valid_from: instant.optional().describe('default now; it applies to bills whose period overlaps [valid_from, valid_until)'),
  valid_until: instant.optional(),
  description: z.string().trim().min(1).max(500).optional(),
});

const creditParams = z.strictObject({ id: z.string().min(1).max(128), creditId: z.uuid('creditId must be a UUID') });

function creditOut(r: CreditRow): CreditOut {
  const currency = r.currency.trim();
  const digits = minorUnitDigits(currency);
  const used = new Dec(r.used).negated();
  const fixed = (v: string | null): string | null => (v === null ? null : new Dec(v).toFixed(digits));
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    code: r.code,
    kind: r.kind,
    description: r.description,
    currency,
    amount: fixed(r.amount),
    percent: r.percent === null ? null : new Dec(r.percent).toFixed(),
    max_amount_per_bill: fixed(r.max_amount_per_bill),
    valid_from: r.valid_from.toISOString(),
    valid_until: iso(r.valid_until),
    used: (used.isZero() ? new Dec(0) : used).toFixed(digits),
    remaining: r.amount === null ? null : new Dec(r.amount).minus(used).toFixed(digits),
    voided_at: iso(r.voided_at),
    created_at: r.created_at.toISOString(),
  };
}

async function creditsOf(db: Knex, tenant: Tenant, id?: string): Promise<CreditRow[]> {
  const { rows } = await db.raw<{ rows: CreditRow[] }>(
    `SELECT c.id, c.tenant_id, c.code, c.kind, c.description, c.currency, c.amount::text, c.percent::text, c.max_amount_per_bill::text,
            c.valid_from, c.valid_until, c.voided_at, c.created_at,
            ${creditDrawnSql('c')}::text AS used
       FROM tenant_credits c
      WHERE c.tenant_id = ? ${id ? 'AND c.id = ?' : ''}
      ORDER BY c.created_at, c.id`,
    id ? [tenant.id, id] : [tenant.id],
  );
  return rows;
}

const invalid = (name: string, reason: string): ApiError => new ApiError('validation_failed', `${name}: ${reason}`, [{ name, reason }]);

export const creditRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  return [
    route({
      method: 'post',
      path: '/tenants/:id/credits',
      summary: 'Grant the tenant a coupon (percent off each bill) or a credit (an amount drawn down by its bills)',
      tag: 'credits',
      auth: ['admin'],
      params: z.strictObject({ id: z.string().min(1).max(128) }),
      body: createBody,
      responses: { 201: { description: 'The coupon or credit', schema: creditSchema }, 409: { description: 'The tenant has a credit with this code' } },
      handle: async ({ principal, params, body }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        const digits = minorUnitDigits(tenant.currency);
        const checkMoney = (name: string, v: string | undefined): void => {
          if (v === undefined) return;
          if (!new Dec(v).gt(0)) throw invalid(`body.${name}`, 'must be above 0');
          if (new Dec(v).decimalPlaces() > digits) throw invalid(`body.${name}`, `has more decimals than ${tenant.currency} has (${digits})`);
        };
        if (body.kind === 'credit') {
          if (body.amount === undefined) throw invalid('body.amount', 'a credit needs an amount');
          if (body.percent !== undefined) throw invalid('body.percent', 'a credit has an amount, not a percent');
        } else {
          if (body.percent === undefined) throw invalid('body.percent', 'a coupon needs a percent');
          if (body.amount !== undefined) throw invalid('body.amount', 'a coupon has a percent, not an amount (cap it with max_amount_per_bill)');
          const p = new Dec(body.percent);
          if (!p.gt(0) || p.gt(100)) throw invalid('body.percent', 'must be above 0 and at most 100');
        }
        checkMoney('amount', body.amount);
        checkMoney('max_amount_per_bill', body.max_amount_per_bill);
        const validFrom = body.valid_from ? new Date(body.valid_from) : deps.now();
        const validUntil = body.valid_until ? new Date(body.valid_until) : null;
        if (validUntil && !(validUntil > validFrom)) throw invalid('body.valid_until', 'must be after valid_from');
        const id = await db.transaction(async (trx) => {
          const clash = await trx('tenant_credits').where({ tenant_id: tenant.id, code: body.code }).first<{ id: string } | undefined>('id');
          if (clash) throw new ApiError('conflict', `tenant ${tenant.slug} already has a coupon or credit ${body.code}`);
          const inserted: { id: string }[] = await trx('tenant_credits')
            .insert({
              tenant_id: tenant.id,
              code: body.code,
              kind: body.kind,
              amount: body.amount ?? null,
              percent: body.percent ?? null,
              max_amount_per_bill: body.max_amount_per_bill ?? null,
              currency: tenant.currency,
              description: body.description ?? null,
              valid_from: validFrom,
              valid_until: validUntil,
              created_by: principal.keyId,
            })
            .returning('id');
          const row = inserted[0];
          if (!row) throw new Error('insert returned no row');
          await audit(trx, principal, { action: `${body.kind}.create`, entityType: 'tenant_credit', entityId: row.id, tenantId: tenant.id, details: { ...body } });
          return row.id;
        });
        const [created] = await creditsOf(db, tenant, id);
        if (!created) throw new Error('created credit not found');
        return reply(201, creditOut(created), { Location: `/api/v1/tenants/${tenant.id}/credits` });
      },
    }),
    route({
      method: 'get',
      path: '/tenants/:id/credits',
      summary: 'The tenant’s coupons and credits, with what bills have taken from each',
      tag: 'credits',
      auth: ['admin', 'tenant'],
      params: z.strictObject({ id: z.string().min(1).max(128) }),
      responses: { 200: { description: 'Coupons and credits', schema: z.object({ items: z.array(creditSchema) }) } },
      handle: async ({ principal, params }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        return { items: (await creditsOf(db, tenant)).map(creditOut) };
      },
    }),
    route({
      method: 'post',
      path: '/tenants/:id/credits/:creditId/void',
      summary: 'Void a coupon or credit: later bills no longer use it (bills that did keep their lines)',
      tag: 'credits',
      auth: ['admin'],
      params: creditParams,
      responses: { 200: { description: 'The voided coupon or credit', schema: creditSchema } },
      handle: async ({ principal, params }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        await db.transaction(async (trx) => {
          const n = await trx('tenant_credits').where({ id: params.creditId, tenant_id: tenant.id }).whereNull('voided_at').update({ voided_at: trx.fn.now() });
          if (n > 0) await audit(trx, principal, { action: 'credit.void', entityType: 'tenant_credit', entityId: params.creditId, tenantId: tenant.id });
        });
        const [row] = await creditsOf(db, tenant, params.creditId);
        if (!row) throw new ApiError('not_found', `tenant ${tenant.slug} has no coupon or credit ${params.creditId}`);
        return creditOut(row);
      },
    }),
  ];
};
