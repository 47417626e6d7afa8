/**
 * POST /api/v1/pricing/simulate over real HTTP and PostgreSQL: one tenant's usage priced under
 * several plans, each with its own metering rules (usage re-metered from raw events), cheapest
 * first, with the saving against the plans in force. Totals are computed by hand below.
 */
import assert from 'node:assert/strict';
import { Dec } from '../src/core/pricing/index.js';
import { insertRawEvent } from '../src/billing/testing.js';
import { startTestApi, type TestApi } from './support/api.js';

interface Simulation {
  current: { total: string; plan_ids: string[] };
  results: { plan: { id: string; name: string }; total: string; saving: string; line_items: { meter: string; billable_quantity: string }[] }[];
  period_start: string;
  period_end: string;
}

describe('POST /pricing/simulate', function () {
  this.timeout(60_000);
  let api: TestApi;
  let tenantId: string;
  const plans: Record<string, string> = {};

  before(async () => {
    api = await startTestApi();
    const post = async (path: string, body: unknown): Promise<{ id: string }> => {
      const res = await api.call<{ id: string }>('POST', path, { body });
      assert.ok(res.status === 201 || res.status === 200, `${path}: ${res.status} ${res.text}`);
      return res.body;
    };
    tenantId = (await post('/tenants', { slug: 'sim', name: 'Sim', currency: 'USD' })).id;
    const service = await post('/services', { tenant_id: tenantId, name: 'fn' });
    const revision = await post(`/services/${service.id}/revisions`, { name: 'fn-00001' });
    // 10 invocations of 150 ms at 100 MB on 5 October 2025.
    await insertRawEvent(api.database.db, { tenantId, serviceId: service.id, revisionId: revision.id, time: '2025-10-05T10:00:00Z', invocations: 10, durationMs: '1500', memoryMb: '100' });
    assert.equal((await api.call('POST', '/metrics/aggregate')).status, 200);
    // A: 10 × 0.01 = 0.10.
    plans.a = (await post('/pricing/plans', { name: 'sim-requests', currency: 'USD', price_per_invocation: '0.01' })).id;
    // B: 150 ms → 200 ms (100 ms steps), 100 MB → 128 MB: 200 × 128 × 10 = 256,000 MB·ms × 0.000001 = 0.256 → 0.26.
    plans.b = (await post('/pricing/plans', { name: 'sim-coarse', currency: 'USD', price_per_mb_ms: '0.000001', rules: { duration_granularity_ms: 100, memory_step_mb: 128 } })).id;
    // C: 1,500 ms × 100 MB = 150,000 MB·ms × 0.000001 = 0.15.
    plans.c = (await post('/pricing/plans', { name: 'sim-exact', currency: 'USD', price_per_mb_ms: '0.000001' })).id;
  });
  after(() => api.close());

  const simulate = (body: Record<string, unknown>) => api.call<Simulation>('POST', '/pricing/simulate', { body: { tenant_id: tenantId, ...body } });

  it('prices the month under each plan with its own metering rules, cheapest first', async () => {
    const res = await simulate({ month: '2025-10', plan_ids: [plans.b, plans.c, plans.a] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      res.body.results.map((r) => [r.plan.name, r.total]),
      [
        ['sim-requests', '0.10'],
        ['sim-exact', '0.15'],
        ['sim-coarse', '0.26'],
      ],
    );
    const coarse = res.body.results.find((r) => r.plan.name === 'sim-coarse');
    assert.ok(new Dec(coarse?.line_items.find((l) => l.meter === 'compute')?.billable_quantity ?? '0').eq(256_000));
    for (const r of res.body.results) assert.equal(r.saving, new Dec(res.body.current.total).minus(r.total).toFixed(2));
    assert.equal(res.body.period_start, '2025-10-01T00:00:00.000Z');
  });

  it('compares every usable plan by default, including the one in force', async () => {
    const res = await simulate({ month: '2025-10' });
    assert.equal(res.status, 200, res.text);
    const names = res.body.results.map((r) => r.plan.name);
    for (const n of ['sim-requests', 'sim-exact', 'sim-coarse', 'standard-usd']) assert.ok(names.includes(n), `${n} missing`);
    assert.ok(!names.includes('standard-rub'), 'plans of another currency are not compared');
    const inForce = res.body.results.find((r) => res.body.current.plan_ids.includes(r.plan.id));
    assert.ok(inForce);
    assert.equal(inForce.total, res.body.current.total);
    assert.equal(inForce.saving, '0.00');
  });

  it('a day inside the month gets the day’s share of free allowances; errors are 422', async () => {
    const day = await simulate({ period_start: '2025-10-05T00:00:00Z', period_end: '2025-10-06T00:00:00Z', plan_ids: [plans.a] });
    assert.equal(day.status, 200, day.text);
    assert.equal(day.body.results[0]?.total, '0.10');
    const empty = await simulate({ period_start: '2025-10-06T00:00:00Z', period_end: '2025-10-07T00:00:00Z', plan_ids: [plans.a] });
    assert.equal(empty.body.results[0]?.total, '0.00');
    assert.equal((await simulate({ period_start: '2025-10-05T00:00:00Z' })).status, 422);
    assert.equal((await simulate({ month: '2025-10', plan_ids: ['00000000-0000-4000-8000-000000000000'] })).status, 422);
  });
});
