/**
 * From cumulative request counters to usage reports (pure: no I/O, no clock). Counters only grow,
 * except when queue-proxy restarts (a reset: the new value is all new) or a pod goes away on
 * scale-to-zero (its series vanish: what it served after the last scrape is not seen, so scrape
 * more often than pods live if that matters). A series seen for the first time started at zero.
 */
import { createHash } from 'node:crypto';
import { usageLimits } from '../contract/usage.js';
import { counterKey, type RequestCounter } from './exposition.js';
import type { PendingUsage } from './sink.js';

export interface CounterDeltas {
  /** What each series served since the previous snapshot (count and sumMs are increments). */
  deltas: RequestCounter[];
  /** Series whose counter went backwards (queue-proxy restarted). */
  resets: number;
  /** Series of the previous snapshot that are gone (their pod scaled away). */
  vanished: number;
}

/** Increments between two snapshots of counters; no previous snapshot means a baseline (no deltas). */
export function counterDeltas(previous: readonly RequestCounter[] | undefined, current: readonly RequestCounter[]): CounterDeltas {
  if (!previous) return { deltas: [], resets: 0, vanished: 0 };
  const before = new Map(previous.map((c) => [counterKey(c), c]));
  let resets = 0;
  const deltas: RequestCounter[] = [];
  for (const now of current) {
    const key = counterKey(now);
    const then = before.get(key);
    before.delete(key);
    const reset = then !== undefined && (now.count < then.count || now.sumMs < then.sumMs);
    if (reset) resets++;
    const base = !then || reset ? { count: 0, sumMs: 0 } : then;
    const delta = { ...now, count: now.count - base.count, sumMs: now.sumMs - base.sumMs };
    if (delta.count > 0) deltas.push(delta);
  }
  return { deltas, resets, vanished: before.size };
}

/** What billing needs to know about a revision: who pays, its service, its configured memory. */
export interface RevisionMeta {
  /** Undefined: nobody is billed for the revision (no tenant label, no default): it is skipped. */
  tenant: string | undefined;
  service: string;
  /** The revision's memory limit (allocated-memory billing), in MB. */
  memoryMb: number;
}

/** The scrape interval a usage report covers. */
export interface Interval {
  start: Date;
  end: Date;
}

/**
 * One usage report per revision and outcome (5xx = error) with requests in `deltas`. Ids are a
 * hash of revision, outcome and interval end, so scraping the same interval twice yields the same
 * events (collect and save drop the repeat).
 */
export function revisionUsage(deltas: readonly RequestCounter[], meta: (namespace: string, revision: string, service: string | undefined) => RevisionMeta, interval: Interval, source: string): PendingUsage[] {
  const groups = new Map<string, { namespace: string; revision: string; service: string | undefined; error: boolean; count: number; sumMs: number }>();
  for (const d of deltas) {
    const error = d.status.startsWith('5');
    const key = [d.namespace, d.revision, error].join('\u0000');
    const group = groups.get(key) ?? { namespace: d.namespace, revision: d.revision, service: d.service, error, count: 0, sumMs: 0 };
    group.count += d.count;
    group.sumMs += d.sumMs;
    group.service ??= d.service;
    groups.set(key, group);
  }
  const reports: PendingUsage[] = [];
  for (const g of groups.values()) {
    // Prometheus' increase() extrapolates, so counts may be fractional: a report counts whole requests.
    const invocations = Math.round(g.count);
    if (invocations < 1) continue;
    const info = meta(g.namespace, g.revision, g.service);
    if (info.tenant === undefined) continue;
    const id = createHash('sha256').update([source, g.namespace, g.revision, g.error ? 'error' : 'ok', interval.end.toISOString()].join('\u0000')).digest('hex').slice(0, 40);
    reports.push({
      id,
      time: interval.start,
      data: {
        tenant_id: info.tenant,
        service: info.service,
        revision: g.revision,
        invocations,
        duration_ms: Math.min(Math.round(Math.max(g.sumMs, 0) * 1000) / 1000, invocations * usageLimits.maxDurationMsPerInvocation),
        memory_mb: info.memoryMb,
        cold_start: false,
        error: g.error,
        labels: { namespace: g.namespace, metering: 'queue-proxy', memory_source: 'allocated' },
      },
    });
  }
  return reports;
}
