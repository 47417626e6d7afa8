/**
 * Redelivering a webhook delivery (POST /webhooks/:id/deliveries/:deliveryId/redeliver) against a
 * real PostgreSQL, the real notifications function and a real HTTP receiver that is down, then
 * back: the body notifications kept is sent again with the same event id and a fresh signature,
 * logged as a redelivery and audited; refused once delivered (unless forced), for another
 * tenant's key, and for deliveries logged before bodies were kept.
 */
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { EventType, eventSource } from '../../src/contract/events.js';
import { createLogger } from '../../src/runtime/logger.js';
import { Notifier, verifySignature, type DeliveryRow, type WebhookLookup } from '../../src/stages/notify.js';
import { startTestApi, type ApiResponse, type TestApi } from '../../test/support/api.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { postBinary } from '../../test/support/http.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../test/support/webhook-receiver.js';
import { createNotifications } from './index.js';

/** A delivery as the API answers it. */
type Delivery = Omit<DeliveryRow, 'webhook_id' | 'at'> & { at: string };
interface Problem {
  type: string;
  status: number;
  detail: string;
  delivery?: Delivery;
}

describe('webhook redelivery', function () {
  this.timeout(60_000);
  let api: TestApi;
  let fn: RunningFunction;
  let receiver: WebhookReceiver;
  /** Whether the receiver answers 503 on /hook. */
  let down = true;
  let keyA = '';
  let keyB = '';
  let tenantA = '';
  let hookId = '';
  let secret = '';
  let failedId = '';

  before(async () => {
    receiver = await startWebhookReceiver((path) => (path === '/hook' && down ? 503 : 204));
    api = await startTestApi({ env: { WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' } });
    fn = await startFunction('notifications', createNotifications, { DATABASE_URL: api.database.url, WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true', WEBHOOK_ATTEMPTS: '3' });
    const keys: string[] = [];
    for (const slug of ['redeliver-a', 'redeliver-b']) {
      const tenant = await api.call<{ id: string }>('POST', '/tenants', { body: { slug, name: slug } });
      if (slug === 'redeliver-a') tenantA = tenant.body.id;
      keys.push((await api.call<{ key: string }>('POST', '/api-keys', { body: { name: slug, role: 'tenant', tenant_id: tenant.body.id } })).body.key);
    }
    [keyA = '', keyB = ''] = keys;
    const hook = await api.call<{ id: string; secret: string }>('POST', '/webhooks', { key: keyA, body: { url: `${receiver.base}/hook`, events: [EventType.billGenerated] } });
    assert.equal(hook.status, 201, hook.text);
    ({ id: hookId, secret } = hook.body);
  });
  after(async () => {
    await fn?.close();
    await api?.close();
    await receiver?.close();
  });

  const toHook = (): WebhookReceiver['received'] => receiver.received.filter((r) => r.path === '/hook');
  const redeliver = <T = Delivery>(deliveryId: string, options: { key?: string; force?: boolean; hook?: string } = {}): Promise<ApiResponse<T>> =>
    api.call<T>('POST', `/webhooks/${options.hook ?? hookId}/deliveries/${deliveryId}/redeliver${options.force ? '?force=true' : ''}`, { key: options.key ?? keyA });
  const deliveries = async (): Promise<Delivery[]> => (await api.call<{ items: Delivery[] }>('GET', `/webhooks/${hookId}/deliveries`, { key: keyA })).body.items;
  const bill = {
    bill_id: 'b-redeliver',
    tenant_id: '',
    status: 'final',
    total: '12.34',
    currency: 'USD',
    period_start: '2025-10-01T00:00:00Z',
    period_end: '2025-11-01T00:00:00Z',
  };
  /** Logs a failed delivery of `eventId` to `webhookId` directly, as notifications would have. */
  const loggedFailure = async (webhookId: string, eventSourceText: string, eventId: string): Promise<string> => {
    const [row] = await api.database.db('webhook_deliveries')
      .insert({ webhook_id: webhookId, event_source: eventSourceText, event_id: eventId, event_type: EventType.billGenerated, attempt: 1, status_code: 503, error: 'HTTP 503', succeeded: false, duration_ms: 3 })
      .returning<{ id: string }[]>('id');
    return row?.id ?? '';
  };
  const billEvent = (): CloudEvent<unknown> => new CloudEvent<unknown>({ type: EventType.billGenerated, source: eventSource('price'), id: 'bill-b-redeliver-final', data: { ...bill, tenant_id: tenantA } });

  it('an endpoint down through every retry leaves failed deliveries that keep the event’s body, once', async () => {
    const res = await postBinary(fn.url, billEvent());
    assert.equal(res.status, 200, res.text);
    assert.deepEqual((res.json as { deliveries: { outcome: string; attempts: number }[] }).deliveries.map((d) => [d.outcome, d.attempts]), [['failed', 3]]);
    const log = await deliveries();
    assert.deepEqual(log.map((d) => [d.attempt, d.status_code, d.succeeded, d.redelivery_of]), [[3, 503, false, null], [2, 503, false, null], [1, 503, false, null]]);
    failedId = log[0]?.id ?? '';
    const sent = toHook();
    assert.equal(sent.length, 3);
    // What the log shows is what was sent, byte for byte.
    const one = await api.call<Delivery & { event: Record<string, unknown> | null }>('GET', `/webhooks/${hookId}/deliveries/${failedId}`, { key: keyA });
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.body.event, JSON.parse(sent[0]?.body ?? 'null'));
    assert.equal(one.body.event?.id, 'bill-b-redeliver-final');
    // One body per (webhook, event), not one per try.
    const stored = await api.database.db('webhook_payloads').where({ webhook_id: hookId });
    assert.equal(stored.length, 1);
  });

  it('redelivers when the endpoint is back: same body and event id, a fresh valid signature, logged as a redelivery and audited', async () => {
    down = false;
    const before = toHook().length;
    const res = await redeliver(failedId);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual([res.body.succeeded, res.body.status_code, res.body.attempt, res.body.redelivery_of, res.body.event_id], [true, 204, 1, failedId, 'bill-b-redeliver-final']);
    const sent = toHook();
    assert.equal(sent.length, before + 1);
    const [first, last] = [sent[0], sent.at(-1)];
    assert.ok(first && last);
    assert.equal(last.body, first.body, 'the body the failed tries carried');
    assert.equal((JSON.parse(last.body) as { id: string }).id, 'bill-b-redeliver-final');
    assert.equal(last.webhookId, hookId);
    assert.ok(verifySignature(secret, last.signature, last.body, Math.floor(Date.now() / 1000)), 'signed with the webhook’s secret');
    assert.ok(!verifySignature('whsec_other', last.signature, last.body, Math.floor(Date.now() / 1000)));
    assert.equal((await deliveries())[0]?.id, res.body.id, 'newest first in the log');
    const audit = (await api.database.db('audit_log').where({ action: 'webhook.redeliver' })) as { entity_id: string; tenant_id: string; details: Record<string, unknown> }[];
    assert.equal(audit.length, 1);
    assert.deepEqual([audit[0]?.entity_id, audit[0]?.tenant_id], [hookId, tenantA]);
    assert.deepEqual(audit[0]?.details, { delivery_id: failedId, new_delivery_id: res.body.id, event_source: eventSource('price'), event_id: 'bill-b-redeliver-final', force: false, outcome: 'delivered', status_code: 204 });
    // The Broker repeating the event now finds it delivered.
    const again = await postBinary(fn.url, billEvent());
    assert.deepEqual((again.json as { deliveries: { outcome: string }[] }).deliveries.map((d) => d.outcome), ['already_delivered']);
    assert.equal(toHook().length, before + 1);
  });

  it('refuses a second redelivery of a delivered event with 409, and sends it again with force=true', async () => {
    const before = toHook().length;
    const refused = await redeliver<Problem>(failedId);
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(refused.body.type, 'urn:faasbilling:problem:already_delivered');
    assert.equal(toHook().length, before, 'nothing sent');
    const forced = await redeliver(failedId, { force: true });
    assert.equal(forced.status, 200, forced.text);
    assert.equal(forced.body.succeeded, true);
    assert.equal(toHook().length, before + 1);
    const succeeded = (await deliveries()).filter((d) => d.succeeded);
    assert.equal(succeeded.length, 2, 'a forced redelivery is logged beside the first success');
    const audit = (await api.database.db('audit_log').where({ action: 'webhook.redeliver' }).orderBy('id')) as { details: { force: boolean } }[];
    assert.deepEqual(audit.map((a) => a.details.force), [false, true], 'a refused redelivery is not audited');
  });

  it('answers 502 with the logged delivery when the endpoint fails again', async () => {
    down = true;
    const res = await redeliver<Problem>(failedId, { force: true });
    down = false;
    assert.equal(res.status, 502, res.text);
    assert.equal(res.body.type, 'urn:faasbilling:problem:webhook_failed');
    assert.match(res.body.detail, /HTTP 503/);
    assert.deepEqual([res.body.delivery?.succeeded, res.body.delivery?.status_code, res.body.delivery?.redelivery_of], [false, 503, failedId]);
    assert.equal((await deliveries())[0]?.id, res.body.delivery?.id);
  });

  it('is tenant-scoped: another tenant’s key gets 404, an admin may redeliver any webhook’s delivery', async () => {
    const before = toHook().length;
    assert.equal((await redeliver(failedId, { key: keyB, force: true })).status, 404);
    assert.equal((await api.call('GET', `/webhooks/${hookId}/deliveries/${failedId}`, { key: keyB })).status, 404);
    assert.equal(toHook().length, before);
    // Unknown, malformed, or another webhook's delivery under this webhook: 404 alike.
    const other = await api.call<{ id: string }>('POST', '/webhooks', { key: keyB, body: { url: `${receiver.base}/other`, events: [EventType.billGenerated] } });
    for (const [hook, id, key] of [
      [hookId, '999999999', keyA],
      [hookId, 'abc', keyA],
      [other.body.id, failedId, keyB],
    ] as const) {
      const res = await redeliver<Problem>(id, { hook, key, force: true });
      assert.equal(res.status, 404, `${hook}/${id}: ${res.text}`);
      assert.equal(res.body.type, 'urn:faasbilling:problem:not_found');
    }
    const admin = await redeliver(failedId, { key: api.adminKey, force: true });
    assert.equal(admin.status, 200, admin.text);
    assert.equal(toHook().length, before + 1);
  });

  it('answers 422 for a delivery logged before bodies were kept, and shows it without an event', async () => {
    // As migration 0016 left a delivery logged before it: no body in webhook_payloads.
    const oldId = await loggedFailure(hookId, eventSource('price'), 'bill-old-final');
    const before = toHook().length;
    const res = await redeliver<Problem>(oldId);
    assert.equal(res.status, 422, res.text);
    assert.equal(res.body.type, 'urn:faasbilling:problem:payload_not_stored');
    assert.equal(toHook().length, before);
    const shown = await api.call<{ event: unknown; event_id: string }>('GET', `/webhooks/${hookId}/deliveries/${oldId}`, { key: keyA });
    assert.deepEqual([shown.status, shown.body.event_id, shown.body.event], [200, 'bill-old-final', null]);
  });

  it('checks the addresses it connects to, like every delivery: a name rebound to loopback is refused and logged', async () => {
    const db = api.database.db;
    const [hook] = await db('webhooks')
      .insert({ tenant_id: tenantA, url: `http://rebind.test:${receiver.port}/rebound`, secret: 's'.repeat(32), events: [EventType.billGenerated] })
      .returning<{ id: string }[]>('id');
    const body = JSON.stringify({ specversion: '1.0', id: 'bill-rebind-final', source: '/test', type: EventType.billGenerated, datacontenttype: 'application/json', data: bill });
    await db('webhook_payloads').insert({ webhook_id: hook?.id, event_source: '/test', event_id: 'bill-rebind-final', event_type: EventType.billGenerated, body });
    const failed = await loggedFailure(hook?.id ?? '', '/test', 'bill-rebind-final');
    const loopback: WebhookLookup = (_host, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }]);
    const notifier = new Notifier({ db, logger: createLogger('test', 'silent'), attempts: 3, timeoutMs: 300, allowPrivate: false, lookup: loopback });
    const result = await notifier.redeliver(hook?.id ?? '', failed, { force: false });
    assert.equal(result.outcome, 'failed');
    assert.ok('delivery' in result);
    assert.match(result.delivery.error ?? '', /refused: rebind\.test resolves to a private address \(127\.0\.0\.1\)/);
    assert.equal(receiver.received.filter((r) => r.path === '/rebound').length, 0, 'nothing reached the loopback receiver');
  });
});
