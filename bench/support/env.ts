/** What every benchmark needs from the environment: the real PostgreSQL and Redis. */

export interface BenchEnv {
  /** A PostgreSQL server on which the bench may create (and drop) its own database. */
  databaseUrl: string;
  redisUrl: string;
}

/**
 * Reads DATABASE_URL and REDIS_URL. Benchmarks measure the real services, never the embedded
 * stand-ins, so when either is missing this prints what to set and exits with code 2.
 */
export function benchEnv(env: NodeJS.ProcessEnv = process.env): BenchEnv {
  const databaseUrl = env.DATABASE_URL;
  const redisUrl = env.REDIS_URL;
  if (!databaseUrl || !redisUrl) {
    const missing = [databaseUrl ? undefined : 'DATABASE_URL', redisUrl ? undefined : 'REDIS_URL'].filter(Boolean).join(' and ');
    console.error(
      [
        `The benchmarks run against a real PostgreSQL and Redis; ${missing} ${missing.includes(' and ') ? 'are' : 'is'} not set.`,
        'Set both, for example:',
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 npm run bench',
        'The bench creates its own database on that server (the role needs CREATEDB) and drops it at the end;',
        'it uses its own Redis stream keys and deletes them.',
      ].join('\n'),
    );
    process.exit(2);
  }
  return { databaseUrl, redisUrl };
}

/** A positive integer from the environment, or `fallback`; anything else is a clear error. */
export function envInt(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}
