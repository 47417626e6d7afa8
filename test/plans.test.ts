/** Plan resolution (src/adapters/plans.ts) and the plan columns of migration 0002, on a real database. */
import assert from 'node:assert/strict';
import { NoPlanError, PlanStore, UnknownTenantError } from '../src/adapters/plans.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

describe('plans: storage and resolution', function () {
  let t: TestDatabase;
  let plans: PlanStore;
  let tenantId: string;
  let customId: string;

  before(async function () {
    this.timeout(60_000);
    t = await freshDatabase();
    plans = new PlanStore(t.db);
    const [tenant] = await t.db('tenants').insert({ slug: 'acme', name: 'Acme', currency: 'USD' }).returning<{ id: string }[]>('id');
    tenantId = tenant!.id;
    const [custom] = await t
      .db('pricing_plans')
      .insert({ name: 'custom', version: 1, currency: 'USD', price_per_invocation: '0.0000001', price_per_mb_ms: '0.000000000001', rules: JSON.stringify({ duration_granularity_ms: 100 }) })
      .returning<{ id: string }[]>('id');
    customId = custom!.id;
  });
  after(async () => t?.drop());

  it('seeds one default plan per currency, with the AWS MB·ms price stored to the last digit', async () => {
    const usd = await plans.defaultPlan('USD');
    const rub = await plans.defaultPlan('RUB');
    assert.equal(usd?.name, 'standard-usd');
    assert.equal(rub?.name, 'standard-rub');
    assert.equal(usd.price_per_mb_ms, '0.00000000001627607421875');
    assert.equal(usd.price_per_gb_s, '0.0000166667');
    assert.equal(rub?.rules.memory_step_mb, 128);
    assert.equal(await plans.defaultPlan('EUR'), undefined);
  });

  it('refuses a second default plan for the same currency', async () => {
    await assert.rejects(
      t.db('pricing_plans').insert({ name: 'other-usd', version: 1, currency: 'USD', default_for_currency: true }),
      /pricing_plans_currency_default/,
    );
  });

  it('bills a tenant without assignments on its currency default', async () => {
    const from = new Date('2026-10-01T00:00:00Z');
    const to = new Date('2026-11-01T00:00:00Z');
    const segments = await plans.segments(tenantId, from, to);
    assert.equal(segments.length, 1);
    assert.equal(segments[0]?.plan.name, 'standard-usd');
    assert.equal(segments[0]?.isDefault, true);
    assert.deepEqual([segments[0]?.from, segments[0]?.to], [from, to]);
  });

  it('splits a span at assignment changes and fills the gaps with the default', async () => {
    await t.db('tenant_plan_assignments').insert({ tenant_id: tenantId, plan_id: customId, effective_from: '2026-11-10T00:00:00Z', effective_to: '2026-11-20T00:00:00Z' });
    const segments = await plans.segments(tenantId, new Date('2026-11-01T00:00:00Z'), new Date('2026-12-01T00:00:00Z'));
    assert.deepEqual(
      segments.map((s) => [s.plan.name, s.from.toISOString(), s.to.toISOString(), s.isDefault]),
      [
        ['standard-usd', '2026-11-01T00:00:00.000Z', '2026-11-10T00:00:00.000Z', true],
        ['custom', '2026-11-10T00:00:00.000Z', '2026-11-20T00:00:00.000Z', false],
        ['standard-usd', '2026-11-20T00:00:00.000Z', '2026-12-01T00:00:00.000Z', true],
      ],
    );
    assert.equal((await plans.planAt(tenantId, new Date('2026-11-15T12:00:00Z'))).name, 'custom');
    assert.equal((await plans.planAt(tenantId, new Date('2026-11-20T00:00:00Z'))).name, 'standard-usd');
    assert.equal((await plans.planAt(tenantId, new Date('2026-11-15T12:00:00Z'))).rules.duration_granularity_ms, 100);
  });

  it('names the tenant or the currency when it cannot resolve a plan', async () => {
    await assert.rejects(plans.planAt('00000000-0000-4000-8000-000000000000', new Date()), UnknownTenantError);
    const [eur] = await t.db('tenants').insert({ slug: 'euro', name: 'Euro', currency: 'EUR' }).returning<{ id: string }[]>('id');
    await assert.rejects(plans.planAt(eur!.id, new Date()), (err: unknown) => err instanceof NoPlanError && /EUR/.test(err.message));
  });
});
