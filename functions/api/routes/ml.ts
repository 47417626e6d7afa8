/**
 * The seed's ML endpoints: forecasts for any horizon, anomalies of a tenant's services, savings
 * recommendations priced by the simulator, and all three together as the tenant's insights.
 * Tenant-scoped like the rest of the API (a tenant key sees its own tenant only).
 */
import { z } from 'zod';
import { ApiError } from '../../../src/api/errors.js';
import { route } from '../../../src/api/route.js';
import { requiredTenant, visibleTenant } from '../../../src/api/tenancy.js';
import { anomalyFinding } from '../../../src/contract/events.js';
import { windowBoundsMs } from '../../../src/core/windows/index.js';
import { AnomalyScanner } from '../../../src/stages/anomalies.js';
import { forecastHorizons, forecastResponseSchema } from '../../../src/stages/forecast.js';
import { Advisor, type RecommendationReport } from '../../../src/stages/recommendations.js';
import { decimalText, instant, tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

const anomalySchema = anomalyFinding.required({ until: true, direction: true, cost_impact: true, currency: true, explanation: true });
const anomaliesSchema = z.object({
  tenant_id: z.uuid(),
  as_of: z.string().describe('the examined hours end here (the start of the current 1h window)'),
  window_hours: z.number().int(),
  anomalies: z.array(anomalySchema).describe('costliest first'),
});
const predictionsSchema = z.object({ tenant_id: z.uuid(), forecasts: z.array(forecastResponseSchema) });
const recommendationSchema = z.object({
  kind: z.enum(['plan', 'memory_limit', 'min_scale', 'budget', 'quota']),
  service: z.string().nullable(),
  current: z.string(),
  suggested: z.string(),
  saving: decimalText.nullable().describe('what the change would have saved over the last 30 days; null for a budget or quota warning'),
  saving_share: decimalText.nullable().describe('the saving as a share of the 30 days’ cost (0–1)'),
  explanation: z.string(),
  evidence: z.record(z.string(), z.union([z.number(), z.string(), z.null()])),
});
const recommendationsSchema = z.object({
  tenant_id: z.uuid(),
  currency: z.string(),
  period_start: z.string(),
  period_end: z.string(),
  cost: decimalText.describe('the 30 days under the plan in force (simulated)'),
  recommendations: z.array(recommendationSchema).describe('largest saving first, budget and quota warnings last'),
  total_saving: decimalText,
}) satisfies z.ZodType<RecommendationReport>;
const insightsSchema = z.object({
  tenant_id: z.uuid(),
  forecasts: z.array(forecastResponseSchema),
  anomalies: z.array(anomalySchema),
  recommendations: recommendationsSchema,
});

const anomalyBody = z.strictObject({
  tenant_id: tenantRef.optional().describe('required for an admin key'),
  window_hours: z.number().int().min(1).max(168).default(24).describe('hours examined before as_of'),
  threshold: z.number().min(1).max(50).optional().describe('robust z-score from which an hour is abnormal (default 4)'),
  min_hours: z.number().int().min(1).max(48).optional().describe('consecutive abnormal hours an anomaly needs (default 2)'),
  as_of: instant.optional(),
});

/** A tenant with no plan is a setup problem the caller can fix. */
function planProblem(err: unknown): never {
  if (err instanceof Error && err.name === 'NoPlanError') throw new ApiError('conflict', `${err.message}: assign the tenant a plan first`);
  throw err;
}

export const mlRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  const scanner = new AnomalyScanner(db, deps.now);
  const advisor = new Advisor({ db, billing: deps.billing, forecaster: deps.forecaster, now: deps.now });
  const predict = async (tenantId: string, horizons: readonly (typeof forecastHorizons)[number][], at: Date) => {
    const summary = await deps.forecaster.run({ tenantId, horizons, at }).catch(planProblem);
    return summary.forecasts ?? [];
  };
  return [
    route({
      method: 'post',
      path: '/ml/predict',
      summary: 'Forecast a tenant’s cost for any horizon (1h, 1d, 1w, 30d, month_end) with 80%/95% intervals, and store the predictions',
      tag: 'ml',
      auth: ['admin', 'tenant'],
      limit: 'expensive',
      body: z.strictObject({
        tenant_id: tenantRef.optional().describe('required for an admin key'),
        horizons: z.array(z.enum(forecastHorizons)).min(1).default([...forecastHorizons]),
        as_of: instant.optional(),
      }),
      responses: { 200: { description: 'one forecast per horizon (model chosen per component by backtest)', schema: predictionsSchema } },
      handle: async ({ principal, body }) => {
        const tenant = await requiredTenant(db, principal, body.tenant_id);
        return { tenant_id: tenant.id, forecasts: await predict(tenant.id, body.horizons, body.as_of ? new Date(body.as_of) : deps.now()) };
      },
    }),
    route({
      method: 'post',
      path: '/ml/anomalies',
      summary: 'Anomalies of a tenant’s services (invocations, p95 duration, memory, errors, cost) in the last hours, each explained',
      tag: 'ml',
      auth: ['admin', 'tenant'],
      limit: 'expensive',
      body: anomalyBody,
      responses: { 200: { description: 'anomalies, costliest first', schema: anomaliesSchema } },
      handle: async ({ principal, body }) => {
        const tenant = await requiredTenant(db, principal, body.tenant_id);
        const at = body.as_of ? new Date(body.as_of) : deps.now();
        const options = { ...(body.threshold !== undefined ? { threshold: body.threshold } : {}), ...(body.min_hours !== undefined ? { minHours: body.min_hours } : {}) };
        const anomalies = await scanner.scan(tenant.id, { at, windowHours: body.window_hours, options }).catch(planProblem);
        const asOf = new Date(windowBoundsMs(at.getTime(), '1h', tenant.timezone)[0]).toISOString();
        return { tenant_id: tenant.id, as_of: asOf, window_hours: body.window_hours, anomalies };
      },
    }),
    route({
      method: 'post',
      path: '/ml/optimize',
      summary: 'Savings recommendations (cheaper plan, memory limits, minScale) priced on the last 30 days of usage, and when the budget or a free allowance runs out',
      tag: 'ml',
      auth: ['admin', 'tenant'],
      limit: 'expensive',
      body: z.strictObject({ tenant_id: tenantRef.optional().describe('required for an admin key') }),
      responses: { 200: { description: 'recommendations with the money each would have saved', schema: recommendationsSchema } },
      handle: async ({ principal, body }) => {
        const tenant = await requiredTenant(db, principal, body.tenant_id);
        return advisor.recommend(tenant.id).catch(planProblem);
      },
    }),
    route({
      method: 'get',
      path: '/ml/insights/:tenant_id',
      summary: 'A tenant’s insights: forecasts of every horizon, anomalies of the last day and savings recommendations',
      tag: 'ml',
      auth: ['admin', 'tenant'],
      limit: 'expensive',
      params: z.strictObject({ tenant_id: tenantRef }),
      responses: { 200: { description: 'forecasts, anomalies and recommendations', schema: insightsSchema } },
      handle: async ({ principal, params }) => {
        const tenant = await visibleTenant(db, principal, params.tenant_id);
        const at = deps.now();
        const forecasts = await predict(tenant.id, forecastHorizons, at);
        const anomalies = await scanner.scan(tenant.id, { at }).catch(planProblem);
        const recommendations = await advisor.recommend(tenant.id, at).catch(planProblem);
        return { tenant_id: tenant.id, forecasts, anomalies, recommendations };
      },
    }),
  ];
};
