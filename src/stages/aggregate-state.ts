/**
 * One window's statistics as a mergeable state (pure: plain data in and out).
 *
 * The aggregate stage computes 5m windows from usage_raw and merges 1h windows from their 5m
 * states and 1d windows from their 1h states (windows nest in every zone, see
 * src/core/windows/windows.ts). Every figure merges exactly — counts, maxima, and sums kept as
 * exact decimals (`FixedSum`) — except the percentiles: a 5m window's p50/p95 are exact
 * (`percentile_cont` over its per-invocation durations), a merged window's come from the merged
 * duration sketch (relative error ≤ 0.5%; merging sketches is exact, so a merged window equals
 * one sketched from all its raw rows at once). Meaning of each figure: src/core/windows/aggregate.ts.
 *
 * `billedPlanIds` are the plans whose metering rules produced `billedMbMs`; a merged window is
 * metered under one plan only if all its parts were (else the stage recomputes it from raw rows).
 */
import { DurationSketch, ExactDecimal, percentilesCont, type DurationSketchJson } from '../core/windows/index.js';
import { FixedSum, multiplyAmounts, toScaledInteger, type Amount } from '../core/windows/exact-decimal.js';
import { billedMbMsOfEvent, parseThousandths } from './aggregate-meter.js';
import type { PlanRules } from '../core/pricing/index.js';

/** A decimal string as an exact amount of `scale` (a scaled integer when that is exact). */
export function amountOfText(text: string, scale: number): Amount {
  return toScaledInteger(Number(text), scale) ?? ExactDecimal.of(text);
}

/** An integer (number or bigint) as an exact amount of `scale`. */
function integerAmount(value: number | bigint, scale: number): Amount {
  if (typeof value === 'number') {
    const scaled = value * 10 ** scale;
    if (Math.abs(scaled) <= 2 ** 52) return scaled;
    return ExactDecimal.fromScaled(BigInt(value), 0);
  }
  return ExactDecimal.fromScaled(value, 0);
}

/** The columns usage_aggregate holds for a window (decimals as text, as PostgreSQL returns them). */
export interface WindowFigures {
  events: number;
  invocations: number;
  total_duration_ms: string;
  avg_duration_ms: string;
  p50_duration_ms: number;
  p95_duration_ms: number;
  max_memory_mb: number;
  avg_memory_mb: string;
  memory_mb_invocations: string;
  total_cpu_ms: string;
  mb_ms: string;
  billed_mb_ms: string;
  cold_starts: number;
  errors: number;
  duration_sketch: DurationSketchJson;
}

/** A stored window row, as read back to be merged. */
export interface StoredWindow {
  events: string | number;
  invocations: string | number;
  total_duration_ms: string;
  memory_mb_invocations: string | null;
  max_memory_mb: string | null;
  total_cpu_ms: string;
  mb_ms: string;
  billed_mb_ms: string;
  billed_plan_id: string | null;
  cold_starts: number;
  errors: number;
  duration_sketch: unknown;
}

/** The columns a stored row needs to be merged; rows written by other code may lack them. */
type MergeState = { memory_mb_invocations: string; max_memory_mb: string; duration_sketch: object };

/** True when a stored row carries its merge state (this stage always writes it). */
export function hasMergeState<T extends StoredWindow>(row: T): row is T & MergeState {
  return row.memory_mb_invocations !== null && row.max_memory_mb !== null && typeof row.duration_sketch === 'object' && row.duration_sketch !== null;
}

/**
 * The usage_raw rows of one 5m window as the stage's query returns them: counts and the CPU sum
 * from SQL, and per event (in the same order) duration_ms, invocations and memory_mb as
 * comma-separated text.
 */
export interface RawWindowGroup {
  events: number;
  cold_starts: number;
  errors: number;
  total_cpu_ms: string | null;
  durations: string;
  invocations: string;
  memories: string;
}

/** How the events of a window are metered: the plan's rules and the series' allocated memory. */
export interface Metering {
  planId: string | null;
  rules: PlanRules;
  allocatedMemoryMb: number | null;
}

export class WindowState {
  events = 0;
  invocations = 0;
  readonly duration = new FixedSum(3);
  readonly memoryInvocations = new FixedSum(3);
  readonly cpu = new FixedSum(3);
  readonly mbMs = new FixedSum(6);
  billedMbMs = new FixedSum(3);
  maxMemoryMb = Number.NEGATIVE_INFINITY;
  coldStarts = 0;
  errors = 0;
  readonly sketch = new DurationSketch();
  /** Exact [p50, p95] when computed from raw rows; merged states read them from the sketch. */
  exactPercentiles: [number, number] | null = null;
  readonly billedPlanIds = new Set<string | null>();

  /** The state of one 5m window from its raw rows. */
  static fromRaw(group: RawWindowGroup, metering: Metering): WindowState {
    const state = new WindowState();
    const durations = parseThousandths(group.durations);
    const invocations = parseThousandths(group.invocations);
    const memories = parseThousandths(group.memories);
    const n = durations.length;
    if (n !== group.events || invocations.length !== n || memories.length !== n) {
      throw new Error(`raw window group is inconsistent: ${group.events} events, ${n} durations, ${invocations.length} invocations, ${memories.length} memories`);
    }
    const perInvocation = new Float64Array(n);
    let weights: Float64Array | null = null;
    for (let i = 0; i < n; i++) {
      const count = invocations[i]! / 1000;
      const durationTh = durations[i]!;
      const memoryTh = memories[i]!;
      state.invocations += count;
      state.duration.add(durationTh);
      state.memoryInvocations.add(multiplyAmounts(memoryTh, 3, count, 0));
      state.mbMs.add(multiplyAmounts(durationTh, 3, memoryTh, 3));
      state.billedMbMs.add(integerAmount(billedMbMsOfEvent(metering.rules, count, durationTh, memoryTh, metering.allocatedMemoryMb), 3));
      if (memoryTh / 1000 > state.maxMemoryMb) state.maxMemoryMb = memoryTh / 1000;
      // As PostgreSQL computes duration_ms::float8 / invocations (see percentiles.ts).
      const value = durationTh / 1000 / count;
      perInvocation[i] = value;
      if (count !== 1 && !weights) weights = new Float64Array(n).fill(1, 0, i);
      if (weights) weights[i] = count;
      state.sketch.add(value, count);
    }
    state.events = n;
    state.coldStarts = group.cold_starts;
    state.errors = group.errors;
    if (group.total_cpu_ms !== null) state.cpu.add(amountOfText(group.total_cpu_ms, 3));
    const [p50, p95] = percentilesCont(perInvocation, weights, [0.5, 0.95]);
    state.exactPercentiles = [p50!, p95!];
    state.billedPlanIds.add(metering.planId);
    return state;
  }

  /** The state a stored window row holds (see `hasMergeState`). */
  static fromStored(row: StoredWindow & MergeState): WindowState {
    const state = new WindowState();
    state.events = Number(row.events);
    state.invocations = Number(row.invocations);
    state.duration.add(amountOfText(row.total_duration_ms, 3));
    state.memoryInvocations.add(amountOfText(row.memory_mb_invocations, 3));
    state.cpu.add(amountOfText(row.total_cpu_ms, 3));
    state.mbMs.add(amountOfText(row.mb_ms, 6));
    state.billedMbMs.add(amountOfText(row.billed_mb_ms, 3));
    state.maxMemoryMb = Number(row.max_memory_mb);
    state.coldStarts = row.cold_starts;
    state.errors = row.errors;
    state.sketch.merge(DurationSketch.fromJSON(row.duration_sketch));
    state.billedPlanIds.add(row.billed_plan_id);
    return state;
  }

  /** Adds `other` into this state (its percentiles then come from the merged sketch). */
  merge(other: WindowState): this {
    this.events += other.events;
    this.invocations += other.invocations;
    this.duration.add(other.duration.toExact());
    this.memoryInvocations.add(other.memoryInvocations.toExact());
    this.cpu.add(other.cpu.toExact());
    this.mbMs.add(other.mbMs.toExact());
    this.billedMbMs.add(other.billedMbMs.toExact());
    if (other.maxMemoryMb > this.maxMemoryMb) this.maxMemoryMb = other.maxMemoryMb;
    this.coldStarts += other.coldStarts;
    this.errors += other.errors;
    this.sketch.merge(other.sketch);
    this.exactPercentiles = null;
    for (const id of other.billedPlanIds) this.billedPlanIds.add(id);
    return this;
  }

  /** The one plan all of billedMbMs was metered under, or undefined when the parts differ. */
  billedPlanId(): string | null | undefined {
    return this.billedPlanIds.size === 1 ? [...this.billedPlanIds][0] : undefined;
  }

  /** Replaces billed MB·ms (recomputed under one plan from raw rows). */
  setBilled(billedMbMs: string, planId: string | null): void {
    this.billedMbMs = new FixedSum(3).add(ExactDecimal.of(billedMbMs));
    this.billedPlanIds.clear();
    this.billedPlanIds.add(planId);
  }

  /** The row's figures; averages per invocation rounded half-up to 3 decimals. */
  figures(): WindowFigures {
    if (this.invocations < 1) throw new RangeError('an empty window has no figures');
    const [p50, p95] = this.exactPercentiles ?? (this.sketch.quantiles([0.5, 0.95]) as [number, number]);
    return {
      events: this.events,
      invocations: this.invocations,
      total_duration_ms: this.duration.toString(),
      avg_duration_ms: this.duration.divideToFixed(this.invocations, 3),
      p50_duration_ms: p50,
      p95_duration_ms: p95,
      max_memory_mb: this.maxMemoryMb,
      avg_memory_mb: this.memoryInvocations.divideToFixed(this.invocations, 3),
      memory_mb_invocations: this.memoryInvocations.toString(),
      total_cpu_ms: this.cpu.toString(),
      mb_ms: this.mbMs.toString(),
      billed_mb_ms: this.billedMbMs.toString(),
      cold_starts: this.coldStarts,
      errors: this.errors,
      duration_sketch: this.sketch.toJSON(),
    };
  }
}
