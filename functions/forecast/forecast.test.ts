/**
 * forecast over real HTTP, under faas-js-runtime, against a real database: three weeks of hourly
 * usage_aggregate rows for a tenant, forecasts on demand, by forecast.tick and by the daily
 * PingSource, checked in ml_predictions against bills computed here with the pricing core.
 */
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { EventType, eventSource } from '../../src/contract/events.js';
import { billingNamespace, pingEventType, pingSourceSource } from '../../src/contract/routing.js';
import { FORECAST_MODEL_VERSION, FORECAST_SERVICE } from '../../src/core/forecast/index.js';
import { randomSource } from '../../src/core/forecast/synthetic.js';
import { Dec, computeBill, parsePlan, type Plan, type UsageChunk } from '../../src/core/pricing/index.js';
import { Forecaster, forecastHorizons, forecastResponseSchema, type ForecastResponse, type ForecastRunSummary } from '../../src/stages/forecast.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { assertProblem, post, postBinary, postStructured, type Reply } from '../../test/support/http.js';
import { createForecast } from './index.js';

const HOUR = 3_600_000;
/** Tenant A (Europe/Berlin): history ends here, mid-March 2025. */
const asOf = Date.parse('2025-03-19T10:00:00Z');
const historyHours = 21 * 24;
/** March 2025 in Berlin: from local midnight (CET) to local midnight (CEST, after the DST change). */
const march = { start: '2025-02-28T23:00:00.000Z', end: '2025-03-31T22:00:00.000Z' };
const bands = ['expected', 'lower_80', 'upper_80', 'lower_95', 'upper_95'] as const;
const meterKeys = ['invocations', 'compute', 'cold_starts', 'cpu'] as const;

interface Generated extends UsageChunk {
  serviceId: string;
  revisionId: string;
}

interface PredictionRow {
  id: string;
  tenant_id: string;
  horizon: string;
  horizon_hours: number;
  horizon_days: number;
  as_of: Date;
  period_start: Date;
  period_end: Date;
  currency: string;
  predicted_cost: string;
  predicted_cost_lower_80: string;
  predicted_cost_upper_80: string;
  predicted_cost_lower_95: string;
  predicted_cost_upper_95: string;
  actual_cost: string | null;
  predicted_invocations: string;
  confidence: string;
  model_name: string;
  model_version: string;
  backtest_mase: string | null;
  components: ForecastResponse['components'];
}

const d = (value: string | number): Dec => new Dec(value);

describe('forecast function', function () {
  this.timeout(120_000);
  let database: TestDatabase;
  let fn: RunningFunction;
  let plan: Plan;
  /** Tenant A's usage rows as written, per service and hour. */
  let usageA: Generated[];
  const tenant = { a: '', b: '', c: '' };

  async function insertTenant(slug: string, timezone: string, currency: string): Promise<string> {
    const [row] = await database.db('tenants').insert({ slug, name: slug, timezone, currency }).returning<{ id: string }[]>('id');
    assert.ok(row);
    return row.id;
  }

  async function insertService(tenantId: string, name: string): Promise<{ serviceId: string; revisionId: string }> {
    const [service] = await database.db('services').insert({ tenant_id: tenantId, name }).returning<{ id: string }[]>('id');
    assert.ok(service);
    const [revision] = await database.db('revisions').insert({ service_id: service.id, name: `${name}-00001` }).returning<{ id: string }[]>('id');
    assert.ok(revision);
    return { serviceId: service.id, revisionId: revision.id };
  }

  /** Hourly usage with a daily shape, quieter weekends and noise, for `hours` hours before `end`. */
  function hourlyUsage(seed: number, service: string, ids: { serviceId: string; revisionId: string }, end: number, hours: number, scale: number): Generated[] {
    const random = randomSource(seed);
    return Array.from({ length: hours }, (_, i) => {
      const start = end - (hours - i) * HOUR;
      const date = new Date(start);
      const weekend = date.getUTCDay() === 0 || date.getUTCDay() === 6 ? 0.6 : 1;
      const invocations = Math.max(0, Math.round(scale * weekend * (800 + 400 * Math.sin((2 * Math.PI * date.getUTCHours()) / 24)) + 30 * random.normal()));
      return {
        ...ids,
        service,
        start: date.toISOString(),
        invocations,
        billedMbMs: (invocations * 19_200.5).toFixed(3),
        coldStarts: Math.floor(invocations / 100),
        cpuMs: (invocations * 40.5).toFixed(3),
      };
    });
  }

  async function insertAggregates(tenantId: string, rows: readonly Generated[]): Promise<void> {
    const records = rows.map((r) => ({
      window_start: r.start,
      window_end: new Date(Date.parse(r.start) + HOUR).toISOString(),
      window_size: '1h',
      tenant_id: tenantId,
      service_id: r.serviceId,
      revision_id: r.revisionId,
      invocations: r.invocations,
      billed_mb_ms: r.billedMbMs,
      mb_ms: r.billedMbMs,
      cold_starts: r.coldStarts,
      total_cpu_ms: r.cpuMs,
      events: r.invocations,
    }));
    for (let i = 0; i < records.length; i += 500) await database.db('usage_aggregate').insert(records.slice(i, i + 500));
  }

  const rowsOf = async (tenantId: string): Promise<PredictionRow[]> =>
    (await database.db('ml_predictions').where({ tenant_id: tenantId }).orderBy(['as_of', 'horizon'])) as PredictionRow[];

  /** Tenant A's month-to-date usage as the pricing core takes it (computed here, not read back). */
  const monthToDate = (): UsageChunk[] =>
    usageA
      .filter((r) => Date.parse(r.start) >= Date.parse(march.start) && Date.parse(r.start) < asOf)
      .map(({ service, start, invocations, billedMbMs, coldStarts, cpuMs }) => ({ service, start, invocations, billedMbMs, coldStarts, cpuMs }));

  /** A chunk of forecast usage at as_of with the given quantity of each meter. */
  const forecastChunk = (quantity: (m: (typeof meterKeys)[number]) => string): UsageChunk => ({
    service: FORECAST_SERVICE,
    start: new Date(asOf).toISOString(),
    invocations: quantity('invocations'),
    billedMbMs: quantity('compute'),
    coldStarts: quantity('cold_starts'),
    cpuMs: quantity('cpu'),
  });

  function summaryOf(reply: Reply): ForecastRunSummary {
    assert.equal(reply.status, 200, reply.text);
    assert.match(reply.headers.get('content-type') ?? '', /^application\/json/);
    return reply.json as ForecastRunSummary;
  }

  const onDemand = (body: unknown): Promise<Reply> => post(fn.url, { 'content-type': 'application/json' }, JSON.stringify(body));

  before(async () => {
    database = await freshDatabase();
    const [planRow] = await database
      .db('pricing_plans')
      .insert({
        name: 'forecast-test',
        currency: 'USD',
        // A thousand times real prices, so that the intervals of a day's cost span whole cents.
        price_per_invocation: '0.0002',
        price_per_mb_ms: '0.00000001627607421875',
        price_per_cold_start: '0.01',
        price_per_cpu_ms: '0.000001',
        free_tier_invocations: 600_000,
        free_tier_mb_ms: '5120000000',
      })
      .returning<Record<string, unknown>[]>('*');
    plan = parsePlan(planRow);

    tenant.a = await insertTenant('forecast-a', 'Europe/Berlin', 'USD');
    await database.db('tenant_plan_assignments').insert({ tenant_id: tenant.a, plan_id: plan.id, effective_from: '2025-01-01T00:00:00Z' });
    const api = await insertService(tenant.a, 'api');
    const worker = await insertService(tenant.a, 'worker');
    usageA = [...hourlyUsage(1, 'api', api, asOf, historyHours, 1), ...hourlyUsage(2, 'worker', worker, asOf, historyHours, 0.5)];
    await insertAggregates(tenant.a, usageA);

    // B and C have recent usage, so the scheduled runs (which forecast from now) find them; C bills
    // in EUR, which has no default plan, so it cannot be priced.
    const currentHour = Math.floor(Date.now() / HOUR) * HOUR;
    tenant.b = await insertTenant('forecast-b', 'UTC', 'USD');
    await insertAggregates(tenant.b, hourlyUsage(3, 'web', await insertService(tenant.b, 'web'), currentHour, 72, 0.2));
    tenant.c = await insertTenant('forecast-c', 'UTC', 'EUR');
    await insertAggregates(tenant.c, hourlyUsage(4, 'job', await insertService(tenant.c, 'job'), currentHour, 24, 0.1));

    fn = await startFunction('forecast', createForecast, { DATABASE_URL: database.url });
  });

  after(async () => {
    await fn.close();
    await database.drop();
  });

  describe('on demand for one tenant', () => {
    let summary: ForecastRunSummary;
    let rows: PredictionRow[];

    before(async () => {
      // Any instant inside the 10:00 window forecasts as of 10:00.
      summary = summaryOf(await onDemand({ tenant_id: tenant.a, as_of: '2025-03-19T10:25:00Z' }));
      rows = await rowsOf(tenant.a);
    });

    it('stores one prediction per horizon and answers with the seed ForecastResponse of each', () => {
      assert.deepEqual(summary.horizons, [...forecastHorizons]);
      assert.equal(summary.tenants, 1);
      assert.equal(summary.predictions, 5);
      assert.deepEqual(summary.failed, []);
      assert.equal(summary.forecasts?.length, 5);
      for (const f of summary.forecasts ?? []) forecastResponseSchema.parse(f);
      assert.deepEqual(rows.map((r) => r.horizon).sort(), [...forecastHorizons].sort());
      for (const r of rows) {
        assert.equal(r.as_of.toISOString(), '2025-03-19T10:00:00.000Z');
        assert.equal(r.currency, 'USD');
        assert.equal(r.model_version, FORECAST_MODEL_VERSION);
        assert.ok(r.model_name.length > 0);
      }
      const byHorizon = new Map(rows.map((r) => [r.horizon, r]));
      assert.deepEqual(
        ['1h', '1d', '1w', '30d'].map((h) => [byHorizon.get(h)?.horizon_hours, byHorizon.get(h)?.period_end.toISOString()]),
        [
          [1, '2025-03-19T11:00:00.000Z'],
          [24, '2025-03-20T10:00:00.000Z'],
          [168, '2025-03-26T10:00:00.000Z'],
          [720, '2025-04-18T10:00:00.000Z'],
        ],
      );
    });

    it('keeps money in NUMERIC columns, read back as decimal strings', async () => {
      const columns = ['predicted_cost', 'predicted_cost_lower_80', 'predicted_cost_upper_80', 'predicted_cost_lower_95', 'predicted_cost_upper_95', 'actual_cost'];
      const types = await database.db.raw<{ rows: { column_name: string; data_type: string }[] }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'ml_predictions' AND column_name = ANY(?)`,
        [columns],
      );
      assert.deepEqual(new Set(types.rows.map((t) => t.data_type)), new Set(['numeric']));
      assert.equal(types.rows.length, columns.length);
      for (const r of rows) {
        for (const c of columns.slice(0, 5)) assert.match(r[c as keyof PredictionRow] as string, /^\d+\.\d{4}$/, `${r.horizon}.${c}`);
        for (const m of meterKeys) for (const b of bands) assert.match(r.components[m].cost[b], /^\d+\.\d{2}$/);
      }
    });

    it('puts month-to-date actual (billed independently here) plus the forecast of the rest in the month-end prediction', () => {
      const row = rows.find((r) => r.horizon === 'month_end');
      assert.ok(row);
      assert.equal(row.period_start.toISOString(), march.start);
      assert.equal(row.period_end.toISOString(), march.end);
      assert.equal(row.horizon_hours, 300); // 10:00 on the 19th to 22:00 UTC on the 31st
      const actual = computeBill(plan, monthToDate(), march);
      assert.ok(d(actual.total).gt(0));
      assert.ok(row.actual_cost !== null && d(row.actual_cost).eq(actual.total), `${row.actual_cost} vs ${actual.total}`);
      const columnOf = { expected: 'predicted_cost', lower_80: 'predicted_cost_lower_80', upper_80: 'predicted_cost_upper_80', lower_95: 'predicted_cost_lower_95', upper_95: 'predicted_cost_upper_95' } as const;
      for (const band of bands) {
        // The forecast part is what the components hold beyond the actual usage.
        const rest = forecastChunk((m) => d(row.components[m].quantity[band]).minus(row.components[m].actual?.quantity ?? 'NaN').toFixed());
        const expected = computeBill(plan, [...monthToDate(), rest], march).total;
        assert.ok(d(row[columnOf[band]]).eq(expected), `${band}: ${row[columnOf[band]]} vs ${expected}`);
      }
      assert.ok(d(row.predicted_cost).gt(row.actual_cost), 'the rest of the month costs something');
    });

    it('prices 1h, 1d and 1w as the marginal cost given the month-to-date usage', () => {
      const actual = computeBill(plan, monthToDate(), march);
      for (const horizon of ['1h', '1d', '1w']) {
        const row = rows.find((r) => r.horizon === horizon);
        assert.ok(row);
        assert.equal(row.actual_cost, null);
        const withForecast = computeBill(plan, [...monthToDate(), forecastChunk((m) => row.components[m].quantity.expected)], march);
        assert.ok(d(row.predicted_cost).eq(d(withForecast.total).minus(actual.total)), `${horizon}: ${row.predicted_cost}`);
      }
    });

    it('orders every bound: lower 95% ≤ lower 80% ≤ forecast ≤ upper 80% ≤ upper 95%, wider for longer horizons', () => {
      for (const r of rows) {
        const chain = [r.predicted_cost_lower_95, r.predicted_cost_lower_80, r.predicted_cost, r.predicted_cost_upper_80, r.predicted_cost_upper_95].map(d);
        chain.slice(1).forEach((v, i) => assert.ok((chain[i] as Dec).lte(v), `${r.horizon}: ${chain.join(' ≤ ')}`));
        assert.ok(d(r.confidence).gte(0) && d(r.confidence).lte(1));
        for (const m of meterKeys) {
          const q = r.components[m].quantity;
          assert.ok(d(q.lower_95).lte(q.lower_80) && d(q.lower_80).lte(q.expected) && d(q.expected).lte(q.upper_80) && d(q.upper_80).lte(q.upper_95), `${r.horizon}/${m}`);
          // The median lies in the 80% band, in quantity and in cost.
          const c = r.components[m].cost;
          assert.ok(d(q.lower_80).lte(q.median) && d(q.median).lte(q.upper_80), `${r.horizon}/${m} median ${q.median}`);
          assert.ok(d(c.lower_80).lte(c.median) && d(c.median).lte(c.upper_80), `${r.horizon}/${m} median cost ${c.median}`);
        }
      }
      for (const f of summary.forecasts ?? []) {
        assert.ok(d(f.interval_80.lower).lte(f.median_cost) && d(f.median_cost).lte(f.interval_80.upper), `${f.horizon}: median cost ${f.median_cost}`);
      }
      const width = (h: string): Dec => {
        const r = rows.find((x) => x.horizon === h);
        assert.ok(r);
        return d(r.predicted_cost_upper_95).minus(r.predicted_cost_lower_95);
      };
      assert.ok(width('1h').lte(width('1d')) && width('1d').lt(width('1w')), [width('1h'), width('1d'), width('1w')].join(' '));
      const week = rows.find((x) => x.horizon === '1w');
      assert.ok(week && d(week.predicted_cost).gt(0));
      assert.ok(d(week.predicted_invocations).gt(100_000), `a week of about 1 000 calls an hour: ${week.predicted_invocations}`);
    });

    it('replaces its rows when the same forecast runs again', async () => {
      const again = summaryOf(await onDemand({ tenant_id: tenant.a, as_of: '2025-03-19T10:59:59Z' }));
      assert.equal(again.predictions, 5);
      const after = await rowsOf(tenant.a);
      assert.equal(after.length, 5);
      const strip = (r: PredictionRow) => ({ ...r, updated_at: undefined });
      assert.deepEqual(after.map(strip), rows.map(strip));
    });

    it('answers forecastCost(tenant, period) with the stored forecast of that horizon', async () => {
      const forecaster = new Forecaster({ db: database.db });
      const week = await forecaster.forecastCost(tenant.a, '1w', new Date(asOf + 17 * 60_000));
      forecastResponseSchema.parse(week);
      const stored = (await rowsOf(tenant.a)).find((r) => r.horizon === '1w');
      assert.ok(stored);
      assert.equal(week.horizon, '1w');
      assert.ok(d(week.forecasted_cost).eq(stored.predicted_cost));
      assert.ok(d(week.interval_80.lower).eq(stored.predicted_cost_lower_80) && d(week.interval_95.upper).eq(stored.predicted_cost_upper_95));
      assert.deepEqual(Object.keys(week.components), [...meterKeys]);
      assert.equal((await rowsOf(tenant.a)).length, 5);
    });
  });

  describe('a plan with a minimum charge the usage stays under', () => {
    it('forecasts the month at the minimum and the next day at no extra cost', async () => {
      const [minimumPlan] = await database
        .db('pricing_plans')
        .insert({ name: 'forecast-minimum', currency: 'USD', price_per_invocation: '0.0002', free_tier_invocations: 0, free_tier_mb_ms: '0', minimum_charge: '1000000' })
        .returning<{ id: string }[]>('id');
      assert.ok(minimumPlan);
      const tenantId = await insertTenant('forecast-minimum', 'UTC', 'USD');
      await database.db('tenant_plan_assignments').insert({ tenant_id: tenantId, plan_id: minimumPlan.id, effective_from: '2025-01-01T00:00:00Z' });
      await insertAggregates(tenantId, hourlyUsage(21, 'api', await insertService(tenantId, 'api'), asOf, historyHours, 1));
      const forecasts = summaryOf(await onDemand({ tenant_id: tenantId, as_of: new Date(asOf).toISOString(), horizons: ['1d', 'month_end'] })).forecasts ?? [];
      const byHorizon = new Map(forecasts.map((f) => [f.horizon, f]));
      // A month of about 1 000 calls an hour at 0.0002 is about 150: the minimum charge decides the bill, once.
      assert.equal(byHorizon.get('month_end')?.forecasted_cost, '1000000.00');
      // The actual part is the usage accrued so far (about 18 days of it), not the minimum owed at the end.
      const actual = Number(byHorizon.get('month_end')?.actual_cost);
      assert.ok(actual > 50 && actual < 150, `actual ${actual}`);
      assert.equal(byHorizon.get('1d')?.forecasted_cost, '0.00');
    });
  });

  describe('a deploy that doubles traffic 12 hours before as_of', () => {
    /** The next day's invocations at the doubled level, without noise (19 March 2025 is a Wednesday). */
    const truth = Array.from({ length: 24 }, (_, h) => 2 * (800 + 400 * Math.sin((2 * Math.PI * new Date(asOf + h * HOUR).getUTCHours()) / 24))).reduce((s, v) => s + v, 0);

    /** Three weeks at the usual level, the last 12 hours at twice it, on a new revision or on the same one. */
    async function doubledTenant(slug: string, newRevision: boolean): Promise<number> {
      const tenantId = await insertTenant(slug, 'UTC', 'USD');
      const ids = await insertService(tenantId, 'api');
      let later = ids;
      if (newRevision) {
        const [revision] = await database.db('revisions').insert({ service_id: ids.serviceId, name: 'api-00002' }).returning<{ id: string }[]>('id');
        assert.ok(revision);
        later = { serviceId: ids.serviceId, revisionId: revision.id };
      }
      const before = hourlyUsage(11, 'api', ids, asOf - 12 * HOUR, historyHours - 12, 1);
      await insertAggregates(tenantId, [...before, ...hourlyUsage(12, 'api', later, asOf, 12, 2)]);
      const [forecast] = summaryOf(await onDemand({ tenant_id: tenantId, as_of: new Date(asOf).toISOString(), horizons: ['1d'] })).forecasts ?? [];
      assert.ok(forecast);
      return Number(forecast.components.invocations.quantity.expected);
    }

    it('forecasts the next day at the new level when the hours follow a new revision, and not from 12 hours of the same one', async () => {
      const deployed = await doubledTenant('forecast-deploy', true);
      const same = await doubledTenant('forecast-no-deploy', false);
      // With the revision's first hour known, 12 hours are evidence enough for a new level.
      assert.ok(Math.abs(deployed / truth - 1) < 0.1, `deployed ${deployed} vs ${truth}`);
      // Without it, 12 odd hours are not a new level yet (detectLevelShift wants two days): the forecast stays lower.
      assert.ok(same < 0.85 * truth, `same revision ${same} vs ${truth}`);
    });
  });

  describe('scheduled runs', () => {
    it('forecasts the horizons of a forecast.tick (binary mode) for every tenant with recent usage', async () => {
      const tick = new CloudEvent({ type: EventType.forecastTick, source: eventSource('scheduler'), data: { horizons: ['1d'] } });
      const summary = summaryOf(await postBinary(fn.url, tick));
      assert.deepEqual(summary.horizons, ['1d']);
      assert.equal(summary.tenants, 1);
      assert.equal(summary.predictions, 1);
      assert.equal(summary.forecasts, undefined);
      assert.deepEqual(summary.failed.map((f) => f.tenant_id), [tenant.c]);
      assert.match(summary.failed[0]?.reason ?? '', /EUR/);
      const rowsB = await rowsOf(tenant.b);
      assert.deepEqual(rowsB.map((r) => r.horizon), ['1d']);
      assert.ok(d(rowsB[0]?.predicted_cost ?? 'NaN').gte(0));
    });

    it('forecasts every horizon on the daily PingSource ping (structured mode)', async () => {
      const ping = new CloudEvent({
        type: pingEventType,
        source: pingSourceSource(billingNamespace, 'forecast-daily'),
        datacontenttype: 'application/json',
        data: { reason: 'daily' },
      });
      const summary = summaryOf(await postStructured(fn.url, ping));
      assert.deepEqual(summary.horizons, [...forecastHorizons]);
      assert.equal(summary.tenants, 1);
      assert.equal(summary.predictions, 5);
      const horizonsB = new Set((await rowsOf(tenant.b)).map((r) => r.horizon));
      assert.deepEqual([...horizonsB].sort(), [...forecastHorizons].sort());
      // Tenant A's usage is from 2025: not recent, so the scheduled runs leave it alone.
      assert.equal((await rowsOf(tenant.a)).length, 5);
    });
  });

  describe('other triggers', () => {
    it('forecasts every tenant with recent usage on an empty on-demand POST', async () => {
      const summary = summaryOf(await post(fn.url, {}, ''));
      assert.deepEqual(summary.horizons, [...forecastHorizons]);
      assert.equal(summary.tenants, 1);
      assert.deepEqual(summary.failed.map((f) => f.tenant_id), [tenant.c]);
    });

    it('answers 204 and stores nothing for a tick with no horizons', async () => {
      const before = await database.db('ml_predictions').count<{ count: string }[]>({ count: '*' });
      const reply = await postBinary(fn.url, new CloudEvent({ type: EventType.forecastTick, source: eventSource('scheduler'), data: { horizons: [] } }));
      assert.equal(reply.status, 204, reply.text);
      assert.deepEqual(await database.db('ml_predictions').count<{ count: string }[]>({ count: '*' }), before);
    });
  });

  describe('bad input', () => {
    const cases: { name: string; send: () => Promise<Reply>; detail: RegExp }[] = [
      { name: 'a tick with an unknown horizon', send: () => postBinary(fn.url, new CloudEvent({ type: EventType.forecastTick, source: '/test', data: { horizons: ['2h'] } })), detail: /horizons/ },
      { name: 'a tick with an unknown field', send: () => postBinary(fn.url, new CloudEvent({ type: EventType.forecastTick, source: '/test', data: { tenant: 'x' } })), detail: /tenant/ },
      { name: 'an event of another type', send: () => postBinary(fn.url, new CloudEvent({ type: EventType.billingClose, source: '/test', data: {} })), detail: /billing\.close/ },
      { name: 'a tenant id that is not a UUID', send: () => onDemand({ tenant_id: 'acme' }), detail: /tenant_id/ },
      { name: 'an empty horizon list', send: () => onDemand({ horizons: [] }), detail: /horizons/ },
      { name: 'an unknown field', send: () => onDemand({ tenant: tenant.a }), detail: /tenant/ },
      { name: 'an as_of that is not an instant', send: () => onDemand({ as_of: 'yesterday' }), detail: /as_of/ },
      { name: 'a tenant that does not exist', send: () => onDemand({ tenant_id: '00000000-0000-4000-8000-000000000000' }), detail: /does not exist/ },
      { name: 'a tenant that has no plan to price with', send: () => onDemand({ tenant_id: tenant.c }), detail: /no default plan for EUR/ },
    ];
    for (const c of cases) {
      it(`answers ${c.name} with problem+json 422`, async () => {
        const before = await database.db('ml_predictions').count<{ count: string }[]>({ count: '*' });
        const problem = assertProblem(await c.send(), 422);
        assert.match(problem.detail, c.detail);
        assert.deepEqual(await database.db('ml_predictions').count<{ count: string }[]>({ count: '*' }), before);
      });
    }

    it('answers a body that is not JSON with problem+json 400', async () => {
      assertProblem(await post(fn.url, { 'content-type': 'application/json' }, '{"tenant_id":'), 400);
    });
  });
});
