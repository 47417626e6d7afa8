/**
 * The in-memory part of one aggregate batch (pure: no I/O): which windows the claimed buckets
 * touch in each tenant's zone, and their new states — 5m from raw rows, 1h merged from 5m
 * states, 1d merged from 1h states (windows nest in every zone, src/core/windows/windows.ts).
 */
import type { PlanRules } from '../core/pricing/index.js';
import type { WindowCalendar, WindowSize } from '../core/windows/index.js';
import { WindowState, type RawWindowGroup } from './aggregate-state.js';
import type { BilledRecompute, DirtyBucket, SeriesInfo, SeriesRange, WindowWrite } from './aggregate-store.js';

/** The dirty-mark grid: 5-minute UTC buckets. */
export const BUCKET_MS = 5 * 60_000;

/** How a window's events are metered: the plan in force at its start (none: default rules). */
export interface Metered {
  planId: string | null;
  rules: PlanRules;
}

/** The plan in force for a series' tenant at an instant. */
export type PlanOf = (series: SeriesWork, at: number) => Metered;

/** The windows one batch touches in one series. */
export interface SeriesWork {
  tenantId: string;
  serviceId: string;
  revisionId: string;
  zone: string;
  allocatedMemoryMb: number | null;
  /** Claimed buckets (their 5m window starts), ms, ascending. */
  buckets: number[];
  /** Touched 1h and 1d windows: start → end, ms. */
  hours: Map<number, number>;
  days: Map<number, number>;
}

/**
 * Groups the marks by series with the 1h and 1d windows (in the tenant's zone) they touch. A
 * tenant's 5m windows are the UTC buckets (every zone's offset has been a whole multiple of 5
 * minutes since 1972); a bucket that is not one is refused with the reason.
 */
export function planWork(marks: readonly DirtyBucket[], info: Map<string, SeriesInfo>, calendar: WindowCalendar): Map<string, SeriesWork> {
  const work = new Map<string, SeriesWork>();
  for (const mark of marks) {
    let s = work.get(mark.revision_id);
    if (!s) {
      const series = info.get(mark.revision_id);
      if (!series) throw new Error(`revision ${mark.revision_id} has a dirty mark but does not exist`);
      s = {
        tenantId: mark.tenant_id,
        serviceId: mark.service_id,
        revisionId: mark.revision_id,
        zone: series.timezone,
        allocatedMemoryMb: series.allocated_memory_mb,
        buckets: [],
        hours: new Map(),
        days: new Map(),
      };
      work.set(mark.revision_id, s);
    }
    const bucket = mark.bucket_start.getTime();
    const [start, end] = calendar.bounds(bucket, '5m', s.zone);
    if (start !== bucket || end !== bucket + BUCKET_MS) {
      throw new Error(`time zone ${s.zone} of tenant ${s.tenantId} does not align 5-minute windows with UTC at ${mark.bucket_start.toISOString()}`);
    }
    s.buckets.push(bucket);
    const [hourStart, hourEnd] = calendar.bounds(bucket, '1h', s.zone);
    s.hours.set(hourStart, hourEnd);
    const [dayStart, dayEnd] = calendar.bounds(bucket, '1d', s.zone);
    s.days.set(dayStart, dayEnd);
  }
  for (const s of work.values()) s.buckets.sort((a, b) => a - b);
  return work;
}

/** `[start, end)` spans merged where one ends at the next one's start. */
function contiguous(spans: Iterable<[number, number]>): [number, number][] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === start) last[1] = end;
    else out.push([start, end]);
  }
  return out;
}

/** Each series' spans as contiguous time ranges (fewer, longer index scans). */
export function rangesOf(series: Iterable<SeriesWork>, spans: (s: SeriesWork) => Iterable<[number, number]>): SeriesRange[] {
  const out: SeriesRange[] = [];
  for (const s of series) {
    for (const [from, to] of contiguous(spans(s))) {
      out.push({ tenantId: s.tenantId, serviceId: s.serviceId, revisionId: s.revisionId, from: new Date(from), to: new Date(to) });
    }
  }
  return out;
}

/** What a batch read: raw groups by "revision|bucket ms", stored states by revision and start. */
export interface BatchInputs {
  raw: Map<string, RawWindowGroup>;
  stored5m: Map<string, Map<number, WindowState>>;
  stored1h: Map<string, Map<number, WindowState>>;
  planOf: PlanOf;
}

/** A window to write: its key and plan, and its new state (null: no usage left, delete it). */
export interface PendingWindow {
  write: Omit<WindowWrite, 'figures'>;
  state: WindowState | null;
}

/** The new state of every window the batch touches, and the merged ones to re-meter. */
export interface RecomputedWindows {
  windows: PendingWindow[];
  /** Merged windows whose parts were metered under another plan than theirs. */
  rebill: { window: BilledRecompute; state: WindowState }[];
}

/** The windows of `size` touched in a series, each merged from the smaller states inside it. */
function mergeInto(s: SeriesWork, parts: Map<number, WindowState>, size: WindowSize, touched: Map<number, number>, calendar: WindowCalendar): Map<number, WindowState> {
  const merged = new Map<number, WindowState>();
  for (const [start, part] of parts) {
    const [outer] = calendar.bounds(start, size, s.zone);
    if (!touched.has(outer)) continue;
    let state = merged.get(outer);
    if (!state) merged.set(outer, (state = new WindowState()));
    state.merge(part);
  }
  return merged;
}

/**
 * Recomputes every window the batch touches. A merged window whose parts carry another plan
 * (an assignment boundary inside it) is listed in `rebill`; a 1d window merged from such an hour
 * carries the hour's mixed plans too, so it is re-metered as well and never keeps a wrong figure.
 */
export function recomputeWindows(work: Map<string, SeriesWork>, inputs: BatchInputs, calendar: WindowCalendar): RecomputedWindows {
  const out: RecomputedWindows = { windows: [], rebill: [] };
  const add = (s: SeriesWork, size: WindowSize, start: number, end: number, state: WindowState | null): void => {
    const plan = inputs.planOf(s, start);
    const key = { tenantId: s.tenantId, serviceId: s.serviceId, revisionId: s.revisionId };
    if (state && state.billedPlanId() !== plan.planId) out.rebill.push({ window: { ...key, from: new Date(start), to: new Date(end), ...plan }, state });
    out.windows.push({ write: { ...key, size, start: new Date(start), end: new Date(end), billedPlanId: plan.planId }, state });
  };
  for (const s of work.values()) {
    const fives = inputs.stored5m.get(s.revisionId) ?? new Map<number, WindowState>();
    for (const bucket of s.buckets) {
      const group = inputs.raw.get(`${s.revisionId}|${bucket}`);
      const state = group ? WindowState.fromRaw(group, { ...inputs.planOf(s, bucket), allocatedMemoryMb: s.allocatedMemoryMb }) : null;
      if (state) fives.set(bucket, state);
      else fives.delete(bucket);
      add(s, '5m', bucket, bucket + BUCKET_MS, state);
    }
    const hours = mergeInto(s, fives, '1h', s.hours, calendar);
    const known1h = inputs.stored1h.get(s.revisionId) ?? new Map<number, WindowState>();
    for (const [start, end] of s.hours) {
      const state = hours.get(start) ?? null;
      if (state) known1h.set(start, state);
      else known1h.delete(start);
      add(s, '1h', start, end, state);
    }
    const days = mergeInto(s, known1h, '1d', s.days, calendar);
    for (const [start, end] of s.days) add(s, '1d', start, end, days.get(start) ?? null);
  }
  return out;
}
