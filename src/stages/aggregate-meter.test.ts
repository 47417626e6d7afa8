/**
 * The aggregation hot path's metering rule against the pricing core's two implementations:
 * `billedQuantities` (decimal.js) on random events and rules, and `billedMbMsSql` on PostgreSQL
 * (DATABASE_URL) or embedded PGlite.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Knex } from 'knex';
import { billedMbMsSql, billedQuantities, planRulesSchema, type PlanRules } from '../core/pricing/index.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { billedMbMsOfEvent, parseThousandths } from './aggregate-meter.js';

/** Whole thousandths as decimal text: 12345 → "12.345". */
const decimalOf = (thousandths: number): string => `${Math.floor(thousandths / 1000)}.${String(thousandths % 1000).padStart(3, '0')}`;

const rulesArb = fc
  .record({
    duration_granularity_ms: fc.oneof(fc.constantFrom(1, 100, 1000), fc.integer({ min: 1, max: 900_000 })),
    min_billed_duration_ms: fc.oneof(fc.constantFrom(0, 1, 100), fc.integer({ min: 0, max: 900_000 })),
    memory_step_mb: fc.oneof(fc.constantFrom(1, 64, 128), fc.integer({ min: 1, max: 65_536 })),
    billed_memory: fc.constantFrom('allocated' as const, 'observed' as const),
    capSteps: fc.option(fc.integer({ min: 1, max: 16 })),
  })
  .map(({ capSteps, ...r }) =>
    planRulesSchema.parse({ ...r, max_memory_mb: capSteps === null ? null : r.memory_step_mb * Math.min(capSteps, Math.floor(65_536 / r.memory_step_mb)) }),
  );

interface MeteredEvent {
  invocations: number;
  durationThousandths: number;
  memoryThousandths: number;
  allocatedMemoryMb: number | null;
}

const eventArb: fc.Arbitrary<MeteredEvent> = fc.record({
  invocations: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 1_000_000 })),
  // usage_raw.duration_ms is numeric(14,3): below 10^11 ms.
  durationThousandths: fc.oneof(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 99_999_999_999_999 })),
  memoryThousandths: fc.integer({ min: 1, max: 65_536_000 }),
  allocatedMemoryMb: fc.option(fc.integer({ min: 1, max: 65_536 }), { nil: null }),
});

const expectedMbMs = (rules: PlanRules, e: MeteredEvent): string =>
  billedQuantities(
    { invocations: e.invocations, durationMs: decimalOf(e.durationThousandths), memoryMb: decimalOf(e.memoryThousandths), allocatedMemoryMb: e.allocatedMemoryMb },
    rules,
  ).mbMs.toFixed();

describe('aggregate metering (billed MB·ms per event)', () => {
  it('equals billedQuantities(...).mbMs for any event and rules, including products beyond 2^53', () => {
    fc.assert(
      fc.property(rulesArb, eventArb, (rules, e) => {
        const fast = billedMbMsOfEvent(rules, e.invocations, e.durationThousandths, e.memoryThousandths, e.allocatedMemoryMb);
        assert.equal(String(fast), expectedMbMs(rules, e));
      }),
      { numRuns: 3000 },
    );
  });

  it('rounds each invocation, not the event: 2 invocations of 250 ms total bill 2 × 200 ms at 100 ms granularity', () => {
    const rules = planRulesSchema.parse({ duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128, billed_memory: 'observed' });
    assert.equal(billedMbMsOfEvent(rules, 2, 250_000, 200_000, null), 2 * 200 * 256);
    assert.equal(billedMbMsOfEvent(rules, 1, 0, 1, null), 100 * 128); // the minimum, and memory rounded up to a step
  });

  it('reads string_agg lists of numeric(·,3) text as exact thousandths, and refuses anything else', () => {
    assert.deepEqual([...parseThousandths('12.345,0.5,7,0.000,99999999999.999')], [12_345, 500, 7000, 0, 99_999_999_999_999]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 99_999_999_999_999 }), { minLength: 1, maxLength: 30 }), (values) => {
        const parsed = parseThousandths(values.map(decimalOf).join(','));
        assert.deepEqual([...parsed], values);
        // x / 1000 is the double PostgreSQL's numeric::float8 (and Number) gives.
        values.forEach((v, i) => assert.equal(parsed[i]! / 1000, Number(decimalOf(v))));
      }),
    );
    for (const bad of ['', '1,,2', '1.2345', '-1', '1e5', '1.2.3', '12 ']) assert.throws(() => parseThousandths(bad), /not a list of decimals/, bad);
  });

  describe('against billedMbMsSql on PostgreSQL', () => {
    let t: TestDatabase;
    before(async function () {
      this.timeout(120_000);
      t = await freshDatabase();
    });
    after(async () => {
      await t?.drop();
    });

    it('gives the same figure as the SQL rule the price stage sums, for random events under random rules', async () => {
      const cases = fc.sample(fc.tuple(rulesArb, fc.array(eventArb, { minLength: 40, maxLength: 40 })), { numRuns: 6, seed: 20261025 });
      for (const [rules, events] of cases) {
        const sql = billedMbMsSql(rules, 'e.d', 'e.m', 'e.n', 'e.a');
        const result = await t.db.raw<{ rows: { billed: string }[] }>(
          `SELECT (${sql})::text AS billed FROM unnest(?::int[], ?::numeric[], ?::numeric[], ?::int[]) WITH ORDINALITY AS e(n, d, m, a, k) ORDER BY k`,
          [
            events.map((e) => e.invocations),
            events.map((e) => decimalOf(e.durationThousandths)),
            events.map((e) => decimalOf(e.memoryThousandths)),
            events.map((e) => e.allocatedMemoryMb),
          ] as Knex.Value[],
        );
        const fast = events.map((e) => String(billedMbMsOfEvent(rules, e.invocations, e.durationThousandths, e.memoryThousandths, e.allocatedMemoryMb)));
        assert.deepEqual(fast, result.rows.map((r) => r.billed.replace(/\.0+$/, '')), JSON.stringify(rules));
      }
    });
  });
});
