/**
 * notifications over real HTTP (faas-js-runtime, real CloudEvents) against a real PostgreSQL and
 * real webhook receivers: who gets what, signatures, retries with the delivery log, no second
 * delivery on redelivery, and the webhook API's isolation. The receivers listen on 127.0.0.1, so
 * private addresses are allowed here (they are refused by default; see the last test).
 */
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { EventType, eventSource } from '../../src/contract/events.js';
import { Notifier, isPrivateAddress, urlProblem, verifySignature, type WebhookLookup } from '../../src/stages/notify.js';
import { createLogger } from '../../src/runtime/logger.js';
import { startTestApi, type TestApi } from '../../test/support/api.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { postBinary } from '../../test/support/http.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../test/support/webhook-receiver.js';
import { createNotifications } from './index.js';

describe('notifications function (webhooks)', function () {
  this.timeout(60_000);
  let api: TestApi;
  let fn: RunningFunction;
  let receiver: WebhookReceiver;
  let base = '';
  let received: WebhookReceiver['received'] = [];
  /** Answers 500 this many more times on /flaky before answering 200. */
  let flakyFailures = 0;
  const ids: Record<string, string> = {};
  const secrets: Record<string, string> = {};

  before(async () => {
    receiver = await startWebhookReceiver((path) => {
      if (path === '/flaky' && flakyFailures > 0) {
        flakyFailures -= 1;
        return 500;
      }
      return path === '/down' ? 503 : 204;
    });
    ({ base, received } = receiver);
    api = await startTestApi({ env: { WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' } });
    fn = await startFunction('notifications', createNotifications, { DATABASE_URL: api.database.url, WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true', WEBHOOK_ATTEMPTS: '3' });
    for (const slug of ['hook-a', 'hook-b']) {
      const t = await api.call<{ id: string }>('POST', '/tenants', { body: { slug, name: slug } });
      ids[slug] = t.body.id;
      const key = await api.call<{ key: string }>('POST', '/api-keys', { body: { name: slug, role: 'tenant', tenant_id: t.body.id } });
      ids[`${slug}-key`] = key.body.key;
    }
    const register = async (name: string, url: string, events: string[], key?: string): Promise<void> => {
      const res = await api.call<{ id: string; secret: string }>('POST', '/webhooks', { body: { url, events }, ...(key ? { key } : {}) });
      assert.equal(res.status, 201, res.text);
      ids[name] = res.body.id;
      secrets[name] = res.body.secret;
    };
    await register('a', `${base}/a`, [EventType.budgetExceeded, EventType.billGenerated], ids['hook-a-key']);
    await register('b', `${base}/b`, [EventType.budgetExceeded], ids['hook-b-key']);
    await register('operator', `${base}/operator`, [EventType.budgetExceeded]);
  });
  after(async () => {
    await fn?.close();
    await api?.close();
    await receiver?.close();
  });

  const alert = (tenant: string, threshold: number) => ({
    alert_id: String(threshold),
    tenant_id: ids[tenant] ?? '',
    budget_id: '00000000-0000-4000-8000-000000000000',
    threshold,
    amount: '4.00',
    limit: '5.00',
    currency: 'USD',
    period_start: '2025-10-01T00:00:00Z',
  });
  const budgetEvent = (): CloudEvent<unknown> =>
    new CloudEvent<unknown>({ type: EventType.budgetExceeded, source: eventSource('price'), id: 'budget-1', data: { alerts: [alert('hook-a', 80), alert('hook-b', 50)] } });

  it('sends each tenant’s webhook only its own alerts, the operator all of them, each signed', async () => {
    const res = await postBinary(fn.url, budgetEvent());
    assert.equal(res.status, 200, res.text);
    const byPath = new Map(received.map((r) => [r.path, r]));
    // Each alert is its own delivery (under its own id): the operator gets two.
    const alertsOf = (path: string): number[] =>
      received.filter((r) => r.path === path).flatMap((r) => (JSON.parse(r.body) as { data: { alerts: { threshold: number }[] } }).data.alerts.map((a) => a.threshold));
    assert.deepEqual(alertsOf('/a'), [80]);
    assert.deepEqual(alertsOf('/b'), [50]);
    assert.deepEqual(alertsOf('/operator').sort(), [50, 80]);
    const now = Math.floor(Date.now() / 1000);
    for (const [path, name] of [['/a', 'a'], ['/b', 'b'], ['/operator', 'operator']] as const) {
      const r = byPath.get(path);
      assert.ok(r);
      assert.ok(verifySignature(secrets[name] ?? '', r.signature, r.body, now), `${path} signature`);
      assert.ok(!verifySignature('whsec_other', r.signature, r.body, now), 'another secret does not verify');
      assert.ok(!verifySignature(secrets[name] ?? '', r.signature, `${r.body} `, now), 'a changed body does not verify');
    }
  });

  it('does not deliver the same event twice when the Broker redelivers it', async () => {
    const before = received.length;
    const res = await postBinary(fn.url, budgetEvent());
    assert.equal(res.status, 200);
    assert.deepEqual((res.json as { deliveries: { outcome: string }[] }).deliveries.map((d) => d.outcome), ['already_delivered', 'already_delivered', 'already_delivered', 'already_delivered']);
    assert.equal(received.length, before);
  });

  it('retries a failing webhook and logs every attempt; a webhook that stays down is logged as failed', async () => {
    const flaky = await api.call<{ id: string }>('POST', '/webhooks', { key: ids['hook-a-key'] ?? '', body: { url: `${base}/flaky`, events: [EventType.billGenerated] } });
    const down = await api.call<{ id: string }>('POST', '/webhooks', { body: { url: `${base}/down`, events: [EventType.billGenerated] } });
    flakyFailures = 2;
    const bill = new CloudEvent<unknown>({
      type: EventType.billGenerated,
      source: eventSource('price'),
      id: 'bill-1',
      data: { bill_id: 'b-1', tenant_id: ids['hook-a'], status: 'final', total: '4.00', currency: 'USD', period_start: '2025-10-01T00:00:00Z', period_end: '2025-11-01T00:00:00Z' },
    });
    const res = await postBinary(fn.url, bill);
    assert.equal(res.status, 200, res.text);
    const outcomes = new Map((res.json as { deliveries: { webhook_id: string; outcome: string; attempts: number }[] }).deliveries.map((d) => [d.webhook_id, d]));
    assert.deepEqual([outcomes.get(flaky.body.id)?.outcome, outcomes.get(flaky.body.id)?.attempts], ['delivered', 3]);
    assert.deepEqual([outcomes.get(down.body.id)?.outcome, outcomes.get(down.body.id)?.attempts], ['failed', 3]);
    assert.equal(outcomes.get(ids.a ?? '')?.outcome, 'delivered');
    assert.equal(outcomes.has(ids.b ?? ''), false, 'B did not subscribe to bills, and the bill is A’s');
    const log = await api.call<{ items: { attempt: number; status_code: number | null; succeeded: boolean }[] }>('GET', `/webhooks/${flaky.body.id}/deliveries`, { key: ids['hook-a-key'] ?? '' });
    assert.deepEqual(log.body.items.map((d) => [d.attempt, d.status_code, d.succeeded]), [[3, 204, true], [2, 500, false], [1, 500, false]]);
    // Another tenant's key sees neither the webhook nor its log.
    assert.equal((await api.call('GET', `/webhooks/${flaky.body.id}/deliveries`, { key: ids['hook-b-key'] ?? '' })).status, 404);
    assert.equal((await api.call('DELETE', `/webhooks/${flaky.body.id}`, { key: ids['hook-b-key'] ?? '' })).status, 404);
    const listed = await api.call<{ items: { id: string; secret?: string }[] }>('GET', '/webhooks', { key: ids['hook-b-key'] ?? '' });
    assert.deepEqual(listed.body.items.map((w) => w.id), [ids.b]);
    assert.ok(listed.body.items.every((w) => w.secret === undefined), 'secrets are never listed');
  });

  it('a close of every tenant reaches each tenant’s bill webhooks as that bill’s bill.generated, once', async () => {
    const before = received.filter((r) => r.path === '/a').length;
    const bill = (tenant: string, id: string) => ({
      bill_id: id,
      tenant_id: ids[tenant] ?? '',
      status: 'final',
      total: '1.00',
      currency: 'USD',
      period_start: '2025-09-01T00:00:00Z',
      period_end: '2025-10-01T00:00:00Z',
    });
    const closed = new CloudEvent<unknown>({ type: EventType.billsClosed, source: eventSource('price'), id: 'close-1', data: { bills: [bill('hook-a', 'b-a'), bill('hook-b', 'b-b')] } });
    const res = await postBinary(fn.url, closed);
    assert.equal(res.status, 200, res.text);
    const toA = received.filter((r) => r.path === '/a').slice(before);
    assert.equal(toA.length, 1, 'A subscribed to bill.generated and gets its own bill only');
    const delivered = JSON.parse(toA[0]?.body ?? '{}') as { type: string; id: string; data: { bill_id: string } };
    assert.deepEqual([delivered.type, delivered.id, delivered.data.bill_id], [EventType.billGenerated, 'bill-b-a-final', 'b-a']);
    // The same bill announced again on its own (a single-tenant close) is not sent twice.
    const single = new CloudEvent<unknown>({ type: EventType.billGenerated, source: eventSource('price'), id: 'bill-b-a-final', data: bill('hook-a', 'b-a') });
    await postBinary(fn.url, single);
    assert.equal(received.filter((r) => r.path === '/a').length, before + 1);
  });

  it('marks the budget alerts it handled (the outbox the price stage repeats from)', async () => {
    const db = api.database.db;
    const [budget] = await db('budgets').insert({ tenant_id: ids['hook-a'], amount: '5' }).returning<{ id: string }[]>('id');
    const [row] = await db('budget_alerts')
      .insert({ budget_id: budget?.id, tenant_id: ids['hook-a'], period_start: '2025-10-01T00:00:00Z', threshold: 80, amount: '4', limit_amount: '5', currency: 'USD' })
      .returning<{ id: string }[]>('id');
    const event = new CloudEvent<unknown>({ type: EventType.budgetExceeded, source: eventSource('price'), data: { alerts: [{ ...alert('hook-a', 80), alert_id: String(row?.id) }] } });
    assert.equal((await postBinary(fn.url, event)).status, 200);
    const stored = (await db('budget_alerts').where({ id: row?.id }).first()) as { notified_at: Date | null };
    assert.ok(stored.notified_at instanceof Date);
  });

  it('delivers each anomaly of an anomaly.detected event once under its own id to the tenant’s and the operator’s webhooks, then marks it handled', async () => {
    const db = api.database.db;
    const register = async (path: string, key?: string): Promise<void> => {
      const res = await api.call('POST', '/webhooks', { body: { url: `${base}${path}`, events: [EventType.anomalyDetected] }, ...(key ? { key } : {}) });
      assert.equal(res.status, 201, res.text);
    };
    await register('/anomaly-a', ids['hook-a-key']);
    await register('/anomaly-operator');
    const anomaly = (tenant: string, service: string, metric: string) => ({
      tenant_id: ids[tenant] ?? '',
      service,
      metric,
      since: '2025-10-02T08:00:00.000Z',
      until: '2025-10-02T12:00:00.000Z',
      direction: 'spike',
      score: 9.5,
      expected: 100,
      observed: 400,
      cost_impact: '0.0600',
      currency: 'USD',
      explanation: `${metric} of ${service} rose`,
    });
    const rows = await db('anomalies')
      .insert([anomaly('hook-a', 'checkout', 'invocations'), anomaly('hook-a', 'checkout', 'errors'), anomaly('hook-b', 'search', 'invocations')])
      .returning<{ id: string; tenant_id: string; service: string; metric: string }[]>(['id', 'tenant_id', 'service', 'metric']);
    const event = new CloudEvent<unknown>({
      type: EventType.anomalyDetected,
      source: eventSource('forecast'),
      data: { anomalies: rows.map((r) => ({ ...anomaly(r.tenant_id === ids['hook-a'] ? 'hook-a' : 'hook-b', r.service, r.metric), cost_impact: '0.06', anomaly_id: String(r.id) })) },
    });
    const delivered = (path: string): { id: string; anomalies: string[] }[] =>
      received
        .filter((r) => r.path === path)
        .map((r) => JSON.parse(r.body) as { id: string; data: { anomalies: { anomaly_id: string }[] } })
        .map((b) => ({ id: b.id, anomalies: b.data.anomalies.map((a) => a.anomaly_id) }));
    const expected = (tenantRows: typeof rows): { id: string; anomalies: string[] }[] => tenantRows.map((r) => ({ id: `anomaly-${r.id}`, anomalies: [String(r.id)] }));
    const byId = (x: { id: string }, y: { id: string }): number => x.id.localeCompare(y.id);

    const first = await postBinary(fn.url, event);
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(delivered('/anomaly-a').sort(byId), expected(rows.filter((r) => r.tenant_id === ids['hook-a'])).sort(byId));
    assert.deepEqual(delivered('/anomaly-operator').sort(byId), expected(rows).sort(byId));
    const stored = (await db('anomalies').whereIn('id', rows.map((r) => r.id))) as { notified_at: Date | null }[];
    assert.equal(stored.length, 3);
    for (const row of stored) assert.ok(row.notified_at instanceof Date);

    // The same anomalies announced again (a redelivery, or a run that repeated them) reach no webhook again.
    const again = await postBinary(fn.url, new CloudEvent<unknown>({ type: EventType.anomalyDetected, source: eventSource('forecast'), data: event.data }));
    assert.equal(again.status, 200, again.text);
    assert.deepEqual([...new Set((again.json as { deliveries: { outcome: string }[] }).deliveries.map((d) => d.outcome))], ['already_delivered']);
    assert.equal(delivered('/anomaly-a').length, 2);
    assert.equal(delivered('/anomaly-operator').length, 3);
  });

  it('refuses private and loopback targets unless allowed, and non-http URLs always', () => {
    for (const url of [
      'http://127.0.0.1:9/x',
      'http://localhost/x',
      'http://localhost./x',
      'http://10.1.2.3/x',
      'http://[::1]/x',
      'http://169.254.169.254/latest',
      'http://[::ffff:127.0.0.1]/x',
      'http://[::ffff:a9fe:a9fe]/x',
      'http://[64:ff9b::a00:1]/x',
      'http://[fec0::1]/x',
      'http://198.18.0.1/x',
      'http://2130706433/x',
      'http://0.0.0.0/x',
    ]) {
      assert.match(urlProblem(url, false) ?? '', /private or loopback/, url);
      assert.equal(urlProblem(url, true), null, url);
    }
    assert.match(urlProblem('ftp://example.com/x', true) ?? '', /only http/);
    assert.match(urlProblem('https://user:pw@example.com/x', false) ?? '', /no credentials/);
    assert.equal(urlProblem('https://hooks.example.com/billing', false), null);
    assert.equal(urlProblem('https://[2606:4700:4700::1111]/hook', false), null);
    assert.equal(isPrivateAddress('8.8.8.8'), false);
    assert.equal(isPrivateAddress('::ffff:192.168.1.1'), true);
  });

  it('checks the addresses it connects to: one resolution per delivery, so DNS rebinding cannot reach a private address', async () => {
    const db = api.database.db;
    const { port } = receiver;
    const inserted: { id: string }[] = await db('webhooks')
      .insert({ tenant_id: null, url: `http://rebind.test:${port}/rebind`, secret: 's'.repeat(32), events: [EventType.billGenerated], active: true })
      .returning('id');
    const hook = inserted[0];
    // First answer public (a documentation address), every later one loopback: a check-then-fetch
    // client would pass the check and then connect to 127.0.0.1.
    let lookups = 0;
    const rebinding: WebhookLookup = (_host, callback) => {
      lookups += 1;
      callback(null, [{ address: lookups === 1 ? '203.0.113.7' : '127.0.0.1', family: 4 }]);
    };
    const notifier = (lookup: WebhookLookup) => new Notifier({ db, logger: createLogger('test', 'silent'), attempts: 1, timeoutMs: 300, allowPrivate: false, backoffMs: 1, lookup });
    const bill = { tenant_id: ids['hook-a'] ?? '', bill_id: '11111111-1111-4111-8111-111111111111', status: 'final', period_start: '2025-10-01T00:00:00.000Z', period_end: '2025-11-01T00:00:00.000Z', total: '1.00', currency: 'USD' };
    const before = received.filter((r) => r.path === '/rebind').length;
    const out = await notifier(rebinding).notify(new CloudEvent<unknown>({ type: EventType.billGenerated, source: '/test/rebind', id: 'rebind-1', data: bill }));
    const mine = out.find((o) => o.webhook_id === hook?.id);
    assert.equal(mine?.outcome, 'failed');
    assert.equal(lookups, 1, 'resolved once, at connect time');
    assert.equal(received.filter((r) => r.path === '/rebind').length, before, 'nothing reached the loopback receiver');

    // A name with any private address is refused before a connection, and the log says why.
    const mixed: WebhookLookup = (_host, callback) => callback(null, [{ address: '198.51.100.4', family: 4 }, { address: '10.0.0.5', family: 4 }]);
    await notifier(mixed).notify(new CloudEvent<unknown>({ type: EventType.billGenerated, source: '/test/rebind', id: 'rebind-2', data: bill }));
    const logged = (await db('webhook_deliveries').where({ webhook_id: hook?.id, event_id: 'rebind-2' }).first()) as { error: string; succeeded: boolean };
    assert.equal(logged.succeeded, false);
    assert.match(logged.error, /refused: rebind\.test resolves to a private address \(10\.0\.0\.5\)/);
    await db('webhooks').where({ id: hook?.id }).update({ active: false });
  });

  it('answers events it does not handle with a 422 problem', async () => {
    const res = await postBinary(fn.url, new CloudEvent<unknown>({ type: 'faasbilling.nothing.v1', source: '/test', data: {} }));
    assert.equal(res.status, 422);
    const bad = await postBinary(fn.url, new CloudEvent<unknown>({ type: EventType.budgetExceeded, source: '/test', data: { alerts: [] } }));
    assert.equal(bad.status, 422);
    // An anomaly.detected event carries a list of anomalies; the single anomaly of its first version is refused.
    const single = { tenant_id: ids['hook-a'], service: 'checkout', metric: 'errors', score: 9, expected: 1, observed: 150, since: '2025-10-02T08:00:00Z' };
    const old = await postBinary(fn.url, new CloudEvent<unknown>({ type: EventType.anomalyDetected, source: '/test', data: single }));
    assert.equal(old.status, 422, old.text);
  });
});
