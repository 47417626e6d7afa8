/**
 * save over real HTTP, under faas-js-runtime, with real CloudEvents (a flush in binary and
 * structured mode, a PingSource tick), against both buffers: the Redis stream (REDIS_URL) and the
 * PostgreSQL queue table. Rows are checked in the real usage_raw and dead_letters tables.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudEvent } from 'cloudevents';
import { Redis } from 'ioredis';
import { EventType, eventSource, usageSavedData, type UsageSavedData } from '../../src/contract/events.js';
import type { UsageRecord } from '../../src/contract/usage.js';
import { PostgresQueueBuffer } from '../../src/adapters/buffer/postgres-queue.js';
import { RedisStreamBuffer } from '../../src/adapters/buffer/redis.js';
import type { BufferStats, UsageBuffer } from '../../src/adapters/buffer/types.js';
import { recordDeadLetters } from '../../src/adapters/dead-letters.js';
import { UsageStore } from '../../src/adapters/usage-store.js';
import { createLogger } from '../../src/runtime/logger.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Saver } from '../../src/stages/save.js';
import { freshDatabase, viaPort, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { CuttableProxy } from '../../test/support/net.js';
import { usageRecord } from '../../test/support/usage.js';
import { createSave } from './index.js';
import { assertProblem, postBinary, postStructured, type Reply } from '../../test/support/http.js';

const redisUrl = process.env.REDIS_URL;

/** What collect replies (or anyone sends) to ask save to drain now. */
const flushEvent = (): CloudEvent<unknown> => new CloudEvent({ type: EventType.bufferFlush, source: eventSource('collect'), data: { reason: 'threshold' } });

/** The per-minute PingSource tick of eventing/pingsources.yaml, as Knative's PingSource sends it. */
const pingEvent = (): CloudEvent<unknown> =>
  new CloudEvent({
    type: 'dev.knative.sources.ping',
    source: '/apis/v1/namespaces/faasbilling/pingsources/save-flush-tick',
    datacontenttype: 'application/json',
    data: { reason: 'tick' },
  });

const triggers: { name: string; send: (url: string) => Promise<Reply> }[] = [
  { name: 'a flush CloudEvent in binary mode', send: (url) => postBinary(url, flushEvent()) },
  { name: 'a flush CloudEvent in structured mode', send: (url) => postStructured(url, flushEvent()) },
  { name: 'a PingSource tick', send: (url) => postBinary(url, pingEvent()) },
];

/** The faasbilling.usage.saved.v1 reply, checked against the contract's schema. */
function savedReply(reply: Reply): UsageSavedData {
  assert.equal(reply.status, 200, reply.text);
  assert.equal(reply.headers.get('ce-type'), EventType.usageSaved);
  assert.equal(reply.headers.get('ce-source'), eventSource('save'));
  assert.equal(reply.headers.get('ce-specversion'), '1.0');
  assert.ok(reply.headers.get('ce-id'));
  return usageSavedData.parse(JSON.parse(reply.text));
}

/** The value of one sample on a /metrics page (undefined when the series is absent). */
function metricValue(page: string, series: string): number | undefined {
  const line = page.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface StoredRow {
  event_id: string;
  tenant_id: string;
  duration_ms: string;
  memory_mb: string;
  cpu_ms: string | null;
  cold_start: boolean;
  error: boolean;
  labels: Record<string, string>;
  invocations: number;
}

interface DeadLetterRow {
  stage: string;
  reason: string;
  detail: string;
  source: string;
  event_id: string;
  event_type: string;
  tenant_key: string;
  payload: UsageRecord;
}

const minutesAgo = (minutes: number): string => new Date(Date.now() - minutes * 60_000).toISOString();

/** A buffer whose ack always fails: a saver that dies after its commit and before its ack. */
function ackFails(inner: UsageBuffer): UsageBuffer {
  return {
    append: (records) => inner.append(records),
    readNew: (consumer, count) => inner.readNew(consumer, count),
    claimStale: (consumer, minIdleMs, count) => inner.claimStale(consumer, minIdleMs, count),
    ack: () => Promise.reject(new Error('injected failure: the saver died before it acknowledged')),
    stats: () => inner.stats(),
    ping: () => inner.ping(),
    close: () => Promise.resolve(),
  };
}

const kinds = [
  { name: 'PostgreSQL queue table', redis: false },
  { name: 'Redis stream', redis: true },
] as const;

for (const kind of kinds) {
  describe(`save function with the ${kind.name} buffer`, function () {
    let database: TestDatabase;
    let tenantId: string;
    let opened = false;
    let stream: string;
    /** The test's own handle on the buffer the function drains. */
    let buffer: UsageBuffer;
    let fn: RunningFunction;
    let running: RunningFunction[] = [];
    let proxies: CuttableProxy[] = [];

    /** Starts the save function on this suite's database and buffer; `env` overrides. */
    async function start(env: Record<string, string | undefined> = {}): Promise<RunningFunction> {
      const started = await startFunction('save', createSave, {
        DATABASE_URL: database.url,
        REDIS_URL: kind.redis ? redisUrl : undefined,
        BUFFER_STREAM: stream,
        SAVE_CONSUMER: 'save-a',
        ...env,
      });
      running.push(started);
      return started;
    }

    const stats = (): Promise<BufferStats> => buffer.stats();

    /** Rows of usage_raw from `source`, and how many distinct event ids they hold. */
    async function rowsOf(source: string): Promise<{ count: number; distinct: number }> {
      const result = await database.db.raw<{ rows: { count: number; distinct: number }[] }>(
        'SELECT count(*)::int AS count, count(DISTINCT event_id)::int AS distinct FROM usage_raw WHERE source = ?',
        [source],
      );
      const [row] = result.rows;
      assert.ok(row);
      return row;
    }

    const countOf = async (table: string, where: Record<string, string> = {}): Promise<number> => {
      const result = await database.db.raw<{ rows: { count: number }[] }>(`SELECT count(*)::int AS count FROM ?? WHERE ${Object.keys(where).map(() => '?? = ?').join(' AND ') || 'true'}`, [
        table,
        ...Object.entries(where).flat(),
      ]);
      return result.rows[0]?.count ?? -1;
    };

    before(async function () {
      if (kind.redis && !redisUrl) {
        // Without Redis (a laptop) the Redis half is reported pending; CI always provides it.
        if (!process.env.CI) this.skip();
        throw new Error('REDIS_URL is required for the Redis half of the save tests (CI sets it)');
      }
      database = await freshDatabase();
      opened = true;
      const [tenant] = await database.db('tenants').insert({ slug: 'demo', name: 'Demo tenant' }).returning<{ id: string }[]>('id');
      assert.ok(tenant);
      tenantId = tenant.id;
    });
    after(async () => {
      if (opened) await database.drop();
    });

    beforeEach(async () => {
      stream = `faasbilling:test:${randomBytes(6).toString('hex')}`;
      await database.db.raw('TRUNCATE usage_raw, dead_letters, buffer_entries');
      buffer = kind.redis && redisUrl ? RedisStreamBuffer.connect(redisUrl, stream) : new PostgresQueueBuffer(database.db);
      fn = await start();
    });
    afterEach(async () => {
      for (const f of running) await f.close();
      running = [];
      for (const p of proxies) await p.cut();
      proxies = [];
      if (buffer instanceof RedisStreamBuffer) await buffer.destroy();
      await buffer.close();
    });

    for (const trigger of triggers) {
      it(`drains the buffer into usage_raw on ${trigger.name} and replies usage.saved`, async () => {
        const source = `/test/${randomUUID()}`;
        const records = [
          usageRecord({ source, time: minutesAgo(3), duration_ms: 200.5, memory_mb: 512, cold_start: true, labels: { method: 'POST' } }),
          usageRecord({ source, time: minutesAgo(1) }),
          usageRecord({ source, time: minutesAgo(2), cpu_ms: null }),
        ];
        await buffer.append(records.slice(0, 2));
        await buffer.append(records.slice(2));
        assert.equal((await stats()).length, 2);

        const saved = savedReply(await trigger.send(fn.url));
        assert.deepEqual(saved, {
          inserted: 3,
          duplicates: 0,
          dead_lettered: 0,
          min_time: records[0]?.time,
          max_time: records[1]?.time,
          tenants: [tenantId],
        });

        const rows = await database.db('usage_raw')
          .where({ source })
          .orderBy('time')
          .select<StoredRow[]>('event_id', 'tenant_id', 'duration_ms', 'memory_mb', 'cpu_ms', 'cold_start', 'error', 'labels', 'invocations');
        assert.deepEqual(
          rows.map((r) => r.event_id),
          [records[0]?.id, records[2]?.id, records[1]?.id],
        );
        assert.ok(rows.every((r) => r.tenant_id === tenantId && r.invocations === 1 && !r.error));
        assert.equal(rows[0]?.duration_ms, '200.500');
        assert.equal(rows[0]?.memory_mb, '512.000');
        assert.equal(rows[0]?.cold_start, true);
        assert.deepEqual(rows[0]?.labels, { method: 'POST' });
        assert.equal(rows[1]?.cpu_ms, null);
        assert.equal(rows[2]?.cpu_ms, '50.000');
        assert.deepEqual(await stats(), { length: 0, pending: 0, lagMs: 0 });
      });
    }

    it('answers 204 without an event when the buffer is empty', async () => {
      for (const trigger of triggers) {
        const reply = await trigger.send(fn.url);
        assert.equal(reply.status, 204, reply.text);
        assert.equal(reply.headers.get('ce-type'), null);
        assert.equal(reply.text, '');
      }
      assert.equal(await countOf('usage_raw'), 0);
    });

    it('stores an event appended 10 times (across two drains) once and counts the duplicates', async () => {
      const record = usageRecord({ source: `/test/${randomUUID()}` });
      for (let i = 0; i < 6; i += 1) await buffer.append([record]);
      const first = savedReply(await postBinary(fn.url, flushEvent()));
      assert.equal(first.inserted, 1);
      assert.equal(first.duplicates, 5);
      assert.equal(first.dead_lettered, 0);

      // Four more copies in one entry: nothing new to store, so no usage.saved event (204).
      await buffer.append([record, record, record, record]);
      const second = await postBinary(fn.url, flushEvent());
      assert.equal(second.status, 204, second.text);

      assert.deepEqual(await rowsOf(record.source), { count: 1, distinct: 1 });
      assert.deepEqual(await stats(), { length: 0, pending: 0, lagMs: 0 });
      const page = await (await fetch(`${fn.url}/metrics`)).text();
      assert.equal(metricValue(page, 'faasbilling_duplicates_total{stage="save",function="save"}'), 9);
      assert.equal(metricValue(page, 'faasbilling_rows_inserted_total{function="save"}'), 1);
    });

    it('dead-letters the records of an unknown tenant with the reason, and stores the rest of the batch', async () => {
      const source = `/test/${randomUUID()}`;
      const known = usageRecord({ source });
      const unknown = usageRecord({ source, tenant_id: 'no-such-tenant', service: 'ghost' });
      await buffer.append([known, unknown]);

      const saved = savedReply(await postBinary(fn.url, flushEvent()));
      assert.equal(saved.inserted, 1);
      assert.equal(saved.dead_lettered, 1);
      assert.deepEqual(saved.tenants, [tenantId]);

      const letters = await database.db('dead_letters').select<DeadLetterRow[]>('stage', 'reason', 'detail', 'source', 'event_id', 'event_type', 'tenant_key', 'payload');
      assert.equal(letters.length, 1);
      const [letter] = letters;
      assert.ok(letter);
      assert.equal(letter.stage, 'save');
      assert.equal(letter.reason, 'unknown_tenant');
      assert.match(letter.detail, /no-such-tenant/);
      assert.equal(letter.source, source);
      assert.equal(letter.event_id, unknown.id);
      assert.equal(letter.event_type, EventType.usage);
      assert.equal(letter.tenant_key, 'no-such-tenant');
      assert.deepEqual(letter.payload, unknown);

      const stored = await database.db('usage_raw').where({ source }).pluck<string[]>('event_id');
      assert.deepEqual(stored, [known.id]);
      assert.equal(await countOf('services', { name: 'ghost' }), 0);

      // Redelivered, it is neither stored nor dead-lettered twice, and the buffer is still emptied.
      await buffer.append([unknown]);
      assert.equal((await postBinary(fn.url, flushEvent())).status, 204);
      assert.equal(await countOf('dead_letters'), 1);
      assert.deepEqual(await stats(), { length: 0, pending: 0, lagMs: 0 });
      const page = await (await fetch(`${fn.url}/metrics`)).text();
      assert.equal(metricValue(page, 'faasbilling_dead_letters_total{reason="unknown_tenant",function="save"}'), 1);
    });

    /** Writes raw entry payloads to the buffer, as an old or foreign producer might have. */
    async function appendRaw(payloads: string[]): Promise<void> {
      if (!kind.redis) {
        await database.db('buffer_entries').insert(payloads.map((payload) => ({ payload })));
        return;
      }
      const redis = new Redis(redisUrl ?? '');
      for (const payload of payloads) await redis.xadd(stream, '*', 'r', payload);
      await redis.quit();
    }

    it('dead-letters unreadable buffer records with the reason, stores the readable ones beside them, and empties the buffer', async () => {
      const source = `/test/${randomUUID()}`;
      const good = usageRecord({ source });
      // Written before cpu_ms existed: no cpu_ms key at all. Readable; stored with cpu_ms NULL.
      const { cpu_ms: _cpu, ...old } = usageRecord({ source });
      const bad = { ...usageRecord({ source }), memory_mb: -1 };
      await buffer.append([usageRecord({ source })]);
      await appendRaw([JSON.stringify([good, bad, old]), 'not json at all', JSON.stringify({ not: 'an array' })]);

      const saved = savedReply(await postBinary(fn.url, flushEvent()));
      assert.equal(saved.inserted, 3);
      assert.equal(saved.dead_lettered, 3);
      const stored = await database.db('usage_raw').where({ source }).select<{ event_id: string; cpu_ms: string | null }[]>('event_id', 'cpu_ms');
      assert.equal(stored.length, 3);
      assert.ok(stored.some((r) => r.event_id === good.id));
      assert.equal(stored.find((r) => r.event_id === old.id)?.cpu_ms, null);
      assert.ok(!stored.some((r) => r.event_id === bad.id));

      const letters = await database.db('dead_letters').select<DeadLetterRow[]>('reason', 'detail', 'source', 'event_id', 'payload').orderBy('id');
      assert.deepEqual(letters.map((l) => l.reason), ['invalid_buffer_record', 'invalid_buffer_record', 'invalid_buffer_record']);
      const [first, second, third] = letters;
      assert.equal(first?.event_id, bad.id);
      assert.match(first?.detail ?? '', /memory_mb/);
      assert.deepEqual(first?.payload, bad);
      assert.match(second?.detail ?? '', /not JSON/);
      assert.match(third?.detail ?? '', /not an array/);
      assert.deepEqual(await stats(), { length: 0, pending: 0, lagMs: 0 });
      const page = await (await fetch(`${fn.url}/metrics`)).text();
      assert.equal(metricValue(page, 'faasbilling_dead_letters_total{reason="invalid_buffer_record",function="save"}'), 3);
    });

    it('auto-registers an unknown service and revision of a known tenant', async () => {
      const service = `checkout-${randomBytes(4).toString('hex')}`;
      const records = [
        usageRecord({ service, revision: `${service}-00001` }),
        usageRecord({ service, revision: `${service}-00002` }),
        usageRecord({ service, revision: `${service}-00002` }),
      ];
      await buffer.append(records);
      assert.equal(savedReply(await postBinary(fn.url, flushEvent())).inserted, 3);

      const services = await database.db('services').where({ name: service }).select<{ id: string; tenant_id: string; auto_registered: boolean }[]>('id', 'tenant_id', 'auto_registered');
      assert.equal(services.length, 1);
      assert.equal(services[0]?.tenant_id, tenantId);
      assert.equal(services[0]?.auto_registered, true);
      const revisions = await database.db('revisions')
        .where({ service_id: services[0]?.id })
        .orderBy('name')
        .select<{ id: string; name: string; auto_registered: boolean }[]>('id', 'name', 'auto_registered');
      assert.deepEqual(
        revisions.map((r) => [r.name, r.auto_registered]),
        [
          [`${service}-00001`, true],
          [`${service}-00002`, true],
        ],
      );
      const rows = await database.db('usage_raw')
        .whereIn('event_id', records.map((r) => r.id))
        .select<{ event_id: string; service_id: string; revision_id: string }[]>('event_id', 'service_id', 'revision_id');
      const revisionOf = new Map(revisions.map((r) => [r.id, r.name]));
      assert.equal(rows.length, 3);
      for (const row of rows) {
        const record = records.find((r) => r.id === row.event_id);
        assert.equal(row.service_id, services[0]?.id);
        assert.equal(revisionOf.get(row.revision_id), record?.revision);
      }
    });

    it('after a saver dies between its commit and its ack, another consumer claims the entries and every row is stored once', async () => {
      const source = `/test/${randomUUID()}`;
      const sent = Array.from({ length: 30 }, () => usageRecord({ source }));
      for (let i = 0; i < 30; i += 10) await buffer.append(sent.slice(i, i + 10));

      const crashed = new Saver({
        buffer: ackFails(buffer),
        store: new UsageStore(database.db),
        metrics: createStageMetrics('save'),
        logger: createLogger('save-crashed', 'silent'),
        consumer: 'save-crashed',
        batchEntries: 2,
        batchRecords: 1,
        timeBudgetMs: 10_000,
        claimIdleMs: 60_000,
        deadLetters: (letters) => recordDeadLetters(database.db, letters),
      });
      await assert.rejects(crashed.drain(), /injected failure/);
      // Its first batch (two entries) is committed but still pending; the third was never read.
      assert.deepEqual(await rowsOf(source), { count: 20, distinct: 20 });
      const before = await stats();
      assert.equal(before.length, 3);
      assert.equal(before.pending, 2);

      const successor = await start({ SAVE_CONSUMER: 'save-successor', SAVE_CLAIM_IDLE_MS: '1' });
      await sleep(20); // let the entries be idle longer than SAVE_CLAIM_IDLE_MS
      const saved = savedReply(await postBinary(successor.url, flushEvent()));
      assert.equal(saved.inserted, 10);
      assert.equal(saved.duplicates, 20);

      assert.deepEqual(await rowsOf(source), { count: 30, distinct: 30 });
      const stored = await database.db('usage_raw').where({ source }).pluck<string[]>('event_id');
      assert.deepEqual(stored.sort(), sent.map((r) => r.id).sort());
      assert.deepEqual(await stats(), { length: 0, pending: 0, lagMs: 0 });
    });

    it('answers 503 database_unavailable while PostgreSQL is down, keeps the entries, and saves them once when it is back', async () => {
      const proxy = await CuttableProxy.start(database.address);
      proxies.push(proxy);
      // A short claim idle lets this consumer take back its own pending entries right after the outage.
      const cut = await start({ DATABASE_URL: viaPort(database.url, proxy.port), SAVE_CONSUMER: 'save-cut', SAVE_CLAIM_IDLE_MS: '1' });
      assert.equal((await fetch(`${cut.url}/health/readiness`)).status, 200);

      const source = `/test/${randomUUID()}`;
      const sent = Array.from({ length: 12 }, () => usageRecord({ source }));
      await buffer.append(sent.slice(0, 6));
      await buffer.append(sent.slice(6));

      await proxy.cut();
      const down = await postBinary(cut.url, flushEvent());
      const problem = assertProblem(down, 503);
      assert.equal(problem.type, 'urn:faasbilling:problem:database_unavailable');
      assert.equal((await fetch(`${cut.url}/health/readiness`)).status, 503);
      assert.equal((await fetch(`${cut.url}/health/liveness`)).status, 200);
      const whileDown = await stats();
      assert.equal(whileDown.length, 2, 'no entry is acknowledged while the database is down');
      assert.deepEqual(await rowsOf(source), { count: 0, distinct: 0 });

      await proxy.restore();
      await sleep(20);
      let back = await postBinary(cut.url, flushEvent());
      for (let i = 0; i < 50 && back.status === 503; i += 1) {
        await sleep(100);
        back = await postBinary(cut.url, flushEvent());
      }
      const saved = savedReply(back);
      assert.equal(saved.inserted, 12);
      assert.equal(saved.duplicates, 0);
      assert.deepEqual(await rowsOf(source), { count: 12, distinct: 12 });
      assert.deepEqual(await stats(), { length: 0, pending: 0, lagMs: 0 });
      assert.equal((await fetch(`${cut.url}/health/readiness`)).status, 200);
      const page = await (await fetch(`${cut.url}/metrics`)).text();
      // With Redis the batch was read and its transaction failed; the queue table could not even be read.
      const failures = metricValue(page, 'faasbilling_save_failures_total{function="save"}') ?? 0;
      if (kind.redis) assert.ok(failures >= 1, 'the failed batch is counted');
      else assert.equal(failures, 0);
      assert.ok((metricValue(page, 'faasbilling_http_problems_total{status="503",function="save"}') ?? 0) >= 1, 'the 503 is counted');
    });

    if (kind.redis) {
      it('answers 503 buffer_unavailable while Redis is down, and saves the entries once it is back', async () => {
        assert.ok(redisUrl);
        const target = new URL(redisUrl);
        const proxy = await CuttableProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
        proxies.push(proxy);
        const cut = await start({ REDIS_URL: viaPort(redisUrl, proxy.port), SAVE_CONSUMER: 'save-redis-cut' });
        assert.equal((await fetch(`${cut.url}/health/readiness`)).status, 200);
        const source = `/test/${randomUUID()}`;
        await buffer.append(Array.from({ length: 5 }, () => usageRecord({ source })));

        await proxy.cut();
        const problem = assertProblem(await postBinary(cut.url, flushEvent()), 503);
        assert.equal(problem.type, 'urn:faasbilling:problem:buffer_unavailable');
        assert.equal((await fetch(`${cut.url}/health/readiness`)).status, 503);
        assert.deepEqual(await rowsOf(source), { count: 0, distinct: 0 });
        assert.equal((await stats()).length, 1);

        await proxy.restore();
        let back = await postBinary(cut.url, flushEvent());
        for (let i = 0; i < 50 && back.status === 503; i += 1) {
          await sleep(100);
          back = await postBinary(cut.url, flushEvent());
        }
        assert.equal(savedReply(back).inserted, 5);
        assert.deepEqual(await rowsOf(source), { count: 5, distinct: 5 });
        assert.deepEqual(await stats(), { length: 0, pending: 0, lagMs: 0 });
      });
    }

    it('is ready and alive while PostgreSQL and its buffer are up', async () => {
      const ready = await fetch(`${fn.url}/health/readiness`);
      assert.equal(ready.status, 200, await ready.text());
      assert.equal((await fetch(`${fn.url}/health/liveness`)).status, 200);
    });

    it('exposes its save metrics on /metrics, and they move with what it saved', async () => {
      const pageBefore = await (await fetch(`${fn.url}/metrics`)).text();
      assert.equal(metricValue(pageBefore, 'faasbilling_rows_inserted_total{function="save"}'), 0);
      assert.equal(metricValue(pageBefore, 'faasbilling_save_transaction_seconds_count{function="save"}'), 0);

      const record = usageRecord();
      await buffer.append([record, usageRecord(), usageRecord()]);
      await buffer.append([record]);
      assert.equal(savedReply(await postBinary(fn.url, flushEvent())).inserted, 3);

      const page = await (await fetch(`${fn.url}/metrics`)).text();
      assert.equal(metricValue(page, 'faasbilling_rows_inserted_total{function="save"}'), 3);
      assert.equal(metricValue(page, 'faasbilling_duplicates_total{stage="save",function="save"}'), 1);
      assert.equal(metricValue(page, 'faasbilling_batch_size_count{function="save"}'), 1);
      assert.equal(metricValue(page, 'faasbilling_batch_size_sum{function="save"}'), 4);
      assert.equal(metricValue(page, 'faasbilling_save_transaction_seconds_count{function="save"}'), 1);
      assert.equal(metricValue(page, 'faasbilling_buffer_length{function="save"}'), 0);
      assert.equal(metricValue(page, 'faasbilling_buffer_pending{function="save"}'), 0);
      assert.match(page, /faas_invocations/);
    });
  });
}
