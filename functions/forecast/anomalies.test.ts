/**
 * Anomalies against a real database and the forecast function over real HTTP: four weeks of hourly
 * usage_aggregate rows for two services, one with an injected incident in the last day (invocations
 * four times their usual level, errors, a slower p95). The scanner finds what was injected and
 * nothing on the plain service. A tick replies faasbilling.anomaly.detected.v1 listing every anomaly
 * of the run; with the notifications function and real webhook receivers, each anomaly reaches a
 * webhook once, an anomaly not yet handled is repeated by the next tick, and a handled one is not.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudEvent } from 'cloudevents';
import { EventType, anomalyDetectedData, anomalyFinding, eventSource, type AnomalyAlert } from '../../src/contract/events.js';
import { randomSource } from '../../src/core/forecast/synthetic.js';
import { AnomalyScanner, type ServiceAnomaly } from '../../src/stages/anomalies.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { postBinary, type Reply } from '../../test/support/http.js';
import { createNotifications } from '../notifications/index.js';
import { createForecast } from './index.js';

const HOUR = 3_600_000;
const HOURS = 4 * 168 + 24;
/** The incident: hours [end − 8 h, end − 4 h). */
const INCIDENT_FROM = 8;
const INCIDENT_TO = 4;

describe('anomaly detection of a tenant’s services', function () {
  this.timeout(120_000);
  let database: TestDatabase;
  let fn: RunningFunction;
  let notifications: RunningFunction;
  let receiver: Server;
  /** The event ids each webhook path received, in order. */
  const received: { path: string; id: string; anomalyIds: string[] }[] = [];
  let tenantId = '';
  const end = Math.floor(Date.now() / HOUR) * HOUR;
  let anomalies: ServiceAnomaly[];

  async function insertService(name: string, seed: number, incident: boolean): Promise<void> {
    const [service] = await database.db('services').insert({ tenant_id: tenantId, name }).returning<{ id: string }[]>('id');
    assert.ok(service);
    const [revision] = await database.db('revisions').insert({ service_id: service.id, name: `${name}-00001` }).returning<{ id: string }[]>('id');
    assert.ok(revision);
    const random = randomSource(seed);
    const rows = Array.from({ length: HOURS }, (_, i) => {
      const start = end - (HOURS - i) * HOUR;
      const hour = new Date(start).getUTCHours();
      const inIncident = incident && start >= end - INCIDENT_FROM * HOUR && start < end - INCIDENT_TO * HOUR;
      const usual = 600 + 300 * Math.sin((2 * Math.PI * hour) / 24) + 20 * random.normal();
      const invocations = Math.round(usual * (inIncident ? 4 : 1));
      return {
        window_start: new Date(start).toISOString(),
        window_end: new Date(start + HOUR).toISOString(),
        window_size: '1h',
        tenant_id: tenantId,
        service_id: service.id,
        revision_id: revision.id,
        invocations,
        events: invocations,
        billed_mb_ms: (invocations * 25_600).toFixed(3),
        mb_ms: (invocations * 25_600).toFixed(3),
        cold_starts: Math.floor(invocations / 200),
        total_cpu_ms: (invocations * 30).toFixed(3),
        errors: inIncident ? 150 + Math.round(5 * random.uniform()) : Math.round(2 * random.uniform()),
        p95_duration_ms: (inIncident ? 900 : 200 + 10 * random.normal()).toFixed(3),
        max_memory_mb: (250 + 3 * random.normal()).toFixed(3),
      };
    });
    for (let i = 0; i < rows.length; i += 500) await database.db('usage_aggregate').insert(rows.slice(i, i + 500));
  }

  before(async () => {
    database = await freshDatabase();
    const [tenant] = await database.db('tenants').insert({ slug: 'anomalies', name: 'anomalies', timezone: 'UTC', currency: 'USD' }).returning<{ id: string }[]>('id');
    assert.ok(tenant);
    tenantId = tenant.id;
    const [plan] = await database
      .db('pricing_plans')
      .insert({ name: 'anomaly-test', currency: 'USD', price_per_invocation: '0.0002', price_per_mb_ms: '0.0000000162760', price_per_cold_start: '0', price_per_cpu_ms: '0' })
      .returning<{ id: string }[]>('id');
    assert.ok(plan);
    await database.db('tenant_plan_assignments').insert({ tenant_id: tenantId, plan_id: plan.id, effective_from: '2020-01-01T00:00:00Z' });
    await insertService('checkout', 1, true);
    await insertService('catalog', 2, false);
    anomalies = await new AnomalyScanner(database.db).scan(tenantId, { at: new Date(end) });
    fn = await startFunction('forecast', createForecast, { DATABASE_URL: database.url });
    notifications = await startFunction('notifications', createNotifications, { DATABASE_URL: database.url, WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' });
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const event = JSON.parse(body) as { id: string; data: { anomalies: AnomalyAlert[] } };
        received.push({ path: req.url ?? '', id: event.id, anomalyIds: event.data.anomalies.map((a) => a.anomaly_id) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const [other] = await database.db('tenants').insert({ slug: 'quiet', name: 'quiet', timezone: 'UTC', currency: 'USD' }).returning<{ id: string }[]>('id');
    const hook = (tenant: string | null, path: string) => ({ tenant_id: tenant, url: `${base}${path}`, secret: 'whsec_test', events: [EventType.anomalyDetected] });
    await database.db('webhooks').insert([hook(tenantId, '/tenant'), hook(null, '/operator'), hook(other?.id ?? null, '/other-tenant')]);
  });

  after(async () => {
    await fn?.close();
    await notifications?.close();
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
    await database.drop();
  });

  it('finds the incident in invocations, errors, p95 duration and cost, from its first hour', () => {
    const metrics = anomalies.filter((a) => a.service === 'checkout').map((a) => a.metric);
    assert.deepEqual([...metrics].sort(), ['cost', 'duration_p95_ms', 'errors', 'invocations'], JSON.stringify(anomalies, null, 1));
    for (const a of anomalies) {
      assert.equal(a.since, new Date(end - INCIDENT_FROM * HOUR).toISOString(), `${a.metric} since`);
      assert.equal(a.until, new Date(end - INCIDENT_TO * HOUR).toISOString(), `${a.metric} until`);
      assert.equal(a.direction, 'spike');
      assert.ok(a.observed > a.expected && a.score > 4, JSON.stringify(a));
    }
  });

  it('raises nothing on the service that kept its pattern, nor on memory that did not change', () => {
    assert.deepEqual(
      anomalies.filter((a) => a.service === 'catalog' || a.metric === 'memory_mb'),
      [],
    );
  });

  it('explains each anomaly: expected vs observed, since when, and the cost impact in the plan currency', () => {
    const invocations = anomalies.find((a) => a.metric === 'invocations');
    assert.ok(invocations);
    // Four hours at four times the usual: the excess is about three times what was expected.
    assert.ok(invocations.observed / invocations.expected > 3 && invocations.observed / invocations.expected < 5, JSON.stringify(invocations));
    assert.equal(invocations.currency, 'USD');
    assert.match(invocations.cost_impact, /^\d+\.\d{2}$/);
    assert.ok(Number(invocations.cost_impact) > 0);
    assert.match(invocations.explanation, /invocations of checkout rose/);
    // The p95 is a level, not a total: its figures are per hour.
    const p95 = anomalies.find((a) => a.metric === 'duration_p95_ms');
    assert.ok(p95 && Math.abs(p95.observed - 900) < 1e-9, JSON.stringify(p95));
    // Every anomaly is valid event data.
    for (const a of anomalies) anomalyFinding.parse(a);
  });

  it('lists the costliest anomaly first', () => {
    const impacts = anomalies.map((a) => Math.abs(Number(a.cost_impact)));
    assert.deepEqual(impacts, [...impacts].sort((x, y) => y - x));
  });

  const tick = (): Promise<Reply> => postBinary(fn.url, new CloudEvent({ type: EventType.forecastTick, source: eventSource('scheduler'), data: { horizons: ['1d'] } }));
  /** The anomaly.detected reply of a tick, as the Broker would deliver it to notifications. */
  const replyEvent = (reply: Reply): CloudEvent<unknown> => {
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.headers.get('ce-type'), EventType.anomalyDetected, reply.text);
    assert.equal(reply.headers.get('ce-source'), eventSource('forecast'));
    return new CloudEvent<unknown>({ type: EventType.anomalyDetected, source: eventSource('forecast'), id: reply.headers.get('ce-id') ?? '', data: anomalyDetectedData.parse(reply.json) });
  };
  const anomaliesOf = (event: CloudEvent<unknown>): AnomalyAlert[] => anomalyDetectedData.parse(event.data).anomalies;
  const storedCount = async (): Promise<number> => Number((await database.db('anomalies').where({ tenant_id: tenantId }).count<{ n: string }[]>({ n: '*' }))[0]?.n);
  let firstReply: CloudEvent<unknown>;

  it('replies to a forecast.tick with faasbilling.anomaly.detected.v1 listing every anomaly of the run, each under its own id', async () => {
    firstReply = replyEvent(await tick());
    const listed = anomaliesOf(firstReply);
    assert.deepEqual(listed.map((a) => a.metric).sort(), ['cost', 'duration_p95_ms', 'errors', 'invocations'], JSON.stringify(listed, null, 1));
    assert.equal(new Set(listed.map((a) => a.anomaly_id)).size, listed.length);
    for (const a of listed) {
      assert.equal(a.tenant_id, tenantId);
      assert.equal(a.service, 'checkout');
      assert.equal(a.since, new Date(end - INCIDENT_FROM * HOUR).toISOString(), `${a.metric} since`);
      assert.match(a.explanation ?? '', /of checkout rose/);
    }
    assert.equal(await storedCount(), listed.length);
    // The run also forecast as before.
    const stored = await database.db('ml_predictions').where({ tenant_id: tenantId, horizon: '1d' }).count<{ count: string }[]>('* as count');
    assert.equal(Number(stored[0]?.count), 1);
  });

  it('repeats the anomalies notifications has not handled on the next tick, as the same anomalies (not new ones)', async () => {
    const repeated = anomaliesOf(replyEvent(await tick()));
    assert.deepEqual(repeated.map((a) => a.anomaly_id).sort(), anomaliesOf(firstReply).map((a) => a.anomaly_id).sort());
    assert.equal(await storedCount(), repeated.length);
  });

  it('each anomaly reaches the tenant’s and the operator’s webhooks once; one not yet handled is repeated until notifications marks it', async () => {
    const [handledFirst, ...rest] = anomaliesOf(firstReply);
    assert.ok(handledFirst && rest.length > 0);
    // notifications handles one anomaly only (the rest of the announcement was lost) ...
    const one = await postBinary(notifications.url, new CloudEvent<unknown>({ type: EventType.anomalyDetected, source: eventSource('forecast'), data: { anomalies: [handledFirst] } }));
    assert.equal(one.status, 200, one.text);
    // ... so the next tick repeats the others, and not that one.
    const repeat = replyEvent(await tick());
    assert.deepEqual(anomaliesOf(repeat).map((a) => a.anomaly_id).sort(), rest.map((a) => a.anomaly_id).sort());
    assert.equal((await postBinary(notifications.url, repeat)).status, 200);
    // The Broker redelivering the first announcement sends nothing again.
    assert.equal((await postBinary(notifications.url, firstReply)).status, 200);

    const everyId = anomaliesOf(firstReply).map((a) => `anomaly-${a.anomaly_id}`).sort();
    for (const path of ['/tenant', '/operator']) {
      const got = received.filter((r) => r.path === path);
      assert.deepEqual(got.map((r) => r.id).sort(), everyId, `${path} gets each anomaly once`);
      for (const r of got) assert.deepEqual(r.anomalyIds.map((id) => `anomaly-${id}`), [r.id], 'one anomaly per delivery, under its id');
    }
    assert.deepEqual(received.filter((r) => r.path === '/other-tenant'), [], 'another tenant’s webhook gets nothing');
  });

  it('does not announce handled anomalies again: the next tick answers its summary, which still lists what it found', async () => {
    const reply = await tick();
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.headers.get('ce-type'), null);
    const summary = reply.json as { anomalies: { metric: string }[] };
    assert.equal(summary.anomalies.length, anomaliesOf(firstReply).length);
    const unhandled = await database.db('anomalies').where({ tenant_id: tenantId }).whereNull('notified_at');
    assert.deepEqual(unhandled, []);
    assert.equal(await storedCount(), summary.anomalies.length);
  });
});
