/**
 * The five stages chained through the broker, as `npm start` runs them (every function in its own
 * process under faas-js-runtime, routed by eventing/): usage CloudEvents in over HTTP, a bill out,
 * and its numbers checked against a computation by hand. On DATABASE_URL/REDIS_URL when set (a
 * fresh database of its own), else on the embedded PostgreSQL and queue-table buffer.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { DateTime } from 'luxon';
import { EventType } from '../src/contract/events.js';
import { planColumns } from '../src/adapters/plans.js';
import { Dec, parsePlan } from '../src/core/pricing/index.js';
import { startLocalSystem, type LocalSystem } from '../src/local/system.js';
import { createLogger } from '../src/runtime/logger.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { eventually } from './support/eventually.js';
import { freePort } from './support/net.js';
import { post } from './support/http.js';

describe('the pipeline end to end: usage through the broker to a final bill', function () {
  this.timeout(240_000);
  let database: TestDatabase;
  let system: LocalSystem;
  let tenantId: string;

  before(async () => {
    database = await freshDatabase();
    const plan = parsePlan({
      name: 'e2e-plan',
      currency: 'USD',
      price_per_invocation: '0.01',
      price_per_gb_s: '1',
      price_per_cold_start: '0.5',
      price_per_cpu_ms: '0',
      rules: { duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128, billed_memory: 'observed' },
    });
    const [tenant] = await database.db('tenants').insert({ slug: 'e2e', name: 'End to end', currency: 'USD', timezone: 'UTC' }).returning<{ id: string }[]>('id');
    assert.ok(tenant);
    tenantId = tenant.id;
    const [planRow] = await database
      .db('pricing_plans')
      .insert(planColumns(plan))
      .returning<{ id: string }[]>('id');
    assert.ok(planRow);
    await database.db('tenant_plan_assignments').insert({ tenant_id: tenantId, plan_id: planRow.id, effective_from: '2000-01-01T00:00:00Z' });

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: database.url,
      BUFFER_STREAM: `faasbilling:e2e:${randomBytes(6).toString('hex')}`,
      LOCAL_BROKER_PORT: String(await freePort()),
      LOCAL_API_PORT: String(await freePort()),
      LOCAL_FUNCTIONS_PORT: String(20_000 + Math.floor(Math.random() * 30_000)),
      // The reference workloads play no part here (test/local-metering.test.ts runs them).
      LOCAL_WORKLOADS: '',
      LOG_LEVEL: 'warn',
    };
    system = await startLocalSystem(createLogger('e2e', 'warn'), env);
  });

  after(async () => {
    await system?.stop();
    await database?.drop();
  });

  it('prices usage events sent to the broker exactly as computed by hand, and finalizes the bill', async () => {
    // Last month, in the tenant's zone (UTC): the period the billing close event closes.
    const at = DateTime.utc().startOf('month').minus({ months: 1 }).plus({ days: 1, hours: 12 });
    const event = (minutes: number, data: Record<string, unknown>) => ({
      specversion: '1.0',
      type: EventType.usage,
      source: '/e2e/producer',
      id: randomUUID(),
      time: at.plus({ minutes }).toISO(),
      datacontenttype: 'application/json',
      // Last month may be more than 35 days ago.
      backfill: true,
      data: { tenant_id: 'e2e', service: 'svc', ...data },
    });
    const events = [
      event(0, { invocations: 1, duration_ms: 150, memory_mb: 100 }),
      event(7, { invocations: 2, duration_ms: 100, memory_mb: 256 }),
      event(65, { invocations: 1, duration_ms: 1000, memory_mb: 130, cold_start: true }),
    ];
    const sent = await post(system.broker.url, { 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(events));
    assert.equal(sent.status, 202, sent.text);
    // The same events again: delivery is at least once, the bill must not change.
    await post(system.broker.url, { 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(events));

    // collect buffers them; the per-minute tick makes save run now; save → aggregate → price follow as replies.
    await eventually(
      async () => {
        system.broker.firePingSource('save-flush-tick');
        await system.broker.idle();
        const dirty = await database.db('usage_dirty').count<{ n: string }[]>({ n: '*' });
        const stored = await database.db('usage_raw').where({ tenant_id: tenantId }).count<{ n: string }[]>({ n: '*' });
        return Number(stored[0]?.n) === 3 && Number(dirty[0]?.n) === 0;
      },
      120_000,
      'three rows saved and aggregated',
    );

    const close = {
      specversion: '1.0',
      type: EventType.billingClose,
      source: '/e2e/operator',
      id: randomUUID(),
      datacontenttype: 'application/json',
      data: { tenant_id: tenantId },
    };
    assert.equal((await post(system.broker.url, { 'content-type': 'application/cloudevents+json' }, JSON.stringify(close))).status, 202);
    await eventually(
      async () => {
        await system.broker.idle();
        return (await database.db('bills').where({ tenant_id: tenantId, status: 'final' }).first()) !== undefined;
      },
      60_000,
      'a final bill',
    );

    // By hand, per invocation: duration rounded up to 100 ms (at least 100), memory up to 128 MB.
    //   event 1: 1 × 200 ms × 128 MB =  25,600 MB·ms
    //   event 2: 2 × 100 ms × 256 MB =  51,200 MB·ms   (50 ms each, raised to the 100 ms minimum)
    //   event 3: 1 × 1000 ms × 256 MB = 256,000 MB·ms  (cold start)
    //   compute: 332,800 MB·ms = 0.325 GB-s × 1 USD  = 0.325 → 0.33 (half-up)
    //   invocations: 4 × 0.01 USD                     = 0.04
    //   cold starts: 1 × 0.5 USD                      = 0.50
    //   total = sum of the rounded lines              = 0.87
    const bill = await database.db('bills').where({ tenant_id: tenantId }).first<{ id: string; total_amount: string; currency: string; period_start: Date }>();
    assert.ok(bill);
    const canonical = (decimal: string): string => new Dec(decimal).toFixed();
    assert.equal(canonical(bill.total_amount), '0.87');
    assert.equal(bill.currency, 'USD');
    assert.equal(bill.period_start.toISOString(), at.startOf('month').toJSDate().toISOString());
    const lines = await database
      .db('bill_line_items')
      .where({ bill_id: bill.id })
      .select<{ meter: string; quantity: string; amount: string }[]>('meter', 'quantity', 'amount');
    const charged = lines.filter((l) => !new Dec(l.amount).isZero());
    const byMeter = Object.fromEntries(charged.map((l) => [l.meter, [canonical(l.quantity), canonical(l.amount)]]));
    assert.deepEqual(byMeter, {
      invocations: ['4', '0.04'],
      compute: ['332800', '0.33'],
      cold_starts: ['1', '0.5'],
    });
  });
});
