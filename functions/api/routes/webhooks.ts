/**
 * Webhooks: a tenant (or the operator, with an admin key and no tenant) registers a URL for bill,
 * budget and anomaly events; the notifications function POSTs them signed with the webhook's
 * secret, shown once here (`X-FaaSBilling-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")`).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { audit } from '../../../src/api/audit.js';
import { ApiError, notFound } from '../../../src/api/errors.js';
import type { Principal } from '../../../src/api/keys.js';
import { reply, route } from '../../../src/api/route.js';
import { canSee, isUuid, scopedTenant } from '../../../src/api/tenancy.js';
import { Notifier, notifiableTypes, storedDelivery, urlProblem, type DeliveryRow } from '../../../src/stages/notify.js';
import { idParams, tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

const webhookSchema = z.object({
  id: z.uuid(),
  tenant_id: z.uuid().nullable().describe('null: the operator’s, for every tenant'),
  url: z.string(),
  events: z.array(z.string()),
  active: z.boolean(),
  created_at: z.string(),
});
const deliverySchema = z.object({
  id: z.string().describe('the delivery’s id, for /webhooks/{id}/deliveries/{deliveryId}'),
  event_source: z.string(),
  event_id: z.string(),
  event_type: z.string(),
  attempt: z.number().int(),
  status_code: z.number().int().nullable(),
  error: z.string().nullable(),
  succeeded: z.boolean(),
  duration_ms: z.number().int(),
  at: z.string(),
  redelivery_of: z.string().nullable().describe('the delivery this one sent again on request; null for the notifications function’s own tries'),
});
const deliveryOut = (r: DeliveryRow): z.infer<typeof deliverySchema> => ({
  id: r.id,
  event_source: r.event_source,
  event_id: r.event_id,
  event_type: r.event_type,
  attempt: r.attempt,
  status_code: r.status_code,
  error: r.error,
  succeeded: r.succeeded,
  duration_ms: r.duration_ms,
  at: r.at.toISOString(),
  redelivery_of: r.redelivery_of,
});
const deliveryParams = z.strictObject({ id: z.string().min(1).max(128), deliveryId: z.string().min(1).max(32) });

/** Webhooks one tenant (or the operator) may register. */
const MAX_WEBHOOKS = 10;

interface WebhookRow {
  id: string;
  tenant_id: string | null;
  url: string;
  events: string[];
  active: boolean;
  created_at: Date;
}
const webhookOut = (r: WebhookRow): z.infer<typeof webhookSchema> => ({ id: r.id, tenant_id: r.tenant_id, url: r.url, events: r.events, active: r.active, created_at: r.created_at.toISOString() });

export const webhookRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  // Redeliveries go through the notifications function's delivery code (signature, address checks, log).
  const notifier = new Notifier({
    db,
    logger: deps.logger,
    attempts: deps.config.WEBHOOK_ATTEMPTS,
    timeoutMs: deps.config.WEBHOOK_TIMEOUT_MS,
    allowPrivate: deps.config.WEBHOOK_ALLOW_PRIVATE_ADDRESSES,
  });
  const visibleWebhook = async (principal: Principal, id: string): Promise<WebhookRow> => {
    const row = isUuid(id) ? ((await db('webhooks').where({ id }).first()) as WebhookRow | undefined) : undefined;
    if (!row || (row.tenant_id === null ? principal.role !== 'admin' : !canSee(principal, row.tenant_id))) throw notFound('webhook', id);
    return row;
  };
  return [
    route({
      method: 'post',
      path: '/webhooks',
      summary: 'Register a webhook for bill, budget and anomaly events (its signing secret is in this answer only)',
      tag: 'webhooks',
      auth: ['admin', 'tenant'],
      body: z.strictObject({
        url: z.string().max(2000),
        events: z.array(z.enum(notifiableTypes as [string, ...string[]])).min(1),
        tenant_id: tenantRef.optional().describe('a tenant key implies its own; an admin without it registers an operator webhook for every tenant'),
      }),
      responses: { 201: { description: 'Registered; keep the secret to verify signatures', schema: webhookSchema.extend({ secret: z.string() }) } },
      handle: async ({ principal, body }) => {
        const problem = urlProblem(body.url, deps.config.WEBHOOK_ALLOW_PRIVATE_ADDRESSES);
        if (problem) throw new ApiError('validation_failed', `url: ${problem}`, [{ name: 'body.url', reason: problem }]);
        const tenant = await scopedTenant(db, principal, body.tenant_id);
        const count = Number((await db('webhooks').where({ tenant_id: tenant?.id ?? null }).count<{ n: string }[]>({ n: '*' }))[0]?.n ?? 0);
        if (count >= MAX_WEBHOOKS) throw new ApiError('conflict', `at most ${MAX_WEBHOOKS} webhooks per tenant; delete one first`);
        const secret = `whsec_${randomBytes(24).toString('base64url')}`;
        return db.transaction(async (trx) => {
          const [row] = (await trx('webhooks').insert({ tenant_id: tenant?.id ?? null, url: body.url, secret, events: [...new Set(body.events)] }).returning('*')) as WebhookRow[];
          if (!row) throw new Error('webhook insert returned no row');
          await audit(trx, principal, { action: 'webhook.create', entityType: 'webhook', entityId: row.id, tenantId: row.tenant_id, details: { url: row.url, events: row.events } });
          return reply(201, { ...webhookOut(row), secret }, { 'Cache-Control': 'no-store' });
        });
      },
    }),
    route({
      method: 'get',
      path: '/webhooks',
      summary: 'Webhooks (a tenant key sees its own; never the secrets)',
      tag: 'webhooks',
      auth: ['admin', 'tenant'],
      responses: { 200: { description: 'Webhooks', schema: z.object({ items: z.array(webhookSchema) }) } },
      handle: async ({ principal }) => {
        const q = db('webhooks').orderBy('created_at');
        if (principal.role !== 'admin') void q.where({ tenant_id: principal.tenantId });
        return { items: ((await q) as WebhookRow[]).map(webhookOut) };
      },
    }),
    route({
      method: 'delete',
      path: '/webhooks/:id',
      summary: 'Remove a webhook (its delivery log goes with it)',
      tag: 'webhooks',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 204: { description: 'Removed' } },
      handle: async ({ principal, params }) => {
        const row = await visibleWebhook(principal, params.id);
        await db.transaction(async (trx) => {
          await trx('webhooks').where({ id: row.id }).delete();
          await audit(trx, principal, { action: 'webhook.delete', entityType: 'webhook', entityId: row.id, tenantId: row.tenant_id, details: { url: row.url } });
        });
        return reply(204);
      },
    }),
    route({
      method: 'get',
      path: '/webhooks/:id/deliveries',
      summary: 'The delivery log of a webhook, newest first',
      tag: 'webhooks',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'Attempts', schema: z.object({ items: z.array(deliverySchema) }) } },
      handle: async ({ principal, params }) => {
        const row = await visibleWebhook(principal, params.id);
        const rows = (await db('webhook_deliveries').where({ webhook_id: row.id }).orderBy('id', 'desc').limit(500)) as DeliveryRow[];
        return { items: rows.map(deliveryOut) };
      },
    }),
    route({
      method: 'get',
      path: '/webhooks/:id/deliveries/:deliveryId',
      summary: 'One delivery of a webhook, with the CloudEvent it sent',
      tag: 'webhooks',
      auth: ['admin', 'tenant'],
      params: deliveryParams,
      responses: {
        200: {
          description: 'The delivery and its event',
          schema: deliverySchema.extend({
            event: z.record(z.string(), z.unknown()).nullable().describe('the CloudEvent sent (structured mode; the body the signature covered); null for deliveries logged before bodies were kept'),
          }),
        },
        404: { description: 'No such webhook visible to the key, or no such delivery of it' },
      },
      handle: async ({ principal, params }) => {
        const hook = await visibleWebhook(principal, params.id);
        const stored = await storedDelivery(db, hook.id, params.deliveryId);
        if (!stored) throw notFound('delivery', params.deliveryId);
        return { ...deliveryOut(stored.delivery), event: stored.body === null ? null : (JSON.parse(stored.body) as Record<string, unknown>) };
      },
    }),
    route({
      method: 'post',
      path: '/webhooks/:id/deliveries/:deliveryId/redeliver',
      summary: 'Send a delivery’s event again, now, to the webhook’s current URL',
      description:
        'One try, with the stored body (same event id, so the receiver can dedup) and a fresh signature, through the same address checks as every delivery; logged as a new delivery with redelivery_of. Refused with 409 when the webhook already received the event, unless force=true.',
      tag: 'webhooks',
      auth: ['admin', 'tenant'],
      limit: 'expensive',
      params: deliveryParams,
      query: z.strictObject({ force: z.enum(['true', 'false']).default('false').describe('true: send even when the webhook already received the event') }),
      responses: {
        200: { description: 'Delivered: the endpoint answered 2xx; the new delivery', schema: deliverySchema },
        404: { description: 'No such webhook visible to the key, or no such delivery of it' },
        409: { description: 'The webhook already received this event (force=true sends it anyway)' },
        422: { description: 'The delivery was logged before bodies were kept: there is nothing to send' },
        502: { description: 'The endpoint failed again; the new delivery (logged) is in the problem’s `delivery` member' },
      },
      handle: async ({ principal, params, query }) => {
        const hook = await visibleWebhook(principal, params.id);
        const force = query.force === 'true';
        const result = await notifier.redeliver(hook.id, params.deliveryId, { force });
        if (result.outcome === 'not_found') throw notFound('delivery', params.deliveryId);
        if (result.outcome === 'not_stored') throw new ApiError('payload_not_stored', `delivery ${params.deliveryId} was logged before event bodies were kept; its event cannot be sent again`);
        if (result.outcome === 'already_delivered') {
          throw new ApiError('already_delivered', `webhook ${hook.id} already received event ${result.delivery.event_id} (delivery ${result.delivery.id}); add ?force=true to send it again`);
        }
        const delivery = deliveryOut(result.delivery);
        await audit(db, principal, {
          action: 'webhook.redeliver',
          entityType: 'webhook',
          entityId: hook.id,
          tenantId: hook.tenant_id,
          details: { delivery_id: params.deliveryId, new_delivery_id: delivery.id, event_source: delivery.event_source, event_id: delivery.event_id, force, outcome: result.outcome, status_code: delivery.status_code },
        });
        if (result.outcome === 'failed') {
          throw new ApiError('webhook_failed', `the webhook did not accept event ${delivery.event_id}: ${delivery.error ?? 'no answer'} (logged as delivery ${delivery.id})`, undefined, {}, { delivery });
        }
        return delivery;
      },
    }),
  ];
};
