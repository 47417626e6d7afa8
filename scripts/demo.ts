/**
 * `npm run demo`: the newcomer's first command. Starts the whole system as `npm start` does (on a
 * fresh in-memory embedded PostgreSQL unless DATABASE_URL/REDIS_URL are set), creates three
 * tenants in different time zones, currencies and plans, replays a week of usage shaped by the
 * Azure Functions 2019 trace (fixtures/azure-functions-2019, CC-BY 4.0) through the broker over
 * HTTP, lets the pipeline run (save → aggregate → price, then forecast), and prints per tenant
 * what it used, what it owes this month and the month-end forecast.
 *
 *   npm run demo                 exits 0 when the report is printed
 *   npm run demo -- --serve      keeps the system running afterwards (Ctrl-C stops it)
 *   npm run demo -- --days 3     a shorter simulated range (default 7)
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { openBuffer } from '../src/adapters/buffer/index.js';
import { PlanStore, planColumns } from '../src/adapters/plans.js';
import { createDb, type Db } from '../src/adapters/postgres.js';
import { parsePlan, type PlanInput } from '../src/core/pricing/index.js';
import { sortWeighted, weightedPercentileCont } from '../src/core/windows/index.js';
import { prepareDashboardData } from '../src/demo/dashboard.js';
import { replayEvents, progressBar } from '../src/demo/replay.js';
import { formatDemoReport, type DemoReportLine, type DemoTenantReport } from '../src/demo/report.js';
import { loadAzureTrace } from '../src/demo/trace.js';
import { generateUsageEvents, planWorkload, simulatedRange, type WorkloadOptions } from '../src/demo/workload.js';
import { functionNames } from '../functions/index.js';
import { localSystemPorts } from '../src/local/ports.js';
import { startLocalSystem, type LocalSystem } from '../src/local/system.js';
import { loadConfig } from '../src/runtime/config.js';
import { createLogger } from '../src/runtime/logger.js';

const { values: args } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    days: { type: 'string', default: '7' },
    seed: { type: 'string', default: '2019' },
  },
});
const days = z.coerce.number().positive().max(30).parse(args.days);
const seed = z.coerce.number().int().min(0).parse(args.seed);

const logger = createLogger('demo', process.env.LOG_LEVEL ?? 'warn');
const say = (line: string): void => void process.stderr.write(`${line}\n`);

/** A yen plan in the manner of a premium provider: per-100 ms duration, cold starts and CPU billed. */
const proJpyPlan: PlanInput = {
  name: 'pro-jpy',
  version: 1,
  currency: 'JPY',
  price_per_invocation: '0.03',
  price_per_gb_s: '0.0025',
  price_per_cold_start: '0.05',
  price_per_cpu_ms: '0.000002',
  free_tier_invocations: '100000',
  free_tier_gb_s: '5000',
  rules: { duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128, billed_memory: 'allocated' },
};

const demoTenants = [
  { slug: 'acme', name: 'Acme Corp', currency: 'USD', timezone: 'America/New_York', invocationsPerDay: 3_000_000, plan: undefined, budget: '25' },
  { slug: 'initech', name: 'Initech', currency: 'RUB', timezone: 'Europe/Moscow', invocationsPerDay: 1_500_000, plan: undefined, budget: '300' },
  { slug: 'umbrella', name: 'Umbrella KK', currency: 'JPY', timezone: 'Asia/Tokyo', invocationsPerDay: 600_000, plan: proJpyPlan, budget: '60000' },
] as const;

/** Tenants, the yen plan and its assignment, and the services with their memory limits. */
async function setUpTenants(db: Db, workload: WorkloadOptions): Promise<void> {
  await db('tenants')
    .insert(demoTenants.map(({ slug, name, currency, timezone }) => ({ slug, name, currency, timezone, billing_email: `billing@${slug}.example` })))
    .onConflict('slug')
    .ignore();
  const tenantIds = new Map((await db('tenants').select<{ id: string; slug: string }[]>('id', 'slug')).map((t) => [t.slug, t.id]));
  for (const tenant of demoTenants) {
    if (!tenant.plan) continue;
    const plan = parsePlan(tenant.plan);
    await db('pricing_plans')
      .insert(planColumns(plan))
      .onConflict(['name', 'version'])
      .ignore();
    const planRow = (await db('pricing_plans').where({ name: plan.name, version: plan.version ?? 1 }).first<{ id: string } | undefined>('id'));
    const tenantId = tenantIds.get(tenant.slug) as string;
    const open = await db('tenant_plan_assignments').where({ tenant_id: tenantId }).whereNull('effective_to').first<{ id: string } | undefined>('id');
    if (!planRow) throw new Error(`plan ${plan.name} was not stored`);
    if (!open) await db('tenant_plan_assignments').insert({ tenant_id: tenantId, plan_id: planRow.id, effective_from: '2000-01-01T00:00:00Z', created_by: 'demo' });
  }
  const services = planWorkload(await loadAzureTrace(), workload);
  await db('services')
    .insert(services.map((s) => ({ tenant_id: tenantIds.get(s.tenantId), name: s.name, memory_limit_mb: s.memoryLimitMb, runtime: `azure-${s.trigger}` })))
    .onConflict(['tenant_id', 'name'])
    .merge(['memory_limit_mb']);
}

/** Buffered entries not yet saved, plus dirty windows not yet aggregated. */
async function pendingWork(db: Db): Promise<number> {
  const config = loadConfig();
  const buffer = openBuffer(config, () => db);
  try {
    const { length } = await buffer.stats();
    const dirty = (await db.raw<{ rows: { n: number }[] }>('SELECT count(*)::int AS n FROM usage_dirty')).rows[0]?.n ?? 0;
    return length + dirty;
  } finally {
    if (config.REDIS_URL) await buffer.close();
  }
}

/** Ticks save (and aggregate) through the broker until the buffer and the dirty windows are empty. */
async function settle(db: Db, system: LocalSystem): Promise<void> {
  for (let round = 1; round <= 120; round++) {
    await system.broker.idle();
    const pending = await pendingWork(db);
    if (pending === 0) return;
    system.broker.firePingSource('save-flush-tick');
    system.broker.firePingSource('aggregate-tick');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error('the pipeline did not settle: buffered or dirty work is left after 120 rounds (see the function logs)');
}

const lineSchema = z.looseObject({
  service: z.string(),
  meter: z.string(),
  quantity: z.string(),
  unit: z.string(),
  amount: z.string(),
  gbS: z.looseObject({ quantity: z.string() }).optional(),
});

async function tenantReport(db: Db, plans: PlanStore, slug: string, range: { start: string; end: string }): Promise<DemoTenantReport> {
  const tenant = await db('tenants').where({ slug }).first<{ id: string; timezone: string; currency: string } | undefined>('id', 'timezone', 'currency');
  if (!tenant) throw new Error(`tenant ${slug} is missing`);
  const usage = (
    await db.raw<{ rows: { invocations: string; gb_s: string; cold_starts: string }[] }>(
      `SELECT coalesce(sum(invocations), 0)::text AS invocations, coalesce(round(sum(duration_ms * memory_mb) / 1024000, 3), 0)::text AS gb_s,
              count(*) FILTER (WHERE cold_start)::text AS cold_starts
         FROM usage_raw WHERE tenant_id = ? AND time >= ? AND time < ?`,
      [tenant.id, range.start, range.end],
    )
  ).rows[0];
  const durations = (
    await db.raw<{ rows: { per_invocation: number; invocations: number }[] }>(
      'SELECT (duration_ms / invocations)::float8 AS per_invocation, invocations FROM usage_raw WHERE tenant_id = ? AND time >= ? AND time < ?',
      [tenant.id, range.start, range.end],
    )
  ).rows;
  const p95 = weightedPercentileCont(sortWeighted(durations.map((d) => ({ value: d.per_invocation, weight: d.invocations }))), 0.95);
  const now = new Date();
  const running = await db('tenant_running_costs')
    .where({ tenant_id: tenant.id })
    .where('period_start', '<=', now)
    .where('period_end', '>', now)
    .first<{ period_start: Date; usage_as_of: Date; total: string; lines: unknown } | undefined>('period_start', 'usage_as_of', 'total', 'lines');
  const lines: DemoReportLine[] = z
    .array(lineSchema)
    .parse(running?.lines ?? [])
    .map((l) => ({ service: l.service, meter: l.meter, quantity: l.quantity, unit: l.unit, amount: l.amount, ...(l.gbS ? { gbS: { quantity: l.gbS.quantity } } : {}) }));
  type ForecastRow = Record<
    'predicted_cost' | 'predicted_cost_lower_80' | 'predicted_cost_upper_80' | 'predicted_cost_lower_95' | 'predicted_cost_upper_95' | 'model_name' | 'model_version',
    string
  >;
  const forecast = await db('ml_predictions')
    .where({ tenant_id: tenant.id, horizon: 'month_end' })
    .whereNull('service_id')
    .orderBy('as_of', 'desc')
    .first<ForecastRow | undefined>('predicted_cost', 'predicted_cost_lower_80', 'predicted_cost_upper_80', 'predicted_cost_lower_95', 'predicted_cost_upper_95', 'model_name', 'model_version');
  const plan = await plans.planAt(tenant.id, now);
  return {
    tenant: slug,
    timezone: tenant.timezone,
    currency: tenant.currency,
    plan: `${plan.name} v${plan.version}`,
    invocations: usage?.invocations ?? '0',
    gbSeconds: usage?.gb_s ?? '0',
    coldStarts: usage?.cold_starts ?? '0',
    p95DurationMs: p95,
    monthToDate: {
      periodStart: (running?.period_start ?? now).toISOString(),
      asOf: (running?.usage_as_of ?? now).toISOString(),
      total: running?.total ?? '0',
      lines,
    },
    forecast: forecast
      ? {
          monthEndTotal: forecast.predicted_cost,
          interval80: { lower: forecast.predicted_cost_lower_80, upper: forecast.predicted_cost_upper_80 },
          interval95: { lower: forecast.predicted_cost_lower_95, upper: forecast.predicted_cost_upper_95 },
          model: `${forecast.model_name}@${forecast.model_version}`,
        }
      : null,
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const env: NodeJS.ProcessEnv = { LOG_LEVEL: 'warn', ...process.env };
  if (!args.serve) {
    // A throwaway system on ports of its own, so a running `npm start` is left alone.
    const ports = await localSystemPorts(functionNames.length);
    env.LOCAL_BROKER_PORT = String(ports.broker);
    env.EMBEDDED_PG_PORT = String(ports.pg);
    env.LOCAL_API_PORT = String(ports.api);
    env.LOCAL_FUNCTIONS_PORT = String(ports.functions);
    // The demo replays its own usage: the reference workloads (which would need more ports) stay off.
    env.LOCAL_WORKLOADS = '';
    if (!env.DATABASE_URL) env.LOCAL_DATA_DIR = 'memory';
  }
  say('starting the system (embedded PostgreSQL unless DATABASE_URL is set, every function, the local broker)...');
  const system = await startLocalSystem(logger, env);
  const db = createDb(system.databaseUrl, 2, logger);
  let ok = false;
  try {
    const workload: WorkloadOptions = {
      tenants: demoTenants.map((t) => ({ id: t.slug, timezone: t.timezone, invocationsPerDay: t.invocationsPerDay })),
      end: new Date(),
      days,
      seed,
      servicesPerTenant: 6,
      minutesPerReport: 5,
      reportsPerSlot: 1,
    };
    await setUpTenants(db, workload);
    const events = [...generateUsageEvents(await loadAzureTrace(), workload)];
    say(`replaying ${events.length.toLocaleString('en-US')} usage events (${days} simulated days, 3 tenants) through the broker at ${system.broker.url}`);
    const bar = progressBar(process.stderr, 'replay');
    const replay = await replayEvents(events, { url: system.broker.url, batchSize: 1000, concurrency: 4, total: events.length, onProgress: bar.update });
    bar.done();
    say('letting the pipeline run: save → aggregate → price ...');
    await settle(db, system);
    say('forecasting ...');
    system.broker.firePingSource('forecast-daily');
    await system.broker.idle();
    say('budgets and draft bills of the month so far, for the dashboard ...');
    await prepareDashboardData(system.apiUrl, system.adminKey, demoTenants, new Date());
    const plans = new PlanStore(db);
    const range = simulatedRange(workload);
    const tenants = [];
    for (const t of demoTenants) tenants.push(await tenantReport(db, plans, t.slug, range));
    console.log(
      formatDemoReport({
        tenants,
        range,
        replay: { events: replay.events, accepted: replay.accepted, rejected: replay.rejected, elapsedMs: replay.elapsedMs },
      }),
    );
    say(`demo done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    ok = true;
  } finally {
    await db.destroy();
    if (!(args.serve && ok)) await system.stop();
  }
  if (args.serve) {
    say(`still serving: broker ${system.broker.url}; ${system.functionNames.map((n) => `${n} ${system.urlOf(n)}`).join(', ')}.`);
    say(`dashboard ${system.apiUrl}/   (sign in with the admin key ${system.adminKey})\nCtrl-C stops.`);
    const stop = (): void => void system.stop().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    return;
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  logger.fatal({ err }, 'demo failed');
  say(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
