/**
 * Worked examples from providers' pricing pages, reproduced through our pipeline: usage events
 * stored in usage_raw (as save writes them), aggregated by the aggregate stage (per-invocation
 * metering rules), and billed by the billing service under a plan that states the provider's
 * prices, free tier and rules. Every total to the cent.
 *
 * AWS Lambda (x86, US East): 512 MB allocated, 3,000,000 invocations of 1 s in a month.
 *   compute  3,000,000 × 1 s × 0.5 GB = 1,500,000 GB-s − 400,000 free = 1,100,000 GB-s
 *            × $0.0000166667 = $18.33337 → $18.33
 *   requests 3,000,000 − 1,000,000 free = 2,000,000 × $0.20 per million = $0.40
 *   total    $18.73
 * Azure Functions (Consumption): observed memory rounded UP to a multiple of 128 MB, at least
 * 100 ms per execution; 3,000,000 executions of 1 s observed at 500 MB (→ 512 MB).
 *   resource 1,500,000 GB-s − 400,000 free = 1,100,000 GB-s × $0.000016 = $17.60
 *   executions 2,000,000 × $0.20 per million = $0.40
 *   total    $18.00
 * Azure's minimum: 2,000,000 executions of 50 ms at 100 MB (→ 128 MB, billed 100 ms each).
 *   resource 2,000,000 × 0.1 s × 0.125 GB = 25,000 GB-s, all within the 400,000 free → $0
 *   executions 1,000,000 billable × $0.20 per million = $0.20
 */
import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { Billing, type PricedLine } from '../src/billing/index.js';
import { Dec, MB_MS_PER_GB_S, computeBill, parsePlan } from '../src/core/pricing/index.js';
import { assignPlan, createPlan, createService, createTenant } from '../src/billing/testing.js';
import { createLogger } from '../src/runtime/logger.js';
import { Aggregator } from '../src/stages/aggregate.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

const MONTH = '2025-10';

/** `events` events of `perEvent` invocations each, spread over October 2025, as save stores them. */
async function insertEvents(
  db: Knex,
  ids: { tenantId: string; serviceId: string; revisionId: string },
  e: { events: number; perEvent: number; durationMsEach: number; memoryMb: number; source: string; labels?: Record<string, string>; cpuMsEach?: number },
): Promise<void> {
  await db.raw(
    `INSERT INTO usage_raw (time, tenant_id, service_id, revision_id, source, event_id, invocations, duration_ms, memory_mb, cpu_ms, labels)
     SELECT timestamptz '2025-10-01 00:00:00+00' + (interval '30 days') * (g::float8 / ?), ?, ?, ?, ?, g::text, ?, ?, ?, ?, ?::jsonb
       FROM generate_series(0, ? - 1) AS g`,
    [e.events, ids.tenantId, ids.serviceId, ids.revisionId, e.source, e.perEvent, e.perEvent * e.durationMsEach, e.memoryMb, e.perEvent * (e.cpuMsEach ?? 0), JSON.stringify(e.labels ?? {}), e.events],
  );
}

describe('provider pricing examples, end to end (usage → aggregate → bill)', function () {
  this.timeout(120_000);
  let t: TestDatabase;
  let billing: Billing;
  let aggregator: Aggregator;

  before(async () => {
    t = await freshDatabase();
    billing = new Billing({ db: t.db, now: () => new Date('2025-11-10T00:00:00Z') });
    aggregator = new Aggregator({ db: t.db, logger: createLogger('test', 'silent'), batchBuckets: 2000, timeBudgetMs: 60_000 });
  });
  after(() => t.drop());

  const aggregateAll = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) if (!(await aggregator.run()).more) return;
    assert.fail('aggregation did not finish');
  };
  /** Azure Functions Consumption: $0.000016/GB-s, $0.20 per million, 400,000 GB-s and 1M free; 128 MB steps up to 1,536 MB, 100 ms minimum. */
  const azureTenant = async (tenantId: string, name: string): Promise<{ serviceId: string; revisionId: string }> => {
    const planId = await createPlan(t.db, {
      name,
      currency: 'USD',
      price_per_gb_s: '0.000016',
      price_per_invocation: '0.0000002',
      free_tier_gb_s: '400000',
      free_tier_invocations: '1000000',
      rules: { memory_step_mb: 128, min_billed_duration_ms: 100, billed_memory: 'observed', max_memory_mb: 1536 },
    });
    await assignPlan(t.db, tenantId, planId, '2025-01-01T00:00:00Z');
    return createService(t.db, tenantId, 'fn');
  };
  const line = (lines: readonly PricedLine[], meter: string): PricedLine => {
    const found = lines.filter((l) => l.meter === meter);
    assert.equal(found.length, 1, `one ${meter} line`);
    const [only] = found;
    assert.ok(only);
    return only;
  };

  it('AWS Lambda: 512 MB × 3M invocations × 1 s = $18.73 (compute $18.33, requests $0.40)', async () => {
    const tenantId = await createTenant(t.db, { slug: 'aws-example' });
    const planId = await createPlan(t.db, {
      name: 'aws-lambda-x86-us-east-1',
      currency: 'USD',
      price_per_gb_s: '0.0000166667',
      price_per_invocation: '0.0000002',
      free_tier_gb_s: '400000',
      free_tier_invocations: '1000000',
      rules: { duration_granularity_ms: 1, billed_memory: 'allocated' },
    });
    await assignPlan(t.db, tenantId, planId, '2025-01-01T00:00:00Z');
    const ids = await createService(t.db, tenantId, 'fn', 512);
    // Observed memory is lower than the allocation; Lambda bills the allocation.
    await insertEvents(t.db, { tenantId, ...ids }, { events: 3000, perEvent: 1000, durationMsEach: 1000, memoryMb: 300, source: '/aws' });
    await aggregateAll();
    const bill = await billing.calculate(tenantId, { month: MONTH });
    const compute = line(bill.lines, 'compute');
    assert.equal(compute.gbS?.quantity, '1500000');
    assert.equal(compute.gbS?.billableQuantity, '1100000');
    assert.equal(compute.amount, '18.33');
    const requests = line(bill.lines, 'invocations');
    assert.deepEqual([requests.quantity, requests.freeQuantity, requests.billableQuantity, requests.amount], ['3000000', '1000000', '2000000', '0.40']);
    assert.equal(bill.total, '18.73');
  });

  it('Azure Functions: 3M executions × 1 s observed at 500 MB (rounded up to 512 MB) = $18.00', async () => {
    const tenantId = await createTenant(t.db, { slug: 'azure-example' });
    const ids = await azureTenant(tenantId, 'azure-functions-consumption');
    await insertEvents(t.db, { tenantId, ...ids }, { events: 3000, perEvent: 1000, durationMsEach: 1000, memoryMb: 500, source: '/azure' });
    await aggregateAll();
    const bill = await billing.calculate(tenantId, { month: MONTH });
    const compute = line(bill.lines, 'compute');
    assert.equal(compute.gbS?.quantity, '1500000');
    assert.equal(compute.amount, '17.60');
    assert.equal(line(bill.lines, 'invocations').amount, '0.40');
    assert.equal(bill.total, '18.00');
  });

  it('Azure Functions: 50 ms executions are billed as 100 ms at 128 MB (all within the free grant), executions $0.20', async () => {
    const tenantId = await createTenant(t.db, { slug: 'azure-minimum' });
    const ids = await azureTenant(tenantId, 'azure-functions-consumption-2');
    await insertEvents(t.db, { tenantId, ...ids }, { events: 2000, perEvent: 1000, durationMsEach: 50, memoryMb: 100, source: '/azure-min' });
    await aggregateAll();
    const bill = await billing.calculate(tenantId, { month: MONTH });
    const compute = line(bill.lines, 'compute');
    assert.equal(compute.gbS?.quantity, '25000');
    assert.equal(compute.gbS?.freeQuantity, '25000');
    assert.equal(compute.amount, '0.00');
    assert.equal(line(bill.lines, 'invocations').amount, '0.20');
    assert.equal(bill.total, '0.20');
  });

  it('Azure Functions: memory observed above the 1,536 MB cap is billed at 1,536 MB: 1M executions × 1 s at 2,000 MB = $17.60', async () => {
    const tenantId = await createTenant(t.db, { slug: 'azure-cap' });
    const ids = await azureTenant(tenantId, 'azure-functions-consumption-3');
    await insertEvents(t.db, { tenantId, ...ids }, { events: 1000, perEvent: 1000, durationMsEach: 1000, memoryMb: 2000, source: '/azure-cap' });
    await aggregateAll();
    const bill = await billing.calculate(tenantId, { month: MONTH });
    // 1,000,000 s × 1.5 GB = 1,500,000 GB-s − 400,000 free = 1,100,000 × $0.000016 = $17.60; executions within the free million.
    const compute = line(bill.lines, 'compute');
    assert.equal(compute.gbS?.quantity, '1500000');
    assert.equal(compute.amount, '17.60');
    assert.equal(bill.total, '17.60');
  });

  it('AWS Lambda on Arm (Graviton): 512 MB × 3M invocations × 1 s = $15.07 (compute at −20% $14.67, requests $0.40), free tier shared with x86', async () => {
    const tenantId = await createTenant(t.db, { slug: 'aws-arm' });
    const planId = await createPlan(t.db, {
      name: 'aws-lambda-us-east-1',
      currency: 'USD',
      price_per_gb_s: '0.0000166667',
      price_per_invocation: '0.0000002',
      free_tier_gb_s: '400000',
      free_tier_invocations: '1000000',
      rules: { billed_memory: 'allocated' },
      price_variants: { architectures: { arm64: { compute: '0.8' } } },
    });
    await assignPlan(t.db, tenantId, planId, '2025-01-01T00:00:00Z');
    const ids = await createService(t.db, tenantId, 'fn', 512);
    await insertEvents(t.db, { tenantId, ...ids }, { events: 3000, perEvent: 1000, durationMsEach: 1000, memoryMb: 300, source: '/aws-arm', labels: { architecture: 'arm64' } });
    await aggregateAll();
    const bill = await billing.calculate(tenantId, { month: MONTH });
    // 1,500,000 GB-s − 400,000 free = 1,100,000 × $0.00001333336 = $14.666696 → $14.67.
    const compute = line(bill.lines, 'compute');
    assert.equal(compute.variant, 'arm64');
    assert.equal(compute.gbS?.billableQuantity, '1100000');
    assert.equal(compute.amount, '14.67');
    assert.equal(line(bill.lines, 'invocations').amount, '0.40');
    assert.equal(bill.total, '15.07');
  });

  it('Google Cloud Functions (1st gen, Tier 1): 10M invocations × 300 ms at 128 MB / 200 MHz = $7.20 (invocations $3.20, GHz-s $4.00, GB-s free)', async () => {
    const tenantId = await createTenant(t.db, { slug: 'gcf-example' });
    const planId = await createPlan(t.db, {
      name: 'gcf-tier1',
      currency: 'USD',
      price_per_invocation: '0.0000004',
      free_tier_invocations: '2000000',
      price_per_gb_s: '0.0000025',
      free_tier_gb_s: '400000',
      price_per_ghz_s: '0.00001',
      free_tier_ghz_s: '200000',
      cpu_ghz: '0.2',
      rules: { duration_granularity_ms: 100, billed_memory: 'allocated' },
    });
    await assignPlan(t.db, tenantId, planId, '2025-01-01T00:00:00Z');
    const ids = await createService(t.db, tenantId, 'fn', 128);
    // CPU-bound: each invocation keeps its 200 MHz CPU busy for its 300 ms.
    await insertEvents(t.db, { tenantId, ...ids }, { events: 10_000, perEvent: 1000, durationMsEach: 300, memoryMb: 90, cpuMsEach: 300, source: '/gcf' });
    await aggregateAll();
    const bill = await billing.calculate(tenantId, { month: MONTH });
    // Invocations: (10M − 2M) × $0.0000004 = $3.20. GB-s: 10M × 0.3 s × 0.125 GB = 375,000 ≤ 400,000 free.
    // GHz-s: 10M × 0.3 s × 0.2 GHz = 600,000 − 200,000 free = 400,000 × $0.00001 = $4.00.
    assert.equal(line(bill.lines, 'invocations').amount, '3.20');
    const compute = line(bill.lines, 'compute');
    assert.deepEqual([compute.gbS?.quantity, compute.gbS?.freeQuantity, compute.amount], ['375000', '375000', '0.00']);
    const cpu = line(bill.lines, 'cpu');
    assert.deepEqual([cpu.quantity, cpu.freeQuantity, cpu.unitPrice, cpu.amount], ['3000000000', '1000000000', '0.000000002', '4.00']);
    assert.equal(bill.total, '7.20');
  });

  it('AWS Lambda compute volume discount as graduated tiers: 20 billion GB-s in a month = $301,667.20', () => {
    // First 6 billion GB-s at $0.0000166667, next 9 billion at $0.000015, over 15 billion at $0.0000133334:
    // 6e9 × 0.0000166667 = 100,000.20; 9e9 × 0.000015 = 135,000.00; 5e9 × 0.0000133334 = 66,667.00 → 301,667.20.
    const perMbMs = (perGbS: string): string => new Dec(perGbS).div(MB_MS_PER_GB_S).toFixed();
    const mbMs = (gbS: number): string => new Dec(gbS).times(MB_MS_PER_GB_S).toFixed();
    const plan = parsePlan({
      name: 'aws-lambda-x86-volume',
      currency: 'USD',
      charge_models: {
        compute: {
          model: 'graduated',
          tiers: [
            { from: '0', up_to: mbMs(6e9), unit_price: perMbMs('0.0000166667') },
            { from: mbMs(6e9), up_to: mbMs(15e9), unit_price: perMbMs('0.000015') },
            { from: mbMs(15e9), up_to: null, unit_price: perMbMs('0.0000133334') },
          ],
        },
      },
    });
    const bill = computeBill(plan, [{ service: 'fn', start: '2025-10-02T00:00:00Z', invocations: 0, billedMbMs: mbMs(20e9), coldStarts: 0, cpuMs: '0' }], {
      start: '2025-10-01T00:00:00Z',
      end: '2025-11-01T00:00:00Z',
    });
    assert.deepEqual(
      bill.lines.filter((l) => l.service.startsWith('*')).map((l) => l.amount),
      ['100000.20', '135000.00', '66667.00'],
    );
    assert.equal(bill.total, '301667.20');
  });
});
