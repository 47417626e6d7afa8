/**
 * The outbox of the events the API causes (migration 0015, src/stages/api-event-outbox.ts), over
 * real HTTP against a real PostgreSQL: the API (K_SINK: a Broker stand-in that refuses while it
 * is "down" and otherwise delivers to notifications, as the Trigger would), the notifications
 * function under faas-js-runtime, and real webhook receivers. A bill event the Broker refused is
 * kept unsent and delivered by notifications' sweep (a PingSource tick) once a minute old, to each
 * webhook once; the event row commits with the bill's status change or not at all.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudEvent } from 'cloudevents';
import { EventType } from '../src/contract/events.js';
import { billingNamespace, pingEventType, pingSourceSource } from '../src/contract/routing.js';
import { createNotifications } from '../functions/notifications/index.js';
import { draftBill, startTestApi, type TestApi } from './support/api.js';
import { startFunction, type RunningFunction } from './support/function-host.js';
import { postBinary } from './support/http.js';

interface OutboxRow {
  event_id: string;
  type: string;
  source: string;
  tenant_id: string;
  data: { bill_id: string; status: string; total: string };
  sent_at: Date | null;
  attempts: number;
  last_error: string | null;
}

interface Delivered {
  path: string;
  id: string;
  source: string;
  status: string;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function readBody(req: NodeJS.ReadableStream): Promise<string> {
  let body = '';
  for await (const chunk of req) body += (chunk as Buffer).toString('utf8');
  return body;
}

describe('the API event outbox (a bill event the Broker refused is delivered by the sweep)', function () {
  this.timeout(60_000);
  let api: TestApi;
  let notifications: RunningFunction;
  let broker: Server;
  let webhooks: Server;
  let webhookBase = '';
  /** The Broker stand-in answers 503 while this is set. */
  let brokerDown = false;
  let brokerRequests = 0;
  const delivered: Delivered[] = [];

  before(async () => {
    broker = createServer((req, res) => {
      void readBody(req).then(async (body) => {
        brokerRequests += 1;
        if (brokerDown) return void res.writeHead(503).end('down');
        // Up: what the Trigger notifications-bill-generated does with the event.
        const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('ce-') || k === 'content-type').map(([k, v]) => [k, String(v)]));
        const answer = await fetch(notifications.url, { method: 'POST', headers, body });
        await answer.arrayBuffer();
        res.writeHead(answer.ok ? 202 : 502).end();
      });
    });
    webhooks = createServer((req, res) => {
      void readBody(req).then((body) => {
        const event = JSON.parse(body) as { id: string; source: string; data: { status: string } };
        delivered.push({ path: req.url ?? '', id: event.id, source: event.source, status: event.data.status });
        res.writeHead(204).end();
      });
    });
    const brokerUrl = await listen(broker);
    webhookBase = await listen(webhooks);
    api = await startTestApi({ env: { K_SINK: `${brokerUrl}/`, WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' }, now: () => new Date('2025-11-20T12:00:00Z') });
    notifications = await startFunction('notifications', createNotifications, { DATABASE_URL: api.database.url, WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true', WEBHOOK_ATTEMPTS: '3' });
    const operator = await api.call('POST', '/webhooks', { body: { url: `${webhookBase}/operator`, events: [EventType.billGenerated] } });
    assert.equal(operator.status, 201, operator.text);
  });
  after(async () => {
    await notifications?.close();
    await api?.close();
    for (const server of [broker, webhooks]) {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }
  });

  /** A draft bill of a new tenant whose own webhook (at /<slug>) listens to bill.generated. */
  async function billWithWebhook(slug: string): Promise<{ tenantId: string; billId: string }> {
    const bill = await draftBill(api, slug);
    const key = await api.call<{ key: string }>('POST', '/api-keys', { body: { name: slug, role: 'tenant', tenant_id: bill.tenantId } });
    const hook = await api.call('POST', '/webhooks', { key: key.body.key, body: { url: `${webhookBase}/${slug}`, events: [EventType.billGenerated] } });
    assert.equal(hook.status, 201, hook.text);
    return bill;
  }

  /** The outbox rows of a bill, as a query. */
  const rowsOf = (billId: string) => api.database.db('api_event_outbox').whereRaw("data->>'bill_id' = ?", [billId]);
  const outboxRows = (billId: string): Promise<OutboxRow[]> => rowsOf(billId).orderBy('id') as Promise<OutboxRow[]>;
  /** Makes the bill's outbox rows look as if written `minutes` ago (the sweep leaves younger rows to the API). */
  const age = (billId: string, minutes: number): Promise<number> => rowsOf(billId).update({ created_at: api.database.db.raw(`now() - interval '${minutes} minutes'`) });
  /** A bill (with its tenant's webhook) finalized while the Broker refused, its event row two minutes old. */
  async function finalizedWhileBrokerDown(slug: string): Promise<string> {
    const { billId } = await billWithWebhook(slug);
    brokerDown = true;
    try {
      assert.equal((await api.call('POST', `/bills/${billId}/finalize`)).status, 200);
    } finally {
      brokerDown = false;
    }
    await age(billId, 2);
    return billId;
  }
  const deliveredOf = (eventId: string): Delivered[] => delivered.filter((d) => d.id === eventId);

  /** A tick of the PingSource api-outbox-sweep, as the Broker delivers it to notifications. */
  async function sweep(): Promise<{ sent: number; failed: number; unsent: number }> {
    const tick = new CloudEvent<unknown>({ type: pingEventType, source: pingSourceSource(billingNamespace, 'api-outbox-sweep'), data: { reason: 'outbox' } });
    const res = await postBinary(notifications.url, tick);
    assert.equal(res.status, 200, res.text);
    return (res.json as { outbox: { sent: number; failed: number; unsent: number } }).outbox;
  }

  it('a bill finalized while the Broker refuses is final, its event waits unsent, and the sweep delivers it to each webhook once and marks it sent', async () => {
    const { tenantId, billId } = await billWithWebhook('outbox-a');
    const eventId = `bill-${billId}-final`;
    brokerDown = true;
    const before = brokerRequests;
    const res = await api.call<{ status: string }>('POST', `/bills/${billId}/finalize`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'final');
    assert.equal(brokerRequests - before, 3, 'the API tried the Broker three times');
    const [row, ...others] = await outboxRows(billId);
    assert.equal(others.length, 0);
    assert.ok(row);
    assert.deepEqual(
      [row.event_id, row.type, row.source, row.tenant_id, row.data.status, row.data.total, row.sent_at],
      [eventId, EventType.billGenerated, '/faasbilling/api', tenantId, 'final', '0.20', null],
    );

    brokerDown = false;
    const young = await sweep();
    assert.equal(young.sent, 0, 'a row younger than a minute is left to the API');
    assert.equal(deliveredOf(eventId).length, 0);

    await age(billId, 2);
    const first = await sweep();
    assert.deepEqual([first.sent, first.failed, first.unsent], [1, 0, 0]);
    assert.deepEqual(
      deliveredOf(eventId).map((d) => [d.path, d.source, d.status]).sort(),
      [['/operator', '/faasbilling/api', 'final'], ['/outbox-a', '/faasbilling/api', 'final']],
    );
    const [sent] = await outboxRows(billId);
    assert.ok(sent?.sent_at instanceof Date, 'marked sent');
    assert.equal(sent.attempts, 1);

    const second = await sweep();
    assert.deepEqual([second.sent, second.failed, second.unsent], [0, 0, 0]);
    assert.equal(deliveredOf(eventId).length, 2, 'nothing sent again');
    const metrics = await (await fetch(`${notifications.url}/metrics`)).text();
    assert.match(metrics, /^faasbilling_api_event_outbox_swept_total\{outcome="sent",function="notifications"\} 1$/m);
    assert.match(metrics, /^faasbilling_api_event_outbox_unsent\{function="notifications"\} 0$/m);
  });

  it('an event the Broker accepted is marked sent at once; swept again (sent but not marked) it reaches no webhook twice', async () => {
    const { billId } = await billWithWebhook('outbox-b');
    assert.equal((await api.call('POST', `/bills/${billId}/finalize`)).status, 200);
    const paid = await api.call<{ status: string }>('POST', `/bills/${billId}/mark-paid`, { body: {} });
    assert.equal(paid.body.status, 'paid', paid.text);
    const rows = await outboxRows(billId);
    assert.deepEqual(rows.map((r) => r.event_id), [`bill-${billId}-final`, `bill-${billId}-paid`]);
    assert.ok(rows.every((r) => r.sent_at instanceof Date), 'both marked sent when the Broker accepted them');
    assert.deepEqual(deliveredOf(`bill-${billId}-paid`).map((d) => d.path).sort(), ['/operator', '/outbox-b']);

    // A crash between the Broker's answer and the mark: the sweep repeats the event.
    await api.database.db('api_event_outbox').where({ event_id: `bill-${billId}-paid` }).update({ sent_at: null });
    await age(billId, 2);
    const repeated = await sweep();
    assert.equal(repeated.sent, 1);
    assert.equal(deliveredOf(`bill-${billId}-paid`).length, 2, 'each webhook already had it');
  });

  it('keeps a row the notifications path could not handle, with its error, for the next sweep', async () => {
    const billId = await finalizedWhileBrokerDown('outbox-c');
    // Data notifications refuses (a bill.generated without its total): the delivery throws.
    const db = api.database.db;
    await rowsOf(billId).update({ data: db.raw("data - 'total'") });
    const failed = await sweep();
    assert.deepEqual([failed.sent, failed.failed, failed.unsent], [0, 1, 1]);
    const [row] = await outboxRows(billId);
    assert.equal(row?.sent_at, null);
    assert.match(row?.last_error ?? '', /not valid/);
    // Repaired, the next sweep takes it again at once (a failed try holds no lease).
    await rowsOf(billId).update({ data: db.raw("jsonb_set(data, '{total}', '\"0.20\"')") });
    const retried = await sweep();
    assert.deepEqual([retried.sent, retried.unsent], [1, 0]);
    const [done] = await outboxRows(billId);
    assert.equal(done?.attempts, 2);
    assert.equal(deliveredOf(`bill-${billId}-final`).length, 2);
  });

  it('leaves a row another sweep holds (its lease) until the lease runs out', async () => {
    const billId = await finalizedWhileBrokerDown('outbox-lease');
    const db = api.database.db;
    await rowsOf(billId).update({ claimed_until: db.raw("now() + interval '5 minutes'") });
    const held = await sweep();
    assert.equal(held.sent, 0);
    assert.equal(deliveredOf(`bill-${billId}-final`).length, 0);
    await rowsOf(billId).update({ claimed_until: db.raw("now() - interval '1 second'") });
    const expired = await sweep();
    assert.equal(expired.sent, 1);
    assert.deepEqual(deliveredOf(`bill-${billId}-final`).map((d) => d.path).sort(), ['/operator', '/outbox-lease']);
  });

  it('writes the event row in the transaction of the status change: a failed change leaves no row, a failed row leaves the bill unchanged', async () => {
    const { billId } = await draftBill(api, 'outbox-d');
    const db = api.database.db;
    // Paid in the future: refused, nothing recorded.
    assert.equal((await api.call('POST', `/bills/${billId}/finalize`)).status, 200);
    const future = await api.call('POST', `/bills/${billId}/mark-paid`, { body: { paid_at: '2026-01-01T00:00:00Z' } });
    assert.equal(future.status, 422, future.text);
    assert.deepEqual((await outboxRows(billId)).map((r) => r.event_id), [`bill-${billId}-final`]);

    // The outbox refuses the row: the bill stays final, and no audit entry is written for it.
    await db.raw(`
      CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$;
      CREATE TRIGGER refuse_outbox BEFORE INSERT ON api_event_outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox();
    `);
    try {
      const refused = await api.call('POST', `/bills/${billId}/mark-paid`, { body: {} });
      assert.equal(refused.status, 500, refused.text);
    } finally {
      await db.raw('DROP TRIGGER refuse_outbox ON api_event_outbox; DROP FUNCTION refuse_outbox();');
    }
    const bill = await api.call<{ status: string; paid_at: string | null }>('GET', `/bills/${billId}`);
    assert.deepEqual([bill.body.status, bill.body.paid_at], ['final', null]);
    assert.equal((await outboxRows(billId)).length, 1);
    const audits = (await db('audit_log').where({ entity_id: billId }).orderBy('id').pluck('action')) as string[];
    assert.deepEqual(audits, ['bill.generate', 'bill.finalize'], 'no bill.mark_paid entry');

    // Once the outbox takes rows again, the same change commits with its row.
    assert.equal((await api.call('POST', `/bills/${billId}/mark-paid`, { body: {} })).status, 200);
    assert.deepEqual((await outboxRows(billId)).map((r) => r.event_id), [`bill-${billId}-final`, `bill-${billId}-paid`]);
  });
});
