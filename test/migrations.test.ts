/**
 * The knex migrations on a fresh database (a new database on DATABASE_URL's server, or an
 * embedded PGlite): every table, the corrections of DESIGN §4 (NUMERIC prices with enough scale,
 * usage_raw partitioned with its dedup key, foreign keys), down and up again, and the
 * `npm run migrate` script.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrateDownAll, migrateLatest, migrationNames } from '../schema/migrate.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const expectedTables = [
  'anomalies',
  'api_event_outbox',
  'api_keys',
  'audit_log',
  'bill_line_items',
  'bills',
  'budget_alerts',
  'budgets',
  'buffer_entries',
  'credit_notes',
  'dead_letters',
  'ml_predictions',
  'pricing_plans',
  'revisions',
  'services',
  'tenant_credits',
  'tenant_plan_assignments',
  'tenant_running_costs',
  'tenants',
  'usage_aggregate',
  'usage_dirty',
  'usage_raw',
  'webhook_deliveries',
  'webhook_payloads',
  'webhooks',
];

interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs scripts/migrate.ts as `npm run migrate` does, with `env` as its whole environment. */
function runMigrateScript(env: NodeJS.ProcessEnv, args: string[] = []): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The environment of this process without the variables that would point the script elsewhere. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.NODE_OPTIONS;
  return env;
}

describe('schema migrations', function () {
  let database: TestDatabase;

  before(async () => {
    database = await freshDatabase();
  });
  after(async () => {
    await database.drop();
  });

  async function publicTables(): Promise<string[]> {
    // Partitions of usage_raw are tables too; only top-level tables count here.
    const result = await database.db.raw<{ rows: { name: string }[] }>(
      `SELECT c.relname AS name FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname NOT LIKE 'knex\\_%'
        ORDER BY 1`,
    );
    return result.rows.map((r) => r.name);
  }

  async function column(table: string, name: string): Promise<{ data_type: string; numeric_precision: number | null; numeric_scale: number | null } | undefined> {
    const result = await database.db.raw<{ rows: { data_type: string; numeric_precision: number | null; numeric_scale: number | null }[] }>(
      `SELECT data_type, numeric_precision, numeric_scale FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = ? AND column_name = ?`,
      [table, name],
    );
    return result.rows[0];
  }

  it('creates every table of the schema, and a second run is a no-op', async () => {
    await migrateDownAll(database.db);
    assert.deepEqual(await publicTables(), []);
    assert.deepEqual(await migrateLatest(database.db), migrationNames);
    assert.deepEqual(await publicTables(), expectedTables);
    assert.deepEqual(await migrateLatest(database.db), []);
    assert.deepEqual(await publicTables(), expectedTables);
  });

  it('partitions usage_raw by range of time, with a default partition', async () => {
    const table = await database.db.raw<{ rows: { relkind: string; strategy: string | null; key: string | null }[] }>(
      `SELECT c.relkind, p.partstrat AS strategy, pg_get_partkeydef(c.oid) AS key
         FROM pg_class c LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
        WHERE c.relname = 'usage_raw' AND c.relnamespace = 'public'::regnamespace`,
    );
    assert.deepEqual(table.rows, [{ relkind: 'p', strategy: 'r', key: 'RANGE ("time")' }]);
    const partitions = await database.db.raw<{ rows: { name: string; bound: string }[] }>(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.usage_raw'::regclass`,
    );
    assert.deepEqual(partitions.rows, [{ name: 'usage_raw_default', bound: 'DEFAULT' }]);
  });

  it('keeps unit prices in NUMERIC with at least 12 decimal places, exactly', async () => {
    for (const [table, name] of [
      ['pricing_plans', 'price_per_invocation'],
      ['pricing_plans', 'price_per_mb_ms'],
      ['pricing_plans', 'price_per_cold_start'],
      ['pricing_plans', 'price_per_cpu_ms'],
      ['bill_line_items', 'unit_price'],
      ['bill_line_items', 'amount_unrounded'],
      ['bills', 'total_unrounded'],
    ] as const) {
      const info = await column(table, name);
      assert.ok(info, `${table}.${name} exists`);
      assert.equal(info.data_type, 'numeric', `${table}.${name} is numeric`);
      assert.ok((info.numeric_scale ?? 0) >= 12, `${table}.${name} has scale ${info.numeric_scale}`);
    }
    // Money amounts are NUMERIC too, never float.
    for (const [table, name] of [
      ['bills', 'total_amount'],
      ['bill_line_items', 'amount'],
      ['ml_predictions', 'predicted_cost'],
    ] as const) {
      assert.equal((await column(table, name))?.data_type, 'numeric', `${table}.${name} is numeric`);
    }

    const prices = { price_per_mb_ms: '0.000000016276', price_per_invocation: '0.00000020000000000001', price_per_cpu_ms: '0.00000000001666666667' };
    const [plan] = await database.db('pricing_plans')
      .insert({ name: `plan-${Date.now()}`, currency: 'USD', ...prices })
      .returning<{ price_per_mb_ms: string; price_per_invocation: string; price_per_cpu_ms: string }[]>(['price_per_mb_ms', 'price_per_invocation', 'price_per_cpu_ms']);
    assert.ok(plan);
    // NUMERIC comes back as a string (never through a float), padded to the column's scale.
    const trimmed = (value: string): string => value.replace(/0+$/, '');
    assert.equal(typeof plan.price_per_mb_ms, 'string');
    assert.equal(trimmed(plan.price_per_mb_ms), prices.price_per_mb_ms);
    assert.equal(trimmed(plan.price_per_invocation), prices.price_per_invocation);
    assert.equal(trimmed(plan.price_per_cpu_ms), prices.price_per_cpu_ms);
  });

  it('drops a second usage_raw row with the same (tenant, source, event_id, time) on conflict, refuses it without, and keeps another tenant’s row with that key', async () => {
    const [tenant] = await database.db('tenants').insert({ slug: `dedup-${Date.now()}`, name: 'Dedup' }).returning<{ id: string }[]>('id');
    assert.ok(tenant);
    const [service] = await database.db('services').insert({ tenant_id: tenant.id, name: 'fn' }).returning<{ id: string }[]>('id');
    assert.ok(service);
    const [revision] = await database.db('revisions').insert({ service_id: service.id, name: 'fn-00001' }).returning<{ id: string }[]>('id');
    assert.ok(revision);
    const row = {
      time: '2026-01-15T10:00:00.000Z',
      tenant_id: tenant.id,
      service_id: service.id,
      revision_id: revision.id,
      source: '/test/migrations',
      event_id: 'event-1',
      duration_ms: 10,
      memory_mb: 128,
    };
    const first = await database.db('usage_raw').insert(row).onConflict(['tenant_id', 'source', 'event_id', 'time']).ignore().returning<{ id: string }[]>('id');
    assert.equal(first.length, 1);
    const second = await database.db('usage_raw')
      .insert({ ...row, duration_ms: 99 })
      .onConflict(['tenant_id', 'source', 'event_id', 'time'])
      .ignore()
      .returning<{ id: string }[]>('id');
    assert.equal(second.length, 0);
    await assert.rejects(database.db('usage_raw').insert(row), (err: { code?: string }) => err.code === '23505');
    const stored = await database.db('usage_raw').where({ source: row.source }).select<{ duration_ms: string }[]>('duration_ms');
    assert.deepEqual(stored, [{ duration_ms: '10.000' }]);
    // Another tenant reusing the event id is not a duplicate (migration 0006).
    const [other] = await database.db('tenants').insert({ slug: `dedup-other-${Date.now()}`, name: 'Other' }).returning<{ id: string }[]>('id');
    assert.ok(other);
    const [otherService] = await database.db('services').insert({ tenant_id: other.id, name: 'fn' }).returning<{ id: string }[]>('id');
    assert.ok(otherService);
    const [otherRevision] = await database.db('revisions').insert({ service_id: otherService.id, name: 'fn-00001' }).returning<{ id: string }[]>('id');
    assert.ok(otherRevision);
    const third = await database.db('usage_raw')
      .insert({ ...row, tenant_id: other.id, service_id: otherService.id, revision_id: otherRevision.id, duration_ms: 7 })
      .onConflict(['tenant_id', 'source', 'event_id', 'time'])
      .ignore()
      .returning<{ id: string }[]>('id');
    assert.equal(third.length, 1);
  });

  it('has the foreign keys that tie usage, services and bills to tenants', async () => {
    const result = await database.db.raw<{ rows: { child: string; column: string; parent: string }[] }>(
      `SELECT cl.relname AS child, a.attname AS column, ref.relname AS parent
         FROM pg_constraint c
         JOIN pg_class cl ON cl.oid = c.conrelid
         JOIN pg_class ref ON ref.oid = c.confrelid
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND cl.relnamespace = 'public'::regnamespace`,
    );
    const keys = new Set(result.rows.map((r) => `${r.child}.${r.column} -> ${r.parent}`));
    for (const key of [
      'services.tenant_id -> tenants',
      'revisions.service_id -> services',
      'usage_raw.tenant_id -> tenants',
      'usage_raw.service_id -> services',
      'usage_raw.revision_id -> revisions',
      'usage_aggregate.tenant_id -> tenants',
      'pricing_plans.tenant_id -> tenants',
      'tenant_plan_assignments.tenant_id -> tenants',
      'tenant_plan_assignments.plan_id -> pricing_plans',
      'bills.tenant_id -> tenants',
      'bill_line_items.bill_id -> bills',
      'ml_predictions.tenant_id -> tenants',
      'api_keys.tenant_id -> tenants',
    ]) {
      assert.ok(keys.has(key), `missing foreign key ${key}`);
    }
    await assert.rejects(
      database.db('services').insert({ tenant_id: '00000000-0000-4000-8000-000000000000', name: 'orphan' }),
      (err: { code?: string }) => err.code === '23503',
    );
  });

  it('rolls everything back and migrates up again', async () => {
    await migrateDownAll(database.db);
    assert.deepEqual(await publicTables(), []);
    assert.deepEqual(await migrateLatest(database.db), migrationNames);
    assert.deepEqual(await publicTables(), expectedTables);
    // The new schema works: a tenant can be created again.
    await database.db('tenants').insert({ slug: 'after-roundtrip', name: 'After' });
    assert.equal((await database.db('tenants').select<{ slug: string }[]>('slug')).length, 1);
  });

  it('`npm run migrate` applies the migrations, then says it is up to date', async () => {
    await migrateDownAll(database.db);
    const env = { ...baseEnv(), DATABASE_URL: database.url };
    const first = await runMigrateScript(env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied: 0001_initial/);
    assert.deepEqual(await publicTables(), expectedTables);
    const second = await runMigrateScript(env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /already up to date/);
  });

  it('`npm run migrate` without DATABASE_URL exits non-zero and says what to set', async () => {
    const run = await runMigrateScript(baseEnv());
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /DATABASE_URL is not set/);
    assert.equal(run.stdout, '');
  });
});
