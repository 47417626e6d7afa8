/**
 * retention against the real PostgreSQL: usage goes into usage_raw through UsageStore (save's
 * writer, which creates the month partitions), windows through the real Aggregator, bills through
 * the real Billing service. A partition past the retention is dropped only once its rows are
 * aggregated and every billing period its rows fall in (in each tenant's time zone) is final.
 */
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { DateTime } from 'luxon';
import { UsageStore } from '../../src/adapters/usage-store.js';
import { Billing } from '../../src/billing/index.js';
import { createTenant } from '../../src/billing/testing.js';
import { pingEventType, pingSourceSource } from '../../src/contract/routing.js';
import { createLogger } from '../../src/runtime/logger.js';
import { Aggregator } from '../../src/stages/aggregate.js';
import { Retention, listUsagePartitions, type RetentionReport } from '../../src/stages/retention.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { postBinary } from '../../test/support/http.js';
import { usageRecord } from '../../test/support/usage.js';
import { createRetention } from './index.js';

const logger = createLogger('retention-test', 'silent');
const retentionDays = 40;

/** The UTC month `back` months before the current one, as partition name and an instant inside. */
function monthAgo(back: number): { partition: string; label: string; start: DateTime } {
  const start = DateTime.utc().startOf('month').minus({ months: back });
  return { partition: `usage_raw_p${start.toFormat('yyyyMM')}`, label: start.toFormat('yyyy-MM'), start };
}

describe('retention (usage_raw partitions)', function () {
  this.timeout(120_000);
  let database: TestDatabase;
  let store: UsageStore;
  let billing: Billing;
  let aggregator: Aggregator;
  let retention: Retention;
  let utcTenant: string;
  let laTenant: string;
  const jan = monthAgo(10);
  const feb = monthAgo(9);
  const recent = monthAgo(0);

  const rowsIn = async (partition: string): Promise<number> => {
    const result = await database.db.raw<{ rows: { n: string }[] }>(`SELECT count(*) AS n FROM "${partition}"`);
    return Number(result.rows[0]?.n);
  };
  const partitionNames = async () => (await listUsagePartitions(database.db)).map((p) => p.name);
  const finalize = async (tenant: string, month: string) => billing.finalize((await billing.generate(tenant, { month })).id);
  const keptReason = (report: RetentionReport, partition: string) => report.kept.find((k) => k.partition === partition)?.reason;

  before(async () => {
    database = await freshDatabase();
    store = new UsageStore(database.db);
    billing = new Billing({ db: database.db, logger });
    aggregator = new Aggregator({ db: database.db, logger, batchBuckets: 500, timeBudgetMs: 60_000 });
    retention = new Retention({ db: database.db, logger, retentionDays });
    utcTenant = await createTenant(database.db, { slug: 'utc-tenant', timezone: 'UTC' });
    laTenant = await createTenant(database.db, { slug: 'la-tenant', timezone: 'America/Los_Angeles' });
    const at = (month: DateTime, hours: number) => month.plus({ hours }).toISO() ?? '';
    await store.store([
      usageRecord({ tenant_id: 'utc-tenant', time: at(jan.start, 30) }),
      usageRecord({ tenant_id: 'utc-tenant', time: at(jan.start, 24 * 20) }),
      // 03:00 UTC on the 1st is still the previous month in Los Angeles: the LA tenant's
      // rows in this partition fall in two of its billing periods.
      usageRecord({ tenant_id: 'la-tenant', time: at(jan.start, 3) }),
      usageRecord({ tenant_id: 'la-tenant', time: at(jan.start, 24 * 10) }),
      usageRecord({ tenant_id: 'utc-tenant', time: at(feb.start, 48) }),
      usageRecord({ tenant_id: 'utc-tenant', time: new Date().toISOString() }),
    ]);
  });

  after(async () => {
    await database?.drop();
  });

  it('save created one partition per month of usage', async () => {
    const names = await partitionNames();
    for (const { partition } of [jan, feb, recent]) assert.ok(names.includes(partition), `${partition} in ${names.join(', ')}`);
    assert.equal(await rowsIn(jan.partition), 4);
  });

  it('keeps partitions whose rows are not aggregated yet, and recent ones', async () => {
    const report = await retention.run();
    assert.deepEqual(report.dropped, []);
    assert.equal(keptReason(report, jan.partition), 'not_aggregated');
    assert.equal(keptReason(report, feb.partition), 'not_aggregated');
    assert.equal(keptReason(report, recent.partition), 'within_retention');
    assert.equal(await rowsIn(jan.partition), 4);
  });

  it('keeps aggregated partitions while a billing period of their rows is not final', async () => {
    await aggregator.run();
    const dirty = await database.db.raw<{ rows: unknown[] }>('SELECT 1 FROM usage_dirty LIMIT 1');
    assert.equal(dirty.rows.length, 0, 'aggregate cleared every mark');
    const report = await retention.run();
    assert.deepEqual(report.dropped, []);
    assert.equal(keptReason(report, jan.partition), 'period_not_final');
    assert.equal(keptReason(report, feb.partition), 'period_not_final');
  });

  it('drops a partition only when every tenant period it touches is final, in the tenant\'s zone', async () => {
    await finalize(utcTenant, jan.label);
    await finalize(laTenant, jan.label);
    await finalize(utcTenant, feb.label);
    // A draft bill is not enough.
    const december = monthAgo(11).label;
    await billing.generate(laTenant, { month: december });
    let report = await retention.run();
    assert.deepEqual(report.dropped, [feb.partition]);
    assert.equal(keptReason(report, jan.partition), 'period_not_final', 'the LA tenant\'s previous month is still a draft');
    assert.ok(!(await partitionNames()).includes(feb.partition));

    await finalize(laTenant, december);
    report = await retention.run();
    assert.deepEqual(report.dropped, [jan.partition]);
    assert.ok(!(await partitionNames()).includes(jan.partition));
    assert.ok((await partitionNames()).includes(recent.partition));
  });

  it('leaves the aggregated windows and the bills in place, and a second run drops nothing', async () => {
    const windows = await database.db.raw<{ rows: { n: string }[] }>('SELECT count(*) AS n FROM usage_aggregate WHERE window_start < ?', [feb.start.plus({ months: 1 }).toJSDate()]);
    assert.ok(Number(windows.rows[0]?.n) > 0, 'windows of the dropped months remain');
    const bills = await database.db('bills').whereIn('status', ['final']).count<{ count: string }[]>({ count: '*' });
    assert.equal(Number(bills[0]?.count), 4);
    const again = await retention.run();
    assert.deepEqual(again.dropped, []);
    const raw = await database.db.raw<{ rows: { n: string }[] }>('SELECT count(*) AS n FROM usage_raw');
    assert.equal(Number(raw.rows[0]?.n), 1, 'only the current month\'s row is left');
  });

  describe('as a function (the retention-daily PingSource)', () => {
    let fn: RunningFunction;
    const march = monthAgo(8);

    before(async () => {
      fn = await startFunction('retention', createRetention, { DATABASE_URL: database.url, RETENTION_RAW_DAYS: String(retentionDays) });
      await store.store([usageRecord({ tenant_id: 'utc-tenant', time: march.start.plus({ days: 3 }).toISO() ?? '' })]);
      await aggregator.run();
      await finalize(utcTenant, march.label);
    });

    after(async () => {
      await fn?.close();
    });

    it('a ping drops what may go, answers the report and counts it in /metrics', async () => {
      const ping = new CloudEvent({ type: pingEventType, source: pingSourceSource('faas-billing', 'retention-daily'), id: 'tick-1', datacontenttype: 'application/json', data: { reason: 'daily' } });
      const reply = await postBinary(fn.url, ping);
      assert.equal(reply.status, 200, reply.text);
      const report = reply.json as RetentionReport;
      assert.deepEqual(report.dropped, [march.partition]);
      assert.ok(!(await partitionNames()).includes(march.partition));
      const metrics = await (await fetch(`${fn.url}/metrics`)).text();
      assert.match(metrics, /^faasbilling_retention_partitions_dropped_total\{function="retention"\} 1$/m);
    });

    it('refuses a retention shorter than the 36 days collect still accepts late usage for', async () => {
      await assert.rejects(startFunction('retention', createRetention, { DATABASE_URL: database.url, RETENTION_RAW_DAYS: '7' }).then((f) => f.module.init()), /RETENTION_RAW_DAYS/);
    });
  });
});
