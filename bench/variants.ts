/**
 * Benchmark: what price variants cost a bill. A plan with price_variants (architecture, spot,
 * time of day) is billed from the raw events — each at its own instant — instead of the hourly
 * aggregates. Measured on one tenant with BENCH_VARIANT_EVENTS raw events (default 300,000) over
 * October 2026, 3 services, a third labelled arm64 and a fifth spot: the month's preview on a
 * flat plan (the baseline, from usage_aggregate) and on the same prices with variants (from
 * usage_raw), in the same run. No target: the figure says how much a variant plan costs.
 *
 * `npx tsx bench/variants.ts`, or `run(log)` from the bench runner.
 */
import { Billing } from '../src/billing/index.js';
import { assignPlan, createPlan, createTenant } from '../src/billing/testing.js';
import { createLogger } from '../src/runtime/logger.js';
import { Aggregator } from '../src/stages/aggregate.js';
import { freshDatabase } from '../test/support/db.js';
import { envInt } from './support/env.js';
import { runAsScript, seconds, timed } from './support/report.js';

const prices = { currency: 'USD', price_per_invocation: '0.0000002', price_per_gb_s: '0.0000166667', free_tier_invocations: '100000', free_tier_gb_s: '10000' };

export async function run(log: (line: string) => void): Promise<void> {
  const events = envInt('BENCH_VARIANT_EVENTS', 300_000);
  const database = await freshDatabase();
  const db = database.db;
  try {
    const tenantId = await createTenant(db, { slug: 'variants-bench', timezone: 'Europe/Berlin' });
    const flatPlan = await createPlan(db, { name: 'flat', ...prices });
    const variantPlan = await createPlan(db, {
      name: 'variants',
      ...prices,
      price_variants: {
        architectures: { arm64: { compute: '0.8' } },
        spot: { compute: '0.6' },
        schedule: [
          { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '22:00', to: '06:00', multiplier: '0.7', label: 'night' },
          { days: ['sat', 'sun'], from: '00:00', to: '24:00', multiplier: '0.7', label: 'weekend' },
        ],
      },
    });
    // Assigned before aggregation, so the aggregates are metered under the flat plan's rules.
    await assignPlan(db, tenantId, flatPlan, '2026-01-01T00:00:00Z');
    await db.raw(`INSERT INTO services (tenant_id, name) SELECT ?, s FROM unnest(ARRAY['api', 'worker', 'cron']) AS s`, [tenantId]);
    await db.raw(`INSERT INTO revisions (service_id, name) SELECT id, name || '-00001' FROM services WHERE tenant_id = ?`, [tenantId]);
    const [, loadMs] = await timed(async () => {
      await db.raw('SELECT setseed(0.7)');
      await db.raw(
        `INSERT INTO usage_raw (time, tenant_id, service_id, revision_id, source, event_id, invocations, duration_ms, memory_mb, cpu_ms, labels)
         SELECT timestamptz '2026-10-01 00:00:00+02' + (interval '30 days') * (g::float8 / ?), ?, s.id, r.id, '/bench', g::text,
                1 + (g % 5), round((20 + random() * 900)::numeric, 3), (ARRAY[128, 256, 512])[1 + g % 3], 0,
                jsonb_strip_nulls(jsonb_build_object('architecture', CASE WHEN g % 3 = 0 THEN 'arm64' END, 'priority', CASE WHEN g % 5 = 0 THEN 'spot' END))
           FROM generate_series(0, ? - 1) AS g
           JOIN LATERAL (SELECT id FROM services WHERE tenant_id = ? ORDER BY name OFFSET g % 3 LIMIT 1) s ON true
           JOIN revisions r ON r.service_id = s.id`,
        [events, tenantId, events, tenantId],
      );
      const aggregator = new Aggregator({ db, logger: createLogger('bench', 'silent'), batchBuckets: 5000, timeBudgetMs: 600_000 });
      for (let i = 0; i < 50 && (await aggregator.run()).more; i++);
      await db.raw('ANALYZE');
    });
    log(`variants: ${events.toLocaleString('en')} raw events of one tenant over October 2026 (loaded and aggregated in ${seconds(loadMs)})`);
    const billing = new Billing({ db, now: () => new Date('2026-11-10T12:00:00Z') });
    const month = { month: '2026-10' };
    await billing.calculate(tenantId, month); // warm-up
    const [flat, flatMs] = await timed(() => billing.calculate(tenantId, month));
    await db('tenant_plan_assignments').where({ tenant_id: tenantId }).delete();
    await assignPlan(db, tenantId, variantPlan, '2026-01-01T00:00:00Z');
    await billing.calculate(tenantId, month); // warm-up
    const [variant, variantMs] = await timed(() => billing.calculate(tenantId, month));
    log(`  flat plan (from the 1h aggregates): ${seconds(flatMs)}, ${flat.lines.length} lines, total ${flat.total} ${flat.currency}`);
    log(`  same prices with variants (from the raw events): ${seconds(variantMs)}, ${variant.lines.length} lines, total ${variant.total} ${variant.currency} (${(variantMs / flatMs).toFixed(1)}× the flat plan)`);
  } finally {
    await database.drop();
  }
}

runAsScript(import.meta.url, run);
