/** Usage: aggregated windows with filters and pagination, and the one-call dashboard. */
import { z } from 'zod';
import { ApiError } from '../../../src/api/errors.js';
import { route } from '../../../src/api/route.js';
import { scopedTenant, visibleTenant } from '../../../src/api/tenancy.js';
import { MAX_DASHBOARD_DAYS, QueryError, aggregatePageSchema, dashboardSchema, listUsageAggregates, usageDashboard } from '../../../src/api/usage-queries.js';
import { instant, tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

function fromQueryError(err: unknown): unknown {
  if (!(err instanceof QueryError)) return err;
  if (err.code === 'tenant_not_found') return new ApiError('not_found', err.message);
  return new ApiError('validation_failed', err.message, [{ name: err.code === 'invalid_cursor' ? 'query.cursor' : 'query', reason: err.message }]);
}

export const usageRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  return [
    route({
      method: 'get',
      path: '/usage-aggregates',
      summary: 'Aggregated usage windows (5m, 1h, 1d) with filters, oldest first, keyset-paginated',
      tag: 'usage',
      auth: ['admin', 'tenant'],
      query: z.strictObject({
        tenant_id: tenantRef.optional(),
        service_id: z.uuid().optional(),
        revision_id: z.uuid().optional(),
        window_size: z.enum(['5m', '1h', '1d']).optional(),
        start_time: instant.optional().describe('windows starting at or after'),
        end_time: instant.optional().describe('windows ending at or before'),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
        cursor: z.string().max(512).optional(),
      }),
      responses: { 200: { description: 'A page of windows', schema: aggregatePageSchema } },
      handle: async ({ principal, query }) => {
        const tenant = await scopedTenant(db, principal, query.tenant_id);
        return listUsageAggregates(db, {
          ...(principal.role === 'admin' ? {} : { tenantIds: tenant ? [tenant.id] : [] }),
          ...(tenant ? { tenantId: tenant.id } : {}),
          ...(query.service_id ? { serviceId: query.service_id } : {}),
          ...(query.revision_id ? { revisionId: query.revision_id } : {}),
          ...(query.window_size ? { windowSize: query.window_size } : {}),
          ...(query.start_time ? { startTime: new Date(query.start_time) } : {}),
          ...(query.end_time ? { endTime: new Date(query.end_time) } : {}),
          limit: query.limit,
          ...(query.cursor ? { cursor: query.cursor } : {}),
        }).catch((err: unknown) => {
          throw fromQueryError(err);
        });
      },
    }),
    route({
      method: 'get',
      path: '/usage/dashboard/:tenant_id',
      summary: 'Everything a tenant dashboard draws: month-to-date cost, daily series per service, top services, cold-start rate, p95',
      tag: 'usage',
      auth: ['admin', 'tenant'],
      params: z.strictObject({ tenant_id: tenantRef }),
      query: z.strictObject({ days: z.coerce.number().int().min(1).max(MAX_DASHBOARD_DAYS).default(30) }),
      responses: { 200: { description: 'The dashboard', schema: dashboardSchema } },
      handle: async ({ principal, params, query }) => {
        const tenant = await visibleTenant(db, principal, params.tenant_id);
        return usageDashboard(db, tenant.id, deps.now(), { days: query.days }).catch((err: unknown) => {
          throw fromQueryError(err);
        });
      },
    }),
  ];
};
