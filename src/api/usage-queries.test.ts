/**
 * The usage queries against a real PostgreSQL (DATABASE_URL) or embedded PGlite: listing filters,
 * window bounds, keyset pagination, cursor validation and tenant scoping; the dashboard's daily
 * series in the tenant's zone, ranking, rates, month-to-date running cost and errors.
 * usage_aggregate rows are inserted directly, as the aggregate stage would write them. Listing
 * fixtures live in 2025 and dashboard fixtures in 2026, so admin (unscoped) listings bounded to
 * 2025 see only the listing fixtures.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { Billing } from '../billing/index.js';
import { assignPlan, createPlan, createService, createTenant, defaultPlanId, insertHours } from '../billing/testing.js';
import {
  aggregatePageSchema,
  aggregateRowSchema,
  dashboardSchema,
  listUsageAggregates,
  QueryError,
  usageDashboard,
  type AggregateRow,
  type UsageAggregateFilter,
} from './usage-queries.js';

type Size = '5m' | '1h' | '1d';

interface AggInput {
  tenantId: string;
  serviceId: string;
  revisionId: string;
  size: Size;
  start: string;
  end?: string;
  invocations?: number;
  billedMbMs?: string;
  coldStarts?: number;
  errors?: number;
  p95?: string | null;
  extra?: Record<string, string | number | null>;
}

const sizeMs: Record<Size, number> = { '5m': 300_000, '1h': 3_600_000, '1d': 86_400_000 };

/** Adds `ms` to an ISO instant, keeping any microseconds beyond the milliseconds. */
function plusMs(iso: string, ms: number): string {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{3})(\d*))?Z$/.exec(iso);
  if (!m) throw new Error(`bad instant ${iso}`);
  const base = Date.parse(`${m[1]}.${m[2] ?? '000'}Z`) + ms;
  return `${new Date(base).toISOString().slice(0, 23)}${m[3] ?? ''}Z`;
}

/** Inserts one usage_aggregate row; returns its id. */
async function insertAggregate(db: Knex, a: AggInput): Promise<string> {
  const [row] = await db('usage_aggregate')
    .insert({
      window_size: a.size,
      window_start: a.start,
      window_end: a.end ?? plusMs(a.start, sizeMs[a.size]),
      tenant_id: a.tenantId,
      service_id: a.serviceId,
      revision_id: a.revisionId,
      invocations: a.invocations ?? 1,
      events: a.invocations ?? 1,
      billed_mb_ms: a.billedMbMs ?? '0',
      cold_starts: a.coldStarts ?? 0,
      errors: a.errors ?? 0,
      p95_duration_ms: a.p95 ?? null,
      ...a.extra,
    })
    .returning<{ id: string }[]>('id');
  if (!row) throw new Error('aggregate row not inserted');
  return String(row.id);
}

async function addRevision(db: Knex, serviceId: string, name: string): Promise<string> {
  const [row] = await db('revisions').insert({ service_id: serviceId, name }).returning<{ id: string }[]>('id');
  if (!row) throw new Error('revision not inserted');
  return row.id;
}

const isQueryError = (code: string) => (err: unknown) => err instanceof QueryError && err instanceof Error && err.code === code;

/** Every item of a listing, walking its pages; checks the page invariants on the way. */
async function walk(db: Knex, filter: Omit<UsageAggregateFilter, 'cursor'>): Promise<{ items: AggregateRow[]; pages: number }> {
  const items: AggregateRow[] = [];
  let cursor: string | undefined;
  for (let pages = 1; pages < 100; pages++) {
    const page = await listUsageAggregates(db, { ...filter, ...(cursor === undefined ? {} : { cursor }) });
    assert.ok(page.items.length <= filter.limit, 'a page holds at most limit items');
    items.push(...page.items);
    if (page.next_cursor === null) return { items, pages };
    assert.equal(page.items.length, filter.limit, 'only the last page is short');
    cursor = page.next_cursor;
  }
  throw new Error('pagination did not end');
}

const ids = (items: readonly AggregateRow[]): string[] => items.map((i) => i.id);

describe('usage queries', function () {
  let t: TestDatabase;

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase();
  });
  after(async () => t?.drop());

  describe('listUsageAggregates', () => {
    /** Fixture rows by name, with what a filter can see of them. */
    const rows = new Map<string, { id: string; tenant: 'A' | 'B'; service: string; revision: string; size: Size; start: string; micros: bigint }>();
    let A: string;
    let B: string;
    let api: { serviceId: string; revisionId: string };
    let api2: string;
    let worker: { serviceId: string; revisionId: string };
    let bApi: { serviceId: string; revisionId: string };
    let usdPlan: string;
    const range = { startTime: new Date('2025-01-01T00:00:00Z'), endTime: new Date('2026-01-01T00:00:00Z') };

    /** Fixture names in listing order: (window_start with microseconds, numeric id). */
    const ordered = (names: readonly string[]): string[] =>
      [...names].sort((x, y) => {
        const a = rows.get(x);
        const b = rows.get(y);
        if (!a || !b) throw new Error('unknown fixture');
        return a.micros !== b.micros ? (a.micros < b.micros ? -1 : 1) : Number(BigInt(a.id) - BigInt(b.id));
      });
    const idsOf = (names: readonly string[]): string[] => ordered(names).map((n) => rows.get(n)?.id ?? '');
    const namesWhere = (pred: (r: { tenant: string; service: string; revision: string; size: Size }) => boolean): string[] =>
      [...rows.entries()].filter(([, r]) => pred(r)).map(([n]) => n);

    before(async () => {
      const db = t.db;
      A = await createTenant(db);
      B = await createTenant(db);
      api = await createService(db, A, 'api');
      api2 = await addRevision(db, api.serviceId, 'api-00002');
      worker = await createService(db, A, 'worker');
      bApi = await createService(db, B, 'api');
      usdPlan = await defaultPlanId(db, 'USD');
      const micros = (iso: string): bigint => {
        const m = /\.(\d{3})(\d{3})?Z$/.exec(iso);
        return BigInt(Date.parse(iso.replace(/(\.\d{3})\d*Z$/, '$1Z'))) * 1000n + BigInt(m?.[2] ?? '0');
      };
      const add = async (name: string, tenant: 'A' | 'B', s: { serviceId: string; revisionId: string }, size: Size, start: string, extra: Partial<AggInput> = {}) => {
        const id = await insertAggregate(db, { tenantId: tenant === 'A' ? A : B, ...s, size, start, ...extra });
        rows.set(name, { id, tenant, service: s.serviceId, revision: s.revisionId, size, start, micros: micros(start) });
      };
      // Inserted out of time order, so id order differs from window_start order.
      await add('a1-1h-11', 'A', api, '1h', '2025-10-01T11:00:00Z');
      await add('b-1h-10', 'B', bApi, '1h', '2025-10-01T10:00:00Z');
      await add('a1-1h-10', 'A', api, '1h', '2025-10-01T10:00:00Z', {
        invocations: 10,
        coldStarts: 2,
        errors: 1,
        p95: '250.125',
        billedMbMs: '2049536.000',
        extra: {
          events: 12,
          total_duration_ms: '1234.500',
          avg_duration_ms: '123.450',
          p50_duration_ms: '100.000',
          max_memory_mb: '256.000',
          avg_memory_mb: '128.500',
          total_cpu_ms: '987.000',
          mb_ms: '2000000.123456',
          billed_plan_id: usdPlan,
          updated_at: '2025-10-01T11:05:00Z',
        },
      });
      await add('a2-1h-10', 'A', { serviceId: api.serviceId, revisionId: api2 }, '1h', '2025-10-01T10:00:00Z');
      await add('w-1h-10', 'A', worker, '1h', '2025-10-01T10:00:00Z');
      await add('a1-5m-1000', 'A', api, '5m', '2025-10-01T10:00:00Z');
      await add('a1-5m-1055', 'A', api, '5m', '2025-10-01T10:55:00Z');
      await add('a1-1d', 'A', api, '1d', '2025-10-01T00:00:00Z');
      await add('b-1h-11', 'B', bApi, '1h', '2025-10-01T11:00:00Z');
      await add('w-1h-09', 'A', worker, '1h', '2025-10-01T09:00:00Z');
      // Half a millisecond after 10:00: the cursor must keep microseconds to page past it exactly once.
      await add('w-5m-1000.0005', 'A', worker, '5m', '2025-10-01T10:00:00.000500Z');
    });

    it('lists every window (admin: no tenant set) in (window_start, id) order', async () => {
      const page = await listUsageAggregates(t.db, { ...range, limit: 1000 });
      assert.deepEqual(ids(page.items), idsOf([...rows.keys()]));
      assert.equal(page.next_cursor, null);
      assert.doesNotThrow(() => aggregatePageSchema.parse(page));
    });

    it('each filter narrows the result to exactly its rows', async () => {
      const all = rows.size;
      const cases: [string, Omit<UsageAggregateFilter, 'limit'>, string[]][] = [
        ['tenantId', { tenantId: A }, namesWhere((r) => r.tenant === 'A')],
        ['serviceId', { serviceId: api.serviceId }, namesWhere((r) => r.service === api.serviceId)],
        ['revisionId', { revisionId: api2 }, namesWhere((r) => r.revision === api2)],
        ['windowSize 5m', { windowSize: '5m' }, namesWhere((r) => r.size === '5m')],
        ['windowSize 1d', { windowSize: '1d' }, namesWhere((r) => r.size === '1d')],
        [
          'tenant + service + size',
          { tenantId: A, serviceId: worker.serviceId, windowSize: '1h' },
          namesWhere((r) => r.tenant === 'A' && r.service === worker.serviceId && r.size === '1h'),
        ],
        ['allowed set of both tenants + size', { tenantIds: [A, B], windowSize: '1h' }, namesWhere((r) => r.size === '1h')],
      ];
      for (const [label, filter, expected] of cases) {
        assert.ok(expected.length > 0 && expected.length < all, `${label}: the fixture makes the filter matter`);
        const page = await listUsageAggregates(t.db, { ...range, ...filter, limit: 1000 });
        assert.deepEqual(ids(page.items), idsOf(expected), label);
      }
    });

    it('window bounds: window_start >= startTime (inclusive) and window_end <= endTime (inclusive end of the range)', async () => {
      const list = async (start: string, end: string) =>
        ids((await listUsageAggregates(t.db, { startTime: new Date(start), endTime: new Date(end), limit: 1000 })).items);
      // [10:00, 11:00]: the 10:00 hours, both 5m windows and the 10:00.0005 one; not 09:00, 11:00 or the day.
      assert.deepEqual(
        await list('2025-10-01T10:00:00Z', '2025-10-01T11:00:00Z'),
        idsOf(['b-1h-10', 'a1-1h-10', 'a2-1h-10', 'w-1h-10', 'a1-5m-1000', 'a1-5m-1055', 'w-5m-1000.0005']),
      );
      // One millisecond later start: every window starting at 10:00 (or 10:00.0005) drops out.
      assert.deepEqual(await list('2025-10-01T10:00:00.001Z', '2025-10-01T11:00:00Z'), idsOf(['a1-5m-1055']));
      // One millisecond earlier end: windows ending at 11:00 drop out.
      assert.deepEqual(await list('2025-10-01T10:00:00Z', '2025-10-01T10:59:59.999Z'), idsOf(['a1-5m-1000', 'w-5m-1000.0005']));
      // The whole day: everything of 2025-10-01, the 1d window included.
      assert.deepEqual(await list('2025-10-01T00:00:00Z', '2025-10-02T00:00:00Z'), idsOf([...rows.keys()]));
      assert.deepEqual(await list('2025-10-01T00:00:00Z', '2025-10-01T23:59:59.999Z'), idsOf(namesWhere((r) => r.size !== '1d')));
    });

    it('rows are JSON-friendly: decimal strings for NUMERIC columns, numbers for counts, billed GB-s = billed MB·ms / 1 024 000', async () => {
      const page = await listUsageAggregates(t.db, { tenantId: A, revisionId: api.revisionId, windowSize: '1h', ...range, limit: 1 });
      const row = page.items[0];
      assert.ok(row);
      assert.deepEqual(row, {
        id: rows.get('a1-1h-10')?.id,
        tenant_id: A,
        service_id: api.serviceId,
        service_name: 'api',
        revision_id: api.revisionId,
        revision_name: 'api-00001',
        window_size: '1h',
        window_start: '2025-10-01T10:00:00.000Z',
        window_end: '2025-10-01T11:00:00.000Z',
        invocations: 10,
        events: 12,
        total_duration_ms: '1234.5',
        avg_duration_ms: '123.45',
        p50_duration_ms: '100',
        p95_duration_ms: '250.125',
        max_memory_mb: '256',
        avg_memory_mb: '128.5',
        total_cpu_ms: '987',
        mb_ms: '2000000.123456',
        billed_mb_ms: '2049536',
        billed_gb_s: '2.0015',
        cold_starts: 2,
        errors: 1,
        billed_plan_id: usdPlan,
        updated_at: '2025-10-01T11:05:00.000Z',
      });
      assert.notEqual(page.next_cursor, null, 'the 11:00 hour follows');
      // A window with nothing measured: nulls stay null, zero totals are "0".
      const bare = (await listUsageAggregates(t.db, { revisionId: api.revisionId, windowSize: '5m', ...range, limit: 1 })).items[0];
      assert.ok(bare);
      assert.deepEqual(
        [bare.avg_duration_ms, bare.p50_duration_ms, bare.p95_duration_ms, bare.max_memory_mb, bare.avg_memory_mb, bare.total_duration_ms, bare.mb_ms, bare.billed_gb_s, bare.billed_plan_id],
        [null, null, null, null, null, '0', '0', '0', null],
      );
      assert.doesNotThrow(() => aggregateRowSchema.parse(bare));
    });

    it('keyset pagination with limit 2 walks every row exactly once, also where rows share window_start', async () => {
      const expected = idsOf([...rows.keys()]);
      const starts = [...rows.values()].map((r) => r.start);
      assert.ok(starts.filter((s) => s === '2025-10-01T10:00:00Z').length >= 5, 'five rows share 10:00');
      const { items, pages } = await walk(t.db, { ...range, limit: 2 });
      assert.equal(new Set(ids(items)).size, items.length, 'no duplicates');
      assert.deepEqual(ids(items), expected);
      assert.equal(pages, Math.ceil(expected.length / 2));
      // With filters too (the cursor only moves the position).
      const scoped = await walk(t.db, { ...range, tenantId: A, windowSize: '1h', limit: 2 });
      assert.deepEqual(ids(scoped.items), idsOf(namesWhere((r) => r.tenant === 'A' && r.size === '1h')));
      // A full last page has no next cursor (no empty page after it).
      const b = await listUsageAggregates(t.db, { ...range, tenantId: B, limit: 2 });
      assert.deepEqual(ids(b.items), idsOf(['b-1h-10', 'b-1h-11']));
      assert.equal(b.next_cursor, null);
    });

    it('rejects a cursor it did not issue with QueryError("invalid_cursor")', async () => {
      const b64 = (s: string): string => Buffer.from(s).toString('base64url');
      const valid = (await listUsageAggregates(t.db, { ...range, limit: 1 })).next_cursor;
      assert.ok(valid);
      assert.equal((await listUsageAggregates(t.db, { ...range, limit: 1, cursor: valid })).items.length, 1);
      const bad = [
        '',
        'not a cursor!',
        b64('plain text'),
        b64('{}'),
        b64('[1,2]'),
        b64('{"s":"2025-10-01T10:00:00.000000Z","i":"0"}'),
        b64('{"s":"2025-10-01T10:00:00.000000Z","i":"12","x":1}'),
        b64('{"s":"2025-02-30T10:00:00.000000Z","i":"12"}'),
        b64('{"s":"2025-10-01T10:00:00Z","i":"12"}'),
        b64('{"s":"2025-10-01T10:00:00.000000Z","i":"9999999999999999999"}'),
        b64('{"s":"2025-10-01T10:00:00.000000Z","i":12}'),
        b64('{"s":"2025-10-01T10:00:00.000000Z\');--","i":"12"}'),
      ];
      for (const cursor of bad) {
        await assert.rejects(listUsageAggregates(t.db, { ...range, limit: 2, cursor }), isQueryError('invalid_cursor'), `cursor ${JSON.stringify(cursor)}`);
      }
    });

    it('tenant scoping: the allowed set always wins over the other filters', async () => {
      const aOnly = { ...range, tenantIds: [A], limit: 1000 };
      const empty = { items: [], next_cursor: null };
      assert.deepEqual(await listUsageAggregates(t.db, { ...aOnly, tenantId: B }), empty);
      assert.deepEqual(await listUsageAggregates(t.db, { ...aOnly, serviceId: bApi.serviceId }), empty);
      assert.deepEqual(await listUsageAggregates(t.db, { ...aOnly, revisionId: bApi.revisionId }), empty);
      assert.deepEqual(await listUsageAggregates(t.db, { ...range, tenantIds: [], limit: 1000 }), empty);
      const own = await listUsageAggregates(t.db, aOnly);
      assert.deepEqual(ids(own.items), idsOf(namesWhere((r) => r.tenant === 'A')));
      assert.ok(own.items.every((i) => i.tenant_id === A));
      assert.deepEqual(ids((await listUsageAggregates(t.db, { ...aOnly, tenantId: A })).items), ids(own.items));
      // Paging under the allowed set never reaches B either.
      const walked = await walk(t.db, { ...range, tenantIds: [A], limit: 2 });
      assert.deepEqual(ids(walked.items), ids(own.items));
      // B's own key sees B's rows only.
      const bOwn = await listUsageAggregates(t.db, { ...range, tenantIds: [B], limit: 1000 });
      assert.deepEqual(ids(bOwn.items), idsOf(namesWhere((r) => r.tenant === 'B')));
    });

    it('rejects malformed arguments with QueryError("invalid_argument")', async () => {
      for (const limit of [0, -1, 1.5, 1001, Number.NaN]) {
        await assert.rejects(listUsageAggregates(t.db, { limit }), isQueryError('invalid_argument'), `limit ${limit}`);
      }
      await assert.rejects(listUsageAggregates(t.db, { limit: 10, tenantId: "x' OR '1'='1" }), isQueryError('invalid_argument'));
      await assert.rejects(listUsageAggregates(t.db, { limit: 10, tenantIds: ['not-a-uuid'] }), isQueryError('invalid_argument'));
      await assert.rejects(listUsageAggregates(t.db, { limit: 10, startTime: new Date('nope') }), isQueryError('invalid_argument'));
      await assert.rejects(listUsageAggregates(t.db, { limit: 10, windowSize: '2h' as '1h' }), isQueryError('invalid_argument'));
    });
  });

  describe('usageDashboard', () => {
    // 2026-10-05T03:00Z is noon on 5 October in Tokyo (UTC+9): local days start at 15:00Z the day before.
    const now = new Date('2026-10-05T03:00:00Z');
    let tokyo: string;
    let services: Record<'api' | 'worker' | 'batch', string>;

    before(async () => {
      const db = t.db;
      tokyo = await createTenant(db, { slug: 'tokyo-co', currency: 'JPY', timezone: 'Asia/Tokyo' });
      const api = await createService(db, tokyo, 'api');
      const api2 = await addRevision(db, api.serviceId, 'api-00002');
      const worker = await createService(db, tokyo, 'worker');
      const batch = await createService(db, tokyo, 'batch');
      await createService(db, tokyo, 'idle');
      services = { api: api.serviceId, worker: worker.serviceId, batch: batch.serviceId };
      const day = (s: { serviceId: string; revisionId: string }, start: string, extra: Partial<AggInput>) =>
        insertAggregate(db, { tenantId: tokyo, ...s, size: '1d', start, ...extra });
      // 3 October (local): two revisions of api.
      await day(api, '2026-10-02T15:00:00Z', { invocations: 100, billedMbMs: '1024000', coldStarts: 5, errors: 1, p95: '120.5' });
      await day({ serviceId: api.serviceId, revisionId: api2 }, '2026-10-02T15:00:00Z', { invocations: 50, billedMbMs: '512000', errors: 2, p95: '200' });
      // 4 October: worker (many invocations, little compute) and batch (few, heavy).
      await day(worker, '2026-10-03T15:00:00Z', { invocations: 400, billedMbMs: '204800', coldStarts: 4, p95: '15' });
      await day(batch, '2026-10-03T15:00:00Z', { invocations: 2, billedMbMs: '5120000', coldStarts: 2, p95: '30000' });
      // 5 October (today).
      await day(api, '2026-10-04T15:00:00Z', { invocations: 30, billedMbMs: '102400', coldStarts: 1, p95: '90' });
      // Outside a 3-day window: 2 October (inside the default 30 days) and 6 October (tomorrow).
      await day(api, '2026-10-01T15:00:00Z', { invocations: 999, billedMbMs: '1024000', p95: '5' });
      await day(api, '2026-10-05T15:00:00Z', { invocations: 777, billedMbMs: '1024000' });
      // Not 1d windows: ignored.
      await insertAggregate(db, { tenantId: tokyo, ...api, size: '1h', start: '2026-10-04T15:00:00Z', invocations: 5555, billedMbMs: '99999999' });
      await insertAggregate(db, { tenantId: tokyo, ...worker, size: '5m', start: '2026-10-04T15:00:00Z', invocations: 4444 });
      // Another tenant's day: ignored.
      const other = await createTenant(db, { timezone: 'Asia/Tokyo' });
      const otherApi = await createService(db, other, 'api');
      await insertAggregate(db, { tenantId: other, ...otherApi, size: '1d', start: '2026-10-03T15:00:00Z', invocations: 3333, billedMbMs: '99999999' });
    });

    const zero = (date: string) => ({ date, invocations: 0, gb_s: '0', cold_starts: 0, errors: 0, p95_duration_ms: null });

    it('a non-UTC tenant: local dates, daily series per service, top services by GB-s, totals and rates', async () => {
      const d = await usageDashboard(t.db, tokyo, now, { days: 3 });
      assert.deepEqual(d.tenant, { id: tokyo, slug: 'tokyo-co', name: 'tokyo-co', currency: 'JPY', timezone: 'Asia/Tokyo' });
      assert.equal(d.as_of, '2026-10-05T03:00:00.000Z');
      assert.deepEqual(d.period, { start: '2026-09-30T15:00:00.000Z', end: '2026-10-31T15:00:00.000Z' });
      assert.deepEqual(d.window, { days: 3, start: '2026-10-02T15:00:00.000Z', end: '2026-10-05T15:00:00.000Z', first_date: '2026-10-03', last_date: '2026-10-05' });
      assert.deepEqual(d.daily, [
        {
          service_id: services.api,
          service_name: 'api',
          points: [
            // Both revisions summed; p95 is the larger of the two (an upper bound).
            { date: '2026-10-03', invocations: 150, gb_s: '1.5', cold_starts: 5, errors: 3, p95_duration_ms: '200' },
            zero('2026-10-04'),
            { date: '2026-10-05', invocations: 30, gb_s: '0.1', cold_starts: 1, errors: 0, p95_duration_ms: '90' },
          ],
        },
        {
          service_id: services.batch,
          service_name: 'batch',
          points: [zero('2026-10-03'), { date: '2026-10-04', invocations: 2, gb_s: '5', cold_starts: 2, errors: 0, p95_duration_ms: '30000' }, zero('2026-10-05')],
        },
        {
          service_id: services.worker,
          service_name: 'worker',
          points: [zero('2026-10-03'), { date: '2026-10-04', invocations: 400, gb_s: '0.2', cold_starts: 4, errors: 0, p95_duration_ms: '15' }, zero('2026-10-05')],
        },
      ]);
      assert.deepEqual(d.daily_totals, [
        { date: '2026-10-03', invocations: 150, gb_s: '1.5', cold_starts: 5, errors: 3, p95_duration_ms: '200' },
        { date: '2026-10-04', invocations: 402, gb_s: '5.2', cold_starts: 6, errors: 0, p95_duration_ms: '30000' },
        { date: '2026-10-05', invocations: 30, gb_s: '0.1', cold_starts: 1, errors: 0, p95_duration_ms: '90' },
      ]);
      // By GB-s: batch (5) > api (1.6) > worker (0.2), although worker has the most invocations.
      assert.deepEqual(d.top_services, [
        { service_id: services.batch, service_name: 'batch', invocations: 2, gb_s: '5', cold_starts: 2, errors: 0, p95_duration_ms: '30000', cold_start_rate: '1.0000', error_rate: '0.0000' },
        { service_id: services.api, service_name: 'api', invocations: 180, gb_s: '1.6', cold_starts: 6, errors: 3, p95_duration_ms: '200', cold_start_rate: '0.0333', error_rate: '0.0167' },
        { service_id: services.worker, service_name: 'worker', invocations: 400, gb_s: '0.2', cold_starts: 4, errors: 0, p95_duration_ms: '15', cold_start_rate: '0.0100', error_rate: '0.0000' },
      ]);
      // 12 / 582 = 0.020618… → 0.0206; 3 / 582 = 0.005154… → 0.0052.
      assert.deepEqual(d.totals, { invocations: 582, gb_s: '6.8', cold_starts: 12, errors: 3, p95_duration_ms: '30000', cold_start_rate: '0.0206', error_rate: '0.0052' });
      assert.equal(d.month_to_date, null);
      assert.doesNotThrow(() => dashboardSchema.parse(d));
    });

    it('defaults to the last 30 local days, today included', async () => {
      const d = await usageDashboard(t.db, tokyo, now);
      assert.deepEqual(d.window, { days: 30, start: '2026-09-05T15:00:00.000Z', end: '2026-10-05T15:00:00.000Z', first_date: '2026-09-06', last_date: '2026-10-05' });
      assert.equal(d.daily_totals.length, 30);
      assert.deepEqual(
        d.daily_totals.filter((p) => p.invocations > 0).map((p) => [p.date, p.invocations]),
        [
          ['2026-10-02', 999],
          ['2026-10-03', 150],
          ['2026-10-04', 402],
          ['2026-10-05', 30],
        ],
      );
      assert.equal(d.totals.invocations, 582 + 999);
      assert.equal(d.totals.gb_s, '7.8');
      for (const s of d.daily) assert.equal(s.points.length, 30);
    });

    it('month_to_date: null without a running cost of the open period, the stored row (in the tenant currency) when there is one', async () => {
      const cost = (periodStart: string, periodEnd: string, extra: Record<string, unknown> = {}) =>
        t.db('tenant_running_costs').insert({
          tenant_id: tokyo,
          period_start: periodStart,
          period_end: periodEnd,
          currency: 'JPY',
          total: '0',
          total_unrounded: '0',
          lines: '[]',
          usage_as_of: '2026-09-30T12:00:00Z',
          ...extra,
        });
      // Last month's running cost is not this month's.
      await cost('2026-08-31T15:00:00Z', '2026-09-30T15:00:00Z', { total: '999' });
      assert.equal((await usageDashboard(t.db, tokyo, now, { days: 1 })).month_to_date, null);
      const lines = [
        {
          service: 'api',
          meter: 'compute',
          description: 'Compute (MB·ms)',
          quantity: '2048000',
          freeQuantity: '1024000',
          billableQuantity: '1024000',
          unit: 'MB·ms',
          unitPrice: '0.001',
          amountUnrounded: '1024',
          amount: '1024',
          gbS: { quantity: '2', freeQuantity: '1', billableQuantity: '1', unitPrice: '1024' },
          isAdjustment: false,
          planId: 'p-1',
          segmentStart: '2026-09-30T15:00:00.000Z',
          segmentEnd: '2026-10-31T15:00:00.000Z',
          serviceId: services.api,
          adjustsBillId: null,
        },
        {
          service: 'worker',
          meter: 'invocations',
          description: 'Invocations',
          quantity: '421',
          freeQuantity: '0',
          billableQuantity: '421',
          unit: 'invocation',
          unitPrice: '0.5',
          amountUnrounded: '210.5',
          amount: '211',
          isAdjustment: false,
          planId: 'p-1',
          segmentStart: '2026-09-30T15:00:00.000Z',
          segmentEnd: '2026-10-31T15:00:00.000Z',
          serviceId: services.worker,
          adjustsBillId: null,
        },
      ];
      await cost('2026-09-30T15:00:00Z', '2026-10-31T15:00:00Z', {
        total: '1235.0000',
        total_unrounded: '1234.5',
        adjustments_total: '10.0000',
        lines: JSON.stringify(lines),
        usage_as_of: '2026-10-05T02:55:00Z',
        computed_at: '2026-10-05T02:56:00Z',
      });
      const d = await usageDashboard(t.db, tokyo, now, { days: 1 });
      assert.deepEqual(d.month_to_date, {
        period_start: '2026-09-30T15:00:00.000Z',
        period_end: '2026-10-31T15:00:00.000Z',
        currency: 'JPY',
        plan_id: null,
        total: '1245',
        usage_total: '1235',
        adjustments_total: '10',
        usage_total_unrounded: '1234.5',
        usage_as_of: '2026-10-05T02:55:00.000Z',
        computed_at: '2026-10-05T02:56:00.000Z',
        lines: [
          {
            service: 'api',
            service_id: services.api,
            meter: 'compute',
            kind: 'usage',
            description: 'Compute (MB·ms)',
            quantity: '2048000',
            free_quantity: '1024000',
            billable_quantity: '1024000',
            unit: 'MB·ms',
            unit_price: '0.001',
            amount_unrounded: '1024',
            amount: '1024',
            is_adjustment: false,
            adjusts_bill_id: null,
            plan_id: 'p-1',
            segment_start: '2026-09-30T15:00:00.000Z',
            segment_end: '2026-10-31T15:00:00.000Z',
            gb_s: { quantity: '2', free_quantity: '1', billable_quantity: '1', unit_price: '1024' },
          },
          {
            service: 'worker',
            service_id: services.worker,
            meter: 'invocations',
            kind: 'usage',
            description: 'Invocations',
            quantity: '421',
            free_quantity: '0',
            billable_quantity: '421',
            unit: 'invocation',
            unit_price: '0.5',
            amount_unrounded: '210.5',
            amount: '211',
            is_adjustment: false,
            adjusts_bill_id: null,
            plan_id: 'p-1',
            segment_start: '2026-09-30T15:00:00.000Z',
            segment_end: '2026-10-31T15:00:00.000Z',
            gb_s: null,
          },
        ],
      });
      assert.doesNotThrow(() => dashboardSchema.parse(d));
    });

    it('month_to_date reads what the price stage really writes (Billing.updateRunningCost)', async () => {
      const tenantId = await createTenant(t.db, { timezone: 'Europe/Berlin' });
      const planId = await createPlan(t.db, { name: `dash-${tenantId.slice(0, 8)}`, currency: 'USD', price_per_invocation: '0.01', price_per_mb_ms: '0.000001' });
      await assignPlan(t.db, tenantId, planId, '2000-01-01T00:00:00Z');
      const api = await createService(t.db, tenantId, 'api');
      await insertHours(t.db, [{ tenantId, ...api, start: '2026-11-02T10:00:00Z', invocations: 3, billedMbMs: '2048000', planId }]);
      const clock = new Date('2026-11-15T12:00:00Z');
      await new Billing({ db: t.db, now: () => clock }).updateRunningCost([tenantId]);
      const d = await usageDashboard(t.db, tenantId, clock, { days: 1 });
      const mtd = d.month_to_date;
      assert.ok(mtd);
      // Berlin's November starts at 2026-10-31T23:00Z; 3 × 0.01 + 2 048 000 × 0.000001 = 0.03 + 2.048 → 0.03 + 2.05.
      assert.deepEqual([mtd.period_start, mtd.currency, mtd.plan_id, mtd.total, mtd.usage_total, mtd.adjustments_total], ['2026-10-31T23:00:00.000Z', 'USD', planId, '2.08', '2.08', '0.00']);
      assert.deepEqual(
        mtd.lines.map((l) => [l.service, l.service_id, l.meter, l.quantity, l.amount, l.gb_s?.quantity ?? null]),
        [
          ['api', api.serviceId, 'invocations', '3', '0.03', null],
          ['api', api.serviceId, 'compute', '2048000', '2.05', '2'],
        ],
      );
      assert.doesNotThrow(() => dashboardSchema.parse(d));
    });

    it('a tenant without usage: empty series and rankings, zero totals, rates "0", p95 null', async () => {
      const idle = await createTenant(t.db, { timezone: 'America/New_York' });
      await createService(t.db, idle, 'api');
      const d = await usageDashboard(t.db, idle, now, { days: 2 });
      assert.deepEqual(d.daily, []);
      assert.deepEqual(d.top_services, []);
      // 2026-10-05T03:00Z is 23:00 on 4 October in New York (UTC-4).
      assert.deepEqual(d.daily_totals, [zero('2026-10-03'), zero('2026-10-04')]);
      assert.deepEqual(d.totals, { invocations: 0, gb_s: '0', cold_starts: 0, errors: 0, p95_duration_ms: null, cold_start_rate: '0', error_rate: '0' });
      assert.equal(d.month_to_date, null);
    });

    it('top_services keeps the 10 services with the most GB-s, ties broken by invocations', async () => {
      const tenantId = await createTenant(t.db);
      const names: string[] = [];
      for (let k = 1; k <= 12; k++) {
        const name = `s${String(k).padStart(2, '0')}`;
        names.push(name);
        const s = await createService(t.db, tenantId, name);
        // s05 and s06 both bill 5 GB-s; s06 has more invocations.
        const gb = k === 6 ? 5 : k;
        await insertAggregate(t.db, { tenantId, ...s, size: '1d', start: '2026-10-05T00:00:00Z', invocations: k === 6 ? 20 : 10, billedMbMs: String(gb * 1_024_000) });
      }
      const d = await usageDashboard(t.db, tenantId, now, { days: 1 });
      assert.deepEqual(
        d.top_services.map((s) => [s.service_name, s.gb_s, s.invocations]),
        [
          ['s12', '12', 10],
          ['s11', '11', 10],
          ['s10', '10', 10],
          ['s09', '9', 10],
          ['s08', '8', 10],
          ['s07', '7', 10],
          ['s06', '5', 20],
          ['s05', '5', 10],
          ['s04', '4', 10],
          ['s03', '3', 10],
        ],
      );
      assert.deepEqual(
        d.daily.map((s) => s.service_name),
        names,
      );
      assert.equal(d.totals.gb_s, String(1 + 2 + 3 + 4 + 5 + 5 + 7 + 8 + 9 + 10 + 11 + 12));
    });

    it('local days across a DST change (Europe/Berlin, 25 October 2026 has 25 hours)', async () => {
      const tenantId = await createTenant(t.db, { timezone: 'Europe/Berlin' });
      const s = await createService(t.db, tenantId, 'api');
      await insertAggregate(t.db, { tenantId, ...s, size: '1d', start: '2026-10-24T22:00:00Z', end: '2026-10-25T23:00:00Z', invocations: 25 });
      await insertAggregate(t.db, { tenantId, ...s, size: '1d', start: '2026-10-25T23:00:00Z', end: '2026-10-26T23:00:00Z', invocations: 26 });
      const d = await usageDashboard(t.db, tenantId, new Date('2026-10-26T12:00:00Z'), { days: 2 });
      assert.deepEqual(d.window, { days: 2, start: '2026-10-24T22:00:00.000Z', end: '2026-10-26T23:00:00.000Z', first_date: '2026-10-25', last_date: '2026-10-26' });
      assert.deepEqual(
        d.daily_totals.map((p) => [p.date, p.invocations]),
        [
          ['2026-10-25', 25],
          ['2026-10-26', 26],
        ],
      );
    });

    it('unknown tenant → QueryError("tenant_not_found"); bad days → QueryError("invalid_argument")', async () => {
      await assert.rejects(usageDashboard(t.db, randomUUID(), now), isQueryError('tenant_not_found'));
      await assert.rejects(usageDashboard(t.db, 'nobody', now), isQueryError('tenant_not_found'));
      for (const days of [0, -3, 2.5, 401]) {
        await assert.rejects(usageDashboard(t.db, tokyo, now, { days }), isQueryError('invalid_argument'), `days ${days}`);
      }
    });

    it('the output schemas convert to JSON Schema (for the OpenAPI document)', () => {
      const dashboard = z.toJSONSchema(dashboardSchema) as { properties?: Record<string, unknown> };
      assert.deepEqual(Object.keys(dashboard.properties ?? {}).sort(), ['as_of', 'daily', 'daily_totals', 'month_to_date', 'period', 'tenant', 'top_services', 'totals', 'window']);
      const page = z.toJSONSchema(aggregatePageSchema) as { properties?: Record<string, unknown> };
      assert.deepEqual(Object.keys(page.properties ?? {}).sort(), ['items', 'next_cursor']);
    });
  });
});
