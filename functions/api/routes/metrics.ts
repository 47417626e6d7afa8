/**
 * Ingest and aggregation on demand. POST /metrics/ingest is the collect stage's own path (same
 * validation, per-item errors and dedup): usage in the seed's JSON shape (one object or an array),
 * a CloudEvent in binary or structured mode, or a cloudevents batch. A tenant-scoped key's events
 * must all name its tenant; others are rejected item by item. Buffered usage is saved by the save
 * function (on its flush tick, every minute).
 */
import { HTTP, type CloudEvent } from 'cloudevents';
import { z } from 'zod';
import { audit } from '../../../src/api/audit.js';
import { ApiError } from '../../../src/api/errors.js';
import { Reply, route } from '../../../src/api/route.js';
import { findTenant } from '../../../src/api/tenancy.js';
import { BillingError, problemContentType } from '../../../src/contract/problem.js';
import { seedUsageEvent } from '../../../src/contract/usage.js';
import type { ApiDeps } from './index.js';

const acceptedSchema = z.object({ accepted: z.number().int(), duplicates: z.number().int(), rejected: z.number().int() });
const aggregatedSchema = z.object({
  buckets: z.number().int(),
  windows: z.object({ '5m': z.number().int(), '1h': z.number().int(), '1d': z.number().int() }),
  rows_changed: z.number().int(),
  tenants: z.array(z.string()),
  from: z.string().nullable(),
  to: z.string().nullable(),
  more: z.boolean().describe('true when the time budget ran out with buckets still dirty'),
});

const headerValue = (v: string | number | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(', ') : v === undefined ? undefined : String(v));

export const metricsRoutes = (deps: ApiDeps) => [
  route({
    method: 'post',
    path: '/metrics/ingest',
    summary: 'Ingest usage events (seed JSON, CloudEvents binary/structured, or a cloudevents batch)',
    description: 'Answers 202 with counts; rejected items come back in a 422 problem with their index and reason, and the others are kept.',
    tag: 'metrics',
    auth: ['admin', 'ingest'],
    limit: 'ingest',
    bodyKind: 'raw',
    body: z.union([seedUsageEvent, z.array(seedUsageEvent)]),
    responses: { 202: { description: 'Buffered', schema: acceptedSchema }, 413: { description: 'Body or batch too large' }, 415: { description: 'Unsupported content type' } },
    handle: async ({ principal, req }) => {
      const body: unknown = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const headers = req.headers;
      let cloudevent: CloudEvent<unknown> | undefined;
      if (headers['ce-specversion'] !== undefined) {
        try {
          const event = HTTP.toEvent({ headers, body: (body as Buffer).toString('utf8') });
          cloudevent = Array.isArray(event) ? undefined : (event as CloudEvent<unknown>);
        } catch (err) {
          throw new ApiError('validation_failed', `not a valid CloudEvent: ${err instanceof Error ? err.message : String(err)}`, [{ name: 'headers', reason: 'invalid CloudEvent' }]);
        }
      }
      let allows: ((tenantKey: string) => boolean) | undefined;
      if (principal.role !== 'admin') {
        const own = principal.tenantId ? await findTenant(deps.db, principal.tenantId) : undefined;
        if (!own) throw new ApiError('forbidden', 'the tenant of this key no longer exists');
        allows = (key) => key === own.id || key === own.slug;
      }
      let answer;
      try {
        answer = await deps.collector.accept(
          { cloudevent, body: cloudevent ? undefined : body, headers, contentType: headerValue(headers['content-type']) },
          allows ? { allowsTenant: allows } : {},
        );
      } catch (err) {
        if (err instanceof BillingError) {
          return new Reply(err.status, undefined, {}, { data: JSON.stringify(err.toProblem()), contentType: problemContentType });
        }
        throw err;
      }
      const status = answer.statusCode ?? 200;
      const summaryHeader = answer.headers?.['x-faasbilling-accepted'];
      // One audit entry per request (who sent how much), not per event.
      const counts = typeof summaryHeader === 'string' ? (JSON.parse(summaryHeader) as unknown) : answer.body;
      const { accepted, duplicates, rejected } = (typeof counts === 'object' && counts !== null ? counts : {}) as { accepted?: number; duplicates?: number; rejected?: number };
      await audit(deps.db, principal, {
        action: 'usage.ingest',
        entityType: 'usage',
        entityId: null,
        tenantId: principal.tenantId,
        details: { status, accepted: accepted ?? 0, duplicates: duplicates ?? 0, rejected: rejected ?? 0 },
      });
      if (typeof summaryHeader === 'string') return new Reply(status, JSON.parse(summaryHeader) as unknown);
      if (status >= 400) return new Reply(status, undefined, {}, { data: JSON.stringify(answer.body), contentType: problemContentType });
      return new Reply(status, answer.body);
    },
  }),
  route({
    method: 'post',
    path: '/metrics/aggregate',
    summary: 'Run aggregation now (every dirty window, within the time budget)',
    tag: 'metrics',
    auth: ['admin'],
    limit: 'expensive',
    responses: { 200: { description: 'What was recomputed', schema: aggregatedSchema } },
    handle: async ({ principal }) => {
      const r = await deps.aggregator.run();
      await audit(deps.db, principal, { action: 'aggregate.run', entityType: 'usage_aggregate', entityId: null, tenantId: null, details: { buckets: r.buckets, windows: r.windows } });
      return { buckets: r.buckets, windows: r.windows, rows_changed: r.rowsChanged, tenants: r.tenants, from: r.from, to: r.to, more: r.more };
    },
  }),
];
