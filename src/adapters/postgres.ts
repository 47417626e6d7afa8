/**
 * PostgreSQL access through knex + pg. Production Postgres and the embedded one are both just a
 * connection string here: one code path, the same SQL.
 */
import knex, { type Knex } from 'knex';
import pg from 'pg';

// NUMERIC and BIGINT stay strings (the pg default): money and large counts must not pass through
// a JS float. COUNT(*) results are cast in SQL where a number is wanted.
export type Db = Knex;

/** Opens a knex pool on a PostgreSQL URL. */
export function createDb(connectionString: string, poolMax = 4): Db {
  return knex({
    client: 'pg',
    connection: { connectionString, application_name: 'faas-billing' },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10_000,
  });
}

/** Runs a trivial query; throws when the database cannot answer. */
export async function pingDb(db: Db): Promise<void> {
  await db.raw('select 1');
}

/** The pg driver, for the few places that need a raw client. */
export { pg };
