/**
 * The metering middleware against a real HTTP sink: hello (faas-js-runtime) and waiter (express)
 * served for real, their reports checked against the usage contract.
 */
import assert from 'node:assert/strict';
import type { Context } from 'faas-js-runtime';
import type { CloudEventV1 } from 'cloudevents';
import { EventType } from '../contract/events.js';
import { normaliseUsageEvent, type UsageData } from '../contract/usage.js';
import { eventually } from '../../test/support/eventually.js';
import { freePort } from '../../test/support/net.js';
import { startSink, type TestSink } from '../../test/support/sink.js';
import { metricValue, serveWorkload, spawnWorkload } from '../../test/support/workload.js';
import { loadMeteringConfig } from './config.js';
import { Meter } from './meter.js';

const dataOf = (event: CloudEventV1<unknown>): UsageData => event.data as UsageData;

describe('metering middleware', function () {
  this.timeout(60_000);
  let sink: TestSink;
  beforeEach(async () => (sink = await startSink()));
  afterEach(() => sink.close());

  it('reports every request of a faas-js-runtime function once, and only the first as a cold start', async () => {
    const hello = await serveWorkload('hello', {
      K_SINK: sink.url,
      K_REVISION: 'hello-00007',
      METERING_TENANT: 'acme',
      METERING_LABELS: 'architecture=arm64',
      METERING_SINK_MODE: 'batch',
      METERING_BATCH_SIZE: '7',
    });
    try {
      const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => fetch(`${hello.url}/?name=n${i}`).then((r) => r.json() as Promise<{ message: string }>)));
      assert.deepEqual(answers.map((a) => a.message).sort(), Array.from({ length: 25 }, (_, i) => `Hello, n${i}!`).sort());
    } finally {
      await hello.close();
    }
    assert.equal(sink.events.length, 25);
    assert.equal(new Set(sink.events.map((e) => e.id)).size, 25);
    // Full batches of 7 leave as they fill, the rest on close (a timer tick may add one partial batch).
    assert.ok(sink.requests >= 4 && sink.requests <= 5, `${sink.requests} requests`);
    const now = new Date();
    for (const event of sink.events) {
      assert.equal(event.type, EventType.usage);
      assert.equal(event.source, '/faasbilling/meter/hello');
      const normalised = normaliseUsageEvent(event, now);
      assert.ok(normalised.ok, JSON.stringify(normalised));
      const data = dataOf(event);
      assert.deepEqual([data.tenant_id, data.service, data.revision, data.invocations, data.error], ['acme', 'hello', 'hello-00007', 1, false]);
      assert.equal(data.labels.architecture, 'arm64');
      assert.ok(data.duration_ms > 0 && data.memory_mb > 0 && (data.cpu_ms ?? -1) >= 0, JSON.stringify(data));
    }
    const cold = sink.events.filter((e) => dataOf(e).cold_start);
    assert.equal(cold.length, 1);
    const sinceStartMs = Number(dataOf(cold[0]!).labels.cold_start_ms);
    assert.ok(sinceStartMs > 0 && sinceStartMs <= process.uptime() * 1000, `cold_start_ms ${sinceStartMs}`);
    assert.ok(sink.events.filter((e) => !dataOf(e).cold_start).every((e) => dataOf(e).labels.cold_start_ms === undefined));
  });

  it('reports express requests (waiter) one binary event each, with the duration the request really took', async () => {
    const waiter = await serveWorkload('waiter', { K_SINK: sink.url, K_REVISION: 'waiter-00001', METERING_TENANT: 'acme' });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${waiter.url}/invoke?sleep_ms=30`)).status, 200);
      assert.equal((await fetch(`${waiter.url}/healthz`)).status, 200, 'probes are not metered');
      await waiter.meter.emitter.flush();
      assert.equal(sink.requests, 5, 'single mode: one request per event');
    } finally {
      await waiter.close();
    }
    assert.equal(sink.events.length, 5);
    for (const event of sink.events) {
      const data = dataOf(event);
      assert.equal(data.service, 'waiter');
      // It slept 30 ms, so the measured wall time is not shorter, less the 1 ms by which a timer can
      // fire early: libuv times timers on its cached millisecond loop clock, the meter on hrtime
      // (measured once: 29.779).
      assert.ok(data.duration_ms >= 29, `duration_ms ${data.duration_ms}`);
    }
    assert.equal(sink.events.filter((e) => dataOf(e).cold_start).length, 1);
  });

  it('echo answers what it was sent, and each call is reported under its service', async () => {
    const echo = await serveWorkload('echo', { K_SINK: sink.url, METERING_SINK_MODE: 'batch' });
    try {
      const res = await fetch(`${echo.url}/?x=1`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-test': 'yes' }, body: JSON.stringify({ hello: 'there' }) });
      const answer = (await res.json()) as { method: string; query: Record<string, string>; headers: Record<string, string>; body: unknown };
      assert.deepEqual([answer.method, answer.query, answer.headers['x-test'], answer.body], ['POST', { x: '1' }, 'yes', { hello: 'there' }]);
    } finally {
      await echo.close();
    }
    assert.deepEqual(sink.events.map((e) => [dataOf(e).service, dataOf(e).revision, dataOf(e).cold_start]), [['echo', undefined, true]]);
  });

  it('marks a thrown error and a 5xx answer as errors, and other answers not', async () => {
    const meter = new Meter({ config: loadMeteringConfig({ K_SINK: sink.url, K_SERVICE: 'svc' }) });
    const context = { method: 'GET', headers: {} } as unknown as Context;
    try {
      await meter.wrap(() => ({ statusCode: 200 }))(context);
      await meter.wrap(() => ({ statusCode: 404 }))(context);
      await meter.wrap(() => ({ statusCode: 503 }))(context);
      await assert.rejects(meter.wrap(() => Promise.reject(new Error('boom')))(context), /boom/);
    } finally {
      await meter.close();
    }
    assert.deepEqual(sink.events.map((e) => dataOf(e).error), [false, false, true, true]);
    assert.equal(await metricValue(meter.registry, 'faasbilling_meter_invocations_total', { outcome: 'error' }), 2);
  });

  it('keeps answering while the broker hangs: the queue stays bounded and drops are counted', async () => {
    sink.mode = 'hang';
    const hello = await serveWorkload('hello', {
      K_SINK: sink.url,
      METERING_SINK_MODE: 'batch',
      METERING_MAX_QUEUE: '10',
      METERING_BATCH_SIZE: '5',
      METERING_TIMEOUT_MS: '60000',
    });
    try {
      // Were a request waiting for the sink, the first one would never be answered.
      for (let i = 0; i < 40; i++) assert.equal((await fetch(`${hello.url}/`)).status, 200);
      const registry = hello.meter.registry;
      const dropped = await metricValue(registry, 'faasbilling_meter_events_total', { outcome: 'dropped' });
      const queued = hello.meter.emitter.queued;
      assert.ok(queued <= 10, `queued ${queued}`);
      assert.equal(await metricValue(registry, 'faasbilling_meter_events_total', { outcome: 'sent' }), 0);
      // At most one batch of 5 is out with the hanging sink; everything else was dropped or is queued.
      assert.ok(dropped >= 40 - 10 - 5 && dropped + queued <= 40, `dropped ${dropped}, queued ${queued}`);
      assert.ok(sink.requests >= 1);
      assert.equal(sink.events.length, 0);
      // The drops are on the function's /metrics, beside the runtime's own.
      const exposed = await (await fetch(`${hello.url}/metrics`)).text();
      assert.match(exposed, /^faas_invocations\{/m);
      assert.match(exposed, new RegExp(`faasbilling_meter_events_total\\{outcome="dropped"\\} ${dropped}\\b`));
    } finally {
      await sink.close();
      await hello.meter.close(500);
      hello.server.closeAllConnections();
      await new Promise<void>((resolve) => hello.server.close(() => resolve()));
    }
  });

  it('holds reports while the broker is down and delivers them once it is back', async () => {
    const port = await freePort();
    const hello = await serveWorkload('hello', { K_SINK: `http://127.0.0.1:${port}/`, METERING_SINK_MODE: 'batch', METERING_FLUSH_INTERVAL_MS: '50' });
    let back: TestSink | undefined;
    try {
      for (let i = 0; i < 8; i++) assert.equal((await fetch(`${hello.url}/`)).status, 200);
      const registry = hello.meter.registry;
      await eventually(async () => (await metricValue(registry, 'faasbilling_meter_send_failures_total')) > 0, 10_000, 'a failed send');
      assert.equal(hello.meter.emitter.queued, 8);
      back = await startSink(port);
      await eventually(() => Promise.resolve(back!.events.length === 8), 10_000, 'the queued reports');
      assert.equal(await metricValue(registry, 'faasbilling_meter_events_total', { outcome: 'sent' }), 8);
      assert.equal(await metricValue(registry, 'faasbilling_meter_events_total', { outcome: 'dropped' }), 0);
    } finally {
      await hello.close();
      await back?.close();
    }
  });

  for (const name of ['hello', 'waiter']) {
    it(`sends what it holds when ${name}'s process gets SIGTERM`, async () => {
      // The timer and the batch size would not send before an hour or a thousand reports.
      const running = await spawnWorkload(name, { K_SINK: sink.url, METERING_SINK_MODE: 'batch', METERING_FLUSH_INTERVAL_MS: '3600000', METERING_BATCH_SIZE: '1000' });
      const path = name === 'waiter' ? '/invoke' : '/';
      for (let i = 0; i < 6; i++) assert.equal((await fetch(`${running.url}${path}`)).status, 200);
      assert.equal(sink.events.length, 0, 'nothing is sent before the timer or a full batch');
      const exited = new Promise<number | null>((resolve) => running.child.once('exit', (code) => resolve(code)));
      running.child.kill('SIGTERM');
      assert.equal(await exited, 0, running.output());
      assert.equal(sink.events.length, 6);
      assert.equal(sink.events.filter((e) => dataOf(e).cold_start).length, 1);
    });
  }
});
