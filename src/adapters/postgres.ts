/**
 * PostgreSQL access through knex + pg. Production Postgres and the embedded one are both just a
 * connection string here: one code path, the same SQL.
 */
import knex, { type Knex } from 'knex';
import pg from 'pg';
import { createLogger, type Logger } from '../runtime/logger.js';

// NUMERIC and BIGINT stay strings (the pg default): money and large counts must not pass through
// a JS float. COUNT(*) results are cast in SQL where a number is wanted.
export type Db = Knex;

/**
 * Opens a knex pool on a PostgreSQL URL. knex's own messages go to `logger` instead of the
 * console: its warnings (a dropped connection, a failed acquire) repeat what the caller already
 * handles as an error (503, retry), so they are logged at debug level.
 */
export function createDb(connectionString: string, poolMax = 4, logger: Logger = createLogger('knex')): Db {
  const text = (message: unknown): string => (typeof message === 'string' ? message : JSON.stringify(message));
  return knex({
    client: 'pg',
    connection: { connectionString, application_name: 'faas-billing' },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10_000,
    log: {
      warn: (message: unknown) => logger.debug(text(message)),
      error: (message: unknown) => logger.error(text(message)),
      deprecate: (method: string, alternative: string) => logger.warn(`knex: ${method} is deprecated, use ${alternative}`),
      debug: (message: unknown) => logger.trace(text(message)),
    },
  });
}

/** Runs a trivial query; throws when the database cannot answer. */
export async function pingDb(db: Db): Promise<void> {
  await db.raw('select 1');
}

/**
 * Holds a transaction-scoped advisory lock on each `faasbilling:<scope>:<key>` until commit or
 * rollback. Locks are taken in hash order, so two transactions locking overlapping sets cannot
 * deadlock.
 */
export async function lockKeys(trx: Knex.Transaction, scope: string, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await trx.raw(
    `SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT DISTINCT hashtextextended(? || t, 0) AS k FROM unnest(?::text[]) t ORDER BY 1) s`,
    [`faasbilling:${scope}:`, [...keys]],
  );
}

/** The pg driver, for the few places that need a raw client. */
export { pg };
