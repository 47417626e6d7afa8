/**
 * Price variants through the API and the real pipeline tables (PostgreSQL): a plan whose compute
 * is cheaper on arm64 (event label architecture=arm64), for spot invocations (priority=spot), at
 * weekends and at night on the tenant's clock (Europe/Berlin), with a boundary inside an hour so
 * usage is split at the exact instant. The bill's lines carry their variant, multipliers combine,
 * the free tier is consumed in time order across variants, and a finalized bill's variants are
 * kept apart when late usage is reconciled.
 */
import assert from 'node:assert/strict';
import { insertRawEvent } from '../src/billing/testing.js';
import { createLogger } from '../src/runtime/logger.js';
import { Aggregator } from '../src/stages/aggregate.js';
import { startTestApi, type TestApi } from './support/api.js';

const now = (): Date => new Date('2025-11-20T12:00:00Z');

interface Line {
  service: string;
  meter: string;
  kind: string;
  variant: string | null;
  quantity: string;
  free_quantity: string;
  unit_price: string;
  amount: string;
  is_adjustment: boolean;
}
interface BillOut {
  id: string;
  total: string;
  line_items: Line[];
}

describe('price variants (architecture, spot, time of day) over the API', function () {
  this.timeout(90_000);
  let api: TestApi;
  let tenantId: string;
  let serviceId: string;
  let revisionId: string;

  before(async () => {
    api = await startTestApi({ now });
  });
  after(() => api.close());

  /** `gbS` GB-s in one 1024 MB invocation at `time`. */
  const event = (time: string, gbS: number, labels: Record<string, string> = {}) =>
    insertRawEvent(api.database.db, { tenantId, serviceId, revisionId, time, invocations: 1, durationMs: String(gbS * 1000), memoryMb: '1024', labels });
  const aggregate = () => new Aggregator({ db: api.database.db, logger: createLogger('test', 'silent'), batchBuckets: 1000, timeBudgetMs: 30_000 }).run();

  it('prices each invocation by its variant, splits usage at a schedule boundary inside an hour, and reconciles variant by variant', async () => {
    const plan = await api.call<{ id: string; price_variants: unknown }>('POST', '/pricing/plans', {
      body: {
        name: 'variants',
        currency: 'EUR',
        price_per_gb_s: '0.01',
        free_tier_gb_s: '100',
        price_variants: {
          architectures: { arm64: { compute: '0.8' } },
          spot: { compute: '0.6' },
          schedule: [
            { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '22:30', to: '06:00', multiplier: '0.5', label: 'night' },
            { days: ['sat', 'sun'], from: '00:00', to: '24:00', multiplier: '0.7', label: 'weekend' },
          ],
        },
      },
    });
    assert.equal(plan.status, 201, plan.text);
    const tenant = await api.call<{ id: string }>('POST', '/tenants', { body: { slug: 'variants', name: 'Variants', currency: 'EUR', timezone: 'Europe/Berlin' } });
    tenantId = tenant.body.id;
    await api.call('PUT', `/tenants/${tenantId}/pricing-plan`, { body: { pricing_plan_id: plan.body.id, effective_from: '2025-09-01T00:00:00Z' } });
    const service = await api.call<{ id: string }>('POST', '/services', { body: { tenant_id: tenantId, name: 'fn' } });
    serviceId = service.body.id;
    revisionId = (await api.call<{ id: string }>('POST', `/services/${serviceId}/revisions`, { body: { name: 'fn-00001' } })).body.id;

    // October 2025 in Berlin (CEST, UTC+2 until 26 Oct):
    await event('2025-10-08T08:00:00Z', 1100); // Wed 10:00, x86: 100 free, 1 000 × 0.01 = 10.00
    await event('2025-10-08T09:00:00Z', 1000, { architecture: 'arm64' }); // × 0.8 = 8.00
    await event('2025-10-08T10:00:00Z', 1000, { priority: 'spot' }); // × 0.6 = 6.00
    await event('2025-10-11T10:00:00Z', 1000); // Sat 12:00: × 0.7 = 7.00
    await event('2025-10-08T20:29:00Z', 100); // Wed 22:29, before the night: 1.00
    await event('2025-10-08T20:31:00Z', 100); // Wed 22:31, same UTC hour, night: × 0.5 = 0.50
    await event('2025-10-12T10:00:00Z', 1000, { architecture: 'arm64', priority: 'spot' }); // Sun: 0.8 × 0.6 × 0.7 = 0.336 → 3.36
    await event('2025-10-09T10:00:00Z', 1000, { architecture: 'riscv' }); // an architecture the plan does not price: list, 10.00
    await aggregate();

    const draft = await api.call<BillOut>('POST', '/billing/generate', { body: { tenant_id: tenantId, month: '2025-10' } });
    assert.equal(draft.status, 201, draft.text);
    const lines = draft.body.line_items.map((l) => [l.variant, l.quantity === '0' ? '' : String(Number(l.quantity) / 1_024_000), l.free_quantity === '0' ? '0' : String(Number(l.free_quantity) / 1_024_000), l.amount]);
    assert.deepEqual(
      lines.sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      [
        ['arm64', '1000', '0', '8.00'],
        ['arm64 · spot · weekend', '1000', '0', '3.36'],
        ['night', '100', '0', '0.50'],
        ['spot', '1000', '0', '6.00'],
        ['weekend', '1000', '0', '7.00'],
        [null, '2200', '100', '21.00'],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    assert.equal(draft.body.total, '45.86');
    const night = draft.body.line_items.find((l) => l.variant === 'night');
    assert.equal(night?.unit_price, '0.000000004882812500'.replace(/0+$/, ''), 'per MB·ms: 0.01 / 1 024 000 × 0.5');

    // Finalize, then late spot usage for October: the adjustment is for the spot variant only.
    assert.equal((await api.call('POST', '/billing/finalize', { body: { bill_id: draft.body.id } })).status, 200);
    await event('2025-10-20T10:00:00Z', 500, { priority: 'spot' }); // Mon: 500 × 0.006 = 3.00
    await aggregate();
    const november = await api.call<BillOut>('POST', '/billing/calculate', { body: { tenant_id: tenantId } });
    assert.equal(november.status, 200, november.text);
    const adjustments = november.body.line_items.filter((l) => l.is_adjustment);
    assert.deepEqual(adjustments.map((l) => [l.variant, l.amount]), [['spot', '3.00']]);
  });

  it('refuses variants on a plan with charge models or commitments, and an unknown meter', async () => {
    const bad = [
      { charge_models: { compute: { model: 'per_unit', unit_price: '0.00000001' } }, price_variants: { spot: { compute: '0.5' } } },
      { price_per_gb_s: '0.01', commitments: [{ meter: 'compute', quantity_gb_s: '10', unit_price_per_gb_s: '0.005' }], price_variants: { spot: { compute: '0.5' } } },
      { price_per_gb_s: '0.01', price_variants: { schedule: [{ days: ['mon'], from: '10:00', to: '10:00', multiplier: '0.5' }] } },
    ];
    for (const fields of bad) {
      const res = await api.call<{ detail: string }>('POST', '/pricing/plans', { body: { name: 'bad-variants', currency: 'EUR', ...fields } });
      assert.equal(res.status, 422, JSON.stringify(fields));
      assert.match(res.body.detail, /price_variants/);
    }
  });
});
