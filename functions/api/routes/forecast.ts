/** The seed's cost forecast: the next hour, day or week for a tenant, with its components and intervals. */
import { z } from 'zod';
import { ApiError } from '../../../src/api/errors.js';
import { route } from '../../../src/api/route.js';
import { requiredTenant } from '../../../src/api/tenancy.js';
import { forecastResponseSchema } from '../../../src/stages/forecast.js';
import { tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

export const forecastRoutes = (deps: ApiDeps) => [
  route({
    method: 'post',
    path: '/forecast/cost',
    summary: 'Forecast a tenant’s cost for the next 1h, 1d or 1w (ForecastRequest → ForecastResponse)',
    tag: 'forecast',
    auth: ['admin', 'tenant'],
    limit: 'expensive',
    body: z.strictObject({ tenant_id: tenantRef.optional().describe('required for an admin key'), period: z.enum(['1h', '1d', '1w']) }),
    responses: { 200: { description: 'forecasted_cost, components and 80%/95% intervals', schema: forecastResponseSchema } },
    handle: async ({ principal, body }) => {
      const tenant = await requiredTenant(deps.db, principal, body.tenant_id);
      try {
        return await deps.forecaster.forecastCost(tenant.id, body.period, deps.now());
      } catch (err) {
        if (err instanceof Error && err.name === 'NoPlanError') throw new ApiError('conflict', `${err.message}: assign the tenant a plan first`);
        throw err;
      }
    },
  }),
];
