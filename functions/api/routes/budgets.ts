/**
 * Monthly budgets per tenant: an amount in the tenant's currency and alert thresholds in percent.
 * The price stage checks them whenever it recomputes the month-to-date cost and announces each
 * threshold once per period (faasbilling.budget.exceeded.v1); the alerts are listed here.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { audit } from '../../../src/api/audit.js';
import { ApiError } from '../../../src/api/errors.js';
import { reply, route } from '../../../src/api/route.js';
import { visibleTenant, type Tenant } from '../../../src/api/tenancy.js';
import { currentPeriod } from '../../../src/billing/index.js';
import { Dec, minorUnitDigits } from '../../../src/core/pricing/index.js';
import { decimalText, idParams } from './common.js';
import type { ApiDeps } from './index.js';

const alertSchema = z.object({ threshold: z.number().int(), amount: decimalText, limit: decimalText, currency: z.string(), period_start: z.string(), at: z.string() });
const budgetSchema = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  amount: decimalText,
  currency: z.string(),
  thresholds: z.array(z.number().int()),
  period_start: z.string().describe('the open billing period'),
  month_to_date: decimalText.nullable().describe('the running cost of the open period, when the price stage has computed it'),
  used_percent: z.string().nullable(),
  alerts: z.array(alertSchema).describe('thresholds crossed in the open period'),
});

interface BudgetRow {
  id: string;
  tenant_id: string;
  amount: string;
  thresholds: number[];
}
interface AlertRow {
  threshold: number;
  amount: string;
  limit_amount: string;
  currency: string;
  period_start: Date;
  created_at: Date;
}

const alertOut = (r: AlertRow) => {
  const digits = minorUnitDigits(r.currency.trim());
  return { threshold: r.threshold, amount: new Dec(r.amount).toFixed(digits), limit: new Dec(r.limit_amount).toFixed(digits), currency: r.currency.trim(), period_start: r.period_start.toISOString(), at: r.created_at.toISOString() };
};

async function budgetOf(db: Knex, tenant: Tenant, now: Date): Promise<z.infer<typeof budgetSchema>> {
  const row = (await db('budgets').where({ tenant_id: tenant.id }).first()) as BudgetRow | undefined;
  if (!row) throw new ApiError('not_found', `tenant ${tenant.slug} has no budget; set one with PUT /api/v1/tenants/${tenant.id}/budget`);
  const digits = minorUnitDigits(tenant.currency);
  const period = currentPeriod(now, tenant.timezone);
  const running = (await db('tenant_running_costs').where({ tenant_id: tenant.id, period_start: period.start }).first()) as { total: string; adjustments_total: string } | undefined;
  const mtd = running ? new Dec(running.total).plus(running.adjustments_total) : null;
  const alerts = (await db('budget_alerts').where({ budget_id: row.id, period_start: period.start }).orderBy('threshold')) as AlertRow[];
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    amount: new Dec(row.amount).toFixed(digits),
    currency: tenant.currency,
    thresholds: row.thresholds,
    period_start: period.start.toISOString(),
    month_to_date: mtd ? mtd.toFixed(digits) : null,
    used_percent: mtd ? mtd.div(row.amount).times(100).toFixed(1) : null,
    alerts: alerts.map(alertOut),
  };
}

export const budgetRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  return [
    route({
      method: 'put',
      path: '/tenants/:id/budget',
      summary: 'Set the tenant’s monthly budget and its alert thresholds (percent)',
      tag: 'budgets',
      auth: ['admin', 'tenant'],
      params: idParams,
      body: z.strictObject({
        amount: z.string().regex(/^\d{1,15}(\.\d+)?$/, 'a positive decimal string in the tenant’s currency (at most 15 integer digits)').describe('before tax, like month_to_date'),
        thresholds: z.array(z.number().int().min(1).max(1000)).min(1).max(10).optional().describe('default [50, 80, 100]'),
      }),
      responses: { 200: { description: 'The budget', schema: budgetSchema } },
      handle: async ({ principal, params, body }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        const digits = minorUnitDigits(tenant.currency);
        const amount = new Dec(body.amount);
        if (amount.lte(0)) throw new ApiError('validation_failed', 'amount must be above 0', [{ name: 'body.amount', reason: 'must be above 0' }]);
        if (amount.decimalPlaces() > digits) {
          throw new ApiError('validation_failed', `amount has more decimals than ${tenant.currency} has (${digits})`, [{ name: 'body.amount', reason: 'too many decimals' }]);
        }
        const thresholds = [...new Set(body.thresholds ?? [50, 80, 100])].sort((a, b) => a - b);
        await db.transaction(async (trx) => {
          const before = (await trx('budgets').where({ tenant_id: tenant.id }).first()) as BudgetRow | undefined;
          // A changed budget is judged afresh this period: its thresholds can alert again.
          if (before && (!new Dec(before.amount).eq(amount) || before.thresholds.join() !== thresholds.join())) {
            await trx('budget_alerts').where({ budget_id: before.id, period_start: currentPeriod(deps.now(), tenant.timezone).start }).delete();
          }
          await trx('budgets')
            .insert({ tenant_id: tenant.id, amount: body.amount, thresholds })
            .onConflict('tenant_id')
            .merge({ amount: body.amount, thresholds, updated_at: trx.fn.now() });
          await audit(trx, principal, { action: 'budget.set', entityType: 'budget', entityId: tenant.id, tenantId: tenant.id, details: { amount: body.amount, thresholds } });
        });
        return budgetOf(db, tenant, deps.now());
      },
    }),
    route({
      method: 'get',
      path: '/tenants/:id/budget',
      summary: 'The tenant’s budget, month-to-date use and the thresholds crossed this period',
      tag: 'budgets',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'The budget', schema: budgetSchema }, 404: { description: 'No budget set' } },
      handle: async ({ principal, params }) => budgetOf(db, await visibleTenant(db, principal, params.id), deps.now()),
    }),
    route({
      method: 'delete',
      path: '/tenants/:id/budget',
      summary: 'Remove the tenant’s budget (and its alert history)',
      tag: 'budgets',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 204: { description: 'Removed' } },
      handle: async ({ principal, params }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        const removed = await db.transaction(async (trx) => {
          const n = await trx('budgets').where({ tenant_id: tenant.id }).delete();
          if (n > 0) await audit(trx, principal, { action: 'budget.delete', entityType: 'budget', entityId: tenant.id, tenantId: tenant.id });
          return n;
        });
        if (removed === 0) throw new ApiError('not_found', `tenant ${tenant.slug} has no budget`);
        return reply(204);
      },
    }),
    route({
      method: 'get',
      path: '/tenants/:id/budget/alerts',
      summary: 'Every budget alert of the tenant, newest first',
      tag: 'budgets',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'Alerts', schema: z.object({ items: z.array(alertSchema) }) } },
      handle: async ({ principal, params }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        const rows = (await db('budget_alerts').where({ tenant_id: tenant.id }).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'threshold', order: 'desc' }]).limit(500)) as AlertRow[];
        return { items: rows.map(alertOut) };
      },
    }),
  ];
};
