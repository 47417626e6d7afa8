/** Health (public): the API and its database. */
import { z } from 'zod';
import { pingDb } from '../../../src/adapters/postgres.js';
import { reply, route } from '../../../src/api/route.js';
import type { ApiDeps } from './index.js';

const healthSchema = z.object({ status: z.enum(['ok', 'degraded']), database: z.enum(['ok', 'unreachable']), time: z.string() });

export const systemRoutes = (deps: ApiDeps) => [
  route({
    method: 'get',
    path: '/health',
    summary: 'Health check (no key needed)',
    tag: 'system',
    auth: 'public',
    responses: { 200: { description: 'Healthy', schema: healthSchema }, 503: { description: 'The database is unreachable', schema: healthSchema } },
    handle: async () => {
      let database: 'ok' | 'unreachable' = 'ok';
      try {
        await pingDb(deps.db);
      } catch {
        database = 'unreachable';
      }
      const body = { status: database === 'ok' ? 'ok' : 'degraded', database, time: deps.now().toISOString() };
      return reply(database === 'ok' ? 200 : 503, body);
    },
  }),
];
