/** API keys (create: shown once; list; revoke) and the audit log — admin only. */
import { z } from 'zod';
import { audit, auditRowSchema, readAudit } from '../../../src/api/audit.js';
import { ApiError, notFound } from '../../../src/api/errors.js';
import { apiKeySchema, roles } from '../../../src/api/keys.js';
import { reply, route } from '../../../src/api/route.js';
import { findTenant, isUuid } from '../../../src/api/tenancy.js';
import { idParams, instant, limitQuery, page, tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

export const adminRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  return [
    route({
      method: 'post',
      path: '/api-keys',
      summary: 'Create an API key (the key is in this answer only; it is stored hashed)',
      tag: 'admin',
      auth: ['admin'],
      body: z.strictObject({ name: z.string().trim().min(1).max(255), role: z.enum(roles), tenant_id: tenantRef.nullish().describe('required for tenant and ingest keys') }),
      responses: { 201: { description: 'The key, shown once', schema: apiKeySchema.extend({ key: z.string() }) } },
      handle: async ({ principal, body }) => {
        let tenantId: string | null = null;
        if (body.role !== 'admin') {
          if (!body.tenant_id) throw new ApiError('validation_failed', `a ${body.role} key needs tenant_id`, [{ name: 'body.tenant_id', reason: 'required' }]);
          const tenant = await findTenant(db, body.tenant_id);
          if (!tenant) throw new ApiError('validation_failed', `tenant ${body.tenant_id} does not exist`, [{ name: 'body.tenant_id', reason: 'unknown tenant' }]);
          tenantId = tenant.id;
        } else if (body.tenant_id) {
          throw new ApiError('validation_failed', 'an admin key has no tenant', [{ name: 'body.tenant_id', reason: 'must be absent for role admin' }]);
        }
        const created = await deps.keys.create({ name: body.name, role: body.role, tenantId });
        await audit(db, principal, { action: 'api_key.create', entityType: 'api_key', entityId: created.id, tenantId, details: { role: created.role, prefix: created.prefix, name: created.name } });
        return reply(201, created, { 'Cache-Control': 'no-store' });
      },
    }),
    route({
      method: 'get',
      path: '/api-keys',
      summary: 'List API keys (never the keys themselves)',
      tag: 'admin',
      auth: ['admin'],
      query: z.strictObject({ tenant_id: z.uuid().optional() }),
      responses: { 200: { description: 'Keys', schema: z.object({ items: z.array(apiKeySchema) }) } },
      handle: async ({ query }) => ({ items: await deps.keys.list(query.tenant_id) }),
    }),
    route({
      method: 'delete',
      path: '/api-keys/:id',
      summary: 'Revoke an API key (kept for the audit trail)',
      tag: 'admin',
      auth: ['admin'],
      params: idParams,
      responses: { 200: { description: 'The revoked key', schema: apiKeySchema } },
      handle: async ({ principal, params }) => {
        if (!isUuid(params.id)) throw notFound('API key', params.id);
        if (params.id === principal.keyId) throw new ApiError('conflict', 'a key cannot revoke itself; use another admin key');
        const before = await deps.keys.get(params.id);
        if (!before) throw notFound('API key', params.id);
        const after = await deps.keys.revoke(params.id);
        if (!before.revoked_at) await audit(db, principal, { action: 'api_key.revoke', entityType: 'api_key', entityId: params.id, tenantId: before.tenant_id, details: { prefix: before.prefix } });
        return after;
      },
    }),
    route({
      method: 'get',
      path: '/audit-log',
      summary: 'Audit log of mutating calls, newest first',
      tag: 'admin',
      auth: ['admin'],
      query: z.strictObject({
        tenant_id: z.uuid().optional(),
        action: z.string().max(100).optional(),
        entity_type: z.string().max(50).optional(),
        entity_id: z.string().max(200).optional(),
        since: instant.optional(),
        until: instant.optional(),
        limit: limitQuery,
        cursor: z.string().regex(/^[1-9]\d{0,17}$/, 'the next_cursor of a previous page').optional(),
      }),
      responses: { 200: { description: 'Entries', schema: page(auditRowSchema) } },
      handle: ({ query }) =>
        readAudit(db, {
          tenantId: query.tenant_id,
          action: query.action,
          entityType: query.entity_type,
          entityId: query.entity_id,
          since: query.since ? new Date(query.since) : undefined,
          until: query.until ? new Date(query.until) : undefined,
          before: query.cursor,
          limit: query.limit,
        }),
    }),
  ];
};
