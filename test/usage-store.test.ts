/**
 * UsageStore against a real database: COPY on PostgreSQL (DATABASE_URL; through a staging table
 * and ON CONFLICT when a batch repeats a stored key), unnest() over array parameters on the
 * embedded PGlite. Every path must store exactly what the records say, whatever characters their
 * text fields hold, and drop exactly the duplicates.
 */
import assert from 'node:assert/strict';
import { createDb, type Db } from '../src/adapters/postgres.js';
import { UsageStore } from '../src/adapters/usage-store.js';
import type { UsageRecord } from '../src/contract/usage.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { usageRecord } from './support/usage.js';

interface StoredRow {
  source: string;
  event_id: string;
  duration_ms: string;
  memory_mb: string;
  cpu_ms: string | null;
  labels: Record<string, string>;
}

describe(`UsageStore (${process.env.DATABASE_URL ? 'PostgreSQL: COPY, through a staging table when a key repeats' : 'embedded PGlite: unnest'})`, () => {
  let database: TestDatabase;

  before(async () => {
    database = await freshDatabase();
    await database.db('tenants').insert([
      { slug: 'demo', name: 'Demo' },
      { slug: 'other', name: 'Other' },
    ]);
  });
  after(async () => database.drop());

  const rowsOf = (db: Db, source: string): Promise<StoredRow[]> =>
    db('usage_raw').where({ source }).orderBy('event_id').select<StoredRow[]>('source', 'event_id', 'duration_ms', 'memory_mb', 'cpu_ms', 'labels');

  it('stores text fields holding tabs, line breaks, backslashes and quotes exactly as sent', async () => {
    const source = '/odd\tsource\\with\nbreaks';
    const labels = { path: 'C:\\temp\\x', quote: 'say "hi"', tab: 'a\tb', lines: 'one\ntwo\r\nthree', unicode: 'счёт €', backslashN: '\\N' };
    const records = [usageRecord({ source, id: 'id\\1\t', labels }), usageRecord({ source, id: 'id-2', labels: {}, cpu_ms: null })];
    const result = await new UsageStore(database.db).store(records);
    assert.equal(result.inserted, 2);
    const rows = await rowsOf(database.db, source);
    assert.deepEqual(
      rows.map((r) => [r.source, r.event_id, r.labels, r.cpu_ms]),
      [
        [source, 'id-2', {}, null],
        [source, 'id\\1\t', labels, '50.000'],
      ],
    );
  });

  it('keeps numbers to the column scale whether they print plainly or in exponent form', async () => {
    const source = '/numbers';
    const records = [
      usageRecord({ source, id: 'tiny', duration_ms: 1e-7, memory_mb: 0.5, cpu_ms: 2.5e-4 }),
      usageRecord({ source, id: 'large', duration_ms: 123_456_789.1234, memory_mb: 65_536, cpu_ms: 0 }),
    ];
    await new UsageStore(database.db).store(records);
    const rows = await rowsOf(database.db, source);
    assert.deepEqual(
      rows.map((r) => [r.event_id, r.duration_ms, r.memory_mb, r.cpu_ms]),
      [
        ['large', '123456789.123', '65536.000', '0.000'],
        ['tiny', '0.000', '0.500', '0.000'],
      ],
    );
  });

  it('reports the second store of the same records as duplicates and inserts nothing', async () => {
    const records: UsageRecord[] = Array.from({ length: 50 }, (_, i) => usageRecord({ source: '/twice', id: `e${i}` }));
    const store = new UsageStore(database.db);
    const first = await store.store(records);
    const second = await store.store(records);
    assert.deepEqual([first.inserted, first.duplicates], [50, 0]);
    assert.deepEqual([second.inserted, second.duplicates], [0, 50]);
    assert.equal((await rowsOf(database.db, '/twice')).length, 50);
  });

  it('drops only the keys already stored (or repeated in the batch) when a batch mixes them with new ones', async () => {
    const source = '/mixed';
    const store = new UsageStore(database.db);
    const old = Array.from({ length: 5 }, (_, i) => usageRecord({ source, id: `old-${i}` }));
    await store.store(old);
    const fresh = Array.from({ length: 3 }, (_, i) => usageRecord({ source, id: `new-${i}` }));
    const result = await store.store([...old, ...fresh, { ...fresh[0]! }]);
    assert.deepEqual([result.inserted, result.duplicates], [3, 6]);
    assert.equal((await rowsOf(database.db, source)).length, 8);
  });

  it('reports the time range and tenants of the rows it inserted, leaving out the duplicates', async () => {
    const source = '/summary';
    const store = new UsageStore(database.db);
    const at = (minute: number): string => new Date(Date.UTC(2026, 0, 15, 12, minute)).toISOString();
    const first = [usageRecord({ source, id: 'a', time: at(1) }), usageRecord({ source, id: 'b', time: at(3), tenant_id: 'other' }), usageRecord({ source, id: 'c', time: at(2) })];
    const tenantIds = await database.db('tenants').orderBy('slug').select<{ id: string; slug: string }[]>('id', 'slug');
    const idOf = (slug: string): string => tenantIds.find((t) => t.slug === slug)?.id ?? '';
    const all = await store.store(first);
    assert.deepEqual([all.minTime, all.maxTime, all.tenants], [at(1), at(3), [idOf('demo'), idOf('other')].sort()]);
    // The earliest row again, beside a new one: the range and tenants are the new row's alone.
    const some = await store.store([first[0]!, usageRecord({ source, id: 'd', time: at(2) })]);
    assert.deepEqual([some.inserted, some.minTime, some.maxTime, some.tenants], [1, at(2), at(2), [idOf('demo')]]);
  });

  it('stores the next batch on the same connection after a batch whose transaction rolled back', async () => {
    // One connection, so the second batch runs in the session whose first transaction failed.
    const db = createDb(database.url, 1);
    try {
      const source = '/rollback';
      const store = new UsageStore(db);
      const stored = usageRecord({ source, id: 'stored' });
      await store.store([stored]);
      // A key already stored comes first, so on PostgreSQL the straight COPY stops at it (its
      // first buffer of rows is flushed long before the last row) and the batch goes through
      // the staging table; the last row breaks usage_raw's CHECK (memory_mb > 0) there, and the
      // whole transaction rolls back.
      const filler = Array.from({ length: 1200 }, (_, i) => usageRecord({ source, id: `lost-${i}` }));
      await assert.rejects(store.store([stored, ...filler, usageRecord({ source, id: 'bad', memory_mb: 0 })]), /memory_mb|check/i);
      const result = await store.store([stored, usageRecord({ source, id: 'next' })]);
      assert.deepEqual([result.inserted, result.duplicates], [1, 1]);
      assert.deepEqual(
        (await rowsOf(database.db, source)).map((r) => r.event_id),
        ['next', 'stored'],
      );
    } finally {
      await db.destroy();
    }
  });
});
