/**
 * price over real HTTP, under faas-js-runtime, with real CloudEvents (binary and structured),
 * against a real PostgreSQL (DATABASE_URL) or embedded PGlite. Usage is written into
 * usage_aggregate as the aggregate stage would; bills are checked in the real tables.
 */
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { EventType, billGeneratedData, billsClosedData, budgetExceededData, eventSource } from '../../src/contract/events.js';
import { pingEventType, pingSourceSource } from '../../src/contract/routing.js';
import { assignPlan, createPlan, createService, createTenant, insertHours } from '../../src/billing/testing.js';
import { freshDatabase, viaPort, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { assertProblem, post, postBinary, postStructured } from '../../test/support/http.js';
import { CuttableProxy } from '../../test/support/net.js';
import { priceFactory } from './index.js';

/** The clock of the function under test: 1 November 2026, 12:00 UTC (November in every zone). */
const now = () => new Date('2026-11-01T12:00:00Z');

const closeEvent = (data: Record<string, unknown>) => new CloudEvent<unknown>({ type: EventType.billingClose, source: '/test', data });
const aggregatedEvent = (tenants: unknown) =>
  new CloudEvent<unknown>({ type: EventType.usageAggregated, source: eventSource('aggregate'), data: { windows: 1, tenants, from: null, to: null } });
const tick = () =>
  new CloudEvent<unknown>({ type: pingEventType, source: pingSourceSource('faas-billing', 'billing-close-tick'), datacontenttype: 'application/json', data: { reason: 'tick' } });

describe('price function', function () {
  let t: TestDatabase;
  let fn: RunningFunction;

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase();
    fn = await startFunction('price', priceFactory({ now }), { DATABASE_URL: t.url });
  });
  after(async () => {
    await fn?.close();
    await t?.drop();
  });

  const billCount = async (): Promise<number> => Number((await t.db('bills').count<{ n: string }[]>({ n: '*' }))[0]?.n);

  it('closes one tenant’s October on billing.close and replies bill.generated with the hand-computed total', async () => {
    const tenantId = await createTenant(t.db, { slug: 'acme' });
    const planId = await createPlan(t.db, {
      name: 'e2e',
      currency: 'USD',
      price_per_invocation: '0.0001',
      price_per_mb_ms: '0.000000001',
      price_per_cold_start: '0.0025',
      price_per_cpu_ms: '0.0000005',
      free_tier_invocations: '1000',
      free_tier_mb_ms: '1000000000',
    });
    await assignPlan(t.db, tenantId, planId, '2026-01-01T00:00:00Z');
    const api = await createService(t.db, tenantId, 'api');
    const api2 = { serviceId: api.serviceId, revisionId: (await t.db('revisions').insert({ service_id: api.serviceId, name: 'api-00002' }).returning<{ id: string }[]>('id'))[0]?.id ?? '' };
    const worker = await createService(t.db, tenantId, 'worker');
    await insertHours(t.db, [
      // api, 1 Oct 10:00, two revisions: 600 invocations, 400 000 000 MB·ms, 2 cold starts, 30 000 CPU-ms.
      { tenantId, ...api, start: '2026-10-01T10:00:00Z', invocations: 400, billedMbMs: '300000000', coldStarts: 2, cpuMs: '20000', planId },
      { tenantId, ...api2, start: '2026-10-01T10:00:00Z', invocations: 200, billedMbMs: '100000000', coldStarts: 0, cpuMs: '10000', planId },
      { tenantId, ...worker, start: '2026-10-01T11:00:00Z', invocations: 700, billedMbMs: '800000000', coldStarts: 1, cpuMs: '10000', planId },
      { tenantId, ...api, start: '2026-10-02T09:00:00Z', invocations: 300, billedMbMs: '100000000', coldStarts: 0, cpuMs: '5000', planId },
      // November usage: not part of October's bill.
      { tenantId, ...api, start: '2026-11-01T01:00:00Z', invocations: 999, billedMbMs: '1', planId },
    ]);
    const reply = await postBinary(fn.url, closeEvent({ tenant_id: 'acme', period_start: '2026-10-01T00:00:00Z', period_end: '2026-11-01T00:00:00Z' }));
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.headers.get('ce-type'), EventType.billGenerated);
    assert.equal(reply.headers.get('ce-source'), eventSource('price'));
    const data = billGeneratedData.parse(JSON.parse(reply.text));
    assert.equal(reply.headers.get('ce-id'), `bill-${data.bill_id}-final`);
    // Free tier in time order: invocations api 600 (free), worker 700 (400 free, 300 billed), api
    // 300 (billed); MB·ms api 400M (free), worker 800M (600M free, 200M billed), api 100M (billed).
    //   api    invocations 300 × 0.0001       = 0.03
    //   api    compute     100M × 0.000000001 = 0.10
    //   api    cold starts 2 × 0.0025         = 0.005  → 0.01 (half-up)
    //   api    cpu         35 000 × 0.0000005 = 0.0175 → 0.02
    //   worker invocations 300 × 0.0001       = 0.03
    //   worker compute     200M × 0.000000001 = 0.20
    //   worker cold starts 1 × 0.0025         = 0.0025 → 0.00
    //   worker cpu         10 000 × 0.0000005 = 0.005  → 0.01
    // total = sum of rounded lines = 0.40 (the unrounded sum is 0.39).
    assert.deepEqual(data, {
      bill_id: data.bill_id,
      tenant_id: tenantId,
      status: 'final',
      total: '0.40',
      currency: 'USD',
      period_start: '2026-10-01T00:00:00.000Z',
      period_end: '2026-11-01T00:00:00.000Z',
    });
    const bill = (await t.db('bills').where({ id: data.bill_id }).first()) as { status: string; total_amount: string; total_unrounded: string };
    assert.deepEqual([bill.status, bill.total_amount, bill.total_unrounded], ['final', '0.4000', '0.390000000000000000000000000000']);
    const lines = await t.db('bill_line_items').where({ bill_id: data.bill_id }).orderBy('position').select<Record<string, string>[]>('meter', 'quantity', 'free_quantity', 'amount');
    assert.deepEqual(
      lines.map((l) => [l.meter, Number(l.quantity), Number(l.free_quantity), l.amount]),
      [
        ['invocations', 900, 600, '0.0300'],
        ['compute', 500_000_000, 400_000_000, '0.1000'],
        ['cold_starts', 2, 0, '0.0100'],
        ['cpu', 35_000, 0, '0.0200'],
        ['invocations', 700, 400, '0.0300'],
        ['compute', 800_000_000, 600_000_000, '0.2000'],
        ['cold_starts', 1, 0, '0.0000'],
        ['cpu', 10_000, 0, '0.0100'],
      ],
    );

    // The same close again (a redelivery) changes nothing and repeats the same event id.
    const bills = await billCount();
    const again = await postStructured(fn.url, closeEvent({ tenant_id: tenantId, period_start: '2026-10-01T00:00:00Z' }));
    assert.equal(again.status, 200, again.text);
    assert.equal(again.headers.get('ce-id'), `bill-${data.bill_id}-final`);
    assert.deepEqual(billGeneratedData.parse(JSON.parse(again.text)), data);
    assert.equal(await billCount(), bills);
  });

  it('a PingSource tick closes every tenant’s previous month in its own time zone, and a second tick changes nothing', async () => {
    const tokyo = await createTenant(t.db, { slug: 'tokyo', currency: 'RUB', timezone: 'Asia/Tokyo' });
    const la = await createTenant(t.db, { slug: 'la', timezone: 'America/Los_Angeles' });
    const first = await postBinary(fn.url, tick());
    assert.equal(first.status, 200, first.text);
    // acme's October was closed by the previous test: the reply names the two bills this tick finalized.
    assert.equal(first.headers.get('ce-type'), EventType.billsClosed);
    const closed = billsClosedData.parse(first.json);
    assert.deepEqual(closed.bills.map((b) => [b.tenant_id, b.status, b.total]).sort(), [[tokyo, 'final', '0.00'], [la, 'final', '0.00']].sort());
    const periods = await t
      .db('bills')
      .whereIn('tenant_id', [tokyo, la])
      .select<{ tenant_id: string; period_start: Date; period_end: Date; status: string }[]>('tenant_id', 'period_start', 'period_end', 'status');
    const byTenant = new Map(periods.map((p) => [p.tenant_id, [p.period_start.toISOString(), p.period_end.toISOString(), p.status]]));
    assert.deepEqual(byTenant.get(tokyo), ['2026-09-30T15:00:00.000Z', '2026-10-31T15:00:00.000Z', 'final']);
    assert.deepEqual(byTenant.get(la), ['2026-10-01T07:00:00.000Z', '2026-11-01T07:00:00.000Z', 'final']);
    const second = await postBinary(fn.url, tick());
    assert.deepEqual(second.json, { closed: 0, already_final: 3, skipped: 0, failed: [], total_by_currency: {} });
    const metrics = await (await fetch(`${fn.url}/metrics`)).text();
    assert.match(metrics, /^faasbilling_bills_closed_total\{function="price"\} [3-9]/m);
  });

  it('usage.aggregated rewrites the month-to-date running cost of the tenants it names', async () => {
    const tenantId = await createTenant(t.db, { slug: 'running' });
    const service = await createService(t.db, tenantId, 'api');
    const usd = (await t.db('pricing_plans').where({ name: 'standard-usd' }).first()) as { id: string };
    // 3 000 000 invocations on the USD seed plan: 1 000 000 free, 2 000 000 × 0.0000002 = 0.40.
    await insertHours(t.db, [{ tenantId, ...service, start: '2026-11-01T03:00:00Z', invocations: 3_000_000, billedMbMs: '0', planId: usd.id }]);
    const reply = await postStructured(fn.url, aggregatedEvent([tenantId]));
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json, { updated: 1, failed: [] });
    const row = (await t.db('tenant_running_costs').where({ tenant_id: tenantId }).first()) as { total: string; period_start: Date };
    assert.deepEqual([row.total, row.period_start.toISOString()], ['0.4000', '2026-11-01T00:00:00.000Z']);
  });

  it('usage.aggregated announces each budget threshold crossed once per period (faasbilling.budget.exceeded.v1)', async () => {
    const tenantId = await createTenant(t.db, { slug: 'budgeted' });
    const service = await createService(t.db, tenantId, 'api');
    const usd = (await t.db('pricing_plans').where({ name: 'standard-usd' }).first()) as { id: string };
    await t.db('budgets').insert({ tenant_id: tenantId, amount: '0.50', thresholds: [50, 80, 100] });
    // 3 000 000 invocations → 0.40 = 80% of 0.50: thresholds 50 and 80 are crossed.
    await insertHours(t.db, [{ tenantId, ...service, start: '2026-11-01T03:00:00Z', invocations: 3_000_000, billedMbMs: '0', planId: usd.id }]);
    const first = await postStructured(fn.url, aggregatedEvent([tenantId]));
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('ce-type'), EventType.budgetExceeded);
    const data = budgetExceededData.parse(first.json);
    assert.deepEqual(
      data.alerts.map((a) => [a.threshold, a.amount, a.limit, a.currency, a.period_start]),
      [
        [50, '0.40', '0.50', 'USD', '2026-11-01T00:00:00.000Z'],
        [80, '0.40', '0.50', 'USD', '2026-11-01T00:00:00.000Z'],
      ],
    );
    // Not yet handled by notifications: announced again, the same alerts (an outbox).
    const again = await postStructured(fn.url, aggregatedEvent([tenantId]));
    assert.deepEqual(budgetExceededData.parse(again.json).alerts.map((a) => a.alert_id), data.alerts.map((a) => a.alert_id));
    // Once handled, the same figures announce nothing.
    await t.db('budget_alerts').where({ tenant_id: tenantId }).update({ notified_at: t.db.fn.now() });
    const quiet = await postStructured(fn.url, aggregatedEvent([tenantId]));
    assert.deepEqual(quiet.json, { updated: 1, failed: [] });
    // More usage (0.60 = 120%): only 100 is new.
    await insertHours(t.db, [{ tenantId, ...service, start: '2026-11-01T04:00:00Z', invocations: 1_000_000, billedMbMs: '0', planId: usd.id }]);
    const third = await postStructured(fn.url, aggregatedEvent([tenantId]));
    assert.deepEqual(budgetExceededData.parse(third.json).alerts.map((a) => [a.threshold, a.amount]), [[100, '0.60']]);
    assert.equal(Number((await t.db('budget_alerts').where({ tenant_id: tenantId }).count<{ n: string }[]>({ n: '*' }))[0]?.n), 3);
  });

  it('answers bad input with 422 problems and never crashes', async () => {
    const bills = await billCount();
    assert.match(assertProblem(await postBinary(fn.url, aggregatedEvent('acme')), 422).detail, /faasbilling.usage.aggregated.v1 data is not valid: tenants/);
    assert.match(assertProblem(await postBinary(fn.url, closeEvent({ tenant_id: 'ghost' })), 422).detail, /tenant "ghost" does not exist/);
    assert.match(assertProblem(await postBinary(fn.url, closeEvent({ tenant: 'acme' })), 422).detail, /data is not valid/);
    assert.match(assertProblem(await postBinary(fn.url, closeEvent({ period_start: '2026-10-15T00:00:00Z' })), 422).detail, /first instant of that month/);
    assert.match(
      assertProblem(await postBinary(fn.url, closeEvent({ tenant_id: 'tokyo', period_start: '2026-10-01T00:00:00Z' })), 422).detail,
      /calendar month in the tenant's time zone Asia\/Tokyo/,
    );
    const unknownType = new CloudEvent<unknown>({ type: 'faasbilling.nothing.v1', source: '/test', data: {} });
    assert.match(assertProblem(await postBinary(fn.url, unknownType), 422).detail, /does not handle events of type "faasbilling.nothing.v1"/);
    assert.match(assertProblem(await post(fn.url, { 'content-type': 'application/json' }, '{"tenant_id":"acme"}'), 422).detail, /takes CloudEvents/);
    const mixed = assertProblem(await postBinary(fn.url, aggregatedEvent(['ghost', 'running'])), 422);
    assert.match(mixed.detail, /unknown tenants "ghost"; the running cost of the 1 other tenants was updated/);
    assert.equal(await billCount(), bills);
    assert.equal((await fetch(`${fn.url}/health/liveness`)).status, 200);
  });

  it('answers a retryable 503 while PostgreSQL is unreachable', async function () {
    this.timeout(60_000);
    const proxy = await CuttableProxy.start(t.address);
    const cut = await startFunction('price', priceFactory({ now }), { DATABASE_URL: viaPort(t.url, proxy.port) });
    try {
      await proxy.cut();
      const problem = assertProblem(await postBinary(cut.url, tick()), 503);
      assert.match(problem.detail, /PostgreSQL is not reachable; nothing was billed/);
    } finally {
      await cut.close();
      await proxy.cut();
    }
  });
});
