/**
 * The embedded PostgreSQL of local mode (PGlite behind its socket server, with our protocol-aware
 * queue) under the load `npm start` gives it: several processes' pools running parameterised
 * queries and transactions at the same time over one shared PGlite session.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/local/embedded-postgres.js';
import { freePort } from './support/net.js';

describe('embedded PostgreSQL (PGlite over its socket server)', function () {
  this.timeout(120_000);
  let embedded: EmbeddedPostgres;
  const pools: pg.Pool[] = [];

  before(async () => {
    embedded = await startEmbeddedPostgres({ dataDir: 'memory', port: await freePort() });
    for (let i = 0; i < 4; i++) pools.push(new pg.Pool({ connectionString: embedded.url, max: 4 }));
    await pools[0]?.query('CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)');
    await pools[0]?.query('INSERT INTO counters SELECT g, 0 FROM generate_series(1, 4) g');
  });

  after(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    await embedded.stop();
  });

  it('keeps concurrent parameterised queries of many connections apart', async () => {
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        (pools[i % pools.length] as pg.Pool).query<{ v: number; t: string }>('SELECT $1::int * 2 AS v, $2::text AS t', [i, `q${i}`]),
      ),
    );
    results.forEach((result, i) => assert.deepEqual(result.rows[0], { v: i * 2, t: `q${i}` }));
  });

  it('keeps each transaction whole while other connections query', async () => {
    const transaction = async (pool: pg.Pool, id: number): Promise<void> => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<{ n: number }>('SELECT n FROM counters WHERE id = $1', [id]);
        await client.query('UPDATE counters SET n = $1 WHERE id = $2', [(rows[0]?.n ?? 0) + 1, id]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    };
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        i % 2 === 0 ? transaction(pools[i % pools.length] as pg.Pool, (i % 4) + 1) : (pools[i % pools.length] as pg.Pool).query('SELECT $1::int', [i]),
      ),
    );
    const { rows } = await (pools[0] as pg.Pool).query<{ total: number }>('SELECT sum(n)::int AS total FROM counters');
    // Read-modify-write inside transactions: any interleaving would lose updates.
    assert.equal(rows[0]?.total, 100);
  });
});
