/**
 * The queue-proxy scraper: each tick (a PingSource event) turns Knative's request metrics into
 * usage reports per revision for the interval that just ended, with the revision's configured
 * memory (allocated-memory billing), and sends them to the sink. Zero instrumentation of
 * workloads. Idempotent per interval: a tick for an interval already scraped resends the same
 * reports (same ids), which collect and save drop as repeats.
 */
import { Counter, type Registry } from 'prom-client';
import { meteredBy, type KnativeCluster, type RevisionInfo } from '../adapters/kubernetes.js';
import { prometheusRequestIncrements } from '../adapters/prometheus.js';
import { readPodCounters } from '../adapters/pod-metrics.js';
import type { RequestCounter } from '../metering/exposition.js';
import { counterDeltas, revisionUsage, type Interval, type RevisionMeta } from '../metering/revision-usage.js';
import type { ScrapeConfig } from '../metering/scrape-config.js';
import type { ScrapeStateStore } from '../metering/scrape-state.js';
import { sendToSink, usageCloudEvent, type PendingUsage } from '../metering/sink.js';
import { BillingError } from '../contract/problem.js';

/** What one tick did. */
export interface ScrapeSummary {
  interval_start: string;
  interval_end: string;
  events: number;
  invocations: number;
  /** True when the interval had been scraped already and its reports were sent again. */
  repeated: boolean;
  pods_scraped: number;
  pods_failed: number;
  counter_resets: number;
  series_vanished: number;
  /** Revisions that served requests without a tenant label (and no SCRAPE_DEFAULT_TENANT): not metered. */
  unlabelled_revisions: number;
  /** Revisions that served requests but are labelled faasbilling.dev/metered-by another source: not metered here. */
  metered_elsewhere_revisions: number;
  /** Revisions metered although their faasbilling.dev/metered-by label names no source (a typo?). */
  unknown_metering_label_revisions: number;
}

/** The event source of the scraper's usage events. */
export const scrapeSource = '/faasbilling/scrape';

function scrapeMetrics(registry: Registry) {
  const registers = [registry];
  return {
    events: new Counter({ name: 'faasbilling_scrape_events_total', help: 'Usage events the scraper sent (repeats of an interval included)', registers }),
    podFailures: new Counter({ name: 'faasbilling_scrape_pod_failures_total', help: 'Pod metrics endpoints that could not be read', registers }),
    resets: new Counter({ name: 'faasbilling_scrape_counter_resets_total', help: 'Request counters that went backwards (queue-proxy restarted)', registers }),
    vanished: new Counter({ name: 'faasbilling_scrape_series_vanished_total', help: 'Counter series gone since the last scrape (pods scaled away)', registers }),
  };
}

/** Scrapes Knative request metrics into usage events. */
export class Scraper {
  private readonly metrics;

  constructor(
    private readonly deps: { config: ScrapeConfig; cluster: KnativeCluster; state: ScrapeStateStore; registry: Registry },
  ) {
    this.metrics = scrapeMetrics(deps.registry);
  }

  /** The interval a tick at `at` closes: the last whole interval ending at or before `at`. */
  intervalAt(at: Date): Interval {
    const lengthMs = this.deps.config.SCRAPE_INTERVAL_SECONDS * 1000;
    const end = Math.floor(at.getTime() / lengthMs) * lengthMs;
    return { start: new Date(end - lengthMs), end: new Date(end) };
  }

  /** Scrapes for the tick at `at` and sends its reports; throws (retryable) when the sink does not take them. */
  async tick(at: Date): Promise<ScrapeSummary> {
    const { config } = this.deps;
    const sink = config.K_SINK;
    if (!sink) throw new BillingError('internal', 'K_SINK is not set: bind the scraper to the Broker with a SinkBinding (or set K_SINK)');
    const interval = this.intervalAt(at);
    const known = await this.revisionMeta();
    const unlabelled = new Set<string>();
    const elsewhere = new Set<string>();
    const unknownLabel = new Set<string>();
    const meta = (namespace: string, revision: string, service: string | undefined): RevisionMeta => {
      const { metered, ...m } = known(namespace, revision, service);
      const key = `${namespace}/${revision}`;
      if (metered === 'no') elsewhere.add(key);
      else if (m.tenant === undefined) unlabelled.add(key);
      if (metered === 'unknown-label') unknownLabel.add(key);
      return m;
    };
    const result =
      config.SCRAPE_MODE === 'prometheus'
        ? await this.fromPrometheus(interval, meta)
        : await this.fromPods(interval, meta);
    await sendToSink(sink, result.reports.map((r) => usageCloudEvent(scrapeSource, r)), config.SCRAPE_SINK_MODE, config.SCRAPE_TIMEOUT_MS);
    this.metrics.events.inc(result.reports.length);
    return {
      interval_start: result.interval.start.toISOString(),
      interval_end: result.interval.end.toISOString(),
      events: result.reports.length,
      invocations: result.reports.reduce((n, r) => n + r.data.invocations, 0),
      repeated: result.repeated,
      pods_scraped: result.podsScraped,
      pods_failed: result.podsFailed,
      counter_resets: result.resets,
      series_vanished: result.vanished,
      unlabelled_revisions: unlabelled.size,
      metered_elsewhere_revisions: elsewhere.size,
      unknown_metering_label_revisions: unknownLabel.size,
    };
  }

  /** Tenant, service and memory of each revision (Revisions outlive their pods, so scaled-to-zero ones are known too). */
  private async revisionMeta(): Promise<(namespace: string, revision: string, service: string | undefined) => RevisionMeta & { metered: ReturnType<typeof meteredBy> }> {
    const { config } = this.deps;
    const revisions = new Map<string, RevisionInfo>((await this.deps.cluster.listRevisions()).map((r) => [`${r.namespace}/${r.name}`, r]));
    return (namespace, revision, service) => {
      const info = revisions.get(`${namespace}/${revision}`);
      // Labelled for another source (the agent, or the function's own middleware): nobody is billed here.
      const metered = info ? meteredBy(info, 'scrape') : 'yes';
      return {
        metered,
        tenant: metered === 'no' ? undefined : (info?.tenant ?? config.SCRAPE_DEFAULT_TENANT),
        service: info?.service ?? service ?? revision,
        memoryMb: info?.memoryLimitMb ?? config.SCRAPE_DEFAULT_MEMORY_MB,
      };
    };
  }

  private async fromPrometheus(interval: Interval, meta: Parameters<typeof revisionUsage>[1]) {
    const { config } = this.deps;
    if (!config.SCRAPE_PROMETHEUS_URL) throw new BillingError('internal', 'SCRAPE_MODE=prometheus needs SCRAPE_PROMETHEUS_URL');
    const increments = await prometheusRequestIncrements(config.SCRAPE_PROMETHEUS_URL, config.SCRAPE_INTERVAL_SECONDS, interval.end, config.SCRAPE_TIMEOUT_MS);
    return { interval, reports: revisionUsage(increments, meta, interval, scrapeSource), repeated: false, podsScraped: 0, podsFailed: 0, resets: 0, vanished: 0 };
  }

  private async fromPods(tickInterval: Interval, meta: Parameters<typeof revisionUsage>[1]) {
    const { state } = this.deps;
    const previous = await state.load();
    if (previous && Date.parse(previous.intervalEnd) >= tickInterval.end.getTime()) {
      const reports: PendingUsage[] = previous.reports.map((r) => ({ id: r.id, time: new Date(r.time), data: r.data }));
      const interval = { start: new Date(reports[0]?.time ?? previous.intervalEnd), end: new Date(previous.intervalEnd) };
      return { interval, reports, repeated: true, podsScraped: 0, podsFailed: 0, resets: 0, vanished: 0 };
    }
    const pods = (await this.deps.cluster.listRevisionPods()).filter((p) => p.ip);
    const current: RequestCounter[] = [];
    let podsFailed = 0;
    await Promise.all(
      pods.map(async (pod) => {
        try {
          current.push(...(await readPodCounters(this.deps.config.SCRAPE_POD_METRICS_URL, pod, this.deps.config.SCRAPE_TIMEOUT_MS)));
        } catch {
          podsFailed++;
          this.metrics.podFailures.inc();
          // A pod that is there but did not answer keeps its last counters, so its requests are counted next time.
          current.push(...(previous?.counters ?? []).filter((c) => c.pod === pod.name && c.namespace === pod.namespace));
        }
      }),
    );
    const { deltas, resets, vanished } = counterDeltas(previous?.counters, current);
    this.metrics.resets.inc(resets);
    this.metrics.vanished.inc(vanished);
    // The interval runs from the last scrape (however long ago) to this one.
    const interval = { start: previous ? new Date(previous.intervalEnd) : tickInterval.start, end: tickInterval.end };
    const reports = revisionUsage(deltas, meta, interval, scrapeSource);
    // Saved before sending: a redelivered tick then resends these very reports.
    await state.save({
      intervalEnd: interval.end.toISOString(),
      counters: current,
      reports: reports.map((r) => ({ id: r.id!, time: r.time.toISOString(), data: r.data })),
    });
    return { interval, reports, repeated: false, podsScraped: pods.length - podsFailed, podsFailed, resets, vanished };
  }
}
