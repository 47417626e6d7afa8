/**
 * Read-only views the web dashboard needs beyond the other routes: a tenant's stored forecasts
 * (what the forecast stage last wrote to ml_predictions, per horizon, with both intervals) and
 * the dead letters (admin). Both only read; nothing here computes or changes anything.
 */
import { z } from 'zod';
import { route } from '../../../src/api/route.js';
import { visibleTenant } from '../../../src/api/tenancy.js';
import { decimalText, iso, limitQuery, tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

const storedForecastSchema = z.object({
  horizon: z.enum(['1h', '1d', '1w', '30d', 'month_end']),
  as_of: z.string().describe('data cut-off: the start of the tenant’s current 1h window when it ran'),
  period_start: z.string(),
  period_end: z.string(),
  currency: z.string(),
  actual_cost: decimalText.nullable().describe('month_end: what the month has accrued so far (usage after commitment discounts), inside the forecast; the minimum charge and an unused commitment are in predicted_cost only'),
  predicted_cost: decimalText,
  lower_80: decimalText,
  upper_80: decimalText,
  lower_95: decimalText,
  upper_95: decimalText,
  confidence: decimalText.nullable(),
  model: z.string().describe('model name@version of the component with the largest expected cost'),
  updated_at: z.string(),
});

const deadLetterSchema = z.object({
  id: z.string(),
  received_at: z.string(),
  stage: z.string(),
  reason: z.string(),
  detail: z.string().nullable(),
  source: z.string().nullable(),
  event_id: z.string().nullable(),
  event_type: z.string().nullable(),
  tenant_key: z.string().nullable(),
  resolved_at: z.string().nullable(),
});

interface PredictionRow {
  horizon: z.infer<typeof storedForecastSchema>['horizon'];
  as_of: Date;
  period_start: Date;
  period_end: Date;
  currency: string;
  actual_cost: string | null;
  predicted_cost: string;
  predicted_cost_lower_80: string;
  predicted_cost_upper_80: string;
  predicted_cost_lower_95: string;
  predicted_cost_upper_95: string;
  confidence: string | null;
  model_name: string;
  model_version: string;
  updated_at: Date;
}

interface DeadLetterRow {
  id: string;
  received_at: Date;
  stage: string;
  reason: string;
  detail: string | null;
  source: string | null;
  event_id: string | null;
  event_type: string | null;
  tenant_key: string | null;
  resolved_at: Date | null;
}

export const dashboardRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  return [
    route({
      method: 'get',
      path: '/tenants/:id/forecasts',
      summary: 'The latest stored forecast of a tenant per horizon (1h, 1d, 1w, 30d, month_end), with 80%/95% intervals',
      tag: 'forecast',
      auth: ['admin', 'tenant'],
      params: z.strictObject({ id: tenantRef }),
      responses: { 200: { description: 'Newest forecast per horizon (empty until the forecast stage has run)', schema: z.object({ items: z.array(storedForecastSchema) }) } },
      handle: async ({ principal, params }) => {
        const tenant = await visibleTenant(db, principal, params.id);
        // Tenant-wide rows only (service_id NULL); the newest as_of of each horizon.
        const rows = await db('ml_predictions')
          .distinctOn('horizon')
          .where({ tenant_id: tenant.id })
          .whereNull('service_id')
          .orderBy([{ column: 'horizon' }, { column: 'as_of', order: 'desc' }])
          .select<PredictionRow[]>(
            'horizon', 'as_of', 'period_start', 'period_end', 'currency', 'actual_cost', 'predicted_cost', 'predicted_cost_lower_80', 'predicted_cost_upper_80',
            'predicted_cost_lower_95', 'predicted_cost_upper_95', 'confidence', 'model_name', 'model_version', 'updated_at',
          );
        return {
          items: rows.map((r) => ({
            horizon: r.horizon,
            as_of: r.as_of.toISOString(),
            period_start: r.period_start.toISOString(),
            period_end: r.period_end.toISOString(),
            currency: r.currency.trim(),
            actual_cost: r.actual_cost,
            predicted_cost: r.predicted_cost,
            lower_80: r.predicted_cost_lower_80,
            upper_80: r.predicted_cost_upper_80,
            lower_95: r.predicted_cost_lower_95,
            upper_95: r.predicted_cost_upper_95,
            confidence: r.confidence,
            model: `${r.model_name}@${r.model_version}`,
            updated_at: r.updated_at.toISOString(),
          })),
        };
      },
    }),
    route({
      method: 'get',
      path: '/dead-letters',
      summary: 'Dead letters (what could not be stored or delivered), newest first',
      tag: 'admin',
      auth: ['admin'],
      query: z.strictObject({ unresolved: z.enum(['true', 'false']).optional().describe('true: only those not yet resolved'), limit: limitQuery }),
      responses: { 200: { description: 'Dead letters without their payloads', schema: z.object({ items: z.array(deadLetterSchema) }) } },
      handle: async ({ query }) => {
        const q = db('dead_letters')
          .orderBy([{ column: 'received_at', order: 'desc' }, { column: 'id', order: 'desc' }])
          .limit(query.limit)
          .select<DeadLetterRow[]>('id', 'received_at', 'stage', 'reason', 'detail', 'source', 'event_id', 'event_type', 'tenant_key', 'resolved_at');
        if (query.unresolved === 'true') void q.whereNull('resolved_at');
        const rows = await q;
        return { items: rows.map((r) => ({ ...r, id: String(r.id), received_at: r.received_at.toISOString(), resolved_at: iso(r.resolved_at) })) };
      },
    }),
  ];
};
