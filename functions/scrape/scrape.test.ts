/**
 * The queue-proxy scraper as its pod runs it (faas-js-runtime, binary PingSource CloudEvents),
 * reading fixture metrics over HTTP: queue-proxy text exposition in both naming schemes, pod and
 * Revision lists in the Kubernetes API shape, and Prometheus query API JSON. State in real Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CloudEvent, HTTP, type CloudEventV1 } from 'cloudevents';
import { Redis } from 'ioredis';
import { pingEventType } from '../../src/contract/routing.js';
import { normaliseUsageEvent, type UsageData } from '../../src/contract/usage.js';
import { knativeRevision, revisionPod, startFakeCluster, type FakeCluster } from '../../test/support/fake-cluster.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { startSink, type TestSink } from '../../test/support/sink.js';
import { metricValue } from '../../test/support/workload.js';
import type { ScrapeSummary } from '../../src/stages/scrape.js';
import { createScrape } from './index.js';

const redisUrl = process.env.REDIS_URL;

/** queue-proxy's current (OpenTelemetry) histogram for one pod: series per status code. */
function otelExposition(pod: string, revision: string, service: string, series: Record<string, { count: number; sumSeconds: number }>): string {
  const lines = ['# HELP kn_serving_invocation_duration_seconds The duration of the task execution', '# TYPE kn_serving_invocation_duration_seconds histogram'];
  for (const [status, { count, sumSeconds }] of Object.entries(series)) {
    const labels = `http_response_status_code="${status}",k8s_container_name="queue-proxy",k8s_namespace_name="shop",k8s_pod_name="${pod}",kn_configuration_name="${service}",kn_revision_name="${revision}",kn_service_name="${service}",otel_scope_name="knative.dev/serving/pkg/queue",otel_scope_version="",service_name="${service}"`;
    for (const le of ['0.005', '0.01', '0.05', '0.1', '0.5', '1', '+Inf']) lines.push(`kn_serving_invocation_duration_seconds_bucket{${labels},le="${le}"} ${count}`);
    lines.push(`kn_serving_invocation_duration_seconds_sum{${labels}} ${sumSeconds}`, `kn_serving_invocation_duration_seconds_count{${labels}} ${count}`);
  }
  lines.push('# HELP kn_serving_queue_depth Number of current items in the queue proxy queue', '# TYPE kn_serving_queue_depth gauge', `kn_serving_queue_depth{k8s_pod_name="${pod}"} 0`);
  return `${lines.join('\n')}\n`;
}

/** queue-proxy's older (OpenCensus) metrics for one pod: milliseconds, response_code labels. */
function openCensusExposition(pod: string, revision: string, service: string, series: Record<string, { count: number; sumMs: number }>): string {
  const lines = ['# HELP revision_app_request_count The number of requests that are routed to user-container', '# TYPE revision_app_request_count counter'];
  const labelsOf = (status: string) =>
    `configuration_name="${service}",container_name="queue-proxy",namespace_name="shop",pod_name="${pod}",response_code="${status}",response_code_class="${status[0]}xx",revision_name="${revision}",service_name="${service}"`;
  for (const [status, { count }] of Object.entries(series)) lines.push(`revision_app_request_count{${labelsOf(status)}} ${count}`);
  lines.push('# HELP revision_app_request_latencies The response time in millisecond', '# TYPE revision_app_request_latencies histogram');
  for (const [status, { count, sumMs }] of Object.entries(series)) {
    lines.push(`revision_app_request_latencies_bucket{${labelsOf(status)},le="5"} 0`, `revision_app_request_latencies_bucket{${labelsOf(status)},le="+Inf"} ${count}`);
    lines.push(`revision_app_request_latencies_sum{${labelsOf(status)}} ${sumMs}`, `revision_app_request_latencies_count{${labelsOf(status)}} ${count}`);
  }
  return `${lines.join('\n')}\n`;
}

function pingEvent(time: Date): { headers: Record<string, string>; body: string } {
  const event = new CloudEvent({ type: pingEventType, source: '/apis/v1/namespaces/faas-billing/pingsources/scrape-tick', id: randomUUID(), time: time.toISOString(), data: {} });
  const message = HTTP.binary(event);
  return { headers: Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)])), body: String(message.body) };
}

/** The usage reports of `events`, keyed "revision ok|error", without their volatile parts. */
function byRevision(events: CloudEventV1<unknown>[]) {
  return Object.fromEntries(
    events.map((e) => {
      const d = e.data as UsageData;
      return [`${d.revision} ${d.error ? 'error' : 'ok'}`, { tenant: d.tenant_id, service: d.service, invocations: d.invocations, duration_ms: d.duration_ms, memory_mb: d.memory_mb }];
    }),
  );
}

describe('queue-proxy scraper (functions/scrape)', function () {
  this.timeout(60_000);
  let cluster: FakeCluster;
  let sink: TestSink;
  let scrape: RunningFunction;
  // Whole minutes a little in the past, so the events are recent enough for collect.
  const minute = 60_000;
  const base = Math.floor(Date.now() / minute) * minute - 10 * minute;
  const tickAt = (n: number) => new Date(base + n * minute + 1500);

  const start = async (mode: 'pods' | 'prometheus', defaultTenant: string | null = 'demo') => {
    if (!redisUrl && process.env.CI) throw new Error('REDIS_URL is required in CI');
    const env: Record<string, string | undefined> = {
      REDIS_URL: redisUrl,
      SCRAPE_MODE: mode,
      SCRAPE_PROMETHEUS_URL: cluster.url,
      SCRAPE_POD_METRICS_URL: `${cluster.url}/pods/{namespace}/{name}/metrics`,
      KUBERNETES_API_URL: cluster.url,
      K_SINK: sink.url,
      SCRAPE_SINK_MODE: 'batch',
      SCRAPE_STATE_KEY: `test:scrape:${randomUUID()}`,
      ...(defaultTenant ? { SCRAPE_DEFAULT_TENANT: defaultTenant } : {}),
    };
    scrape = await startFunction('scrape', createScrape(env), env);
  };
  const tick = async (n: number): Promise<ScrapeSummary> => {
    const { headers, body } = pingEvent(tickAt(n));
    const res = await fetch(scrape.url, { method: 'POST', headers, body });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return JSON.parse(text) as ScrapeSummary;
  };

  beforeEach(async () => {
    cluster = await startFakeCluster();
    sink = await startSink();
    cluster.revisions = [
      knativeRevision({ namespace: 'shop', name: 'waiter-00001', service: 'waiter', tenant: 'acme', memory: '256Mi' }),
      knativeRevision({ namespace: 'shop', name: 'hello-00001', service: 'hello', memory: '128Mi' }),
    ];
  });
  afterEach(async () => {
    await scrape?.close();
    await sink.close();
    await cluster.close();
  });

  it('reads pods directly: deltas per revision, a counter reset, a new pod, a vanished pod, each interval once', async () => {
    const pod = (name: string, revision: string, service: string) => revisionPod({ namespace: 'shop', name, uid: randomUUID(), revision, service, ip: '10.1.0.1' });
    cluster.pods = [pod('waiter-a', 'waiter-00001', 'waiter'), pod('waiter-b', 'waiter-00001', 'waiter'), pod('hello-c', 'hello-00001', 'hello')];
    const metrics = cluster.podMetrics;
    metrics.set('shop/waiter-a', otelExposition('waiter-a', 'waiter-00001', 'waiter', { '200': { count: 10, sumSeconds: 0.5 }, '500': { count: 1, sumSeconds: 0.05 } }));
    metrics.set('shop/waiter-b', otelExposition('waiter-b', 'waiter-00001', 'waiter', { '200': { count: 5, sumSeconds: 0.25 } }));
    metrics.set('shop/hello-c', openCensusExposition('hello-c', 'hello-00001', 'hello', { '200': { count: 3, sumMs: 300 } }));
    await start('pods');

    const baseline = await tick(0);
    assert.deepEqual([baseline.events, sink.events.length], [0, 0], 'the first scrape is a baseline');

    // Next minute: a grows, b restarted (its counters begin again), c grows, d is a new pod.
    metrics.set('shop/waiter-a', otelExposition('waiter-a', 'waiter-00001', 'waiter', { '200': { count: 14, sumSeconds: 0.7 }, '500': { count: 2, sumSeconds: 0.09 } }));
    metrics.set('shop/waiter-b', otelExposition('waiter-b', 'waiter-00001', 'waiter', { '200': { count: 3, sumSeconds: 0.12 } }));
    metrics.set('shop/hello-c', openCensusExposition('hello-c', 'hello-00001', 'hello', { '200': { count: 5, sumMs: 500 } }));
    cluster.pods.push(pod('waiter-d', 'waiter-00001', 'waiter'));
    metrics.set('shop/waiter-d', otelExposition('waiter-d', 'waiter-00001', 'waiter', { '200': { count: 2, sumSeconds: 0.1 } }));
    const first = await tick(1);
    assert.equal(first.counter_resets, 1);
    assert.equal(first.invocations, 4 + 3 + 2 + 1 + 2);
    assert.deepEqual(byRevision(sink.events), {
      // a: +4 (200 ms), b after its reset: 3 (120 ms), d new: 2 (100 ms)
      'waiter-00001 ok': { tenant: 'acme', service: 'waiter', invocations: 9, duration_ms: 420, memory_mb: 256 },
      'waiter-00001 error': { tenant: 'acme', service: 'waiter', invocations: 1, duration_ms: 40, memory_mb: 256 },
      // The hello revision has no tenant label: the default tenant pays; its metrics are in milliseconds.
      'hello-00001 ok': { tenant: 'demo', service: 'hello', invocations: 2, duration_ms: 200, memory_mb: 128 },
    });
    const now = new Date();
    for (const event of sink.events) {
      assert.equal(event.time, new Date(base).toISOString());
      assert.ok(normaliseUsageEvent(event, now).ok);
    }
    const firstIds = sink.events.map((e) => e.id).sort();

    // The same tick again (a redelivery): the same events, under the same ids.
    const again = await tick(1);
    assert.equal(again.repeated, true);
    assert.equal(sink.events.length, 6);
    assert.deepEqual(sink.events.slice(3).map((e) => e.id).sort(), firstIds);

    // Next minute: b scaled away; e is listed but does not answer; a served one more request.
    cluster.pods = cluster.pods.filter((p) => p.metadata.name !== 'waiter-b');
    metrics.delete('shop/waiter-b');
    cluster.pods.push(pod('waiter-e', 'waiter-00001', 'waiter'));
    metrics.set('shop/waiter-a', otelExposition('waiter-a', 'waiter-00001', 'waiter', { '200': { count: 15, sumSeconds: 0.75 }, '500': { count: 2, sumSeconds: 0.09 } }));
    const third = await tick(2);
    assert.deepEqual([third.series_vanished, third.pods_failed, third.events], [1, 1, 1]);
    assert.deepEqual(byRevision(sink.events.slice(6)), { 'waiter-00001 ok': { tenant: 'acme', service: 'waiter', invocations: 1, duration_ms: 50, memory_mb: 256 } });
    assert.equal(sink.events[6]?.time, new Date(base + minute).toISOString());
    assert.equal(new Set(sink.events.map((e) => e.id)).size, 4);
    const registry = scrape.module.instance()!.metrics.registry;
    assert.equal(await metricValue(registry, 'faasbilling_scrape_series_vanished_total'), 1);
    assert.equal(await metricValue(registry, 'faasbilling_scrape_counter_resets_total'), 1);
  });

  it('without SCRAPE_DEFAULT_TENANT, meters only revisions labelled with a tenant and counts the others', async () => {
    const pod = (name: string, revision: string, service: string) => revisionPod({ namespace: 'shop', name, uid: randomUUID(), revision, service, ip: '10.1.0.1' });
    cluster.pods = [pod('waiter-a', 'waiter-00001', 'waiter'), pod('hello-c', 'hello-00001', 'hello')];
    const metrics = cluster.podMetrics;
    metrics.set('shop/waiter-a', otelExposition('waiter-a', 'waiter-00001', 'waiter', { '200': { count: 1, sumSeconds: 0.05 } }));
    metrics.set('shop/hello-c', openCensusExposition('hello-c', 'hello-00001', 'hello', { '200': { count: 1, sumMs: 100 } }));
    await start('pods', null);
    await tick(0);
    metrics.set('shop/waiter-a', otelExposition('waiter-a', 'waiter-00001', 'waiter', { '200': { count: 4, sumSeconds: 0.2 } }));
    metrics.set('shop/hello-c', openCensusExposition('hello-c', 'hello-00001', 'hello', { '200': { count: 6, sumMs: 600 } }));
    const summary = await tick(1);
    assert.equal(summary.unlabelled_revisions, 1);
    assert.deepEqual(byRevision(sink.events), { 'waiter-00001 ok': { tenant: 'acme', service: 'waiter', invocations: 3, duration_ms: 150, memory_mb: 256 } });
  });

  it('leaves revisions labelled faasbilling.dev/metered-by another source alone, even with a tenant and a default tenant', async () => {
    // echo reports its own usage through the metering middleware: the scraper must not count it again.
    cluster.revisions.push(knativeRevision({ namespace: 'shop', name: 'echo-00001', service: 'echo', tenant: 'acme', meteredBy: 'middleware', memory: '128Mi' }));
    cluster.revisions.push(knativeRevision({ namespace: 'shop', name: 'hello-00002', service: 'hello', tenant: 'acme', meteredBy: 'scrape', memory: '128Mi' }));
    // A label that names no source (a typo) must not stop billing: metered, and counted.
    cluster.revisions.push(knativeRevision({ namespace: 'shop', name: 'waiter-00002', service: 'waiter', tenant: 'acme', meteredBy: 'scraper', memory: '256Mi' }));
    const pod = (name: string, revision: string, service: string) => revisionPod({ namespace: 'shop', name, uid: randomUUID(), revision, service, ip: '10.1.0.1' });
    cluster.pods = [pod('echo-a', 'echo-00001', 'echo'), pod('hello-d', 'hello-00002', 'hello'), pod('waiter-e', 'waiter-00002', 'waiter')];
    const metrics = cluster.podMetrics;
    metrics.set('shop/echo-a', otelExposition('echo-a', 'echo-00001', 'echo', { '200': { count: 1, sumSeconds: 0.01 } }));
    metrics.set('shop/hello-d', otelExposition('hello-d', 'hello-00002', 'hello', { '200': { count: 1, sumSeconds: 0.01 } }));
    metrics.set('shop/waiter-e', otelExposition('waiter-e', 'waiter-00002', 'waiter', { '200': { count: 1, sumSeconds: 0.01 } }));
    await start('pods');
    await tick(0);
    metrics.set('shop/echo-a', otelExposition('echo-a', 'echo-00001', 'echo', { '200': { count: 9, sumSeconds: 0.09 } }));
    metrics.set('shop/hello-d', otelExposition('hello-d', 'hello-00002', 'hello', { '200': { count: 3, sumSeconds: 0.03 } }));
    metrics.set('shop/waiter-e', otelExposition('waiter-e', 'waiter-00002', 'waiter', { '200': { count: 5, sumSeconds: 0.05 } }));
    const summary = await tick(1);
    assert.equal(summary.metered_elsewhere_revisions, 1);
    assert.equal(summary.unknown_metering_label_revisions, 1);
    assert.equal(summary.unlabelled_revisions, 0);
    // Labelled for the scraper itself, or with a label naming no source: metered as usual.
    assert.deepEqual(byRevision(sink.events), {
      'hello-00002 ok': { tenant: 'acme', service: 'hello', invocations: 2, duration_ms: 20, memory_mb: 128 },
      'waiter-00002 ok': { tenant: 'acme', service: 'waiter', invocations: 4, duration_ms: 40, memory_mb: 256 },
    });
  });

  it('asks Prometheus for each revision’s increase over the interval, in both naming schemes', async () => {
    const times = new Set<string>();
    cluster.prometheus = (query, time) => {
      times.add(time);
      const vector = (result: { metric: Record<string, string>; value: string }[]) => ({
        status: 'success',
        data: { resultType: 'vector', result: result.map((r) => ({ metric: r.metric, value: [Number(time), r.value] })) },
      });
      const waiter = (status: string) => ({ k8s_namespace_name: 'shop', kn_revision_name: 'waiter-00001', kn_service_name: 'waiter', http_response_status_code: status });
      const hello = { namespace_name: 'shop', revision_name: 'hello-00001', service_name: 'hello', response_code: '200' };
      if (query.includes('kn_serving_invocation_duration_seconds_count[60s]')) return vector([{ metric: waiter('200'), value: '41.99' }, { metric: waiter('503'), value: '2' }]);
      if (query.includes('kn_serving_invocation_duration_seconds_sum[60s]')) return vector([{ metric: waiter('200'), value: '2.1' }, { metric: waiter('503'), value: '0.2' }]);
      if (query.includes('revision_app_request_count[60s]')) return vector([{ metric: hello, value: '7.0000001' }]);
      if (query.includes('revision_app_request_latencies_sum[60s]')) return vector([{ metric: hello, value: '350' }]);
      return { status: 'error', errorType: 'bad_data', error: `unexpected query ${query}` };
    };
    await start('prometheus');
    const summary = await tick(3);
    assert.equal(summary.events, 3);
    // Evaluated at the end of the interval the tick closes.
    assert.deepEqual([...times], [String((base + 3 * minute) / 1000)]);
    assert.deepEqual(byRevision(sink.events), {
      'waiter-00001 ok': { tenant: 'acme', service: 'waiter', invocations: 42, duration_ms: 2100, memory_mb: 256 },
      'waiter-00001 error': { tenant: 'acme', service: 'waiter', invocations: 2, duration_ms: 200, memory_mb: 256 },
      'hello-00001 ok': { tenant: 'demo', service: 'hello', invocations: 7, duration_ms: 350, memory_mb: 128 },
    });
    await tick(3);
    assert.deepEqual(sink.events.slice(3).map((e) => e.id).sort(), sink.events.slice(0, 3).map((e) => e.id).sort());
  });

  it('answers a 500 naming the sink when the sink refuses the events, so the tick is retried', async () => {
    await start('prometheus');
    sink.mode = 'fail';
    cluster.prometheus = (_query, time) => ({
      status: 'success',
      data: { resultType: 'vector', result: [{ metric: { k8s_namespace_name: 'shop', kn_revision_name: 'waiter-00001', http_response_status_code: '200' }, value: [Number(time), '1'] }] },
    });
    const { headers, body } = pingEvent(tickAt(4));
    const res = await fetch(scrape.url, { method: 'POST', headers, body });
    assert.equal(res.status, 500);
    assert.match(await res.text(), /answered 503/);
  });
});

after(async () => {
  if (!redisUrl) return;
  const redis = new Redis(redisUrl);
  const keys = await redis.keys('test:scrape:*');
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});
