/**
 * Benchmark: the monthly close for many tenants (issue 3 target: 10,000 tenants ≤ 10 s).
 *
 * Data, generated in SQL: BENCH_BILL_TENANTS tenants (default 10,000) in four time zones and two
 * currencies, 3 services each, and 1h usage_aggregate rows for October 2026 — not every hour
 * (10,000 × 3 × 744 h = 22M rows would take longer to generate than to bill) but
 * BENCH_BILL_HOURS_PER_DAY hours of each day: default 1, i.e. one row per service and day, 870,000
 * rows for 10,000 tenants (4 gives 3.5M rows).
 * Invocations and MB·ms are random; one tenant in five is 40 times busier and runs out of its
 * free tier during the month, the others stay inside it.
 *
 * Measured: closePeriod() for every tenant (generate + finalize, each in its zone), the same close
 * again (nothing to do), and as a baseline in the same run one SQL GROUP BY that only sums each
 * tenant's usage per service over the same rows. Runs on DATABASE_URL's server (a scratch
 * database, dropped afterwards) or on embedded PGlite.
 *
 * `npx tsx bench/billing.ts`, or `run(log)` from the bench runner.
 */
import type { Knex } from 'knex';
import { Billing } from '../src/billing/index.js';
import { Dec } from '../src/core/pricing/index.js';
import { freshDatabase } from '../test/support/db.js';
import { check, runAsScript, seconds, timed } from './support/report.js';
import { envInt } from './support/env.js';

const MONTH_START = '2026-10-02T00:00:00Z'; // inside October in every zone used below
const DAYS = 29;
const ZONES = ['UTC', 'Europe/Berlin', 'Asia/Tokyo', 'America/Los_Angeles'];


/**
 * Generates the data in SQL. The usage rows reference the tenants, services, revisions and plans
 * just created, so the per-row foreign-key checks (three quarters of the insert time) are skipped
 * where the role may do so (session_replication_role = replica needs a superuser).
 */
async function generate(db: Knex, tenants: number, hoursPerDay: number): Promise<void> {
  const load = async (skipChecks: boolean): Promise<void> =>
    db.transaction(async (trx) => {
      if (skipChecks) await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw('SELECT setseed(0.42)');
      await trx.raw(
        `INSERT INTO tenants (slug, name, currency, timezone, created_at)
         SELECT 'bench-' || i, 'Bench ' || i, CASE WHEN i % 3 = 0 THEN 'RUB' ELSE 'USD' END,
                (?::text[])[1 + i % ?], '2026-01-01T00:00:00Z'
           FROM generate_series(1, ?) AS i`,
        [ZONES, ZONES.length, tenants],
      );
      await trx.raw(`INSERT INTO services (tenant_id, name) SELECT t.id, s FROM tenants t CROSS JOIN unnest(ARRAY['api', 'worker', 'cron']) AS s`);
      await trx.raw(`INSERT INTO revisions (service_id, name) SELECT id, name || '-00001' FROM services`);
      // Hours spread over the day (every 24/h hours), each service hour a different random size;
      // one tenant in five 40 times busier, so it runs out of its free tier during the month.
      await trx.raw(
        `INSERT INTO usage_aggregate (window_size, window_start, window_end, tenant_id, service_id, revision_id,
                                      invocations, events, billed_mb_ms, mb_ms, cold_starts, total_cpu_ms, billed_plan_id)
         SELECT '1h', h, h + interval '1 hour', s.tenant_id, s.id, r.id, inv, inv, mbms, mbms, (inv % 7), inv * 3, p.id
           FROM services s
           JOIN revisions r ON r.service_id = s.id
           JOIN tenants t ON t.id = s.tenant_id
           JOIN pricing_plans p ON p.currency = t.currency AND p.default_for_currency
          CROSS JOIN generate_series(?::timestamptz, ?::timestamptz + interval '${DAYS - 1} days 23 hours', make_interval(hours => ?)) AS h
          CROSS JOIN LATERAL (SELECT ((1 + floor(random() * 20000)) * CASE WHEN right(t.slug, 1) IN ('0', '5') THEN 40 ELSE 1 END)::bigint AS inv) i
          CROSS JOIN LATERAL (SELECT round((i.inv * (50 + random() * 400) * 256)::numeric, 3) AS mbms) m`,
        [MONTH_START, MONTH_START, Math.floor(24 / hoursPerDay)],
      );
    });
  try {
    await load(true);
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err; // insufficient_privilege: load with the checks
    await load(false);
  }
  await db.raw('ANALYZE');
}

/** Runs the benchmark, printing its figures through `log`. */
export async function run(log: (line: string) => void): Promise<void> {
  const tenants = envInt('BENCH_BILL_TENANTS', 10_000);
  const hoursPerDay = Math.min(24, envInt('BENCH_BILL_HOURS_PER_DAY', 1));
  const database = await freshDatabase();
  const db = database.db;
  try {
    log(`billing: ${tenants} tenants × 3 services × ${hoursPerDay} h/day × ${DAYS} days of 1h usage (${process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite'})`);
    const [, generateMs] = await timed(() => generate(db, tenants, hoursPerDay));
    const rows = Number((await db('usage_aggregate').count<{ n: string }[]>({ n: '*' }))[0]?.n);
    log(`  generated ${rows.toLocaleString('en')} usage_aggregate rows in ${seconds(generateMs)}`);

    const [, baselineMs] = await timed(() =>
      db.raw(`SELECT tenant_id, service_id, sum(invocations), sum(billed_mb_ms), sum(cold_starts), sum(total_cpu_ms)
                FROM usage_aggregate WHERE window_size = '1h' GROUP BY tenant_id, service_id`),
    );
    const billing = new Billing({ db, now: () => new Date('2026-11-01T12:00:00Z') });
    const [closed, closeMs] = await timed(() => billing.closePeriod());
    const [again, againMs] = await timed(() => billing.closePeriod());
    const lines = Number((await db('bill_line_items').count<{ n: string }[]>({ n: '*' }))[0]?.n);
    const paying = closed.closed.filter((b) => new Dec(b.total).gt(0)).length;

    log(`  baseline: one GROUP BY summing each tenant's usage per service: ${seconds(baselineMs)}`);
    log(`  closePeriod (generate + finalize, every tenant in its zone): ${seconds(closeMs)} for ${closed.closed.length} bills, ${lines} lines ` +
      `(${Math.round(closed.closed.length / (closeMs / 1000))} bills/s; ${(closeMs / baselineMs).toFixed(1)}× the baseline; target ≤ 10 s for 10,000 tenants)`);
    log(`  bills above zero (free tier used up during the month): ${paying}; failures: ${closed.failed.length}`);
    if (tenants === 10_000) log(check('monthly bills for 10,000 tenants', closeMs <= 10_000, `${seconds(closeMs)} (target ≤ 10 s)`));
    log(`  closePeriod again (all already final): ${seconds(againMs)}, ${again.closed.length} closed, ${again.alreadyFinal.length} already final`);
    if (closed.failed.length > 0) throw new Error(`bills failed: ${closed.failed.map((f) => f.message).join('; ')}`);
  } finally {
    await database.drop();
  }
}

runAsScript(import.meta.url, run);
