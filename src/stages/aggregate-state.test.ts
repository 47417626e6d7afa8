/**
 * Window states (pure): a window merged from parts — in memory or read back from their stored
 * columns — holds exactly what one state of all the events holds (the percentiles aside, which a
 * merged window reads from its sketch within 0.5% of the exact value).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defaultPlanRules } from '../core/pricing/index.js';
import { percentileCont } from '../core/windows/index.js';
import { WindowState, hasMergeState, type Metering, type RawWindowGroup, type StoredWindow } from './aggregate-state.js';

interface Event {
  invocations: number;
  durationThousandths: number;
  memoryThousandths: number;
  cpu: number | null;
  coldStart: boolean;
  error: boolean;
}

const decimalOf = (thousandths: number): string => `${Math.floor(thousandths / 1000)}.${String(thousandths % 1000).padStart(3, '0')}`;

/** The raw group the stage's SQL would return for these events. */
function groupOf(events: readonly Event[]): RawWindowGroup {
  const cpu = events.filter((e) => e.cpu !== null).reduce((sum, e) => sum + e.cpu!, 0);
  return {
    events: events.length,
    cold_starts: events.filter((e) => e.coldStart).length,
    errors: events.filter((e) => e.error).length,
    total_cpu_ms: events.some((e) => e.cpu !== null) ? decimalOf(cpu) : null,
    durations: events.map((e) => decimalOf(e.durationThousandths)).join(','),
    invocations: events.map((e) => String(e.invocations)).join(','),
    memories: events.map((e) => decimalOf(e.memoryThousandths)).join(','),
  };
}

/** What a usage_aggregate row holds of a state, as PostgreSQL returns it. */
function storedOf(state: WindowState, planId: string | null): StoredWindow {
  const f = state.figures();
  return {
    events: String(f.events),
    invocations: String(f.invocations),
    total_duration_ms: f.total_duration_ms,
    memory_mb_invocations: f.memory_mb_invocations,
    max_memory_mb: String(f.max_memory_mb),
    total_cpu_ms: f.total_cpu_ms,
    mb_ms: f.mb_ms,
    billed_mb_ms: f.billed_mb_ms,
    billed_plan_id: planId,
    cold_starts: f.cold_starts,
    errors: f.errors,
    duration_sketch: JSON.parse(JSON.stringify(f.duration_sketch)) as unknown,
  };
}

const metering: Metering = { planId: 'plan-a', rules: { ...defaultPlanRules, duration_granularity_ms: 100, memory_step_mb: 128 }, allocatedMemoryMb: null };

const eventArb: fc.Arbitrary<Event> = fc.record({
  invocations: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 50 })),
  durationThousandths: fc.integer({ min: 0, max: 5_000_000 }),
  memoryThousandths: fc.integer({ min: 1, max: 4_096_000 }),
  cpu: fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: null }),
  coldStart: fc.boolean(),
  error: fc.boolean(),
});

/** Events cut into 1–5 non-empty consecutive parts. */
const partsArb = fc.array(eventArb, { minLength: 1, maxLength: 60 }).chain((events) =>
  fc.array(fc.integer({ min: 1, max: events.length }), { maxLength: 4 }).map((cuts) => {
    const points = [...new Set([0, ...cuts, events.length])].sort((a, b) => a - b);
    return points.slice(1).map((end, i) => events.slice(points[i], end));
  }),
);

/** Exact percentile_cont over every invocation (an event of n counts n times its mean). */
function exactPercentile(events: readonly Event[], q: number): number {
  const values = events.flatMap((e) => Array.from({ length: e.invocations }, () => Number(decimalOf(e.durationThousandths)) / e.invocations)).sort((a, b) => a - b);
  return percentileCont(values, q)!;
}

describe('aggregate window states', () => {
  it('a merged window equals one state of all its events, from memory or from stored rows', () => {
    fc.assert(
      fc.property(partsArb, (parts) => {
        const all = WindowState.fromRaw(groupOf(parts.flat()), metering).figures();
        const inMemory = new WindowState();
        const fromRows = new WindowState();
        for (const part of parts) {
          const state = WindowState.fromRaw(groupOf(part), metering);
          inMemory.merge(state);
          const row = storedOf(state, metering.planId);
          assert.ok(hasMergeState(row));
          fromRows.merge(WindowState.fromStored(row));
        }
        for (const merged of [inMemory.figures(), fromRows.figures()]) {
          const { p50_duration_ms: p50, p95_duration_ms: p95, ...figures } = merged;
          const { p50_duration_ms: exact50, p95_duration_ms: exact95, ...expected } = all;
          assert.deepEqual(figures, expected);
          assert.ok(Math.abs(p50 - exact50) <= 0.005 * exact50 + 1e-9, `p50 ${p50} vs ${exact50}`);
          assert.ok(Math.abs(p95 - exact95) <= 0.005 * exact95 + 1e-9, `p95 ${p95} vs ${exact95}`);
        }
        assert.equal(inMemory.billedPlanId(), 'plan-a');
      }),
      { numRuns: 300 },
    );
  });

  it('computes a raw window’s percentiles exactly, per invocation', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 40 }), (events) => {
        const f = WindowState.fromRaw(groupOf(events), metering).figures();
        assert.equal(f.p50_duration_ms, exactPercentile(events, 0.5));
        assert.equal(f.p95_duration_ms, exactPercentile(events, 0.95));
      }),
      { numRuns: 300 },
    );
  });

  it('knows when the parts of a merged window were metered under different plans', () => {
    const part = (planId: string | null) => WindowState.fromRaw(groupOf([{ invocations: 1, durationThousandths: 1000, memoryThousandths: 128_000, cpu: null, coldStart: false, error: false }]), { ...metering, planId });
    const mixed = new WindowState().merge(part('plan-a')).merge(part('plan-b'));
    assert.equal(mixed.billedPlanId(), undefined);
    mixed.setBilled('256000', 'plan-a');
    assert.equal(mixed.billedPlanId(), 'plan-a');
    assert.equal(mixed.figures().billed_mb_ms, '256000');
  });

  it('refuses a raw group whose per-event lists disagree with its event count', () => {
    const group = { ...groupOf([{ invocations: 1, durationThousandths: 1, memoryThousandths: 1, cpu: null, coldStart: false, error: false }]), events: 2 };
    assert.throws(() => WindowState.fromRaw(group, metering), /raw window group is inconsistent/);
  });

  it('tells rows without their merge state (written by other code) from the stage’s own', () => {
    const state = WindowState.fromRaw(groupOf([{ invocations: 1, durationThousandths: 1, memoryThousandths: 1, cpu: null, coldStart: false, error: false }]), metering);
    assert.equal(hasMergeState(storedOf(state, null)), true);
    assert.equal(hasMergeState({ ...storedOf(state, null), duration_sketch: null }), false);
    assert.equal(hasMergeState({ ...storedOf(state, null), memory_mb_invocations: null }), false);
  });
});
