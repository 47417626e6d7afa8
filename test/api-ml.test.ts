/**
 * The ML endpoints over real HTTP and PostgreSQL, on crafted usage whose best settings are known
 * (the clock pinned at 2025-10-20 12:00 UTC, so the last 30 days start on 20 September; all usage
 * lies in October, so September's part of the simulation is empty):
 *
 * - `oversized`: 200 events of 100 invocations × 1,000 ms at ~200 MB under a 1,024 MB limit. The
 *   plan bills allocated memory: 200 × 100 × 1,000 × 1,024 = 20,480,000,000 MB·ms. p99 ≈ 210 MB →
 *   a 256 MB limit (20% headroom, 128 MB steps) bills a quarter of that.
 * - `coldy`: 1,000 events at 100 MB under a 128 MB limit, half of them cold starts (1,100 ms) and
 *   half warm (100 ms). 500 cold starts × 0.01 = 5.00 against one warm 128 MB instance for 30 days:
 *   128 × 2,592,000,000 ms × 1e-11 = 3.31776.
 * - Plans (EUR, so the seeded USD plans are not candidates): `ml-current` (in force; 1e-11 per
 *   MB·ms, 0.01 per cold start, 1,000 free invocations a month, which are not priced anyway),
 *   `ml-half` (half of both prices), `ml-double` (twice both).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Dec } from '../src/core/pricing/index.js';
import { startTestApi, type TestApi } from './support/api.js';

const NOW = new Date('2025-10-20T12:00:00Z');
const HOUR = 3_600_000;

interface Recommendation {
  kind: string;
  service: string | null;
  current: string;
  suggested: string;
  saving: string | null;
  evidence: Record<string, unknown>;
}
interface Report {
  tenant_id: string;
  currency: string;
  cost: string;
  period_start: string;
  period_end: string;
  recommendations: Recommendation[];
  total_saving: string;
}

describe('ML API: predict, anomalies, optimize, insights', function () {
  this.timeout(120_000);
  let api: TestApi;
  let tenantId = '';
  let otherKey = '';
  let report: Report;
  let currentPlanId = '';
  let post: (path: string, body: unknown) => Promise<{ id: string }>;

  before(async () => {
    api = await startTestApi({ now: () => NOW });
    post = async (path: string, body: unknown): Promise<{ id: string }> => {
      const res = await api.call<{ id: string }>('POST', path, { body });
      assert.ok(res.status === 201 || res.status === 200, `${path}: ${res.status} ${res.text}`);
      return res.body;
    };
    tenantId = (await post('/tenants', { slug: 'ml', name: 'ML', currency: 'EUR' })).id;
    const other = (await post('/tenants', { slug: 'ml-other', name: 'Other', currency: 'EUR' })).id;
    otherKey = (await api.call<{ key: string }>('POST', '/api-keys', { body: { name: 'other', role: 'tenant', tenant_id: other } })).body.key;
    const rules = { duration_granularity_ms: 1, min_billed_duration_ms: 1, memory_step_mb: 128, billed_memory: 'allocated' };
    const current = await post('/pricing/plans', { name: 'ml-current', currency: 'EUR', price_per_mb_ms: '0.00000000001', price_per_cold_start: '0.01', free_tier_invocations: '1000', rules });
    await post('/pricing/plans', { name: 'ml-half', currency: 'EUR', price_per_mb_ms: '0.000000000005', price_per_cold_start: '0.005', rules });
    await post('/pricing/plans', { name: 'ml-double', currency: 'EUR', price_per_mb_ms: '0.00000000002', price_per_cold_start: '0.02', rules });
    assert.equal((await api.call('PUT', `/tenants/${tenantId}/pricing-plan`, { body: { pricing_plan_id: current.id, effective_from: '2025-01-01T00:00:00Z' } })).status, 200);
    currentPlanId = current.id;

    const revisionOf = async (name: string, limit: number): Promise<{ serviceId: string; revisionId: string }> => {
      const service = await post('/services', { tenant_id: tenantId, name });
      const revision = await post(`/services/${service.id}/revisions`, { name: `${name}-00001`, memory_limit_mb: limit });
      return { serviceId: service.id, revisionId: revision.id };
    };
    const oversized = await revisionOf('oversized', 1024);
    const coldy = await revisionOf('coldy', 128);
    const start = Date.parse('2025-10-01T00:00:00Z');
    // Events every `spacingMs` from 1 October to shortly before now: steady usage, no incident.
    const event = (ids: { serviceId: string; revisionId: string }, i: number, spacingMs: number, fields: Record<string, unknown>) => ({
      time: new Date(start + i * spacingMs).toISOString(),
      tenant_id: tenantId,
      service_id: ids.serviceId,
      revision_id: ids.revisionId,
      source: '/test',
      event_id: randomUUID(),
      ...fields,
    });
    const rows = [
      ...Array.from({ length: 200 }, (_, i) => event(oversized, i, 8_400_000, { invocations: 100, duration_ms: '100000', memory_mb: String(190 + (i % 21)) })),
      ...Array.from({ length: 1000 }, (_, i) => event(coldy, i, 1_684_800, { invocations: 1, duration_ms: i % 2 === 0 ? '1100' : '100', memory_mb: '100', cold_start: i % 2 === 0 })),
    ];
    await api.database.db('usage_raw').insert(rows);
    assert.equal((await api.call('POST', '/metrics/aggregate')).status, 200);
    assert.equal((await api.call('PUT', `/tenants/${tenantId}/budget`, { body: { amount: '1.00' } })).status, 200);

    const res = await api.call<Report>('POST', '/ml/optimize', { body: { tenant_id: tenantId } });
    assert.equal(res.status, 200, res.text);
    report = res.body;
  });
  after(() => api.close());

  const find = (kind: string, service: string | null = null): Recommendation | undefined => report.recommendations.find((r) => r.kind === kind && r.service === service);

  it('judges the last 30 days before the current hour, costed under the plan in force', () => {
    assert.equal(report.period_start, '2025-09-20T12:00:00.000Z');
    assert.equal(report.period_end, '2025-10-20T12:00:00.000Z');
    assert.equal(report.currency, 'EUR');
    // oversized 20,480,000,000 MB·ms × 1e-11 = 0.2048 → 0.20; coldy 600,000 ms × 128 MB × 1e-11 → 0.00; 500 × 0.01 = 5.00.
    assert.equal(report.cost, '5.20');
  });

  it('suggests the cheapest plan, with the saving the simulator computes on the same usage', () => {
    const plan = find('plan');
    assert.ok(plan, JSON.stringify(report));
    assert.equal(plan.current, 'ml-current v1');
    assert.equal(plan.suggested, 'ml-half v1');
    // ml-half: 0.1024 → 0.10, 0.000384 → 0.00, 500 × 0.005 = 2.50: 2.60.
    assert.equal(plan.saving, '2.60');
  });

  it('suggests a 256 MB limit for the oversized service, saving the billed memory above it', () => {
    const memory = find('memory_limit', 'oversized');
    assert.ok(memory, JSON.stringify(report));
    assert.equal(memory.current, '1024 MB');
    assert.equal(memory.suggested, '256 MB');
    // 200 × 100 × 1,000 × 256 × 1e-11 = 0.0512 → 0.05; 0.20 − 0.05.
    assert.equal(memory.saving, '0.15');
    assert.equal(find('memory_limit', 'coldy'), undefined, 'coldy is already at the smallest step above its use');
  });

  it('suggests minScale 1 for the service whose cold starts cost more than a warm instance, and not for the other', () => {
    const scale = find('min_scale', 'coldy');
    assert.ok(scale, JSON.stringify(report));
    assert.equal(scale.current, 'minScale 0');
    assert.equal(scale.suggested, 'minScale 1');
    // 500 × 0.01 + 500 × 1,000 ms × 128 MB × 1e-11 − 128 × 2,592,000,000 × 1e-11 = 5.00064 − 3.31776.
    assert.equal(scale.saving, new Dec('5.00064').minus('3.31776').toFixed(2));
    assert.equal(find('min_scale', 'oversized'), undefined);
  });

  it('ranks savings largest first, totals them, and ends with the capacity warnings (both already crossed: now)', () => {
    const savings = report.recommendations.filter((r) => r.saving !== null).map((r) => new Dec(r.saving ?? 0));
    for (let i = 1; i < savings.length; i++) assert.ok((savings[i - 1] as Dec).gte(savings[i] as Dec));
    assert.equal(report.total_saving, savings.reduce((s, v) => s.plus(v), new Dec(0)).toFixed(2));
    const [budget, quota] = report.recommendations.slice(-2);
    // Month to date 5.20 against a budget of 1.00.
    assert.equal(budget?.kind, 'budget');
    assert.equal(budget.saving, null);
    assert.equal(budget.evidence.expected_crossing, NOW.toISOString());
    // 21,000 invocations in October against 1,000 free ones; no free compute, so no compute quota.
    assert.equal(quota?.kind, 'quota');
    assert.equal(quota.evidence.month_to_date, '21000');
    assert.equal(quota.evidence.crossing, NOW.toISOString());
    assert.equal(report.recommendations.filter((r) => r.kind === 'quota').length, 1);
  });

  it('counts the longer durations a lower limit brings where the data shows CPU scaling with memory', async () => {
    // Two services, each run under a 1,024 MB and a 512 MB revision, 150 events of 100 invocations
    // at ~200 MB on each (p99 → a 256 MB limit). `flat` takes 1,000 ms per invocation under both
    // limits; `cpu-bound` takes 2,000 ms under 512 MB: halving memory doubled its duration
    // (elasticity 1), so at 256 MB it would bill as much MB·ms as now and nothing is saved.
    const tenant = (await post('/tenants', { slug: 'ml-cpu', name: 'CPU', currency: 'EUR' })).id;
    assert.equal((await api.call('PUT', `/tenants/${tenant}/pricing-plan`, { body: { pricing_plan_id: currentPlanId, effective_from: '2025-01-01T00:00:00Z' } })).status, 200);
    const rows: Record<string, unknown>[] = [];
    for (const [name, slowAt512] of [
      ['flat', false],
      ['cpu-bound', true],
    ] as const) {
      const service = await post('/services', { tenant_id: tenant, name });
      for (const limit of [1024, 512]) {
        const revision = await post(`/services/${service.id}/revisions`, { name: `${name}-${limit}`, memory_limit_mb: limit });
        const perInvocationMs = slowAt512 && limit === 512 ? 2000 : 1000;
        for (let i = 0; i < 150; i++) {
          rows.push({
            time: new Date(Date.parse('2025-10-01T00:00:00Z') + i * 3_000_000 + (limit === 512 ? 1_000_000 : 0)).toISOString(),
            tenant_id: tenant,
            service_id: service.id,
            revision_id: revision.id,
            source: '/test',
            event_id: randomUUID(),
            invocations: 100,
            duration_ms: String(100 * perInvocationMs),
            memory_mb: String(190 + (i % 21)),
          });
        }
      }
    }
    await api.database.db('usage_raw').insert(rows);
    assert.equal((await api.call('POST', '/metrics/aggregate')).status, 200);
    const res = await api.call<Report>('POST', '/ml/optimize', { body: { tenant_id: tenant } });
    assert.equal(res.status, 200, res.text);
    const memory = res.body.recommendations.filter((r) => r.kind === 'memory_limit');
    assert.deepEqual(
      memory.map((r) => r.service),
      ['flat'],
      JSON.stringify(res.body.recommendations),
    );
    // flat: 15,000 × 1,000 ms × (1,024 + 512) MB × 1e-11 = 0.2304 → 0.23; at 256 MB: 15,000 × 1,000 × 512 × 1e-11 = 0.0768 → 0.08.
    assert.equal(memory[0]?.saving, '0.15');
    assert.equal(memory[0]?.evidence.duration_elasticity, 0);
  });

  it('POST /ml/predict forecasts the horizons asked for and stores them', async () => {
    const res = await api.call<{ forecasts: { horizon: string; forecasted_cost: string; currency: string }[] }>('POST', '/ml/predict', { body: { tenant_id: tenantId, horizons: ['1d', 'month_end'] } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      res.body.forecasts.map((f) => f.horizon),
      ['1d', 'month_end'],
    );
    assert.ok(res.body.forecasts.every((f) => f.currency === 'EUR'));
    const stored = await api.database.db('ml_predictions').where({ tenant_id: tenantId, horizon: '1d' }).first<{ predicted_cost: string } | undefined>();
    assert.ok(stored);
    assert.ok(new Dec(stored.predicted_cost).eq(res.body.forecasts[0]?.forecasted_cost ?? '-1'));
  });

  it('POST /ml/anomalies answers the examined window (nothing abnormal in this sparse, regular usage)', async () => {
    const res = await api.call<{ as_of: string; window_hours: number; anomalies: unknown[] }>('POST', '/ml/anomalies', { body: { tenant_id: tenantId, window_hours: 12 } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.as_of, new Date(Math.floor(NOW.getTime() / HOUR) * HOUR).toISOString());
    assert.equal(res.body.window_hours, 12);
    assert.deepEqual(res.body.anomalies, []);
    assert.equal((await api.call('POST', '/ml/anomalies', { body: { tenant_id: tenantId, window_hours: 0 } })).status, 422);
  });

  it('GET /ml/insights/:tenant_id brings forecasts, anomalies and recommendations together', async () => {
    const res = await api.call<{ forecasts: { horizon: string }[]; anomalies: unknown[]; recommendations: Report }>('GET', `/ml/insights/${tenantId}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.forecasts.length, 5);
    assert.deepEqual(res.body.recommendations.recommendations, report.recommendations);
  });

  it('keeps tenants apart: another tenant’s key gets 404 for insights and 403 for a body naming this tenant', async () => {
    assert.equal((await api.call('GET', `/ml/insights/${tenantId}`, { key: otherKey })).status, 404);
    for (const path of ['/ml/predict', '/ml/anomalies', '/ml/optimize']) {
      assert.equal((await api.call('POST', path, { body: { tenant_id: tenantId }, key: otherKey })).status, 403, path);
    }
    // Its own tenant (implied by the key) is judged, and has no plan in EUR to price with: 409.
    const own = await api.call<Report>('POST', '/ml/optimize', { body: {}, key: otherKey });
    assert.equal(own.status, 409, own.text);
  });
});
