/**
 * Budgets through the API (real HTTP, PostgreSQL), with the clock pinned inside October 2025:
 * set, read with month-to-date use and the thresholds crossed (by the price stage's running-cost
 * update), history, delete; another tenant's key sees none of it.
 */
import assert from 'node:assert/strict';
import { Billing } from '../src/billing/index.js';
import { insertRawEvent } from '../src/billing/testing.js';
import { createLogger } from '../src/runtime/logger.js';
import { Aggregator } from '../src/stages/aggregate.js';
import { startTestApi, type TestApi } from './support/api.js';

const now = (): Date => new Date('2025-10-20T12:00:00Z');

interface Budget {
  amount: string;
  thresholds: number[];
  month_to_date: string | null;
  used_percent: string | null;
  alerts: { threshold: number; amount: string }[];
}

describe('budgets over the API', function () {
  this.timeout(60_000);
  let api: TestApi;
  let tenantId: string;

  before(async () => {
    api = await startTestApi({ now });
    const res = await api.call<{ id: string }>('POST', '/tenants', { body: { slug: 'budget-api', name: 'Budget', currency: 'USD' } });
    tenantId = res.body.id;
  });
  after(() => api.close());

  it('sets a budget, reads its use and alerts after a running-cost update, keeps the history, and deletes it', async () => {
    const none = await api.call('GET', `/tenants/${tenantId}/budget`);
    assert.equal(none.status, 404);
    const set = await api.call<Budget>('PUT', `/tenants/${tenantId}/budget`, { body: { amount: '1', thresholds: [100, 50] } });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual([set.body.amount, set.body.thresholds, set.body.month_to_date], ['1.00', [50, 100], null]);
    assert.equal((await api.call('PUT', `/tenants/${tenantId}/budget`, { body: { amount: '0' } })).status, 422);

    // 4 000 000 invocations on standard-usd: 3 000 000 billable × 0.0000002 = 0.60 → 60%.
    const service = await api.call<{ id: string }>('POST', '/services', { body: { tenant_id: tenantId, name: 'fn' } });
    const revision = await api.call<{ id: string }>('POST', `/services/${service.body.id}/revisions`, { body: { name: 'fn-00001' } });
    await insertRawEvent(api.database.db, { tenantId, serviceId: service.body.id, revisionId: revision.body.id, time: '2025-10-05T10:00:00Z', invocations: 1_000_000, durationMs: '0', memoryMb: '128' });
    for (const hour of ['11', '12', '13']) {
      await insertRawEvent(api.database.db, { tenantId, serviceId: service.body.id, revisionId: revision.body.id, time: `2025-10-05T${hour}:00:00Z`, invocations: 1_000_000, durationMs: '0', memoryMb: '128' });
    }
    await new Aggregator({ db: api.database.db, logger: createLogger('test', 'silent'), batchBuckets: 1000, timeBudgetMs: 30_000 }).run();
    const billing = new Billing({ db: api.database.db, now });
    const update = await billing.updateRunningCost([tenantId]);
    assert.deepEqual(update.alerts.map((a) => [a.threshold, a.amount]), [[50, '0.60']]);
    const repeated = await billing.updateRunningCost([tenantId]);
    assert.deepEqual(repeated.alerts.map((a) => a.alert_id), update.alerts.map((a) => a.alert_id), 'repeated until handled, never a new alert');
    await api.database.db('budget_alerts').where({ tenant_id: tenantId }).update({ notified_at: api.database.db.fn.now() });
    assert.deepEqual((await billing.updateRunningCost([tenantId])).alerts, [], 'once per threshold per period');

    const read = await api.call<Budget>('GET', `/tenants/${tenantId}/budget`);
    assert.deepEqual([read.body.month_to_date, read.body.used_percent, read.body.alerts.map((a) => [a.threshold, a.amount])], ['0.60', '60.0', [[50, '0.60']]]);
    const history = await api.call<{ items: { threshold: number }[] }>('GET', `/tenants/${tenantId}/budget/alerts`);
    assert.deepEqual(history.body.items.map((a) => a.threshold), [50]);

    // Sub-cent and oversized amounts are refused; a changed budget is judged afresh this period.
    for (const amount of ['0.001', '1234567890123456', '1e3']) {
      assert.equal((await api.call('PUT', `/tenants/${tenantId}/budget`, { body: { amount } })).status, 422, amount);
    }
    const lowered = await api.call<Budget>('PUT', `/tenants/${tenantId}/budget`, { body: { amount: '0.5', thresholds: [50, 100] } });
    assert.deepEqual(lowered.body.alerts, []);
    assert.deepEqual((await billing.updateRunningCost([tenantId])).alerts.map((a) => [a.threshold, a.limit]), [[50, '0.50'], [100, '0.50']]);

    const other = await api.call<{ id: string }>('POST', '/tenants', { body: { slug: 'budget-other', name: 'Other' } });
    const key = await api.call<{ key: string }>('POST', '/api-keys', { body: { name: 'other', role: 'tenant', tenant_id: other.body.id } });
    assert.equal((await api.call('GET', `/tenants/${tenantId}/budget`, { key: key.body.key })).status, 404);
    assert.equal((await api.call('PUT', `/tenants/${tenantId}/budget`, { key: key.body.key, body: { amount: '5' } })).status, 404);

    assert.equal((await api.call('DELETE', `/tenants/${tenantId}/budget`)).status, 204);
    assert.equal((await api.call('GET', `/tenants/${tenantId}/budget`)).status, 404);
    assert.equal((await api.call('DELETE', `/tenants/${tenantId}/budget`)).status, 404);
  });
});
