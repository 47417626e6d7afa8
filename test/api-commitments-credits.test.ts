/**
 * Commitments, minimum charges, coupons and credits through the API (real HTTP, PostgreSQL), with
 * the clock pinned in November 2025: a plan with a compute commitment and a minimum charge is
 * created and assigned, usage is aggregated, and the bills show the committed-use discount, the
 * unused commitment and the minimum top-up; a coupon and a prepaid credit are granted, drawn down
 * by final bills only, never below zero, and voided.
 */
import assert from 'node:assert/strict';
import { Decimal } from 'decimal.js';
import { insertRawEvent } from '../src/billing/testing.js';
import { createLogger } from '../src/runtime/logger.js';
import { Aggregator } from '../src/stages/aggregate.js';
import { startTestApi, type TestApi } from './support/api.js';

const now = (): Date => new Date('2025-11-20T12:00:00Z');

interface Line {
  service: string;
  meter: string;
  kind: string;
  credit_id: string | null;
  quantity: string;
  unit_price: string;
  amount: string;
  description: string;
}
interface BillOut {
  id: string;
  status: string;
  subtotal: string;
  tax_amount: string;
  total: string;
  line_items: Line[];
}
interface Credit {
  id: string;
  code: string;
  kind: string;
  used: string;
  remaining: string | null;
  voided_at: string | null;
}

describe('commitments, minimum charges and credits over the API', function () {
  this.timeout(90_000);
  let api: TestApi;

  before(async () => {
    api = await startTestApi({ now });
  });
  after(() => api.close());

  /** A tenant on `plan` with `gbS` GB-s of usage (one 1024 MB event of gbS s) on 2025-10-10. */
  async function tenantWithUsage(slug: string, planId: string, gbS: number): Promise<string> {
    const tenant = await api.call<{ id: string }>('POST', '/tenants', { body: { slug, name: slug, currency: 'USD' } });
    assert.equal(tenant.status, 201, tenant.text);
    const assigned = await api.call('PUT', `/tenants/${tenant.body.id}/pricing-plan`, { body: { pricing_plan_id: planId, effective_from: '2025-09-01T00:00:00Z' } });
    assert.equal(assigned.status, 200, assigned.text);
    if (gbS > 0) {
      const service = await api.call<{ id: string }>('POST', '/services', { body: { tenant_id: tenant.body.id, name: 'fn' } });
      const revision = await api.call<{ id: string }>('POST', `/services/${service.body.id}/revisions`, { body: { name: 'fn-00001' } });
      await insertRawEvent(api.database.db, {
        tenantId: tenant.body.id,
        serviceId: service.body.id,
        revisionId: revision.body.id,
        time: '2025-10-10T10:00:00Z',
        invocations: 1,
        durationMs: String(gbS * 1000),
        memoryMb: '1024',
      });
      await new Aggregator({ db: api.database.db, logger: createLogger('test', 'silent'), batchBuckets: 1000, timeBudgetMs: 30_000 }).run();
    }
    return tenant.body.id;
  }

  const october = (tenantId: string) => api.call<BillOut>('POST', '/billing/calculate', { body: { tenant_id: tenantId, month: '2025-10' } });

  it('bills a compute commitment: covered usage at the committed price, the rest at list, the unused part when take-or-pay', async () => {
    // List 0.0000160 per GB-s; 1 000 GB-s committed at 0.0000120 per GB-s.
    const plan = await api.call<{ id: string; commitments: unknown[]; minimum_charge: string }>('POST', '/pricing/plans', {
      body: { name: 'committed', currency: 'USD', price_per_gb_s: '0.016', commitments: [{ meter: 'compute', quantity_gb_s: '1000', unit_price_per_gb_s: '0.012' }] },
    });
    assert.equal(plan.status, 201, plan.text);
    assert.deepEqual(plan.body.commitments, [{ meter: 'compute', quantity: '1024000000', unit_price: '0.00000001171875', quantity_gb_s: '1000', unit_price_per_gb_s: '0.012', bill_unused: true }]);

    // Over the commitment: 1 500 GB-s = 1 000 at 0.012 + 500 at 0.016 = 12 + 8 = 20.00.
    const over = await october(await tenantWithUsage('commit-over', plan.body.id, 1500));
    assert.equal(over.status, 200, over.text);
    const byKind = (b: BillOut, kind: string) => b.line_items.filter((l) => l.kind === kind);
    assert.deepEqual(byKind(over.body, 'usage').map((l) => l.amount), ['24.00'], '1 500 GB-s at list');
    assert.deepEqual(byKind(over.body, 'commitment').map((l) => [l.service, l.meter, l.amount]), [['*commitment', 'compute', '-4.00']]);
    assert.equal(over.body.total, '20.00');

    // Under it: 600 GB-s = 600 at 0.012 (7.20) + 400 unused at 0.012 (4.80) = 12.00, the commitment's price.
    const under = await october(await tenantWithUsage('commit-under', plan.body.id, 600));
    assert.deepEqual(byKind(under.body, 'commitment').map((l) => [l.service, l.amount]), [['*commitment', '-2.40'], ['*commitment-unused', '4.80']]);
    assert.equal(under.body.total, '12.00');

    // Not take-or-pay: only the discount.
    const soft = await api.call<{ id: string }>('POST', '/pricing/plans', {
      body: { name: 'committed-soft', currency: 'USD', price_per_gb_s: '0.016', commitments: [{ meter: 'compute', quantity_gb_s: '1000', unit_price_per_gb_s: '0.012', bill_unused: false }] },
    });
    const softBill = await october(await tenantWithUsage('commit-soft', soft.body.id, 600));
    assert.equal(softBill.body.total, '7.20');

    // Refused: above the list price, on a meter with a charge model, twice on one meter, GB-s for
    // a count, no price.
    const bad = [
      { price_per_gb_s: '0.016', commitments: [{ meter: 'compute', quantity_gb_s: '10', unit_price_per_gb_s: '0.02' }] },
      { charge_models: { invocations: { model: 'per_unit', unit_price: '0.1' } }, commitments: [{ meter: 'invocations', quantity: '10', unit_price: '0.05' }] },
      { price_per_invocation: '0.1', commitments: [{ meter: 'invocations', quantity: '10', unit_price: '0.05' }, { meter: 'invocations', quantity: '5', unit_price: '0.04' }] },
      { price_per_invocation: '0.1', commitments: [{ meter: 'invocations', quantity_gb_s: '10', unit_price: '0.05' }] },
      { price_per_gb_s: '0.016', commitments: [{ meter: 'compute', quantity_gb_s: '10' }] },
    ];
    for (const fields of bad) {
      const res = await api.call<{ detail: string }>('POST', '/pricing/plans', { body: { name: 'bad-commit', currency: 'USD', ...fields } });
      assert.equal(res.status, 422, JSON.stringify(fields));
      assert.match(res.body.detail, /commitments\[\d\]/);
    }
  });

  it('tops a bill up to the plan’s minimum charge, prorated on a mid-month plan change, and not when usage exceeds it', async () => {
    const plan = await api.call<{ id: string; minimum_charge: string }>('POST', '/pricing/plans', {
      body: { name: 'minimum', currency: 'USD', price_per_gb_s: '0.01', minimum_charge: '25' },
    });
    assert.equal(plan.body.minimum_charge, '25');
    const low = await october(await tenantWithUsage('minimum-low', plan.body.id, 1000));
    const top = low.body.line_items.filter((l) => l.kind === 'minimum');
    assert.deepEqual(top.map((l) => [l.meter, l.amount]), [['minimum', '15.00']]);
    assert.equal(low.body.total, '25.00');
    const high = await october(await tenantWithUsage('minimum-high', plan.body.id, 3000));
    assert.equal(high.body.line_items.filter((l) => l.kind === 'minimum').length, 0);
    assert.equal(high.body.total, '30.00');

    // From 2025-10-16 00:00 UTC on the minimum plan: 16 of 31 days → 25 × 16/31 = 12.903… → 12.90.
    const tenant = await api.call<{ id: string }>('POST', '/tenants', { body: { slug: 'minimum-half', name: 'half', currency: 'USD' } });
    await api.call('PUT', `/tenants/${tenant.body.id}/pricing-plan`, { body: { pricing_plan_id: plan.body.id, effective_from: '2025-10-16T00:00:00Z' } });
    const half = await october(tenant.body.id);
    assert.deepEqual(half.body.line_items.filter((l) => l.kind === 'minimum').map((l) => l.amount), ['12.90']);
    assert.equal(half.body.total, '12.90');
  });

  it('applies a coupon and a prepaid credit: final bills draw the credit down, never below zero; a voided credit stops applying', async () => {
    const plan = await api.call<{ id: string }>('POST', '/pricing/plans', { body: { name: 'credits-plan', currency: 'USD', price_per_gb_s: '0.01' } });
    const tenantId = await tenantWithUsage('credited', plan.body.id, 4000); // October: 40.00
    await api.call('PATCH', `/tenants/${tenantId}`, { body: { tax_rate: '0.2' } });

    const coupon = await api.call<Credit>('POST', `/tenants/${tenantId}/credits`, { body: { code: 'WELCOME10', kind: 'coupon', percent: '10', max_amount_per_bill: '3', valid_from: '2025-10-01T00:00:00Z' } });
    assert.equal(coupon.status, 201, coupon.text);
    const credit = await api.call<Credit>('POST', `/tenants/${tenantId}/credits`, { body: { code: 'PREPAID', kind: 'credit', amount: '50', valid_from: '2025-10-01T00:00:00Z' } });
    assert.equal(credit.status, 201, credit.text);
    assert.deepEqual([credit.body.used, credit.body.remaining], ['0.00', '50.00']);
    // Validation: a coupon without percent, a credit with one, a duplicate code, a tenant key.
    assert.equal((await api.call('POST', `/tenants/${tenantId}/credits`, { body: { code: 'X1', kind: 'coupon' } })).status, 422);
    assert.equal((await api.call('POST', `/tenants/${tenantId}/credits`, { body: { code: 'X2', kind: 'credit', amount: '5', percent: '5' } })).status, 422);
    assert.equal((await api.call('POST', `/tenants/${tenantId}/credits`, { body: { code: 'X3', kind: 'coupon', percent: '101' } })).status, 422);
    assert.equal((await api.call('POST', `/tenants/${tenantId}/credits`, { body: { code: 'PREPAID', kind: 'credit', amount: '5' } })).status, 409);
    const key = await api.call<{ key: string }>('POST', '/api-keys', { body: { name: 'credited', role: 'tenant', tenant_id: tenantId } });
    assert.equal((await api.call('POST', `/tenants/${tenantId}/credits`, { key: key.body.key, body: { code: 'SELF', kind: 'credit', amount: '1000' } })).status, 403);
    assert.equal((await api.call<{ items: Credit[] }>('GET', `/tenants/${tenantId}/credits`, { key: key.body.key })).body.items.length, 2);

    // October: 40.00 − coupon 10% = 4.00 capped at 3.00 − credit min(50, 37) = 37.00 → 0; tax 0.
    const draft = await api.call<BillOut>('POST', '/billing/generate', { body: { tenant_id: tenantId, month: '2025-10' } });
    assert.equal(draft.status, 201, draft.text);
    const credits = draft.body.line_items.filter((l) => l.kind === 'credit');
    assert.deepEqual(credits.map((l) => [l.meter, l.amount, l.credit_id]), [['credit', '-3.00', coupon.body.id], ['credit', '-37.00', credit.body.id]]);
    assert.deepEqual([draft.body.subtotal, draft.body.tax_amount, draft.body.total], ['0.00', '0.00', '0.00']);
    // A draft does not draw the credit down; finalizing does.
    assert.equal((await api.call<{ items: Credit[] }>('GET', `/tenants/${tenantId}/credits`)).body.items.find((c) => c.code === 'PREPAID')?.remaining, '50.00');
    const final = await api.call<BillOut>('POST', '/billing/finalize', { body: { bill_id: draft.body.id } });
    assert.equal(final.status, 200, final.text);
    const after = (await api.call<{ items: Credit[] }>('GET', `/tenants/${tenantId}/credits`)).body.items;
    assert.deepEqual(after.map((c) => [c.code, c.used, c.remaining]), [['WELCOME10', '3.00', null], ['PREPAID', '37.00', '13.00']]);

    // November to date (usage 15.00): coupon 1.50, then the 13.00 left of the credit → 0.50, tax 20% → 0.60.
    const service = (await api.database.db('services').where({ tenant_id: tenantId }).first<{ id: string }>('id'))?.id ?? '';
    const revision = (await api.database.db('revisions').where({ service_id: service }).first<{ id: string }>('id'))?.id ?? '';
    await insertRawEvent(api.database.db, { tenantId, serviceId: service, revisionId: revision, time: '2025-11-05T10:00:00Z', invocations: 1, durationMs: '1500000', memoryMb: '1024' });
    await new Aggregator({ db: api.database.db, logger: createLogger('test', 'silent'), batchBuckets: 1000, timeBudgetMs: 30_000 }).run();
    const november = await api.call<BillOut>('POST', '/billing/calculate', { body: { tenant_id: tenantId } });
    assert.deepEqual(november.body.line_items.filter((l) => l.kind === 'credit').map((l) => l.amount), ['-1.50', '-13.00']);
    assert.deepEqual([november.body.subtotal, november.body.tax_amount, november.body.total], ['0.50', '0.10', '0.60']);
    const sum = november.body.line_items.reduce((s, l) => s.plus(l.amount), new Decimal(0));
    assert.equal(sum.toFixed(2), november.body.subtotal, 'the subtotal is the sum of the rounded lines');

    // Voided: the coupon no longer applies.
    const voided = await api.call<Credit>('POST', `/tenants/${tenantId}/credits/${coupon.body.id}/void`);
    assert.equal(voided.status, 200, voided.text);
    assert.ok(voided.body.voided_at);
    const afterVoid = await api.call<BillOut>('POST', '/billing/calculate', { body: { tenant_id: tenantId } });
    assert.deepEqual(afterVoid.body.line_items.filter((l) => l.kind === 'credit').map((l) => l.amount), ['-13.00']);
    assert.equal(afterVoid.body.subtotal, '2.00');
  });
});
