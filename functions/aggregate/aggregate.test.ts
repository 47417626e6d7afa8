/**
 * aggregate over real HTTP, under faas-js-runtime, with real CloudEvents (binary and structured,
 * usage.saved, aggregate.tick and a PingSource tick), against a real PostgreSQL (DATABASE_URL) or
 * embedded PGlite. Usage goes into usage_raw through UsageStore (save's own writer); every window
 * is checked against an independent SQL computation over usage_raw (GROUP BY with date_bin /
 * date_trunc in the tenant's zone, percentile_cont over every invocation).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { assignPlan, createPlan, createTenant } from '../../src/billing/testing.js';
import { createDb, type Db } from '../../src/adapters/postgres.js';
import { UsageStore } from '../../src/adapters/usage-store.js';
import { EventType, eventSource, usageAggregatedData, type UsageAggregatedData } from '../../src/contract/events.js';
import type { UsageRecord } from '../../src/contract/usage.js';
import { pingEventType, pingSourceSource } from '../../src/contract/routing.js';
import { Dec, billedMbMsSql, parsePlan, standardUsdPlan, type PlanRules } from '../../src/core/pricing/index.js';
import { createLogger } from '../../src/runtime/logger.js';
import { Aggregator } from '../../src/stages/aggregate.js';
import { freshDatabase, viaPort, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { assertProblem, post, postBinary, postStructured, type Reply } from '../../test/support/http.js';
import { CuttableProxy } from '../../test/support/net.js';
import { usageRecord } from '../../test/support/usage.js';
import { createAggregate } from './index.js';

/** A deterministic pseudo-random sequence in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const savedEvent = (id: string = randomUUID()): CloudEvent<unknown> =>
  new CloudEvent<unknown>({
    id,
    type: EventType.usageSaved,
    source: eventSource('save'),
    data: { inserted: 1, duplicates: 0, dead_lettered: 0, min_time: null, max_time: null, tenants: [] },
  });
const tickEvent = (): CloudEvent<unknown> => new CloudEvent<unknown>({ type: EventType.aggregateTick, source: '/test', data: { window_sizes: ['1h'] } });
const pingEvent = (): CloudEvent<unknown> =>
  new CloudEvent<unknown>({ type: pingEventType, source: pingSourceSource('faas-billing', 'aggregate-tick'), datacontenttype: 'application/json', data: { reason: 'tick' } });

/** The usage.aggregated reply, checked against the contract's schema. */
function aggregatedReply(reply: Reply): UsageAggregatedData {
  assert.equal(reply.status, 200, reply.text);
  assert.equal(reply.headers.get('ce-type'), EventType.usageAggregated);
  assert.equal(reply.headers.get('ce-source'), eventSource('aggregate'));
  return usageAggregatedData.parse(JSON.parse(reply.text));
}

/** A stored window, as compared in these tests (decimals canonical, instants ISO). */
interface Row {
  key: string;
  window_end: string;
  events: number;
  invocations: number;
  total_duration_ms: string;
  avg_duration_ms: string;
  max_memory_mb: string;
  avg_memory_mb: string;
  total_cpu_ms: string;
  mb_ms: string;
  billed_mb_ms: string;
  cold_starts: number;
  errors: number;
  p50: number;
  p95: number;
  billed_plan_id: string | null;
  updated_at: string;
}

const canonical = (value: unknown): string => new Dec(String(value)).toFixed();
const iso = (value: unknown): string => (value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString());
const keyOf = (r: Record<string, unknown>): string => `${String(r.window_size)} ${String(r.tenant)}:${String(r.service)}/${String(r.revision)} ${iso(r.window_start)}`;

/** The stored windows of some tenants, by "size service/revision start". */
async function storedWindows(db: Db, tenantIds: string[]): Promise<Map<string, Row>> {
  const result = await db.raw<{ rows: Record<string, unknown>[] }>(
    `SELECT a.*, t.slug AS tenant, sv.name AS service, rv.name AS revision FROM usage_aggregate a
       JOIN tenants t ON t.id = a.tenant_id JOIN services sv ON sv.id = a.service_id JOIN revisions rv ON rv.id = a.revision_id
      WHERE a.tenant_id = ANY(?::uuid[])`,
    [tenantIds],
  );
  return new Map(
    result.rows.map((r) => [
      keyOf(r),
      {
        key: keyOf(r),
        window_end: iso(r.window_end),
        events: Number(r.events),
        invocations: Number(r.invocations),
        total_duration_ms: canonical(r.total_duration_ms),
        avg_duration_ms: canonical(r.avg_duration_ms),
        max_memory_mb: canonical(r.max_memory_mb),
        avg_memory_mb: canonical(r.avg_memory_mb),
        total_cpu_ms: canonical(r.total_cpu_ms),
        mb_ms: canonical(r.mb_ms),
        billed_mb_ms: canonical(r.billed_mb_ms),
        cold_starts: Number(r.cold_starts),
        errors: Number(r.errors),
        p50: Number(r.p50_duration_ms),
        p95: Number(r.p95_duration_ms),
        billed_plan_id: typeof r.billed_plan_id === 'string' ? r.billed_plan_id : null,
        updated_at: iso(r.updated_at),
      },
    ]),
  );
}

/**
 * The windows computed independently in SQL from usage_raw: 5m by date_bin, 1h and 1d by
 * date_trunc in the tenant's zone, percentiles by percentile_cont over every invocation
 * (generate_series expands an event of n invocations into n values), billed MB·ms under `rules`.
 */
async function expectedWindows(db: Db, tenantIds: string[], rules: PlanRules): Promise<Map<string, Omit<Row, 'updated_at' | 'billed_plan_id' | 'window_end'>>> {
  const billed = billedMbMsSql(rules, 'duration_ms', 'memory_mb', 'invocations', 'alloc_mb');
  const result = await db.raw<{ rows: Record<string, unknown>[] }>(
    `WITH r AS (
       SELECT u.*, t.timezone AS zone, t.slug AS tenant, sv.name AS service, rv.name AS revision, coalesce(rv.memory_limit_mb, sv.memory_limit_mb) AS alloc_mb
         FROM usage_raw u JOIN tenants t ON t.id = u.tenant_id JOIN services sv ON sv.id = u.service_id JOIN revisions rv ON rv.id = u.revision_id
        WHERE u.tenant_id = ANY(?::uuid[])),
     k AS (
       SELECT '5m' AS window_size, date_bin('5 minutes', r.time, timestamptz '2000-01-01 00:00:00+00') AS window_start, r.* FROM r
       UNION ALL SELECT '1h', date_trunc('hour', r.time, r.zone), r.* FROM r
       UNION ALL SELECT '1d', date_trunc('day', r.time, r.zone), r.* FROM r),
     sums AS (
       SELECT window_size, tenant, service, revision, window_start, count(*)::int AS events, sum(invocations)::int AS invocations,
              sum(duration_ms) AS total_duration_ms, round(sum(duration_ms) / sum(invocations), 3) AS avg_duration_ms,
              max(memory_mb) AS max_memory_mb, round(sum(memory_mb * invocations) / sum(invocations), 3) AS avg_memory_mb,
              sum(coalesce(cpu_ms, 0)) AS total_cpu_ms, sum(duration_ms * memory_mb) AS mb_ms, sum(${billed}) AS billed_mb_ms,
              (count(*) FILTER (WHERE cold_start))::int AS cold_starts, (count(*) FILTER (WHERE error))::int AS errors
         FROM k GROUP BY 1, 2, 3, 4, 5),
     pct AS (
       SELECT window_size, tenant, service, revision, window_start,
              percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY duration_ms::float8 / invocations) AS p
         FROM k CROSS JOIN generate_series(1, k.invocations) GROUP BY 1, 2, 3, 4, 5)
     SELECT s.*, p.p FROM sums s JOIN pct p USING (window_size, tenant, service, revision, window_start)`,
    [tenantIds],
  );
  return new Map(
    result.rows.map((r) => {
      const [p50, p95] = r.p as [number, number];
      return [
        keyOf(r),
        {
          key: keyOf(r),
          events: Number(r.events),
          invocations: Number(r.invocations),
          total_duration_ms: canonical(r.total_duration_ms),
          avg_duration_ms: canonical(r.avg_duration_ms),
          max_memory_mb: canonical(r.max_memory_mb),
          avg_memory_mb: canonical(r.avg_memory_mb),
          total_cpu_ms: canonical(r.total_cpu_ms),
          mb_ms: canonical(r.mb_ms),
          billed_mb_ms: canonical(r.billed_mb_ms),
          cold_starts: Number(r.cold_starts),
          errors: Number(r.errors),
          p50,
          p95,
        },
      ];
    }),
  );
}

/**
 * Asserts the stored windows equal the independent computation: every figure exactly, p50/p95 of
 * 5m windows exactly (up to the column's 3 decimals), of 1h/1d windows within the sketch's 0.5%.
 */
async function assertWindowsExact(db: Db, tenantIds: string[], rules: PlanRules): Promise<Map<string, Row>> {
  const stored = await storedWindows(db, tenantIds);
  const expected = await expectedWindows(db, tenantIds, rules);
  assert.deepEqual([...stored.keys()].sort(), [...expected.keys()].sort());
  for (const [key, want] of expected) {
    const got = stored.get(key)!;
    const { p50, p95, ...figures } = want;
    const { p50: gotP50, p95: gotP95, updated_at: _u, billed_plan_id: _b, window_end: _e, ...gotFigures } = got;
    assert.deepEqual(gotFigures, figures, key);
    const exact = key.startsWith('5m');
    for (const [g, w, name] of [[gotP50, p50, 'p50'], [gotP95, p95, 'p95']] as const) {
      const tolerance = exact ? 0.0005 + 1e-9 : 0.005 * w + 0.0005;
      assert.ok(Math.abs(g - w) <= tolerance, `${key} ${name}: stored ${g}, percentile_cont ${w}`);
    }
  }
  return stored;
}

describe('aggregate function', function () {
  let t: TestDatabase;
  let fn: RunningFunction;
  let store: UsageStore;
  const usdRules = parsePlan(standardUsdPlan).rules;

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase();
    store = new UsageStore(t.db);
    fn = await startFunction('aggregate', createAggregate, { DATABASE_URL: t.url, AGGREGATE_BATCH_BUCKETS: '50', AGGREGATE_CONCURRENCY: '2' });
  });
  after(async () => {
    await fn?.close();
    await t?.drop();
  });

  const dirtyCount = async (): Promise<number> => Number((await t.db('usage_dirty').count<{ n: string }[]>({ n: '*' }))[0]?.n);
  const saveUsage = async (records: Partial<UsageRecord>[]): Promise<void> => {
    await store.store(records.map((r) => usageRecord({ labels: {}, ...r })));
  };

  /** ~300 events of three tenants (UTC, Europe/Berlin, Asia/Kolkata) across local midnights. */
  async function loadMixedUsage(slugs: string[], seed: number): Promise<void> {
    const next = random(seed);
    const records: Partial<UsageRecord>[] = [];
    const from = Date.parse('2026-03-10T20:00:00Z');
    for (let i = 0; i < 300; i++) {
      const invocations = next() < 0.8 ? 1 : 2 + Math.floor(next() * 6);
      const service = next() < 0.6 ? 'api' : 'worker';
      records.push({
        tenant_id: slugs[i % slugs.length]!,
        service,
        revision: service === 'api' ? (next() < 0.5 ? 'api-1' : 'api-2') : 'worker-1',
        time: new Date(from + Math.floor(next() * 8 * 3600_000)).toISOString(),
        invocations,
        duration_ms: Math.round((1 + next() * 400) * invocations * 1000) / 1000,
        memory_mb: [128, 256, 300.5][Math.floor(next() * 3)]!,
        cpu_ms: next() < 0.2 ? null : Math.round(next() * 50_000) / 1000,
        cold_start: next() < 0.1,
        error: next() < 0.05,
      });
    }
    await saveUsage(records);
  }

  describe('windows of three tenants in three zones', () => {
    const slugs = ['agg-utc', 'agg-berlin', 'agg-kolkata'];
    const tenantIds: string[] = [];

    before(async () => {
      for (const [slug, timezone] of [
        ['agg-utc', 'UTC'],
        ['agg-berlin', 'Europe/Berlin'],
        ['agg-kolkata', 'Asia/Kolkata'],
      ] as const) {
        tenantIds.push(await createTenant(t.db, { slug, timezone }));
      }
      await loadMixedUsage(slugs, 42);
      // "api" bills its allocated 512 MB on the USD plan (billed_memory: allocated).
      await t.db('services').whereIn('tenant_id', tenantIds).where({ name: 'api' }).update({ memory_limit_mb: 512 });
    });

    it('writes 5m, 1h and 1d windows equal to an exact SQL computation (5m percentiles exact, 1h/1d within 0.5%)', async () => {
      const dirty = await dirtyCount();
      assert.ok(dirty > 100, `${dirty} dirty buckets`);
      const data = aggregatedReply(await postBinary(fn.url, savedEvent()));
      assert.deepEqual([...data.tenants].sort(), [...tenantIds].sort());
      assert.equal(await dirtyCount(), 0);
      const stored = await assertWindowsExact(t.db, tenantIds, usdRules);
      const bySize = (size: string) => [...stored.keys()].filter((k) => k.startsWith(`${size} `)).length;
      assert.equal(bySize('5m'), dirty);
      assert.ok(bySize('1h') > 10 && bySize('1d') >= 6, `${bySize('1h')} hours, ${bySize('1d')} days`);
      assert.equal(data.windows, stored.size);
      const usdPlan = (await t.db('pricing_plans').where({ name: 'standard-usd' }).first<{ id: string }>('id')).id;
      assert.ok([...stored.values()].every((r) => r.billed_plan_id === usdPlan));
      // The billed figure really is per invocation under the plan (512 MB allocated for api).
      assert.ok([...stored.values()].some((r) => r.key.includes(':api/') && new Dec(r.billed_mb_ms).gt(r.mb_ms)));
    });

    it('aligns 1h windows to the tenant’s local hour and 1d windows to its local day', async () => {
      const rows = await t.db('usage_aggregate as a')
        .join('tenants as t', 't.id', 'a.tenant_id')
        .whereIn('a.tenant_id', tenantIds)
        .whereIn('a.window_size', ['1h', '1d'])
        .select<{ slug: string; window_size: string; window_start: Date; window_end: Date }[]>('t.slug', 'a.window_size', 'a.window_start', 'a.window_end');
      const starts = (slug: string, size: string) => new Set(rows.filter((r) => r.slug === slug && r.window_size === size).map((r) => r.window_start.toISOString().slice(11, 16)));
      assert.ok(starts('agg-kolkata', '1h').size > 3);
      assert.ok([...starts('agg-kolkata', '1h')].every((s) => s.endsWith(':30')), [...starts('agg-kolkata', '1h')].join(' '));
      assert.ok([...starts('agg-berlin', '1h')].every((s) => s.endsWith(':00')));
      assert.deepEqual(starts('agg-kolkata', '1d'), new Set(['18:30']));
      assert.deepEqual(starts('agg-berlin', '1d'), new Set(['23:00']));
      assert.deepEqual(starts('agg-utc', '1d'), new Set(['00:00']));
      for (const r of rows) assert.equal(r.window_end.getTime() - r.window_start.getTime(), r.window_size === '1h' ? 3600_000 : 86_400_000);
    });

    it('a late event recomputes only its own 5m, 1h and 1d windows', async () => {
      const before = await storedWindows(t.db, tenantIds);
      await saveUsage([{ tenant_id: 'agg-utc', service: 'worker', revision: 'worker-1', time: '2026-03-10T21:07:30.000Z', duration_ms: 12.5, memory_mb: 128 }]);
      assert.equal(await dirtyCount(), 1);
      const data = aggregatedReply(await postBinary(fn.url, savedEvent()));
      assert.equal(data.windows, 3);
      assert.deepEqual(data.tenants, [tenantIds[0]]);
      assert.equal(data.from, '2026-03-10T00:00:00.000Z');
      assert.equal(data.to, '2026-03-11T00:00:00.000Z');
      const after = await assertWindowsExact(t.db, tenantIds, usdRules);
      const changed = [...after.values()].filter((r) => JSON.stringify(r) !== JSON.stringify(before.get(r.key))).map((r) => r.key);
      assert.deepEqual(changed.sort(), [
        '1d agg-utc:worker/worker-1 2026-03-10T00:00:00.000Z',
        '1h agg-utc:worker/worker-1 2026-03-10T21:00:00.000Z',
        '5m agg-utc:worker/worker-1 2026-03-10T21:05:00.000Z',
      ]);
      for (const key of changed) assert.equal(after.get(key)!.events, (before.get(key)?.events ?? 0) + 1, key);
    });

    it('running again changes nothing, and recomputing every window from scratch writes identical rows', async () => {
      const before = await storedWindows(t.db, tenantIds);
      for (const event of [savedEvent(), tickEvent(), pingEvent()]) {
        const reply = await postStructured(fn.url, event);
        assert.equal(reply.status, 204, reply.text);
      }
      // Mark every bucket dirty again: the same input must give the same rows, untouched.
      await t.db.raw(
        `INSERT INTO usage_dirty (bucket_start, tenant_id, service_id, revision_id)
         SELECT DISTINCT date_bin('5 minutes', time, timestamptz '2000-01-01 00:00:00+00'), tenant_id, service_id, revision_id
           FROM usage_raw WHERE tenant_id = ANY(?::uuid[]) ON CONFLICT DO NOTHING`,
        [tenantIds],
      );
      const data = aggregatedReply(await postBinary(fn.url, pingEvent()));
      assert.equal(data.windows, before.size);
      assert.deepEqual(await storedWindows(t.db, tenantIds), before);
    });

    it('a duplicate usage.saved event, or a duplicate usage event, changes nothing', async () => {
      const record = usageRecord({ tenant_id: 'agg-berlin', service: 'api', revision: 'api-1', time: '2026-03-11T01:02:03.000Z', labels: {} });
      await store.store([record]);
      const event = savedEvent();
      assert.equal(aggregatedReply(await postBinary(fn.url, event)).windows, 3);
      const before = await storedWindows(t.db, tenantIds);
      assert.equal((await postBinary(fn.url, event)).status, 204);
      const again = await store.store([record]);
      assert.equal(again.duplicates, 1);
      assert.equal(await dirtyCount(), 0);
      assert.equal((await postBinary(fn.url, savedEvent())).status, 204);
      assert.deepEqual(await storedWindows(t.db, tenantIds), before);
    });

    it('deleting raw rows recomputes their windows, and removes windows left empty', async () => {
      const target = await t.db('usage_raw').where({ tenant_id: tenantIds[1] }).orderBy('time').first<{ time: Date; revision_id: string }>('time', 'revision_id');
      assert.ok(target);
      const bucket = new Date(Math.floor(target.time.getTime() / 300_000) * 300_000);
      await t.db('usage_raw').where({ revision_id: target.revision_id }).where('time', '>=', bucket).where('time', '<', new Date(bucket.getTime() + 300_000)).delete();
      aggregatedReply(await postBinary(fn.url, savedEvent()));
      await assertWindowsExact(t.db, tenantIds, usdRules);
      const left = await t.db('usage_aggregate').where({ window_size: '5m', revision_id: target.revision_id, window_start: bucket }).count<{ n: string }[]>({ n: '*' });
      assert.equal(Number(left[0]?.n), 0);
    });
  });

  // After the suite above: the last tests read what it left (the agg-utc tenant, the metrics).
  describe('more tenants, and the function’s edges', () => {
    it('a tenant’s day in Europe/Berlin on 2026-10-25 is 25 hours, with the repeated 02:00 hour as two windows', async () => {
      const tenantId = await createTenant(t.db, { slug: 'agg-dst', timezone: 'Europe/Berlin' });
      const times = ['2026-10-24T21:30:00Z', '2026-10-24T22:30:00Z', '2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', '2026-10-25T22:30:00Z', '2026-10-25T23:30:00Z'];
      await saveUsage(times.map((time) => ({ tenant_id: 'agg-dst', service: 'svc', revision: 'svc-1', time: new Date(time).toISOString(), duration_ms: 100, memory_mb: 128 })));
      aggregatedReply(await postBinary(fn.url, savedEvent()));
      const windows = async (size: string) =>
        (await t.db('usage_aggregate').where({ tenant_id: tenantId, window_size: size }).orderBy('window_start').select<{ window_start: Date; window_end: Date; events: string }[]>('window_start', 'window_end', 'events')).map(
          (r) => `${r.window_start.toISOString()}–${r.window_end.toISOString()}: ${r.events}`,
        );
      assert.deepEqual(await windows('1d'), [
        '2026-10-23T22:00:00.000Z–2026-10-24T22:00:00.000Z: 1',
        '2026-10-24T22:00:00.000Z–2026-10-25T23:00:00.000Z: 4',
        '2026-10-25T23:00:00.000Z–2026-10-26T23:00:00.000Z: 1',
      ]);
      const hours = await windows('1h');
      assert.ok(hours.includes('2026-10-25T00:00:00.000Z–2026-10-25T01:00:00.000Z: 1'), hours.join('\n'));
      assert.ok(hours.includes('2026-10-25T01:00:00.000Z–2026-10-25T02:00:00.000Z: 1'), hours.join('\n'));
      await assertWindowsExact(t.db, [tenantId], usdRules);
    });

    it('billed_mb_ms follows the tenant’s plan per invocation, and changes plan at an assignment boundary', async () => {
      const tenantId = await createTenant(t.db, { slug: 'agg-rub', currency: 'RUB' });
      const rub = (await t.db('pricing_plans').where({ name: 'standard-rub' }).first<{ id: string }>('id')).id;
      const observed = await createPlan(t.db, {
        name: 'agg-observed-ms',
        currency: 'RUB',
        price_per_invocation: '0',
        rules: { duration_granularity_ms: 1, min_billed_duration_ms: 0, memory_step_mb: 1, billed_memory: 'observed' },
      });
      await assignPlan(t.db, tenantId, observed, '2026-03-10T10:32:00Z');
      const event = (time: string, invocations: number, durationMs: number) => ({
        tenant_id: 'agg-rub',
        service: 'fn',
        revision: 'fn-1',
        time,
        invocations,
        duration_ms: durationMs,
        memory_mb: 200,
      });
      await saveUsage([
        event('2026-03-10T10:20:00.000Z', 1, 150), // rub: 200 ms × 256 MB = 51 200
        event('2026-03-10T10:21:00.000Z', 2, 250), // rub, per invocation: 2 × 200 ms × 256 MB = 102 400 (not 300 ms × 256)
        event('2026-03-10T10:31:00.000Z', 1, 150), // rub (the 10:30 window starts before the change) = 51 200
        event('2026-03-10T10:40:00.000Z', 1, 150), // observed: 150 ms × 200 MB = 30 000
        event('2026-03-10T11:10:00.000Z', 1, 150), // observed = 30 000
      ]);
      aggregatedReply(await postBinary(fn.url, savedEvent()));
      const rows = await t.db('usage_aggregate')
        .where({ tenant_id: tenantId })
        .orderBy(['window_size', 'window_start'])
        .select<{ window_size: string; window_start: Date; billed_mb_ms: string; billed_plan_id: string; mb_ms: string }[]>('window_size', 'window_start', 'billed_mb_ms', 'billed_plan_id', 'mb_ms');
      const show = (r: (typeof rows)[number]) => `${r.window_size} ${r.window_start.toISOString().slice(11, 16)} ${canonical(r.billed_mb_ms)} ${r.billed_plan_id === rub ? 'rub' : 'observed'}`;
      assert.deepEqual(rows.map(show), [
        // The day and the 10:00 hour start under standard-rub: re-metered from raw rows under it.
        '1d 00:00 307200 rub',
        '1h 10:00 256000 rub',
        '1h 11:00 30000 observed',
        '5m 10:20 153600 rub',
        '5m 10:30 51200 rub',
        '5m 10:40 30000 observed',
        '5m 11:10 30000 observed',
      ]);
      // Observed MB·ms stays what ran: (4 × 150 + 250) ms × 200 MB.
      assert.equal(canonical(rows.find((r) => r.window_size === '1d')!.mb_ms), '170000');
    });

    it('concurrent aggregators claim every dirty bucket exactly once and agree with the exact computation', async function () {
      this.timeout(120_000);
      const tenantId = await createTenant(t.db, { slug: 'agg-concurrent', timezone: 'America/New_York' });
      const next = random(7);
      const from = Date.parse('2026-04-02T02:00:00Z');
      await saveUsage(
        Array.from({ length: 240 }, (_, i) => ({
          tenant_id: 'agg-concurrent',
          service: `s${i % 3}`,
          revision: `s${i % 3}-1`,
          time: new Date(from + Math.floor(next() * 6 * 3600_000)).toISOString(),
          duration_ms: Math.round(next() * 900_000) / 1000,
          memory_mb: 256,
        })),
      );
      const dirty = await dirtyCount();
      const pools = [createDb(t.url, 2), createDb(t.url, 2), createDb(t.url, 3)];
      try {
        const logger = createLogger('aggregate-test', 'silent');
        const aggregators = pools.map((db, i) => new Aggregator({ db, logger, batchBuckets: 7, timeBudgetMs: 60_000, concurrency: i === 2 ? 2 : 1 }));
        const results = await Promise.all(aggregators.map((a) => a.run()));
        assert.equal(
          results.reduce((sum, r) => sum + r.buckets, 0),
          dirty,
        );
        assert.equal(await dirtyCount(), 0);
        await assertWindowsExact(t.db, [tenantId], usdRules);
      } finally {
        await Promise.all(pools.map((db) => db.destroy()));
      }
    });

    it('a row committed while an aggregator runs is aggregated, never lost', async () => {
      const tenantId = await createTenant(t.db, { slug: 'agg-inflight' });
      const ids = await t.db.raw<{ rows: { service_id: string; revision_id: string }[] }>(
        `WITH s AS (INSERT INTO services (tenant_id, name) VALUES (?, 'svc') RETURNING id)
         INSERT INTO revisions (service_id, name) SELECT id, 'svc-1' FROM s RETURNING service_id, id AS revision_id`,
        [tenantId],
      );
      const { service_id, revision_id } = ids.rows[0]!;
      const insert = (db: Db, id: string, time: string) =>
        db.raw(`INSERT INTO usage_raw (time, tenant_id, service_id, revision_id, source, event_id, duration_ms, memory_mb) VALUES (?, ?, ?, ?, '/test', ?, 10, 128)`, [
          time,
          tenantId,
          service_id,
          revision_id,
          id,
        ]);
      await insert(t.db, 'first', '2026-05-01T12:01:00Z');
      const pool = createDb(t.url, 2);
      try {
        const aggregator = new Aggregator({ db: pool, logger: createLogger('aggregate-test', 'silent'), batchBuckets: 100, timeBudgetMs: 60_000 });
        const trx = await t.db.transaction();
        try {
          await insert(trx, 'second', '2026-05-01T12:02:00Z'); // same bucket, not committed yet
          const during = aggregator.run();
          // On PostgreSQL the aggregator skips the bucket the open transaction holds; the embedded
          // database runs one transaction at a time, so there it simply waits for the commit.
          if (process.env.DATABASE_URL) assert.equal((await during).buckets, 0);
          await trx.commit();
          await during;
        } finally {
          if (!trx.isCompleted()) await trx.rollback();
        }
        await aggregator.run();
        const row = await t.db('usage_aggregate').where({ tenant_id: tenantId, window_size: '5m' }).first<{ events: string }>('events');
        assert.equal(Number(row?.events), 2);
      } finally {
        await pool.destroy();
      }
    });

    it('rebuilds from raw rows a window another writer stored without its merge state', async () => {
      const tenantId = await createTenant(t.db, { slug: 'agg-foreign' });
      const event = (time: string) => ({ tenant_id: 'agg-foreign', service: 'svc', revision: 'svc-1', time, duration_ms: 40, memory_mb: 128 });
      await saveUsage([event('2026-06-01T10:10:00.000Z'), event('2026-06-01T11:10:00.000Z')]);
      aggregatedReply(await postBinary(fn.url, savedEvent()));
      // As a fixture of another stage would write it: figures without the sketch and memory sum.
      await t.db('usage_aggregate')
        .where({ tenant_id: tenantId, window_size: '1h', window_start: '2026-06-01T10:00:00Z' })
        .update({ events: 99, duration_sketch: null, memory_mb_invocations: null });
      await saveUsage([event('2026-06-01T11:20:00.000Z')]);
      aggregatedReply(await postBinary(fn.url, savedEvent())); // merging the day finds the hour and marks it dirty
      assert.equal(await dirtyCount(), 12);
      aggregatedReply(await postBinary(fn.url, pingEvent()));
      assert.equal(await dirtyCount(), 0);
      await assertWindowsExact(t.db, [tenantId], usdRules);
    });

    it('answers malformed event data and unknown event types with a 422 problem, leaving the marks dirty', async () => {
      await saveUsage([{ tenant_id: 'agg-utc', service: 'worker', revision: 'worker-1', time: '2026-03-12T08:00:00.000Z' }]);
      const dirty = await dirtyCount();
      assert.equal(dirty, 1);
      const bad = [
        new CloudEvent<unknown>({ type: EventType.usageSaved, source: eventSource('save'), data: { inserted: 'many' } }),
        new CloudEvent<unknown>({ type: EventType.aggregateTick, source: '/test', data: { window_sizes: ['2h'] } }),
        new CloudEvent<unknown>({ type: EventType.usage, source: '/test', data: {} }),
      ];
      for (const event of bad) {
        const problem = assertProblem(await postBinary(fn.url, event), 422);
        assert.match(problem.detail, new RegExp(event.type.replaceAll('.', '\\.')));
      }
      assert.equal(await dirtyCount(), dirty);
      assert.equal(aggregatedReply(await postBinary(fn.url, pingEvent())).windows, 3);
    });

    it('runs on a plain POST too (a manual trigger)', async () => {
      await saveUsage([{ tenant_id: 'agg-utc', service: 'worker', revision: 'worker-1', time: '2026-03-12T09:00:00.000Z' }]);
      // Not a CloudEvent request, so the runtime answers the reply event as a JSON body.
      const reply = await post(fn.url, { 'content-type': 'application/json' }, '{}');
      assert.equal(reply.status, 200, reply.text);
      const event = reply.json as { type: string; data: unknown };
      assert.equal(event.type, EventType.usageAggregated);
      assert.equal(usageAggregatedData.parse(event.data).windows, 3);
      assert.equal((await post(fn.url, { 'content-type': 'application/json' }, '{}')).status, 204);
    });

    it('answers 503 (retryable) while the database is unreachable, and is not ready', async () => {
      const proxy = await CuttableProxy.start(t.address);
      const cut = await startFunction('aggregate', createAggregate, { DATABASE_URL: viaPort(t.url, proxy.port) });
      try {
        await proxy.cut();
        const problem = assertProblem(await postBinary(cut.url, pingEvent()), 503);
        assert.match(problem.detail, /PostgreSQL is not reachable; the dirty windows stay marked/);
        assert.equal((await fetch(`${cut.url}/health/readiness`)).status, 503);
      } finally {
        await cut.close();
        await proxy.cut();
      }
    });

    it('serves its metrics and a readiness that checks the database', async () => {
      const ready = await fetch(`${fn.url}/health/readiness`);
      assert.equal(ready.status, 200);
      const page = await (await fetch(`${fn.url}/metrics`)).text();
      const value = (series: string) => Number(page.split('\n').find((l) => l.startsWith(`${series} `))?.slice(series.length + 1));
      assert.ok(value('faasbilling_aggregate_windows_total{size="5m",function="aggregate"}') > 100);
      assert.ok(value('faasbilling_aggregate_buckets_total{function="aggregate"}') > 100);
      assert.equal(value('faasbilling_aggregate_dirty_buckets{function="aggregate"}'), 0);
      assert.match(page, /faasbilling_aggregate_batch_seconds_count\{function="aggregate"\} [1-9]/);
    });
  });
});
