/**
 * The billing agent: on each node, every interval, it reads the cgroup v2 stats of each Knative
 * revision pod (memory.current, memory.peak, cpu.stat usage_usec) and its queue-proxy request
 * counters, maps the pod to tenant/service/revision by its labels (Kubernetes API), and reports
 * the interval's usage per pod: requests and their duration, observed memory and the CPU time
 * the container used. A pod that starts while the agent watches and then serves its first request
 * is a cold start; the report carries the time from pod start to the sample that saw that request.
 * Pods that served nothing in an interval are not reported (idle time is not billed).
 */
import { createHash } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { meteredBy, type KnativeCluster, type RevisionPod } from '../adapters/kubernetes.js';
import { usageLimits, type UsageData } from '../contract/usage.js';
import { findPodCgroup, readCgroupStats, type CgroupStats } from '../metering/cgroup.js';
import { UsageEmitter } from '../metering/emitter.js';
import { readPodCounters } from '../adapters/pod-metrics.js';
import type { RequestCounter } from '../metering/exposition.js';
import { counterDeltas } from '../metering/revision-usage.js';
import type { PendingUsage } from '../metering/sink.js';
import type { AgentConfig } from './config.js';

/** The event source of the agent's usage events. */
export const agentSource = (node: string): string => `/faasbilling/agent/${node}`;

const bytesPerMb = 1024 * 1024;
/** Memory reported for a pod whose cgroup is not readable and which has no limit: the smallest usual step. */
const fallbackMemoryMb = 128;

interface TrackedPod {
  counters: RequestCounter[];
  cpuUsageUsec: number | undefined;
  /** The pod started while the agent watched: its counters and CPU began at zero then. */
  startedWhileWatched: boolean;
  coldStartReported: boolean;
}

/** What one sample saw. */
export interface AgentSample {
  at: string;
  pods: number;
  reports: PendingUsage[];
  /** Pods whose cgroup was not found on this node. */
  withoutCgroup: number;
  /** Pods whose metrics endpoint did not answer. */
  withoutMetrics: number;
}

/** Samples the revision pods of one node. */
export class BillingAgent {
  readonly emitter: UsageEmitter;
  private readonly tracked = new Map<string, TrackedPod>();
  private readonly metrics;
  private lastSampleAt: Date | undefined;

  constructor(
    private readonly deps: { config: AgentConfig; cluster: KnativeCluster; registry: Registry; startedAt: Date },
  ) {
    const { config, registry } = deps;
    this.emitter = new UsageEmitter({
      sink: config.K_SINK,
      source: agentSource(config.AGENT_NODE_NAME),
      mode: config.AGENT_SINK_MODE,
      maxQueue: config.AGENT_MAX_QUEUE,
      batchSize: 100,
      flushIntervalMs: 1000,
      timeoutMs: config.AGENT_TIMEOUT_MS,
      registry,
    });
    const registers = [registry];
    this.metrics = {
      pods: new Gauge({ name: 'faasbilling_agent_pods', help: 'Knative revision pods on this node at the last sample', registers }),
      memory: new Gauge({ name: 'faasbilling_agent_pod_memory_bytes', help: 'memory.current of each revision pod container', labelNames: ['namespace', 'pod'] as const, registers }),
      coldStarts: new Counter({ name: 'faasbilling_agent_cold_starts_total', help: 'Cold starts detected (a pod started while watched served its first request)', registers }),
      samples: new Counter({ name: 'faasbilling_agent_samples_total', help: 'Samples taken', registers }),
      unknownMeteringLabel: new Counter({
        name: 'faasbilling_agent_unknown_metering_label_total',
        help: 'Reports of pods metered although their faasbilling.dev/metered-by label names no source (a typo?)',
        registers,
      }),
    };
  }

  /** Takes one sample at `at` and queues its reports on the emitter; returns what it saw. */
  async sample(at: Date): Promise<AgentSample> {
    const { config, cluster } = this.deps;
    const pods = await cluster.listRevisionPods({ nodeName: config.AGENT_NODE_NAME });
    const since = this.lastSampleAt ?? new Date(at.getTime() - config.AGENT_INTERVAL_SECONDS * 1000);
    const result: AgentSample = { at: at.toISOString(), pods: pods.length, reports: [], withoutCgroup: 0, withoutMetrics: 0 };
    this.metrics.memory.reset();
    await Promise.all(pods.map((pod) => this.samplePod(pod, at, since, result)));
    // Pods that are gone are forgotten; a pod with the same name later is a new pod (new uid).
    const present = new Set(pods.map((p) => p.uid));
    for (const uid of this.tracked.keys()) if (!present.has(uid)) this.tracked.delete(uid);
    for (const report of result.reports) this.emitter.enqueue(report);
    this.metrics.pods.set(pods.length);
    this.metrics.samples.inc();
    this.lastSampleAt = at;
    return result;
  }

  private async samplePod(pod: RevisionPod, at: Date, since: Date, result: AgentSample): Promise<void> {
    const { config } = this.deps;
    const cgroupDir = await findPodCgroup(config.AGENT_CGROUP_ROOT, pod.uid, pod.userContainerId);
    const stats: CgroupStats = cgroupDir ? await readCgroupStats(cgroupDir) : {};
    if (!cgroupDir) result.withoutCgroup++;
    if (stats.memoryCurrentBytes !== undefined) this.metrics.memory.set({ namespace: pod.namespace, pod: pod.name }, stats.memoryCurrentBytes);
    let counters: RequestCounter[] | undefined;
    try {
      counters = await readPodCounters(config.AGENT_POD_METRICS_URL, pod, config.AGENT_TIMEOUT_MS);
    } catch {
      counters = undefined;
    }
    if (!counters) {
      result.withoutMetrics++;
      return;
    }
    let tracked = this.tracked.get(pod.uid);
    if (!tracked) {
      const startedWhileWatched = pod.startTime !== undefined && pod.startTime >= this.deps.startedAt;
      // A pod that was already running when the agent began is a baseline: what it did before is not ours to count.
      tracked = { counters: startedWhileWatched ? [] : counters, cpuUsageUsec: startedWhileWatched ? 0 : stats.cpuUsageUsec, startedWhileWatched, coldStartReported: !startedWhileWatched };
      this.tracked.set(pod.uid, tracked);
    }
    const { deltas } = counterDeltas(tracked.counters, counters);
    const cpuMs = stats.cpuUsageUsec !== undefined && tracked.cpuUsageUsec !== undefined && stats.cpuUsageUsec >= tracked.cpuUsageUsec ? (stats.cpuUsageUsec - tracked.cpuUsageUsec) / 1000 : undefined;
    tracked.counters = counters;
    tracked.cpuUsageUsec = stats.cpuUsageUsec;
    const served = deltas.reduce((n, d) => n + d.count, 0);
    if (served < 1) return;
    // Nobody to bill (no tenant label, no AGENT_DEFAULT_TENANT), or labelled for another source
    // (faasbilling.dev/metered-by): not metered here. Counters still advance.
    const metered = meteredBy(pod, 'agent');
    if ((pod.tenant ?? this.deps.config.AGENT_DEFAULT_TENANT) === undefined || metered === 'no') return;
    if (metered === 'unknown-label') this.metrics.unknownMeteringLabel.inc();
    const coldStart = !tracked.coldStartReported;
    tracked.coldStartReported = true;
    if (coldStart) this.metrics.coldStarts.inc();
    result.reports.push(...this.reportsOf(pod, deltas, { since, at, cpuMs, stats, coldStart }));
  }

  /** One report per outcome (ok, 5xx); CPU time is shared between them by request count. */
  private reportsOf(pod: RevisionPod, deltas: RequestCounter[], s: { since: Date; at: Date; cpuMs: number | undefined; stats: CgroupStats; coldStart: boolean }): PendingUsage[] {
    const { config } = this.deps;
    const outcomes = [false, true]
      .map((error) => {
        const own = deltas.filter((d) => d.status.startsWith('5') === error);
        return { error, count: Math.round(own.reduce((n, d) => n + d.count, 0)), sumMs: own.reduce((n, d) => n + d.sumMs, 0) };
      })
      .filter((o) => o.count > 0);
    const total = outcomes.reduce((n, o) => n + o.count, 0);
    const memoryBytes = s.stats.memoryCurrentBytes ?? s.stats.memoryPeakBytes;
    const memoryMb = memoryBytes !== undefined ? Math.max(Math.ceil((memoryBytes / bytesPerMb) * 1000) / 1000, 0.001) : (pod.memoryLimitMb ?? fallbackMemoryMb);
    return outcomes.map((o, i) => {
      const labels: Record<string, string> = { namespace: pod.namespace, pod: pod.name, node: config.AGENT_NODE_NAME, metering: 'agent', memory_source: memoryBytes !== undefined ? 'cgroup' : 'allocated' };
      if (s.stats.memoryPeakBytes !== undefined) labels.memory_peak_mb = String(Math.ceil(s.stats.memoryPeakBytes / bytesPerMb));
      const coldStart = s.coldStart && i === 0;
      if (coldStart && pod.startTime) labels.cold_start_ms = String(Math.max(0, s.at.getTime() - pod.startTime.getTime()));
      const data: UsageData = {
        tenant_id: pod.tenant ?? config.AGENT_DEFAULT_TENANT ?? '',
        service: pod.service,
        revision: pod.revision,
        invocations: o.count,
        duration_ms: Math.min(Math.round(o.sumMs * 1000) / 1000, o.count * usageLimits.maxDurationMsPerInvocation),
        memory_mb: Math.min(memoryMb, usageLimits.maxMemoryMb),
        cold_start: coldStart,
        error: o.error,
        labels,
      };
      if (s.cpuMs !== undefined) data.cpu_ms = Math.round((s.cpuMs * o.count) / total * 1000) / 1000;
      // Same pod, same sample, same outcome: same id, so a resend is dropped downstream.
      const id = createHash('sha256').update([pod.uid, s.at.toISOString(), o.error ? 'error' : 'ok'].join('\u0000')).digest('hex').slice(0, 40);
      return { id, time: s.since, data };
    });
  }

  /** Sends what is queued and stops (on SIGTERM). */
  close(): Promise<void> {
    return this.emitter.close();
  }
}
