/**
 * The billing agent on a fixture cgroup v2 tree (both kubelet drivers' layouts, written to a temp
 * directory), a pod list served over HTTP in the Kubernetes API shape, and queue-proxy metrics
 * per pod; its reports go to a real HTTP sink.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import { Registry } from 'prom-client';
import { connectKubernetes } from '../adapters/kubernetes.js';
import { normaliseUsageEvent, type UsageData } from '../contract/usage.js';
import { revisionPod, startFakeCluster, type FakeCluster } from '../../test/support/fake-cluster.js';
import { startSink, type TestSink } from '../../test/support/sink.js';
import { metricValue } from '../../test/support/workload.js';
import { BillingAgent } from './agent.js';
import { agentConfigSchema } from './config.js';

const mib = 1024 * 1024;

/** queue-proxy's request histogram (current naming) with `ok` 200s and `failed` 503s. */
function exposition(pod: string, revision: string, ok: number, failed = 0): string {
  const series = (status: string, count: number) => {
    const labels = `http_response_status_code="${status}",k8s_namespace_name="shop",k8s_pod_name="${pod}",kn_revision_name="${revision}"`;
    return [`kn_serving_invocation_duration_seconds_sum{${labels}} ${count * 0.05}`, `kn_serving_invocation_duration_seconds_count{${labels}} ${count}`];
  };
  return ['# TYPE kn_serving_invocation_duration_seconds histogram', ...series('200', ok), ...(failed ? series('503', failed) : [])].join('\n') + '\n';
}

async function writeCgroup(dir: string, stats: { currentBytes: number; peakBytes: number; usageUsec: number }): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'memory.current'), `${stats.currentBytes}\n`);
  await writeFile(path.join(dir, 'memory.peak'), `${stats.peakBytes}\n`);
  await writeFile(path.join(dir, 'cpu.stat'), `usage_usec ${stats.usageUsec}\nuser_usec ${Math.floor(stats.usageUsec * 0.8)}\nsystem_usec ${Math.floor(stats.usageUsec * 0.2)}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n`);
}

describe('billing agent', function () {
  this.timeout(30_000);
  let root: string;
  let cluster: FakeCluster;
  let sink: TestSink;
  let agent: BillingAgent;
  let registry: Registry;
  /** The agent's environment; each test's agent takes it with AGENT_DEFAULT_TENANT=demo. */
  let env: Record<string, string>;
  const agentStart = new Date(Date.now() - 10 * 60_000);
  const at = (minutes: number) => new Date(agentStart.getTime() + minutes * 60_000);
  // Pod uids and container ids, and where each driver puts their cgroups.
  const oldUid = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
  const newUid = '6fa459ea-ee8a-3ca4-894e-db77e160355e';
  const helloUid = '886313e1-3b8a-5372-9b90-0c9aee199e5d';
  const systemdDir = (qos: string, uid: string, container: string) =>
    path.join(root, 'kubepods.slice', `kubepods-${qos}.slice`, `kubepods-${qos}-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${container}.scope`);
  const cgroupfsDir = (qos: string, uid: string, container: string) => path.join(root, 'kubepods', qos, `pod${uid}`, container);

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'cgroup-'));
    cluster = await startFakeCluster();
    sink = await startSink();
    const pod = (name: string, uid: string, revision: string, service: string, extra: Partial<Parameters<typeof revisionPod>[0]>) =>
      revisionPod({ namespace: 'shop', name, uid, revision, service, containerId: `${name}0123456789abcdef`, ...extra });
    cluster.pods = [
      // Running since before the agent started: a baseline, never a cold start.
      pod('waiter-old', oldUid, 'waiter-00001', 'waiter', { tenant: 'acme', startTime: new Date(agentStart.getTime() - 3_600_000).toISOString(), memory: '256Mi' }),
      // Started while the agent watched, no request yet at the first sample.
      pod('waiter-new', newUid, 'waiter-00001', 'waiter', { tenant: 'acme', startTime: new Date(agentStart.getTime() + 30_000).toISOString() }),
      // Started while watched and already serving at the first sample; no tenant label.
      pod('hello-new', helloUid, 'hello-00001', 'hello', { startTime: new Date(agentStart.getTime() + 20_000).toISOString() }),
      // Another node's pod: not this agent's.
      pod('waiter-elsewhere', '00000000-0000-0000-0000-000000000001', 'waiter-00001', 'waiter', { node: 'node-2' }),
    ];
    cluster.podMetrics.set('shop/waiter-old', exposition('waiter-old', 'waiter-00001', 10));
    cluster.podMetrics.set('shop/waiter-new', exposition('waiter-new', 'waiter-00001', 0));
    cluster.podMetrics.set('shop/hello-new', exposition('hello-new', 'hello-00001', 4));
    cluster.podMetrics.set('shop/waiter-elsewhere', exposition('waiter-elsewhere', 'waiter-00001', 99));
    await writeCgroup(systemdDir('burstable', oldUid, 'waiter-old0123456789abcdef'), { currentBytes: 80 * mib, peakBytes: 120 * mib, usageUsec: 5_000_000 });
    await writeCgroup(systemdDir('burstable', newUid, 'waiter-new0123456789abcdef'), { currentBytes: 40 * mib, peakBytes: 41 * mib, usageUsec: 100_000 });
    await writeCgroup(cgroupfsDir('besteffort', helloUid, 'hello-new0123456789abcdef'), { currentBytes: 30 * mib, peakBytes: 35 * mib, usageUsec: 250_000 });
    registry = new Registry();
    env = {
      AGENT_NODE_NAME: 'node-1',
      AGENT_CGROUP_ROOT: root,
      AGENT_POD_METRICS_URL: `${cluster.url}/pods/{namespace}/{name}/metrics`,
      KUBERNETES_API_URL: cluster.url,
      K_SINK: sink.url,
      AGENT_SINK_MODE: 'batch',
    };
    agent = startAgent({ ...env, AGENT_DEFAULT_TENANT: 'demo' });
  });

  const startAgent = (environment: Record<string, string>): BillingAgent => {
    const config = agentConfigSchema.parse(environment);
    return new BillingAgent({ config, cluster: connectKubernetes(config.KUBERNETES_API_URL), registry, startedAt: agentStart });
  };

  afterEach(async () => {
    await agent.close();
    await sink.close();
    await cluster.close();
    await rm(root, { recursive: true, force: true });
  });

  const reports = (events: CloudEventV1<unknown>[]) =>
    Object.fromEntries(
      events.map((e) => {
        const d = e.data as UsageData;
        return [`${d.labels.pod} ${d.error ? 'error' : 'ok'}`, { tenant: d.tenant_id, service: d.service, revision: d.revision, invocations: d.invocations, duration_ms: d.duration_ms, memory_mb: d.memory_mb, cpu_ms: d.cpu_ms, cold_start: d.cold_start }];
      }),
    );

  it('reports requests, observed memory and CPU per pod from cgroups, and cold starts of pods started while watched', async () => {
    const first = await agent.sample(at(1));
    assert.deepEqual([first.pods, first.withoutCgroup, first.withoutMetrics], [3, 0, 0], 'the other node’s pod is not listed');
    await agent.emitter.flush();
    assert.deepEqual(reports(sink.events), {
      // New pod (cgroupfs layout): everything it did counts; its first requests are a cold start.
      'hello-new ok': { tenant: 'demo', service: 'hello', revision: 'hello-00001', invocations: 4, duration_ms: 200, memory_mb: 30, cpu_ms: 250, cold_start: true },
    });
    const hello = sink.events[0]!.data as UsageData;
    // Started 20 s after the agent, first seen serving at the one-minute sample.
    assert.equal(hello.labels.cold_start_ms, '40000');
    assert.equal(hello.labels.memory_peak_mb, '35');

    // Next sample: the old pod served 5 more (and 1 error) using 0.3 s of CPU; the new pod served its first 3.
    cluster.podMetrics.set('shop/waiter-old', exposition('waiter-old', 'waiter-00001', 15, 1));
    cluster.podMetrics.set('shop/waiter-new', exposition('waiter-new', 'waiter-00001', 3));
    await writeCgroup(systemdDir('burstable', oldUid, 'waiter-old0123456789abcdef'), { currentBytes: 100 * mib, peakBytes: 120 * mib, usageUsec: 5_300_000 });
    await writeCgroup(systemdDir('burstable', newUid, 'waiter-new0123456789abcdef'), { currentBytes: 64 * mib, peakBytes: 64 * mib, usageUsec: 160_000 });
    await agent.sample(at(2));
    await agent.emitter.flush();
    const second = sink.events.slice(1);
    assert.deepEqual(reports(second), {
      // CPU is shared between the outcomes by request count: 300 ms over 5 ok and 1 error.
      'waiter-old ok': { tenant: 'acme', service: 'waiter', revision: 'waiter-00001', invocations: 5, duration_ms: 250, memory_mb: 100, cpu_ms: 250, cold_start: false },
      'waiter-old error': { tenant: 'acme', service: 'waiter', revision: 'waiter-00001', invocations: 1, duration_ms: 50, memory_mb: 100, cpu_ms: 50, cold_start: false },
      // Its start-up CPU (0.1 s) fell in an interval where it served nothing: only the 60 ms since count.
      'waiter-new ok': { tenant: 'acme', service: 'waiter', revision: 'waiter-00001', invocations: 3, duration_ms: 150, memory_mb: 64, cpu_ms: 60, cold_start: true },
    });
    const now = new Date();
    for (const event of sink.events) assert.ok(normaliseUsageEvent(event, now).ok, JSON.stringify(event.data));
    // Reports cover the interval since the previous sample.
    assert.ok(second.every((e) => e.time === at(1).toISOString()));
    assert.equal(await metricValue(registry, 'faasbilling_agent_cold_starts_total'), 2);
    assert.equal(await metricValue(registry, 'faasbilling_agent_pod_memory_bytes', { pod: 'waiter-new' }), 64 * mib);

    // Nothing new served: nothing reported, and no second cold start for a pod.
    await agent.sample(at(3));
    await agent.emitter.flush();
    assert.equal(sink.events.length, 4);
  });

  it('without AGENT_DEFAULT_TENANT, a pod without the tenant label is not metered, and the labelled pod beside it is', async () => {
    await agent.close();
    registry = new Registry();
    agent = startAgent(env);
    // hello-new (no faasbilling.dev/tenant label) served 4 requests: nobody to bill.
    const first = await agent.sample(at(1));
    assert.deepEqual([first.pods, first.reports.length], [3, 0]);
    // Then it serves 5 more, and the labelled waiter-old 5 beyond its baseline of 10.
    cluster.podMetrics.set('shop/hello-new', exposition('hello-new', 'hello-00001', 9));
    cluster.podMetrics.set('shop/waiter-old', exposition('waiter-old', 'waiter-00001', 15));
    await agent.sample(at(2));
    await agent.emitter.flush();
    assert.deepEqual(Object.keys(reports(sink.events)), ['waiter-old ok']);
    assert.deepEqual(reports(sink.events)['waiter-old ok'], { tenant: 'acme', service: 'waiter', revision: 'waiter-00001', invocations: 5, duration_ms: 250, memory_mb: 80, cpu_ms: 0, cold_start: false });
  });

  it('leaves a pod labelled faasbilling.dev/metered-by another source alone, and meters one whose label names no source', async () => {
    await agent.close();
    registry = new Registry();
    // waiter-old reports through its own middleware: the agent must not count it again.
    // hello-new's label names no source (a typo): it must still be metered, and counted.
    const label = (p: (typeof cluster.pods)[number], value: string) => ({ ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, 'faasbilling.dev/metered-by': value } } });
    cluster.pods = cluster.pods.map((p) => (p.metadata.name === 'waiter-old' ? label(p, 'middleware') : p.metadata.name === 'hello-new' ? label(p, 'Agent') : p));
    agent = startAgent({ ...env, AGENT_DEFAULT_TENANT: 'demo' });
    await agent.sample(at(1));
    cluster.podMetrics.set('shop/waiter-old', exposition('waiter-old', 'waiter-00001', 15));
    cluster.podMetrics.set('shop/hello-new', exposition('hello-new', 'hello-00001', 9));
    await agent.sample(at(2));
    await agent.emitter.flush();
    const reported = Object.keys(reports(sink.events));
    assert.ok(!reported.some((k) => k.startsWith('waiter-old')), reported.join(', '));
    // hello-new beside it, labelled with no source's name, is still metered (AGENT_DEFAULT_TENANT is set here), and counted.
    assert.ok(reported.some((k) => k.startsWith('hello-new')), reported.join(', '));
    assert.equal(await metricValue(registry, 'faasbilling_agent_unknown_metering_label_total'), 2);
  });

  it('counts pods whose cgroup or metrics it cannot read, and reports the rest', async () => {
    await rm(path.join(root, 'kubepods'), { recursive: true });
    cluster.podMetrics.delete('shop/waiter-new');
    const sample = await agent.sample(at(1));
    assert.deepEqual([sample.withoutCgroup, sample.withoutMetrics], [1, 1]);
    // hello-new has no cgroup here: its memory is its limit's or a default, and no CPU is claimed.
    assert.equal(sample.reports.length, 1);
    assert.equal(sample.reports[0]!.data.cpu_ms, undefined);
    assert.equal(sample.reports[0]!.data.labels.memory_source, 'allocated');
  });
});
