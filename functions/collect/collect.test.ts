/**
 * collect over real HTTP, under faas-js-runtime, with real CloudEvents (binary, structured,
 * batch) and the seed's JSON, against the Redis buffer (REDIS_URL) or the PostgreSQL queue.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { EventType } from '../../src/contract/events.js';
import { PostgresQueueBuffer } from '../../src/adapters/buffer/postgres-queue.js';
import { RedisStreamBuffer } from '../../src/adapters/buffer/redis.js';
import type { BufferEntry, UsageBuffer } from '../../src/adapters/buffer/types.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { CuttableProxy } from '../../test/support/net.js';
import { usageCloudEvent } from '../../test/support/usage.js';
import { createCollect } from './index.js';
import { assertProblem, post, postBinary } from '../../test/support/http.js';

const redisUrl = process.env.REDIS_URL;

const usageEvent = (overrides: Parameters<typeof usageCloudEvent>[0] = {}) => new CloudEvent(usageCloudEvent(overrides));

async function drainAll(buffer: UsageBuffer): Promise<BufferEntry[]> {
  const entries: BufferEntry[] = [];
  for (let batch = await buffer.readNew('test-reader', 100); batch.length; batch = await buffer.readNew('test-reader', 100)) {
    entries.push(...batch);
  }
  await buffer.ack(entries.map((e) => e.id));
  return entries;
}
const idsIn = (entries: BufferEntry[]) => entries.flatMap((e) => e.records.map((r) => r.id));

describe('collect function', function () {
  let database: TestDatabase;
  let fn: RunningFunction;
  let buffer: UsageBuffer;
  let stream: string;

  before(async () => {
    database = await freshDatabase();
  });
  after(async () => {
    await database.drop();
  });

  beforeEach(async () => {
    stream = `faasbilling:test:${randomBytes(6).toString('hex')}`;
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
      BUFFER_STREAM: stream,
      COLLECT_MAX_BODY_BYTES: '65536',
      COLLECT_MAX_BATCH_EVENTS: '50',
      COLLECT_FLUSH_EVERY_EVENTS: '1000',
    };
    fn = await startFunction('collect', createCollect, env);
    buffer = redisUrl ? RedisStreamBuffer.connect(redisUrl, stream) : new PostgresQueueBuffer(database.db);
    await drainAll(buffer);
  });
  afterEach(async () => {
    await fn.close();
    if (buffer instanceof RedisStreamBuffer) await buffer.destroy();
    await buffer.close();
  });

  it('accepts a usage CloudEvent in binary mode and buffers it normalised', async () => {
    const event = usageEvent({ data: { duration_ms: 200.5, memory_mb: 512, cold_start: true, cpu_ms: 80 } });
    const res = await postBinary(fn.url, event);
    assert.equal(res.status, 202);
    assert.deepEqual(res.json, { accepted: 1, duplicates: 0, rejected: 0 });
    const [record] = (await drainAll(buffer)).flatMap((e) => e.records);
    assert.ok(record);
    assert.equal(record.id, event.id);
    assert.equal(record.source, event.source);
    assert.equal(record.duration_ms, 200.5);
    assert.equal(record.memory_mb, 512);
    assert.equal(record.cpu_ms, 80);
    assert.equal(record.cold_start, true);
    assert.equal(record.invocations, 1);
    assert.equal(record.revision, 'waiter-00001');
  });

  it('accepts a usage CloudEvent in structured mode', async () => {
    const event = usageCloudEvent();
    const res = await post(fn.url, { 'content-type': 'application/cloudevents+json' }, JSON.stringify(event));
    assert.equal(res.status, 202, JSON.stringify(res.json));
    assert.deepEqual(idsIn(await drainAll(buffer)), [event.id]);
  });

  it('accepts a cloudevents batch and keeps its order', async () => {
    const events = Array.from({ length: 20 }, () => usageCloudEvent());
    const res = await post(fn.url, { 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(events));
    assert.equal(res.status, 202, JSON.stringify(res.json));
    assert.deepEqual(res.json, { accepted: 20, duplicates: 0, rejected: 0 });
    assert.deepEqual(
      idsIn(await drainAll(buffer)),
      events.map((e) => e.id),
    );
  });

  it("accepts the seed's JSON event shape and normalises seconds to milliseconds", async () => {
    const seed = {
      timestamp: new Date().toISOString(),
      tenant_id: 'demo-tenant',
      service_name: 'waiter',
      revision: 'waiter-00001',
      invocations: 1,
      duration_seconds: 0.234,
      memory_mb: 64.5,
      cold_start: false,
      labels: { method: 'GET', status: '200' },
    };
    const res = await post(fn.url, { 'content-type': 'application/json' }, JSON.stringify(seed));
    assert.equal(res.status, 202, JSON.stringify(res.json));
    const [record] = (await drainAll(buffer)).flatMap((e) => e.records);
    assert.ok(record);
    assert.equal(record.service, 'waiter');
    assert.equal(record.tenant_id, 'demo-tenant');
    assert.equal(record.duration_ms, 234);
    assert.equal(record.memory_mb, 64.5);
    assert.deepEqual(record.labels, { method: 'GET', status: '200' });
  });

  it('buffers a duplicate event (same source and id) once, however often it is sent', async () => {
    const event = usageEvent();
    const answers = [];
    for (let i = 0; i < 10; i += 1) answers.push(await postBinary(fn.url, event));
    assert.ok(answers.every((a) => a.status === 202));
    assert.deepEqual(answers[9]?.json, { accepted: 0, duplicates: 1, rejected: 0 });
    const batch = Array.from({ length: 5 }, () => usageCloudEvent({ id: 'same', source: '/dup' }));
    const batchAnswer = await post(fn.url, { 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(batch));
    assert.deepEqual(batchAnswer.json, { accepted: 1, duplicates: 4, rejected: 0 });
    assert.deepEqual(idsIn(await drainAll(buffer)).sort(), [event.id, 'same'].sort());
  });

  it('keeps the valid events of a batch and reports each rejected one by index and reason', async () => {
    const good = [usageCloudEvent(), usageCloudEvent()];
    const batch = [
      good[0],
      usageCloudEvent({ data: { duration_ms: -5 } }),
      { ...usageCloudEvent(), data: { service: 'waiter', duration_ms: 1, memory_mb: 128 } },
      usageCloudEvent({ time: '2020-01-01T00:00:00Z' }),
      { specversion: '0.3', id: 'x', source: '/x', type: EventType.usage },
      good[1],
      usageCloudEvent({ data: { memory_mb: 1e9 } }),
      usageCloudEvent({ data: { duration_ms: Number.MAX_VALUE } }),
    ];
    const res = await post(fn.url, { 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(batch));
    const problem = assertProblem(res, 422);
    assert.equal(problem.accepted, 2);
    assert.deepEqual(
      problem.errors?.map((e) => [e.index, e.reason]),
      [
        [1, 'invalid_data'],
        [2, 'invalid_data'],
        [3, 'too_old'],
        [4, 'invalid_cloudevent'],
        [6, 'invalid_data'],
        [7, 'invalid_data'],
      ],
    );
    assert.match(problem.errors?.[1]?.detail ?? '', /tenant_id/);
    assert.deepEqual(
      idsIn(await drainAll(buffer)),
      good.map((e) => e?.id),
    );
  });

  it('rejects an event more than 35 days old unless the backfill extension is set', async () => {
    const old = new Date(Date.now() - 40 * 24 * 3600 * 1000).toISOString();
    const rejected = await postBinary(fn.url, usageEvent({ time: old }));
    assert.equal(assertProblem(rejected, 422).errors?.[0]?.reason, 'too_old');
    const backfill = new CloudEvent({ ...usageCloudEvent({ time: old }), backfill: 'true' });
    assert.equal((await postBinary(fn.url, backfill)).status, 202);
    const future = await postBinary(fn.url, usageEvent({ time: new Date(Date.now() + 3600_000).toISOString() }));
    assert.equal(assertProblem(future, 422).errors?.[0]?.reason, 'in_future');
  });

  it('answers an event that breaks the CloudEvents spec (no source) with 422, in structured and binary mode', async () => {
    const { source: _source, ...withoutSource } = usageCloudEvent();
    const structured = await post(fn.url, { 'content-type': 'application/cloudevents+json' }, JSON.stringify(withoutSource));
    assert.match(assertProblem(structured, 422).detail, /source/);
    const binary = await post(fn.url, { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'no-source', 'ce-type': EventType.usage }, JSON.stringify(withoutSource.data));
    assert.match(assertProblem(binary, 422).detail, /source/);
    assert.deepEqual(await drainAll(buffer), []);
    const ok = await postBinary(fn.url, usageEvent());
    assert.equal(ok.status, 202);
  });

  it('rejects an event of another type with 422', async () => {
    const res = await postBinary(fn.url, new CloudEvent({ type: 'com.example.other', source: '/x', data: {} }));
    assert.equal(assertProblem(res, 422).errors?.[0]?.reason, 'wrong_type');
  });

  it('answers malformed JSON, a wrong content type and an oversize body with problem+json, and keeps serving', async () => {
    assertProblem(await post(fn.url, { 'content-type': 'application/cloudevents+json' }, '{"specversion":'), 400);
    assertProblem(await post(fn.url, { 'content-type': 'application/cloudevents-batch+json' }, '[{]'), 400);
    assertProblem(await post(fn.url, { 'content-type': 'application/cloudevents-batch+json' }, '{"not":"an array"}'), 400);
    const binaryHeaders = { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': '/x', 'ce-type': EventType.usage };
    assertProblem(await post(fn.url, binaryHeaders, '{broken'), 400);
    assertProblem(await post(fn.url, { 'content-type': 'text/csv' }, 'a,b'), 415);
    assertProblem(await post(fn.url, { 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(Array.from({ length: 51 }, () => usageCloudEvent()))), 413);
    const huge = JSON.stringify(Array.from({ length: 400 }, () => usageCloudEvent()));
    assert.ok(huge.length > 65536);
    assertProblem(await post(fn.url, { 'content-type': 'application/cloudevents-batch+json' }, huge), 413);

    const metrics = await (await fetch(`${fn.url}/metrics`)).text();
    assert.match(metrics, /faasbilling_http_problems_total\{status="400",function="collect"\} 4/);
    assert.match(metrics, /faasbilling_http_problems_total\{status="413",function="collect"\} 2/);
    const after = usageEvent();
    assert.equal((await postBinary(fn.url, after)).status, 202);
    assert.deepEqual(idsIn(await drainAll(buffer)), [after.id]);
  });

  it('counts accepted and rejected events by reason on /metrics, beside the runtime metrics', async () => {
    await postBinary(fn.url, usageEvent());
    await postBinary(fn.url, usageEvent({ data: { memory_mb: 0 } }));
    const metrics = await (await fetch(`${fn.url}/metrics`)).text();
    assert.match(metrics, /faasbilling_events_accepted_total\{function="collect"\} 1/);
    assert.match(metrics, /faasbilling_events_rejected_total\{reason="invalid_data",function="collect"\} 1/);
    assert.match(metrics, /faas_invocations/);
    assert.match(metrics, /faasbilling_buffer_length\{function="collect"\} 1/);
  });

  it('replies with a faasbilling.buffer.flush.v1 event once it has buffered the flush threshold', async () => {
    await fn.close();
    fn = await startFunction('collect', createCollect, { DATABASE_URL: database.url, REDIS_URL: redisUrl, BUFFER_STREAM: stream, COLLECT_FLUSH_EVERY_EVENTS: '5' });
    const answers = [];
    for (let i = 0; i < 5; i += 1) answers.push(await postBinary(fn.url, usageEvent()));
    assert.deepEqual(
      answers.map((a) => a.headers.get('ce-type')),
      [null, null, null, null, EventType.bufferFlush],
    );
    assert.equal(answers[4]?.status, 202);
    assert.deepEqual(answers[4]?.json, { reason: 'threshold' });
  });

  it('reports ready while its buffer is reachable', async () => {
    const res = await fetch(`${fn.url}/health/readiness`);
    assert.equal(res.status, 200);
    assert.equal((await fetch(`${fn.url}/health/liveness`)).status, 200);
  });
});

describe('collect function with its buffer down', function () {
  let database: TestDatabase;
  let proxy: CuttableProxy;
  let fn: RunningFunction;

  before(async () => {
    database = await freshDatabase();
    const target = redisUrl ? new URL(redisUrl) : undefined;
    proxy = await CuttableProxy.start(target ? { host: target.hostname, port: Number(target.port || 6379) } : database.address);
    const viaProxy = (url: string) => {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(proxy.port);
      return u.toString();
    };
    fn = await startFunction('collect', createCollect, {
      DATABASE_URL: redisUrl ? database.url : viaProxy(database.url),
      REDIS_URL: redisUrl ? viaProxy(redisUrl) : undefined,
      BUFFER_STREAM: `faasbilling:test:${randomUUID()}`,
    });
  });
  after(async () => {
    await fn.close();
    await proxy.cut();
    await database.drop();
  });

  it('answers 503 problem+json (never 2xx) while the buffer is down, and 202 for the same event once it is back', async () => {
    const event = usageEvent();
    assert.equal((await postBinary(fn.url, usageEvent())).status, 202);
    await proxy.cut();
    const down = await postBinary(fn.url, event);
    const problem = assertProblem(down, 503);
    assert.match(problem.detail, /retry/);
    assert.equal((await fetch(`${fn.url}/health/readiness`)).status, 503);
    await proxy.restore();
    let back = await postBinary(fn.url, event);
    for (let i = 0; i < 50 && back.status === 503; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      back = await postBinary(fn.url, event);
    }
    assert.equal(back.status, 202);
    assert.deepEqual(back.json, { accepted: 1, duplicates: 0, rejected: 0 }, 'the retried event is not taken for a duplicate');
  });
});
