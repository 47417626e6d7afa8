/**
 * The aggregate stage: keeps usage_aggregate's 5m, 1h and 1d windows per (tenant, service,
 * revision) equal to what usage_raw holds.
 *
 * Which windows: exactly those with dirty marks (migration 0003). Triggers on usage_raw mark every
 * 5-minute UTC bucket whose rows changed, in the same transaction as the rows, so late events and
 * rows committed while an aggregator runs are never missed. An aggregator claims a batch of marks
 * (DELETE ... FOR UPDATE SKIP LOCKED) and, in the same transaction, recomputes:
 * - each claimed bucket's 5m window from all its raw rows (the tenant's 5m windows are the UTC
 *   5-minute buckets: every zone's offset is a whole multiple of 5 minutes since 1972);
 * - each 1h window containing one, merged from the window's 5m states, and each 1d window (the
 *   tenant's local day, 23/25 h on DST days) merged from its 1h states.
 * Merging stored states keeps a late event's cost at one bucket of raw rows plus at most 12 + 24
 * stored rows, instead of re-reading a day of raw rows; the merged figures equal a direct
 * computation exactly, except p50/p95 of 1h/1d windows, which come from the merged duration sketch
 * (within 0.5%; 5m percentiles are exact) — see aggregate-state.ts.
 *
 * Because a window is always recomputed from what is stored, the same input gives the same rows,
 * a late event rewrites only its own 5m, 1h and 1d windows, and there is nothing to "close": the
 * 5-minute tick only processes whatever is dirty (marks left by a batch that ran out of time, or by
 * writes that did not announce themselves with usage.saved).
 *
 * Batches: marks are claimed oldest bucket first, so a batch is a slice of time across series,
 * whose raw rows lie together on disk. Concurrent batches take disjoint shares of the series, and
 * a per-series advisory lock keeps any two aggregators from merging the same window at once.
 *
 * billed_mb_ms is metered per event under the plan in force for the tenant at the window's start
 * (billed_plan_id). A 1h/1d window whose parts were metered under another plan (an assignment
 * boundary inside it) is recomputed from raw rows under its own plan. An assignment changed after
 * its windows were aggregated does not re-mark them: their billed_plan_id then differs from the
 * plan billing applies, and billing re-meters those windows from raw rows (src/billing/usage.ts).
 */
import type { Knex } from 'knex';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { NoPlanError, PlanStore, type PlanSegment } from '../adapters/plans.js';
import type { Db } from '../adapters/postgres.js';
import { defaultPlanRules } from '../core/pricing/index.js';
import { WindowCalendar, windowSizes, type WindowSize } from '../core/windows/index.js';
import type { Logger } from '../runtime/logger.js';
import { WindowState, hasMergeState } from './aggregate-state.js';
import {
  billedFromRaw,
  claimDirtyBuckets,
  dirtyStats,
  lockSeries,
  markDirty,
  readRawGroups,
  readStoredWindows,
  seriesInfo,
  writeWindows,
  type SeriesRange,
  type SeriesShare,
  type WindowWrite,
} from './aggregate-store.js';
import { BUCKET_MS, planWork, rangesOf, recomputeWindows, type PlanOf, type SeriesWork } from './aggregate-windows.js';

/** Metrics of the aggregate stage, registered beside the common stage metrics. */
export function createAggregateMetrics(registry: Registry, db: Db) {
  const registers = [registry];
  let latest: Promise<{ buckets: number; lagSeconds: number } | undefined> | undefined;
  // One query serves both gauges of a scrape; a database that is down leaves them unset.
  const read = () => {
    latest ??= dirtyStats(db)
      .catch(() => undefined)
      .finally(() => setTimeout(() => (latest = undefined), 250).unref());
    return latest;
  };
  return {
    windows: new Counter({ name: 'faasbilling_aggregate_windows_total', help: 'Windows recomputed, by size', labelNames: ['size'] as const, registers }),
    rowsChanged: new Counter({ name: 'faasbilling_aggregate_rows_changed_total', help: 'usage_aggregate rows inserted, updated or deleted', registers }),
    buckets: new Counter({ name: 'faasbilling_aggregate_buckets_total', help: 'Dirty 5-minute buckets claimed and recomputed', registers }),
    failures: new Counter({ name: 'faasbilling_aggregate_failures_total', help: 'Batches whose transaction failed (their buckets stay dirty)', registers }),
    phaseSeconds: new Histogram({
      name: 'faasbilling_aggregate_phase_seconds',
      help: 'Time of one batch phase: read (claim, locks, raw rows, stored states), compute, write',
      labelNames: ['phase'] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    batchSeconds: new Histogram({
      name: 'faasbilling_aggregate_batch_seconds',
      help: 'Time of one batch: claim, recompute and write, commit included',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    dirtyBuckets: new Gauge({
      name: 'faasbilling_aggregate_dirty_buckets',
      help: 'Buckets waiting to be aggregated',
      registers,
      async collect() {
        const stats = await read();
        if (stats) this.set(stats.buckets);
      },
    }),
    lagSeconds: new Gauge({
      name: 'faasbilling_aggregate_lag_seconds',
      help: 'Age of the oldest dirty bucket mark',
      registers,
      async collect() {
        const stats = await read();
        if (stats) this.set(stats.lagSeconds);
      },
    }),
  };
}
export type AggregateMetrics = ReturnType<typeof createAggregateMetrics>;

/** What one aggregator run (or batch) did. */
export interface AggregateResult {
  /** Dirty buckets claimed. */
  buckets: number;
  /** Windows recomputed, by size. */
  windows: Record<WindowSize, number>;
  /** usage_aggregate rows that changed (a recomputed window with the same figures does not). */
  rowsChanged: number;
  /** Tenant ids whose windows were recomputed. */
  tenants: string[];
  /** Earliest start and latest end of the windows recomputed (ISO), null when none. */
  from: string | null;
  to: string | null;
  /** True when the run stopped with buckets still dirty (time budget spent). */
  more: boolean;
  /** Time spent reading (claim, locks, raw rows, stored states), computing and writing, summed over batches. */
  phaseMs: Record<Phase, number>;
}

const phases = ['read', 'compute', 'write'] as const;
type Phase = (typeof phases)[number];

export interface AggregatorOptions {
  db: Db;
  logger: Logger;
  /** Dirty buckets claimed per transaction. */
  batchBuckets: number;
  /** How long one run keeps claiming batches, in ms. */
  timeBudgetMs: number;
  /** Batches processed at once (each on its own connection); default 1. */
  concurrency?: number;
  metrics?: AggregateMetrics;
}

/** One batch's result, with the windows it recomputed ("size|revision|start ms"). */
interface Batch {
  result: AggregateResult;
  keys: string[];
}

const emptyResult = (): AggregateResult => ({
  buckets: 0,
  windows: { '5m': 0, '1h': 0, '1d': 0 },
  rowsChanged: 0,
  tenants: [],
  from: null,
  to: null,
  more: false,
  phaseMs: { read: 0, compute: 0, write: 0 },
});

export class Aggregator {
  private readonly calendar = new WindowCalendar();

  constructor(private readonly options: AggregatorOptions) {}

  /**
   * Processes dirty buckets, batch after batch, until none is left or the time budget is spent.
   * `concurrency` batches run at once, each in its own transaction, so the database works on one
   * while this process computes another (the series locks keep them apart).
   */
  async run(): Promise<AggregateResult> {
    const { batchBuckets, timeBudgetMs, concurrency = 1 } = this.options;
    const deadline = Date.now() + timeBudgetMs;
    const total = emptyResult();
    const tenants = new Set<string>();
    // A window recomputed by several batches (an hour cut by a batch boundary) counts once.
    const windows = new Set<string>();
    const add = ({ result, keys }: Batch): void => {
      total.buckets += result.buckets;
      for (const key of keys) {
        if (windows.has(key)) continue;
        windows.add(key);
        total.windows[key.slice(0, 2) as WindowSize] += 1;
      }
      total.rowsChanged += result.rowsChanged;
      for (const phase of phases) total.phaseMs[phase] += result.phaseMs[phase];
      for (const t of result.tenants) tenants.add(t);
      if (result.from !== null && (total.from === null || result.from < total.from)) total.from = result.from;
      if (result.to !== null && (total.to === null || result.to > total.to)) total.to = result.to;
    };
    // Each worker takes its own share of the series, so concurrent batches never wait on each
    // other's series locks.
    const worker = async (index: number): Promise<void> => {
      for (;;) {
        const batch = await this.batch({ index, count: concurrency });
        add(batch);
        if (batch.result.buckets < batchBuckets) return;
        if (Date.now() >= deadline) {
          total.more = true;
          return;
        }
      }
    };
    // Every worker finishes (or fails) before the run answers: none is left running unobserved.
    const outcomes = await Promise.allSettled(Array.from({ length: concurrency }, (_, index) => worker(index)));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    total.tenants = [...tenants].sort();
    return total;
  }

  /** Claims one batch of dirty buckets (of one share of the series) and recomputes their windows, in one transaction. */
  private async batch(share: SeriesShare): Promise<Batch> {
    const { db, metrics } = this.options;
    const stop = metrics?.batchSeconds.startTimer();
    try {
      const batch = await db.transaction((trx) => this.recompute(trx, share));
      stop?.();
      if (metrics) {
        metrics.buckets.inc(batch.result.buckets);
        for (const size of windowSizes) metrics.windows.inc({ size }, batch.result.windows[size]);
        metrics.rowsChanged.inc(batch.result.rowsChanged);
        for (const phase of phases) metrics.phaseSeconds.observe({ phase }, batch.result.phaseMs[phase] / 1000);
      }
      return batch;
    } catch (err) {
      metrics?.failures.inc();
      throw err;
    }
  }

  private async recompute(transaction: Knex.Transaction, share: SeriesShare): Promise<Batch> {
    // A batch sorts and groups tens of thousands of raw rows: keep that in memory, not on disk.
    // No wait for the WAL flush at commit: a batch lost in a crash loses its claim with it (the
    // DELETE of the marks is in the same transaction), so its buckets are simply dirty again.
    const started = performance.now();
    await transaction.raw(`SET LOCAL work_mem = '64MB'; SET LOCAL synchronous_commit = off`);
    const marks = await claimDirtyBuckets(transaction, this.options.batchBuckets, share);
    if (marks.length === 0) return { result: emptyResult(), keys: [] };
    const revisionIds = [...new Set(marks.map((m) => m.revision_id))];
    await lockSeries(transaction, revisionIds);
    const work = planWork(marks, await seriesInfo(transaction, revisionIds), this.calendar);
    const planOf = await this.plansOf(transaction, work);
    const raw = await readRawGroups(transaction, rangesOf(work.values(), (s) => s.buckets.map((b) => [b, b + BUCKET_MS])));
    const inputs = {
      raw: new Map(raw.map((g) => [`${g.revision_id}|${g.bucket_start.getTime()}`, g])),
      stored5m: await this.storedStates(transaction, '5m', work, rangesOf(work.values(), (s) => s.hours)),
      stored1h: await this.storedStates(transaction, '1h', work, rangesOf(work.values(), (s) => s.days)),
      planOf,
    };
    const read = performance.now();
    const { windows, rebill } = recomputeWindows(work, inputs, this.calendar);
    const billed = await billedFromRaw(transaction, rebill.map((r) => r.window));
    rebill.forEach((r, i) => r.state.setBilled(billed[i]!, r.window.planId));
    const writes: WindowWrite[] = windows.map(({ write, state }) => ({ ...write, figures: state ? state.figures() : null }));
    const computed = performance.now();
    const rowsChanged = await writeWindows(transaction, writes);

    const result = emptyResult();
    result.buckets = marks.length;
    for (const w of writes) {
      result.windows[w.size] += 1;
      const start = w.start.toISOString();
      const end = w.end.toISOString();
      if (result.from === null || start < result.from) result.from = start;
      if (result.to === null || end > result.to) result.to = end;
    }
    result.rowsChanged = rowsChanged;
    result.tenants = [...new Set(marks.map((m) => m.tenant_id))].sort();
    result.phaseMs = { read: read - started, compute: computed - read, write: performance.now() - computed };
    return { result, keys: writes.map((w) => `${w.size}|${w.revisionId}|${w.start.getTime()}`) };
  }

  /**
   * The metering plan in force at an instant for each series' tenant, over the batch's span (from
   * the earliest day start touched). A tenant with no plan at all (no assignment and no default
   * plan for its currency) is metered with the default rules and no plan id — billing refuses or
   * re-meters it; aggregation is not held up by a pricing setup.
   */
  private async plansOf(transaction: Knex.Transaction, work: Map<string, SeriesWork>): Promise<PlanOf> {
    const spans = new Map<string, [number, number]>();
    for (const s of work.values()) {
      const span = spans.get(s.tenantId) ?? [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
      for (const dayStart of s.days.keys()) span[0] = Math.min(span[0], dayStart);
      span[1] = Math.max(span[1], s.buckets[s.buckets.length - 1]! + BUCKET_MS);
      spans.set(s.tenantId, span);
    }
    const plans = new PlanStore(transaction);
    const segments = new Map<string, PlanSegment[] | null>();
    for (const [tenantId, [from, to]] of spans) {
      try {
        segments.set(tenantId, await plans.segments(tenantId, new Date(from), new Date(to)));
      } catch (err) {
        if (!(err instanceof NoPlanError)) throw err;
        this.options.logger.warn({ tenantId }, 'no pricing plan for this tenant: its windows are metered with the default rules');
        segments.set(tenantId, null);
      }
    }
    return (s, at) => {
      const found = segments.get(s.tenantId);
      if (!found) return { planId: null, rules: defaultPlanRules };
      const segment = found.find((x) => x.from.getTime() <= at && at < x.to.getTime());
      if (!segment) throw new Error(`no plan segment of tenant ${s.tenantId} covers ${new Date(at).toISOString()}`);
      return { planId: segment.plan.id, rules: segment.plan.rules };
    };
  }

  /**
   * Stored states of windows of `size` in the ranges, by series and start. A row without its
   * merge state (not written by this stage) cannot be merged: unless this batch recomputes it
   * anyway, its buckets are marked dirty again, so a later batch rebuilds it from raw rows.
   */
  private async storedStates(
    transaction: Knex.Transaction,
    size: '5m' | '1h',
    work: Map<string, SeriesWork>,
    ranges: SeriesRange[],
  ): Promise<Map<string, Map<number, WindowState>>> {
    const recomputed = (row: { revision_id: string; window_start: Date }): boolean => {
      const s = work.get(row.revision_id);
      const start = row.window_start.getTime();
      return s !== undefined && (size === '5m' ? s.buckets.includes(start) : s.hours.has(start));
    };
    const out = new Map<string, Map<number, WindowState>>();
    const stale: SeriesRange[] = [];
    for (const row of await readStoredWindows(transaction, size, ranges)) {
      if (!hasMergeState(row)) {
        if (recomputed(row)) continue;
        stale.push({ tenantId: row.tenant_id, serviceId: row.service_id, revisionId: row.revision_id, from: row.window_start, to: row.window_end });
        continue;
      }
      let bySeries = out.get(row.revision_id);
      if (!bySeries) out.set(row.revision_id, (bySeries = new Map<number, WindowState>()));
      bySeries.set(row.window_start.getTime(), WindowState.fromStored(row));
    }
    await markDirty(transaction, stale);
    return out;
  }
}
