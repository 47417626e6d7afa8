/**
 * What the API adds for the web dashboard (real HTTP, PostgreSQL): a tenant's stored forecasts
 * (the newest per horizon, as the forecast stage wrote them), the dead letters (admin only), and
 * the dashboard's static files at `/` beside the API.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { dashboardRouter } from '../functions/api/web.js';
import { recordDeadLetters } from '../src/adapters/dead-letters.js';
import { insertRawEvent } from '../src/billing/testing.js';
import { createLogger } from '../src/runtime/logger.js';
import { Aggregator } from '../src/stages/aggregate.js';
import { Forecaster } from '../src/stages/forecast.js';
import { startTestApi, type TestApi } from './support/api.js';

const now = (): Date => new Date('2025-10-20T12:30:00Z');

interface StoredForecast {
  horizon: string;
  as_of: string;
  currency: string;
  actual_cost: string | null;
  predicted_cost: string;
  lower_80: string;
  upper_80: string;
  lower_95: string;
  upper_95: string;
  model: string;
}

describe('API for the dashboard: stored forecasts, dead letters, static files', function () {
  this.timeout(60_000);
  let api: TestApi;
  let tenantId: string;
  let tenantKey: string;
  let otherKey: string;

  before(async () => {
    api = await startTestApi({ now });
    tenantId = (await api.call<{ id: string }>('POST', '/tenants', { body: { slug: 'dash', name: 'Dash', currency: 'USD', timezone: 'UTC' } })).body.id;
    const other = (await api.call<{ id: string }>('POST', '/tenants', { body: { slug: 'dash-other', name: 'Other', currency: 'USD' } })).body.id;
    tenantKey = (await api.call<{ key: string }>('POST', '/api-keys', { body: { name: 'dash', role: 'tenant', tenant_id: tenantId } })).body.key;
    otherKey = (await api.call<{ key: string }>('POST', '/api-keys', { body: { name: 'other', role: 'tenant', tenant_id: other } })).body.key;
  });
  after(() => api.close());

  describe('GET /tenants/:id/forecasts', () => {
    it('is empty until the forecast stage has run', async () => {
      const res = await api.call<{ items: StoredForecast[] }>('GET', `/tenants/${tenantId}/forecasts`, { key: tenantKey });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.items, []);
    });

    it('answers the newest forecast per horizon, with both intervals in order, as the stage stored them', async () => {
      const service = (await api.call<{ id: string }>('POST', '/services', { body: { tenant_id: tenantId, name: 'fn' } })).body.id;
      const revision = (await api.call<{ id: string }>('POST', `/services/${service}/revisions`, { body: { name: 'fn-00001' } })).body.id;
      // Three days of hourly usage before `now`, past the free invocations of standard-usd.
      for (let hour = 0; hour < 72; hour++) {
        const time = new Date(Date.parse('2025-10-17T12:05:00Z') + hour * 3_600_000).toISOString();
        await insertRawEvent(api.database.db, { tenantId, serviceId: service, revisionId: revision, time, invocations: 100_000 + (hour % 24) * 1000, durationMs: '50000', memoryMb: '256' });
      }
      await new Aggregator({ db: api.database.db, logger: createLogger('test', 'silent'), batchBuckets: 10_000, timeBudgetMs: 30_000 }).run();
      const forecaster = new Forecaster({ db: api.database.db, now });
      // An older run, then a newer one: only the newer is answered.
      await forecaster.run({ tenantId, horizons: ['1d', 'month_end'], at: new Date('2025-10-20T10:30:00Z') });
      await forecaster.run({ tenantId, horizons: ['1d', 'month_end'] });

      const res = await api.call<{ items: StoredForecast[] }>('GET', `/tenants/dash/forecasts`, { key: tenantKey });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(
        res.body.items.map((f) => [f.horizon, f.as_of]),
        [
          ['1d', '2025-10-20T12:00:00.000Z'],
          ['month_end', '2025-10-20T12:00:00.000Z'],
        ],
      );
      const stored = await api.database
        .db('ml_predictions')
        .where({ tenant_id: tenantId, horizon: 'month_end', as_of: new Date('2025-10-20T12:00:00Z') })
        .first<{ predicted_cost: string; predicted_cost_lower_95: string; predicted_cost_upper_80: string; model_name: string; model_version: string; actual_cost: string }>();
      const monthEnd = res.body.items[1];
      assert.ok(monthEnd && stored, JSON.stringify({ monthEnd, stored }));
      assert.equal(monthEnd.currency, 'USD');
      assert.equal(monthEnd.predicted_cost, stored.predicted_cost);
      assert.equal(monthEnd.lower_95, stored.predicted_cost_lower_95);
      assert.equal(monthEnd.upper_80, stored.predicted_cost_upper_80);
      assert.equal(monthEnd.actual_cost, stored.actual_cost);
      assert.equal(monthEnd.model, `${stored.model_name}@${stored.model_version}`);
      const bounds = [monthEnd.lower_95, monthEnd.lower_80, monthEnd.predicted_cost, monthEnd.upper_80, monthEnd.upper_95].map(Number);
      assert.deepEqual([...bounds].sort((a, b) => a - b), bounds, 'lower 95 ≤ lower 80 ≤ point ≤ upper 80 ≤ upper 95');
      assert.ok(Number(monthEnd.predicted_cost) > 0, monthEnd.predicted_cost);
    });

    it('another tenant’s key gets the same 404 as an unknown tenant', async () => {
      assert.equal((await api.call('GET', `/tenants/${tenantId}/forecasts`, { key: otherKey })).status, 404);
      assert.equal((await api.call('GET', `/tenants/${randomUUID()}/forecasts`)).status, 404);
    });
  });

  describe('GET /dead-letters', () => {
    it('lists dead letters newest first without payloads, only unresolved ones on request', async () => {
      await recordDeadLetters(api.database.db, [
        { stage: 'save', reason: 'unknown_tenant', detail: 'tenant nobody is unknown: create it first', source: '/a', eventId: 'e-1', eventType: 'faasbilling.usage.v1', tenantKey: 'nobody', payload: { secret: 'payload' } },
      ]);
      await recordDeadLetters(api.database.db, [{ stage: 'broker', reason: 'delivery_failed', detail: 'price answered 500', source: '/b', eventId: 'e-2', eventType: null, tenantKey: null, payload: {} }]);
      await api.database.db('dead_letters').where({ event_id: 'e-1' }).update({ received_at: new Date('2025-10-20T10:00:00Z'), resolved_at: new Date('2025-10-20T11:00:00Z') });
      await api.database.db('dead_letters').where({ event_id: 'e-2' }).update({ received_at: new Date('2025-10-20T11:30:00Z') });

      const all = await api.call<{ items: { event_id: string; reason: string; resolved_at: string | null }[] }>('GET', '/dead-letters');
      assert.equal(all.status, 200, all.text);
      assert.deepEqual(
        all.body.items.map((d) => [d.event_id, d.reason, d.resolved_at]),
        [
          ['e-2', 'delivery_failed', null],
          ['e-1', 'unknown_tenant', '2025-10-20T11:00:00.000Z'],
        ],
      );
      assert.doesNotMatch(all.text, /secret/);
      const open = await api.call<{ items: { event_id: string }[] }>('GET', '/dead-letters?unresolved=true&limit=10');
      assert.deepEqual(open.body.items.map((d) => d.event_id), ['e-2']);
      assert.equal((await api.call('GET', '/dead-letters?limit=0')).status, 422);
    });

    it('is for admin keys only', async () => {
      assert.equal((await api.call('GET', '/dead-letters', { key: tenantKey })).status, 403);
      assert.equal((await api.call('GET', '/dead-letters', { key: null })).status, 401);
    });
  });

  describe('the dashboard’s files at /', () => {
    let dir: string;
    let url: string;
    let close: () => Promise<void>;

    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'fb-web-'));
      const app = express();
      app.use(dashboardRouter(dir));
      app.use((_req, res) => res.status(404).send('not here'));
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      close = () => new Promise((resolve) => server.close(() => resolve()));
    });
    after(async () => {
      await close();
      await rm(dir, { recursive: true, force: true });
    });

    it('without a build, / says how to make one (503)', async () => {
      const res = await fetch(`${url}/`);
      assert.equal(res.status, 503);
      assert.match(await res.text(), /npm run build:web/);
    });

    it('serves index.html (not cached) and hashed assets (cached for good); anything else falls through', async () => {
      await mkdir(path.join(dir, 'assets'), { recursive: true });
      await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>dash</title>');
      await writeFile(path.join(dir, 'assets', 'app-abc123.js'), 'console.log(1)');
      const index = await fetch(`${url}/`);
      assert.equal(index.status, 200);
      assert.match(index.headers.get('content-type') ?? '', /text\/html/);
      assert.equal(index.headers.get('cache-control'), 'no-cache');
      assert.equal(await index.text(), '<!doctype html><title>dash</title>');
      const asset = await fetch(`${url}/assets/app-abc123.js`);
      assert.equal(asset.status, 200);
      assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
      assert.equal((await fetch(`${url}/assets/missing.js`)).status, 404);
      assert.equal((await fetch(`${url}/other`)).status, 404);
    });

    it('the API app serves it at / while unknown paths stay problem+json 404s', async () => {
      const root = await fetch(`${api.url}/`);
      assert.ok([200, 503].includes(root.status), `GET / answered ${root.status}`);
      const unknown = await fetch(`${api.url}/nowhere`);
      assert.equal(unknown.status, 404);
      assert.match(unknown.headers.get('content-type') ?? '', /problem\+json/);
    });
  });
});
