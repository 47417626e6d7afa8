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
import type { Db } from '../../src/adapters/postgres.js';
import { AnomalyScanner, type ServiceAnomaly } from '../../src/stages/anomalies.js';
import { anomalyDetectedEvent, recordAnomalies } from '../../src/stages/anomaly-outbox.js';
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

/** An injected incident: the hours [end − fromHours, end − toHours) changed as given. */
interface Injected {
  fromHours: number;
  toHours: number;
  /** Invocations times this (1 by default). */
  invocationFactor?: number;
  /** About 150 errors an hour instead of 0–2. */
  errors?: boolean;
  /** The p95 duration of those hours (ms) instead of about 200. */
  p95Ms?: number;
}

/** What a webhook receiver got: the path, the event id and the anomaly ids the event listed. */
interface Received {
  path: string;
  id: string;
  anomalyIds: string[];
}

/** A tenant (UTC, USD) on a plan with list prices, so anomalies have a cost impact. */
async function insertTenant(db: Db, slug: string): Promise<string> {
  const [tenant] = await db('tenants').insert({ slug, name: slug, timezone: 'UTC', currency: 'USD' }).returning<{ id: string }[]>('id');
  assert.ok(tenant);
  const [plan] = await db('pricing_plans')
    .insert({ name: `${slug}-plan`, currency: 'USD', price_per_invocation: '0.0002', price_per_mb_ms: '0.0000000162760', price_per_cold_start: '0', price_per_cpu_ms: '0' })
    .returning<{ id: string }[]>('id');
  assert.ok(plan);
  await db('tenant_plan_assignments').insert({ tenant_id: tenant.id, plan_id: plan.id, effective_from: '2020-01-01T00:00:00Z' });
  return tenant.id;
}

/** A service with HOURS hours of hourly usage before `end` (a daily cycle plus noise), with `incidents` injected. */
async function insertService(db: Db, tenantId: string, name: string, seed: number, end: number, incidents: readonly Injected[] = []): Promise<void> {
  const [service] = await db('services').insert({ tenant_id: tenantId, name }).returning<{ id: string }[]>('id');
  assert.ok(service);
  const [revision] = await db('revisions').insert({ service_id: service.id, name: `${name}-00001` }).returning<{ id: string }[]>('id');
  assert.ok(revision);
  const random = randomSource(seed);
  const rows = Array.from({ length: HOURS }, (_, i) => {
    const start = end - (HOURS - i) * HOUR;
    const hour = new Date(start).getUTCHours();
    const incident = incidents.find((c) => start >= end - c.fromHours * HOUR && start < end - c.toHours * HOUR);
    const usual = 600 + 300 * Math.sin((2 * Math.PI * hour) / 24) + 20 * random.normal();
    const invocations = Math.round(usual * (incident?.invocationFactor ?? 1));
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
      errors: incident?.errors ? 150 + Math.round(5 * random.uniform()) : Math.round(2 * random.uniform()),
      p95_duration_ms: (incident?.p95Ms ?? 200 + 10 * random.normal()).toFixed(3),
      max_memory_mb: (250 + 3 * random.normal()).toFixed(3),
    };
  });
  for (let i = 0; i < rows.length; i += 500) await db('usage_aggregate').insert(rows.slice(i, i + 500));
}

/** A webhook receiver on a free port that records each event it gets into `received`. */
async function startReceiver(received: Received[]): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as { id: string; data: { anomalies: AnomalyAlert[] } };
      received.push({ path: req.url ?? '', id: event.id, anomalyIds: event.data.anomalies.map((a) => a.anomaly_id) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A webhook row of `tenant` (null: the operator's) for anomaly events, at `url`. */
const anomalyHook = (tenant: string | null, url: string) => ({ tenant_id: tenant, url, secret: 'whsec_test', events: [EventType.anomalyDetected] });

describe('anomaly detection of a tenant’s services', function () {
  this.timeout(120_000);
  let database: TestDatabase;
  let fn: RunningFunction;
  let notifications: RunningFunction;
  let receiver: Server;
  /** The event ids each webhook path received, in order. */
  const received: Received[] = [];
  let tenantId = '';
  const end = Math.floor(Date.now() / HOUR) * HOUR;
  let anomalies: ServiceAnomaly[];

  before(async () => {
    database = await freshDatabase();
    tenantId = await insertTenant(database.db, 'anomalies');
    await insertService(database.db, tenantId, 'checkout', 1, end, [{ fromHours: INCIDENT_FROM, toHours: INCIDENT_TO, invocationFactor: 4, errors: true, p95Ms: 900 }]);
    await insertService(database.db, tenantId, 'catalog', 2, end);
    anomalies = await new AnomalyScanner(database.db).scan(tenantId, { at: new Date(end) });
    fn = await startFunction('forecast', createForecast, { DATABASE_URL: database.url });
    notifications = await startFunction('notifications', createNotifications, { DATABASE_URL: database.url, WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' });
    let base: string;
    ({ server: receiver, base } = await startReceiver(received));
    const [other] = await database.db('tenants').insert({ slug: 'quiet', name: 'quiet', timezone: 'UTC', currency: 'USD' }).returning<{ id: string }[]>('id');
    await database.db('webhooks').insert([anomalyHook(tenantId, `${base}/tenant`), anomalyHook(null, `${base}/operator`), anomalyHook(other?.id ?? null, `${base}/other-tenant`)]);
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

describe('one anomaly and one alert per incident, however long it lasts', function () {
  this.timeout(300_000);
  let database: TestDatabase;
  let notifications: RunningFunction;
  let receiver: Server;
  const received: Received[] = [];
  let tenantId = '';
  const end = Math.floor(Date.now() / HOUR) * HOUR;
  /** The errors outage: 30 hours, [end − 40 h, end − 10 h), longer than the 24 examined. */
  const OUTAGE_FROM = 40;
  const OUTAGE_TO = 10;
  /** The first hourly run, and the `until` of the outage's row after each run from then on. */
  const FIRST_RUN = 39;
  const outageUntil: (string | undefined)[] = [];
  const hoursBefore = (h: number): string => new Date(end - h * HOUR).toISOString();
  const rowsOf = async (service: string, metric: string) =>
    (await database.db('anomalies').where({ tenant_id: tenantId, service, metric }).orderBy('since')) as { id: string; since: Date; until: Date; direction: string; explanation: string }[];
  const deliveriesOf = (rows: readonly { id: string }[]) => received.filter((r) => rows.some((row) => r.id === `anomaly-${row.id}`));

  before(async () => {
    database = await freshDatabase();
    tenantId = await insertTenant(database.db, 'incidents');
    await insertService(database.db, tenantId, 'outage', 3, end, [{ fromHours: OUTAGE_FROM, toHours: OUTAGE_TO, errors: true }]);
    // Two error incidents six normal hours apart.
    await insertService(database.db, tenantId, 'twice', 4, end, [
      { fromHours: 34, toHours: 30, errors: true },
      { fromHours: 24, toHours: 20, errors: true },
    ]);
    // A spike in invocations, then at once a drop.
    await insertService(database.db, tenantId, 'seesaw', 5, end, [
      { fromHours: 34, toHours: 30, invocationFactor: 4 },
      { fromHours: 30, toHours: 26, invocationFactor: 0.1 },
    ]);
    notifications = await startFunction('notifications', createNotifications, { DATABASE_URL: database.url, WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' });
    let base: string;
    ({ server: receiver, base } = await startReceiver(received));
    await database.db('webhooks').insert(anomalyHook(tenantId, `${base}/tenant`));
    // Hourly runs as the forecast function makes them (scan, record, announce what is unhandled),
    // the examined window moving on by an hour each time.
    const scanner = new AnomalyScanner(database.db);
    for (let h = FIRST_RUN; h >= 0; h--) {
      const found = await scanner.scan(tenantId, { at: new Date(end - h * HOUR) });
      const unhandled = await recordAnomalies(database.db, [tenantId], found);
      if (unhandled.length > 0) {
        const reply = await postBinary(notifications.url, anomalyDetectedEvent(unhandled));
        assert.equal(reply.status, 200, reply.text);
      }
      outageUntil.push((await rowsOf('outage', 'errors'))[0]?.until.toISOString());
    }
  });

  after(async () => {
    await notifications?.close();
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
    await database.drop();
  });

  it('an outage longer than the examined window is one anomaly, announced once, whose until follows the outage to its end', async () => {
    const rows = await database.db('anomalies').where({ tenant_id: tenantId, service: 'outage' });
    assert.equal(rows.length, 1, JSON.stringify(rows, null, 1));
    const [row] = await rowsOf('outage', 'errors');
    assert.ok(row);
    assert.equal(row.since.toISOString(), hoursBefore(OUTAGE_FROM));
    assert.equal(row.until.toISOString(), hoursBefore(OUTAGE_TO));
    // Run at end − h: nothing yet with one abnormal hour, then the outage up to the run's hour,
    // then its end once it is over.
    const expected = Array.from({ length: FIRST_RUN + 1 }, (_, k) => {
      const h = FIRST_RUN - k;
      if (h > OUTAGE_FROM - 2) return undefined;
      return hoursBefore(Math.max(h, OUTAGE_TO));
    });
    assert.deepEqual(outageUntil, expected);
    assert.match(row.explanation, new RegExp(`recorded since ${hoursBefore(OUTAGE_FROM)}, now until ${hoursBefore(OUTAGE_TO)} \\(30 h\\)`), row.explanation);
    assert.deepEqual(deliveriesOf([row]).map((r) => r.id), [`anomaly-${row.id}`]);
  });

  /** Asserts the stored anomalies of a service's metric ([from, to) hours before end, direction) and that each was delivered once. */
  async function assertIncidents(service: string, metric: string, incidents: readonly [number, number, string][]): Promise<void> {
    const rows = await rowsOf(service, metric);
    assert.deepEqual(
      rows.map((r) => [r.since.toISOString(), r.until.toISOString(), r.direction]),
      incidents.map(([from, to, direction]) => [hoursBefore(from), hoursBefore(to), direction]),
    );
    assert.deepEqual(deliveriesOf(rows).map((r) => r.id).sort(), rows.map((r) => `anomaly-${r.id}`).sort());
  }

  it('two incidents with normal hours between them are two anomalies, each announced once', async () => {
    await assertIncidents('twice', 'errors', [
      [34, 30, 'spike'],
      [24, 20, 'spike'],
    ]);
  });

  it('a spike followed at once by a drop is two anomalies (the direction differs), each announced once', async () => {
    await assertIncidents('seesaw', 'invocations', [
      [34, 30, 'spike'],
      [30, 26, 'drop'],
    ]);
  });

  it('every stored anomaly reached the webhook exactly once', async () => {
    const ids = (await database.db('anomalies').where({ tenant_id: tenantId }).select<{ id: string }[]>('id')).map((r) => `anomaly-${r.id}`);
    assert.deepEqual(received.map((r) => r.id).sort(), ids.sort());
  });
});

describe('recording anomalies: which found anomaly continues a stored incident', function () {
  let database: TestDatabase;
  let tenantId = '';
  const base = Date.UTC(2025, 2, 10, 12);
  const hoursBefore = (h: number): string => new Date(base - h * HOUR).toISOString();
  /** An errors spike of `service` found over [base − fromHours, base − toHours). */
  const finding = (service: string, fromHours: number, toHours: number, observed = 100): ServiceAnomaly => ({
    tenant_id: tenantId,
    service,
    metric: 'errors',
    score: 9,
    expected: 10,
    observed,
    since: hoursBefore(fromHours),
    until: hoursBefore(toHours),
    direction: 'spike',
    cost_impact: '1.00',
    currency: 'USD',
    explanation: `errors of ${service} rose to ${observed} from ${hoursBefore(fromHours)}`,
  });
  const spans = async (service: string) =>
    (
      await database
        .db('anomalies')
        .where({ tenant_id: tenantId, service })
        .orderBy('since')
        .select<{ id: string; since: Date; until: Date; observed: number; explanation: string; notified_at: Date | null }[]>('id', 'since', 'until', 'observed', 'explanation', 'notified_at')
    ).map((r) => ({ ...r, since: r.since.toISOString(), until: r.until.toISOString() }));

  before(async () => {
    database = await freshDatabase();
    tenantId = await insertTenant(database.db, 'continuity');
  });

  after(async () => {
    await database.drop();
  });

  it('one starting an hour earlier, overlapping, or one ordinary hour after continues it (same id and since); two ordinary hours after is a new incident', async () => {
    await recordAnomalies(database.db, [tenantId], [finding('api', 10, 7)]);
    const [first] = await spans('api');
    assert.ok(first);
    await recordAnomalies(database.db, [tenantId], [finding('api', 11, 6)]);
    assert.deepEqual((await spans('api')).map((r) => [r.id, r.since, r.until]), [[first.id, hoursBefore(10), hoursBefore(6)]]);
    await recordAnomalies(database.db, [tenantId], [finding('api', 5, 3)]);
    assert.deepEqual((await spans('api')).map((r) => [r.id, r.since, r.until]), [[first.id, hoursBefore(10), hoursBefore(3)]]);
    await recordAnomalies(database.db, [tenantId], [finding('api', 1, 0)]);
    const rows = await spans('api');
    assert.deepEqual(rows.map((r) => [r.since, r.until]), [
      [hoursBefore(10), hoursBefore(3)],
      [hoursBefore(1), hoursBefore(0)],
    ]);
    assert.notEqual(rows[1]?.id, first.id);
  });

  it('extending an announced incident refreshes its figures and says so, keeps it handled, and announces nothing', async () => {
    await recordAnomalies(database.db, [tenantId], [finding('worker', 8, 6)]);
    await database.db('anomalies').where({ tenant_id: tenantId, service: 'worker' }).update({ notified_at: new Date(base) });
    const unhandled = await recordAnomalies(database.db, [tenantId], [finding('worker', 7, 2, 500)]);
    assert.deepEqual(unhandled.filter((a) => a.service === 'worker'), []);
    const [row, ...others] = await spans('worker');
    assert.ok(row);
    assert.deepEqual(others, []);
    assert.deepEqual([row.since, row.until, row.observed, row.notified_at?.getTime()], [hoursBefore(8), hoursBefore(2), 500, base]);
    assert.equal(row.explanation, `errors of worker rose to 500 from ${hoursBefore(7)}; this continues the incident recorded since ${hoursBefore(8)}, now until ${hoursBefore(2)} (6 h)`);
  });

  it('a run that sees only the tail of a stored incident leaves its span and figures as they were', async () => {
    await recordAnomalies(database.db, [tenantId], [finding('batch', 10, 4, 300)]);
    const before = await spans('batch');
    await recordAnomalies(database.db, [tenantId], [finding('batch', 6, 4, 40)]);
    assert.deepEqual(await spans('batch'), before);
  });

  it('two runs recording one incident at once, seen from different first hours, store it once', async () => {
    const services = Array.from({ length: 10 }, (_, i) => `race-${i}`);
    for (const service of services) {
      await Promise.all([recordAnomalies(database.db, [tenantId], [finding(service, 20, 15)]), recordAnomalies(database.db, [tenantId], [finding(service, 19, 14)])]);
    }
    for (const service of services) {
      const rows = await spans(service);
      // One row, whichever run came first (its since is the first run's).
      assert.equal(rows.length, 1, `${service}: ${JSON.stringify(rows)}`);
      assert.ok([hoursBefore(20), hoursBefore(19)].includes(rows[0]?.since ?? ''), service);
      assert.equal(rows[0]?.until, hoursBefore(14), service);
    }
  });
});
