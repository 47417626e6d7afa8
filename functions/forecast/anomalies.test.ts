/**
 * Anomalies against a real database and the forecast function over real HTTP: four weeks of hourly
 * usage_aggregate rows for two services, one with an injected incident in the last day (invocations
 * four times their usual level, errors, a slower p95). The scanner finds what was injected and
 * nothing on the plain service; a tick replies faasbilling.anomaly.detected.v1 with the same id each
 * time (so notifications delivers it once).
 */
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { EventType, anomalyDetectedData, eventSource } from '../../src/contract/events.js';
import { randomSource } from '../../src/core/forecast/synthetic.js';
import { AnomalyScanner, type ServiceAnomaly } from '../../src/stages/anomalies.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { postBinary } from '../../test/support/http.js';
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
  });

  after(async () => {
    await fn.close();
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
    for (const a of anomalies) anomalyDetectedData.parse(a);
  });

  it('lists the costliest anomaly first', () => {
    const impacts = anomalies.map((a) => Math.abs(Number(a.cost_impact)));
    assert.deepEqual(impacts, [...impacts].sort((x, y) => y - x));
  });

  it('replies to a forecast.tick with faasbilling.anomaly.detected.v1, the same event id on a repeated tick', async () => {
    const tick = (): Promise<Awaited<ReturnType<typeof postBinary>>> => postBinary(fn.url, new CloudEvent({ type: EventType.forecastTick, source: eventSource('scheduler'), data: { horizons: ['1d'] } }));
    const first = await tick();
    const second = await tick();
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('ce-type'), EventType.anomalyDetected);
    assert.equal(first.headers.get('ce-source'), eventSource('forecast'));
    const data = anomalyDetectedData.parse(first.json);
    assert.equal(data.tenant_id, tenantId);
    assert.equal(data.service, 'checkout');
    assert.equal(first.headers.get('ce-id'), second.headers.get('ce-id'));
    // The run also forecast as before.
    const stored = await database.db('ml_predictions').where({ tenant_id: tenantId, horizon: '1d' }).count<{ count: string }[]>('* as count');
    assert.equal(Number(stored[0]?.count), 1);
  });
});
