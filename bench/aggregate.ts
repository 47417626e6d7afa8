/**
 * Benchmark: the aggregate stage (issue 3 target: aggregating 1M raw events into all three window
 * sizes ≤ 1.5× one single-pass SQL GROUP BY over the same rows; 1% late events should touch
 * about 1% of the windows).
 *
 * Data, generated in SQL in time order (as usage arrives): BENCH_AGG_EVENTS events (default
 * 1,000,000) over 3 days for 5 tenants in 5 time zones (one with a DST change in the period) ×
 * 4 services × 2 revisions; 90% single invocations, 10% reports of 2–20; durations log-uniform
 * 1–150 ms per invocation. Loading marks every bucket dirty (the usage_raw triggers).
 *
 * Measured, in the same run on the same rows:
 * (a) baseline — one SQL GROUP BY (tenant, service, revision, 5-minute bucket) with count, sums,
 *     max and percentile_cont(0.5, 0.95) over duration_ms / invocations (unweighted, so cheaper
 *     than the per-invocation percentile the stage computes), rows fetched by the client;
 * (b) the Aggregator from the fully dirty table: 5m, 1h and 1d windows, written;
 * (c) 1% more events, late, spread over the period: windows recomputed per size against the
 *     totals, raw rows re-read, and the time.
 * Runs on DATABASE_URL's server (a scratch database, dropped afterwards) or on embedded PGlite.
 *
 * `npx tsx bench/aggregate.ts`, or `run(log)` from the bench runner.
 */
import type { Knex } from 'knex';
import { loadConfig } from '../src/runtime/config.js';
import { createLogger } from '../src/runtime/logger.js';
import { Aggregator, type AggregateResult } from '../src/stages/aggregate.js';
import { freshDatabase } from '../test/support/db.js';
import { check, runAsScript, seconds, timed } from './support/report.js';
import { envInt } from './support/env.js';

const PERIOD_START = '2026-03-28T00:00:00Z';
const PERIOD = "interval '3 days'";
const ZONES = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'America/New_York', 'Asia/Tokyo'];
const SERVICES_PER_TENANT = 4;
const REVISIONS_PER_SERVICE = 2;
/** Events generated per INSERT statement (keeps each statement's transition table moderate). */
const CHUNK = 100_000;


async function count(db: Knex, sql: string): Promise<number> {
  const result = await db.raw<{ rows: { n: number }[] }>(`SELECT (${sql})::int AS n`);
  return result.rows[0]?.n ?? 0;
}

/** Tenants, services and revisions; returns the series as rows of (tenant, service, revision, memory limit). */
async function seedCatalogue(db: Knex): Promise<void> {
  await db.raw(
    `INSERT INTO tenants (slug, name, timezone, currency)
     SELECT 'bench-' || i, 'Bench ' || i, z, CASE WHEN i % 2 = 0 THEN 'USD' ELSE 'RUB' END
       FROM unnest(?::text[]) WITH ORDINALITY AS x(z, i)`,
    [ZONES],
  );
  await db.raw(
    `INSERT INTO services (tenant_id, name, memory_limit_mb)
     SELECT t.id, 'fn-' || s, CASE WHEN s % 2 = 0 THEN 256 END FROM tenants t CROSS JOIN generate_series(1, ?) s`,
    [SERVICES_PER_TENANT],
  );
  await db.raw(`INSERT INTO revisions (service_id, name) SELECT sv.id, sv.name || '-0000' || r FROM services sv CROSS JOIN generate_series(1, ?) r`, [
    REVISIONS_PER_SERVICE,
  ]);
  await db.raw(`CREATE TABLE IF NOT EXISTS usage_raw_p202603 PARTITION OF usage_raw FOR VALUES FROM ('2026-03-01 00:00:00+00') TO ('2026-04-01 00:00:00+00')`);
}

/**
 * Inserts `events` usage events numbered from `first`, with times spread over the period: in
 * time order (`ordered`) or at random (late events).
 */
async function insertEvents(db: Knex, first: number, events: number, ordered: boolean): Promise<void> {
  for (let from = first; from < first + events; from += CHUNK) {
    const to = Math.min(first + events, from + CHUNK) - 1;
    // Ordered: event g's time grows with g across the whole load, so chunks follow each other.
    const time = ordered
      ? `timestamptz '${PERIOD_START}' + ${PERIOD} * ((g - ${first})::float8 / ${events})`
      : `timestamptz '${PERIOD_START}' + ${PERIOD} * random()`;
    await db.raw(
      `WITH series AS (SELECT rv.id AS revision_id, rv.service_id, sv.tenant_id, row_number() OVER (ORDER BY rv.id) - 1 AS k
                         FROM revisions rv JOIN services sv ON sv.id = rv.service_id),
            n AS (SELECT count(*) AS n FROM series),
            e AS (SELECT g, ${time} AS time, CASE WHEN random() < 0.9 THEN 1 ELSE 2 + floor(random() * 19)::int END AS inv
                    FROM generate_series(?::bigint, ?::bigint) g)
       INSERT INTO usage_raw (time, tenant_id, service_id, revision_id, source, event_id, invocations, duration_ms, memory_mb, cpu_ms, cold_start, error)
       SELECT e.time, s.tenant_id, s.service_id, s.revision_id, 'bench', e.g::text, e.inv,
              round((exp(random() * 5) * e.inv)::numeric, 3), (ARRAY[128, 256, 512])[1 + e.g % 3], round((random() * 50)::numeric, 3),
              random() < 0.02, random() < 0.01
         FROM e CROSS JOIN n
         JOIN series s ON s.k = (hashint8(e.g) & 2147483647) % n.n
        ORDER BY e.time`,
      [from, to],
    );
  }
  await db.raw('ANALYZE usage_raw');
}

/** The baseline: one GROUP BY over every raw row, every group fetched by the client. */
async function baseline(db: Knex): Promise<number> {
  const result = await db.raw<{ rows: unknown[] }>(
    `SELECT tenant_id, service_id, revision_id, date_bin('5 minutes', time, timestamptz '2000-01-01 00:00:00+00') AS bucket,
            count(*) AS events, sum(invocations) AS invocations, sum(duration_ms) AS total_duration_ms, max(memory_mb) AS max_memory_mb,
            sum(cpu_ms) AS total_cpu_ms, count(*) FILTER (WHERE cold_start) AS cold_starts, count(*) FILTER (WHERE error) AS errors,
            percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY duration_ms::float8 / invocations) AS percentiles
       FROM usage_raw GROUP BY 1, 2, 3, 4`,
  );
  return result.rows.length;
}

const phasesOf = (r: AggregateResult): string =>
  `read ${seconds(r.phaseMs.read)} (claim, locks, raw rows, stored states), compute ${seconds(r.phaseMs.compute)}, write ${seconds(r.phaseMs.write)}`;
const windowsOf = (r: AggregateResult): string => `${r.windows['5m']} × 5m, ${r.windows['1h']} × 1h, ${r.windows['1d']} × 1d`;

/** Runs the benchmark, printing its figures through `log`. */
export async function run(log: (line: string) => void): Promise<void> {
  const events = envInt('BENCH_AGG_EVENTS', 1_000_000);
  const database = await freshDatabase();
  const db = database.db;
  // The stage's own settings (batch size, concurrency) as configured by default, without a time limit.
  const config = loadConfig({});
  const aggregator = new Aggregator({
    db,
    logger: createLogger('bench-aggregate', 'warn'),
    batchBuckets: config.AGGREGATE_BATCH_BUCKETS,
    concurrency: config.AGGREGATE_CONCURRENCY,
    timeBudgetMs: 3_600_000,
  });
  try {
    const series = ZONES.length * SERVICES_PER_TENANT * REVISIONS_PER_SERVICE;
    log(
      `aggregate: ${events.toLocaleString('en')} raw events, 3 days, ${series} series in ${ZONES.length} zones ` +
        `(${process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite'}; batches of ${config.AGGREGATE_BATCH_BUCKETS} buckets, ${config.AGGREGATE_CONCURRENCY} at once)`,
    );
    await seedCatalogue(db);
    const [, loadMs] = await timed(() => insertEvents(db, 1, events, true));
    const dirty = await count(db, 'SELECT count(*) FROM usage_dirty');
    log(`  loaded in ${seconds(loadMs)}; ${dirty.toLocaleString('en')} dirty 5-minute buckets`);

    await db.raw('SELECT count(*) FROM usage_raw'); // both measured passes start with the rows cached alike
    const [groups, baselineMs] = await timed(() => baseline(db));
    const [full, fullMs] = await timed(() => aggregator.run());
    const ratio = fullMs / baselineMs;
    log(`  (a) baseline, one GROUP BY per 5-minute bucket with percentile_cont: ${seconds(baselineMs)} (${groups} groups)`);
    log(`  (b) aggregator, all three sizes written: ${seconds(fullMs)} (${windowsOf(full)}; ${full.rowsChanged} rows written)`);
    log(`      time in batches (summed over the ${config.AGGREGATE_CONCURRENCY} concurrent workers): ${phasesOf(full)}`);
    log(`  ${check('aggregate 5m+1h+1d vs one GROUP BY', ratio <= 1.5, `${ratio.toFixed(2)}× (target ≤ 1.5×)`)}`);
    log(`  ${check('5m windows equal the baseline groups', full.windows['5m'] === groups, `${full.windows['5m']} windows, ${groups} groups`)}`);

    const totals = await db.raw<{ rows: { window_size: string; n: number }[] }>(`SELECT window_size, count(*)::int AS n FROM usage_aggregate GROUP BY 1`);
    const total = Object.fromEntries(totals.rows.map((r) => [r.window_size, r.n])) as Record<string, number>;
    const late = Math.max(1, Math.round(events / 100));
    await insertEvents(db, events + 1, late, false);
    const lateBuckets = await count(db, 'SELECT count(*) FROM usage_dirty');
    const [incremental, incrementalMs] = await timed(() => aggregator.run());
    const share = (size: '5m' | '1h' | '1d'): string => `${incremental.windows[size]} of ${total[size] ?? 0} ${size} (${((100 * incremental.windows[size]) / (total[size] ?? 1)).toFixed(1)}%)`;
    const all = (total['5m'] ?? 0) + (total['1h'] ?? 0) + (total['1d'] ?? 0);
    const recomputed = incremental.windows['5m'] + incremental.windows['1h'] + incremental.windows['1d'];
    log(`  (c) ${late.toLocaleString('en')} late events (1%) spread over the period → ${lateBuckets} dirty buckets; recomputed in ${seconds(incrementalMs)} ` +
      `(${((100 * incrementalMs) / fullMs).toFixed(1)}% of the full run): ${share('5m')}, ${share('1h')}, ${share('1d')}`);
    log(`      ${phasesOf(incremental)}`);
    log(`      raw rows re-read: those of the ${lateBuckets} dirty buckets only (${((100 * lateBuckets) / (total['5m'] ?? 1)).toFixed(1)}% of the 5m windows); ` +
      `1h/1d windows merged from stored states; ${recomputed} of ${all} windows (${((100 * recomputed) / all).toFixed(1)}%)`);
    const again = await aggregator.run();
    log(`  ${check('running again with nothing dirty recomputes nothing', again.buckets === 0 && recomputed > 0, `${again.buckets} buckets`)}`);
  } finally {
    await database.drop();
  }
}

runAsScript(import.meta.url, run);
