/** A throw-away, migrated database for one bench run, on the server DATABASE_URL points at. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrateLatest } from '../../schema/migrate.js';
import { createDb, type Db } from '../../src/adapters/postgres.js';
import { createLogger } from '../../src/runtime/logger.js';

export interface BenchDatabase {
  name: string;
  url: string;
  db: Db;
  /** Drops the database (safe to call twice). */
  drop(): Promise<void>;
}

async function admin(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates `fb_bench_<random>` and applies every migration. */
export async function createBenchDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `fb_bench_${randomBytes(5).toString('hex')}`;
  await admin(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = createDb(url.toString(), 4, createLogger('bench-db', 'warn'));
  let dropped = false;
  const drop = async (): Promise<void> => {
    if (dropped) return;
    dropped = true;
    await db.destroy();
    // FORCE: a child process killed mid-run may still hold a connection.
    await admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  try {
    await migrateLatest(db);
  } catch (err) {
    await drop();
    throw err;
  }
  return { name, url: url.toString(), db, drop };
}

/**
 * Flushes dirty pages before a timed phase so one phase does not pay for the previous one's
 * writes. Needs superuser (or pg_checkpoint); without it the phase runs anyway.
 */
export async function checkpoint(db: Db): Promise<void> {
  await db.raw('CHECKPOINT').catch(() => undefined);
}
