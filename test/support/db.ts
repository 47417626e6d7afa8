/**
 * A fresh, migrated database per test suite: a new database on the PostgreSQL of DATABASE_URL
 * (CI), or an in-memory embedded PGlite when DATABASE_URL is unset.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb, type Db } from '../../src/adapters/postgres.js';
import { startEmbeddedPostgres } from '../../src/local/embedded-postgres.js';
import { migrateLatest } from '../../schema/migrate.js';
import { freePort } from './net.js';

export interface TestDatabase {
  url: string;
  db: Db;
  /** Host and port the database listens on (to put a proxy in front). */
  address: { host: string; port: number };
  drop(): Promise<void>;
}

/** Creates and migrates a database that only this suite uses. */
export async function freshDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres({ dataDir: 'memory', port: await freePort() });
    const db = createDb(embedded.url, 4);
    await migrateLatest(db);
    const u = new URL(embedded.url);
    return {
      url: embedded.url,
      db,
      address: { host: u.hostname, port: Number(u.port) },
      async drop() {
        await db.destroy();
        await embedded.stop();
      },
    };
  }
  const name = `fb_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = createDb(url.toString(), 4);
  await migrateLatest(db);
  return {
    url: url.toString(),
    db,
    address: { host: url.hostname, port: Number(url.port || 5432) },
    async drop() {
      await db.destroy();
      const cleanup = new pg.Client({ connectionString: adminUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}

/** Replaces the host and port of a connection URL (to go through a proxy). */
export function viaPort(connectionUrl: string, port: number): string {
  const url = new URL(connectionUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return url.toString();
}
