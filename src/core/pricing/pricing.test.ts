/** The pure pricing core: plans, money, per-invocation billed quantities, bills, adjustments. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Dec,
  PlanValidationError,
  adjustmentLines,
  billedMbMsSql,
  billedQuantities,
  computeBill,
  minorUnitDigits,
  parsePlan,
  roundHalfUp,
  safeParsePlan,
  seedPlans,
  standardRubPlan,
  standardUsdPlan,
  type Bill,
  type BillLine,
  type PlanInput,
  type PlanRules,
  type UsageChunk,
} from './index.js';

const january = { start: '2025-01-01T00:00:00Z', end: '2025-02-01T00:00:00Z' };
const at = (day: number, hour = 0): string => `2025-01-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:00:00Z`;
const chunk = (service: string, start: string, q: Partial<Omit<UsageChunk, 'service' | 'start'>> = {}): UsageChunk => ({
  service,
  start,
  invocations: 0,
  billedMbMs: '0',
  coldStarts: 0,
  cpuMs: '0',
  ...q,
});
const rules = (r: Partial<PlanRules> = {}): PlanRules => ({
  duration_granularity_ms: 1,
  min_billed_duration_ms: 0,
  memory_step_mb: 1,
  billed_memory: 'observed',
  max_memory_mb: null,
  ...r,
});
const line = (bill: Bill, service: string, meter: BillLine['meter']): BillLine => {
  const l = bill.lines.find((x) => x.service === service && x.meter === meter);
  assert.ok(l, `no ${meter} line for ${service} in ${JSON.stringify(bill.lines.map((x) => `${x.service}/${x.meter}`))}`);
  return l;
};
const planErrors = (input: unknown): string[] => {
  const r = safeParsePlan(input);
  assert.equal(r.ok, false, 'the plan should be rejected');
  return r.ok ? [] : r.error.issues.map((i) => i.message);
};

describe('pricing core', () => {
  describe('plans', () => {
    it('parses the seed plans, deriving per-MB·ms prices and MB·ms allowances from GB-s exactly', () => {
      const usd = parsePlan(standardUsdPlan);
      assert.equal(usd.price_per_mb_ms, '0.00000000001627607421875'); // 0.0000166667 / 1 024 000
      assert.equal(usd.price_per_gb_s, '0.0000166667');
      assert.equal(usd.free_tier_mb_ms, '409600000000'); // 400 000 GB-s
      assert.equal(usd.free_tier_invocations, '1000000');
      const rub = parsePlan(standardRubPlan);
      assert.equal(rub.currency, 'RUB');
      assert.equal(rub.price_per_mb_ms, '0.000000000927734375'); // 0.00095 / 1 024 000
      assert.equal(rub.free_tier_mb_ms, '36864000000'); // 10 GB·h
      assert.deepEqual(rub.rules, { duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128, billed_memory: 'allocated', max_memory_mb: null });
      assert.equal(seedPlans.length, 2);
      // Parsing a parsed plan is the identity.
      assert.deepEqual(parsePlan(usd), usd);
    });

    it('returns frozen plans, and a plan it returned is taken back as it is (not validated again)', () => {
      const usd = parsePlan(standardUsdPlan);
      assert.ok(Object.isFrozen(usd) && Object.isFrozen(usd.rules));
      assert.throws(() => ((usd as { currency: string }).currency = 'EUR'), TypeError);
      assert.equal(parsePlan(usd), usd);
      const copy = { ...usd };
      assert.notEqual(parsePlan(copy), copy, 'a copy is validated again');
      assert.deepEqual(parsePlan(copy), usd);
    });

    it('parses a pricing_plans row as the database returns it and fills defaults', () => {
      const plan = parsePlan({
        id: '6f1c1a52-0c1e-4a8e-9a57-1f0c5f7d1e11',
        name: 'row',
        version: 2,
        tenant_id: null,
        previous_version_id: null,
        currency: 'EUR',
        price_per_invocation: '0.00000020000000000000',
        price_per_mb_ms: '0.00000000001600000000',
        price_per_cold_start: '0.00000000000000000000',
        price_per_cpu_ms: '0.00000000000000000000',
        free_tier_invocations: 1000000n,
        free_tier_mb_ms: '409600000000.000',
        rules: {},
        active: true,
        created_at: new Date(),
      });
      assert.equal(plan.price_per_invocation, '0.0000002');
      assert.equal(plan.price_per_mb_ms, '0.000000000016');
      assert.equal(plan.price_per_gb_s, '0.000016384');
      assert.equal(plan.free_tier_gb_s, '400000');
      assert.deepEqual(plan.rules, rules());
      assert.equal(plan.version, 2);
    });

    it('rejects a negative price with a clear message', () => {
      assert.deepEqual(planErrors({ currency: 'USD', price_per_invocation: '-0.0000002' }), [
        'price_per_invocation must not be negative (got "-0.0000002")',
      ]);
    });

    it('rejects a duration granularity ≤ 0, a negative minimum and a zero memory step', () => {
      const messages = planErrors({ currency: 'USD', rules: { duration_granularity_ms: 0, min_billed_duration_ms: -1, memory_step_mb: 0 } });
      assert.equal(messages.length, 3);
      assert.match(messages[0] ?? '', /^rules\.duration_granularity_ms must be a positive whole number of ms .*\(got 0\)$/);
      assert.match(messages[1] ?? '', /^rules\.min_billed_duration_ms must be a whole number of ms .*\(got -1\)$/);
      assert.match(messages[2] ?? '', /^rules\.memory_step_mb must be a positive whole number of MB .*\(got 0\)$/);
      assert.match(planErrors({ currency: 'USD', rules: { duration_granularity_ms: 12.5 } })[0] ?? '', /got 12\.5/);
    });

    it('rejects a bad currency: lower case, unknown code, missing', () => {
      for (const currency of ['usd', 'ABC', 'US', 42]) {
        assert.match(planErrors({ currency })[0] ?? '', /^currency must be an upper-case ISO 4217 code/);
      }
      assert.match(planErrors({})[0] ?? '', /^currency must be/);
    });

    it('rejects prices given as JS numbers, unknown rules, unknown fields and disagreeing MB·ms / GB-s prices', () => {
      assert.match(planErrors({ currency: 'USD', price_per_mb_ms: 1.6e-11 })[0] ?? '', /must be a decimal string .* not a JS number/);
      assert.match(planErrors({ currency: 'USD', price_per_cpu_ms: 'cheap' })[0] ?? '', /price_per_cpu_ms must be a decimal string/);
      assert.match(planErrors({ currency: 'USD', rules: { time_of_day: [] } })[0] ?? '', /^rules\.time_of_day is not a rule this version knows/);
      assert.match(planErrors({ currency: 'USD', price_per_invocaton: '1' })[0] ?? '', /^price_per_invocaton is not a pricing plan field/);
      assert.match(planErrors({ currency: 'USD', rules: { billed_memory: 'peak' } })[0] ?? '', /billed_memory must be "allocated" or "observed"/);
      assert.match(
        planErrors({ currency: 'USD', price_per_mb_ms: '0.000000000016', price_per_gb_s: '0.0000166667' })[0] ?? '',
        /price_per_mb_ms \(0\.000000000016\) and price_per_gb_s \(0\.0000166667\) disagree/,
      );
      // Both given and equal is fine.
      assert.equal(parsePlan({ currency: 'USD', price_per_mb_ms: '0.000000000016', price_per_gb_s: '0.000016384' }).price_per_mb_ms, '0.000000000016');
    });

    it('parsePlan throws a PlanValidationError listing every problem at once', () => {
      assert.throws(
        () => parsePlan({ currency: 'usd', price_per_invocation: '-1', rules: { duration_granularity_ms: 0 } }),
        (e: unknown) =>
          e instanceof PlanValidationError &&
          e.issues.length === 3 &&
          /currency must be/.test(e.message) &&
          /price_per_invocation must not be negative/.test(e.message) &&
          /duration_granularity_ms/.test(e.message),
      );
    });
  });

  describe('money', () => {
    it('takes minor-unit digits from the currency: USD/RUB 2, JPY 0, BHD 3', () => {
      assert.deepEqual(
        ['USD', 'RUB', 'EUR', 'JPY', 'BHD'].map((c) => minorUnitDigits(c)),
        [2, 2, 2, 0, 3],
      );
      assert.throws(() => minorUnitDigits('XYZ'), /not an ISO 4217 currency code/);
    });

    it('rounds exactly half a minor unit up (away from zero), never to even', () => {
      const r = (v: string, c: string): string => roundHalfUp(new Dec(v), c).toFixed(minorUnitDigits(c));
      assert.equal(r('0.005', 'USD'), '0.01');
      assert.equal(r('0.015', 'USD'), '0.02');
      assert.equal(r('0.025', 'USD'), '0.03'); // banker's rounding would give 0.02
      assert.equal(r('0.0049999999999999999999', 'USD'), '0.00');
      assert.equal(r('2.5', 'JPY'), '3');
      assert.equal(r('0.0005', 'BHD'), '0.001');
      assert.equal(r('-0.005', 'USD'), '-0.01');
    });
  });

  describe('billed quantities per invocation', () => {
    const q = (inv: Parameters<typeof billedQuantities>[0], r: PlanRules): string[] => {
      const b = billedQuantities(inv, r);
      return [b.durationMsPerInvocation, b.memoryMb, b.mbMsPerInvocation, b.mbMs].map((d) => d.toFixed());
    };

    it('rounds duration up to 1 ms and memory up to 1 MB by default', () => {
      assert.deepEqual(q({ invocations: 1, durationMs: 0.4, memoryMb: 64.5 }, rules()), ['1', '65', '65', '65']);
      assert.deepEqual(q({ invocations: 1, durationMs: 12, memoryMb: 128 }, rules()), ['12', '128', '1536', '1536']);
    });

    it('applies 100 ms granularity, a 100 ms minimum and a 128 MB step; exact multiples stay', () => {
      const r = rules({ duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128 });
      assert.deepEqual(q({ invocations: 1, durationMs: 200, memoryMb: 128 }, r), ['200', '128', '25600', '25600']);
      assert.deepEqual(q({ invocations: 1, durationMs: '200.001', memoryMb: 129 }, r), ['300', '256', '76800', '76800']);
      assert.deepEqual(q({ invocations: 1, durationMs: 0, memoryMb: 64 }, r), ['100', '128', '12800', '12800']);
      assert.deepEqual(q({ invocations: 1, durationMs: 0, memoryMb: 64 }, rules({ memory_step_mb: 128 })), ['0', '128', '0', '0']);
      // The minimum applies after rounding: 130 ms with granularity 100 and minimum 250 → 250.
      assert.deepEqual(q({ invocations: 1, durationMs: 130, memoryMb: 1 }, rules({ duration_granularity_ms: 100, min_billed_duration_ms: 250 })), ['250', '1', '250', '250']);
    });

    it('an event of n invocations is billed as n invocations of its mean duration, multiplied after rounding', () => {
      // 3 invocations, 100 ms in total: each 33.3 ms → 34 ms → 102 ms, not 100 ms.
      assert.deepEqual(q({ invocations: 3, durationMs: 100, memoryMb: 64 }, rules()), ['34', '64', '2176', '6528']);
      // With 100 ms granularity each is 100 ms: 300 ms in all, not 100 ms rounded once.
      assert.deepEqual(q({ invocations: 3, durationMs: 100, memoryMb: 64 }, rules({ duration_granularity_ms: 100 })), ['100', '64', '6400', '19200']);
      const b = billedQuantities({ invocations: 3, durationMs: 100, memoryMb: 64 }, rules());
      assert.equal(b.durationMs.toFixed(), '102');
      assert.equal(b.invocations.toFixed(), '3');
    });

    it("bills the allocated memory limit when the plan says so and one is known, else the observed memory", () => {
      const allocated = rules({ billed_memory: 'allocated' });
      assert.deepEqual(q({ invocations: 1, durationMs: 10, memoryMb: 50, allocatedMemoryMb: 256 }, allocated), ['10', '256', '2560', '2560']);
      assert.deepEqual(q({ invocations: 1, durationMs: 10, memoryMb: 50, allocatedMemoryMb: null }, allocated), ['10', '50', '500', '500']);
      assert.deepEqual(q({ invocations: 1, durationMs: 10, memoryMb: 50, allocatedMemoryMb: 256 }, rules()), ['10', '50', '500', '500']);
    });

    it('per-invocation rounding differs from rounding averages, and the bill uses the per-invocation sum', () => {
      const r = rules({ duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128 });
      const invocations = [
        { durationMs: 10, memoryMb: 100 }, //    100 ms × 128 MB =  12 800
        { durationMs: 250, memoryMb: 300 }, //   300 ms × 384 MB = 115 200
        { durationMs: 1000, memoryMb: 128 }, // 1000 ms × 128 MB = 128 000
      ];
      const perInvocation = invocations.reduce((s, i) => s.plus(billedQuantities({ invocations: 1, ...i }, r).mbMs), new Dec(0));
      assert.equal(perInvocation.toFixed(), '256000');
      // From averages: 420 ms → 500 ms, 176 MB → 256 MB, × 3 = 384 000.
      const fromAverages = billedQuantities({ invocations: 3, durationMs: 1260, memoryMb: 176 }, r).mbMs;
      assert.equal(fromAverages.toFixed(), '384000');
      assert.notEqual(perInvocation.toFixed(), fromAverages.toFixed());
      const plan = { currency: 'USD', price_per_mb_ms: '0.000001', rules: r };
      const bill = computeBill(plan, [chunk('f', at(1), { invocations: 3, billedMbMs: perInvocation.toFixed() })], january);
      assert.equal(line(bill, 'f', 'compute').quantity, '256000');
      assert.equal(line(bill, 'f', 'compute').amount, '0.26');
    });

    it('rejects impossible events', () => {
      assert.throws(() => billedQuantities({ invocations: 0, durationMs: 1, memoryMb: 1 }, rules()), /invocations must be a whole number ≥ 1/);
      assert.throws(() => billedQuantities({ invocations: 1.5, durationMs: 1, memoryMb: 1 }, rules()), /invocations must be a whole number ≥ 1/);
      assert.throws(() => billedQuantities({ invocations: 1, durationMs: -1, memoryMb: 1 }, rules()), /durationMs must not be negative/);
      assert.throws(() => billedQuantities({ invocations: 1, durationMs: 1, memoryMb: 0 }, rules()), /memoryMb must be positive/);
    });

    it('expresses the same rule as a SQL expression with numeric literals only', () => {
      const r = rules({ duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128 });
      const sql = billedMbMsSql(r, 'u.duration_ms', 'u.memory_mb', 'u.invocations');
      assert.equal(
        sql,
        '((u.invocations)::numeric * GREATEST((div((u.duration_ms)::numeric, ((u.invocations)::numeric * 100)) + CASE WHEN mod((u.duration_ms)::numeric, ((u.invocations)::numeric * 100)) > 0 THEN 1 ELSE 0 END) * 100, 100) * (div((u.memory_mb)::numeric, 128) + CASE WHEN mod((u.memory_mb)::numeric, 128) > 0 THEN 1 ELSE 0 END) * 128)',
      );
      const stripped = sql.replace(/u\.(duration_ms|memory_mb|invocations)/g, '').replace(/\b(div|mod|GREATEST|CASE|WHEN|THEN|ELSE|END|numeric)\b/g, '');
      assert.match(stripped, /^[\d\s()*+>,:]*$/);
      const allocated = billedMbMsSql({ ...r, billed_memory: 'allocated' }, 'u.duration_ms', 'u.memory_mb', 'u.invocations', 'limits.memory_limit_mb');
      assert.ok(allocated.includes('COALESCE((limits.memory_limit_mb)::numeric, (u.memory_mb)::numeric)'));
    });

    it('refuses SQL column arguments and rules that are not plain', () => {
      const r = rules();
      assert.throws(() => billedMbMsSql(r, 'duration_ms); DROP TABLE bills; --', 'memory_mb', 'invocations'), /durationColumn must be a column reference/);
      assert.throws(() => billedMbMsSql(r, 'duration_ms', 'memory_mb', "invocations' OR 1=1"), /invocationsColumn must be a column reference/);
      const bad = { ...r, duration_granularity_ms: '100) + (SELECT 1' } as unknown as PlanRules;
      assert.throws(() => billedMbMsSql(bad, 'duration_ms', 'memory_mb', 'invocations'), /invalid metering rules/);
      assert.throws(() => billedMbMsSql(rules({ billed_memory: 'allocated' }), 'd', 'm', 'n'), /needs allocatedMemoryColumn/);
      assert.doesNotThrow(() => billedMbMsSql(r, '"Usage"."duration_ms"', 'memory_mb', 'raw.u.invocations'));
    });
  });

  describe('bills', () => {
    it('consumes the free tier in time order across services and exhausts it mid-period', () => {
      const plan = { currency: 'USD', price_per_invocation: '0.01', price_per_mb_ms: '0.0001', free_tier_invocations: 100, free_tier_mb_ms: '1000' };
      const usage = [
        chunk('a', at(2, 2), { invocations: 50, billedMbMs: '300' }),
        chunk('b', at(2, 3), { invocations: 20, billedMbMs: '200' }),
        chunk('b', at(2, 0), { invocations: 60, billedMbMs: '400' }),
        chunk('a', at(2, 1), { invocations: 30, billedMbMs: '500' }),
      ];
      const bill = computeBill(plan, usage, january);
      // b@00 takes 60 free, a@01 30, a@02 the last 10 of its 50, b@03 none.
      const pick = (l: BillLine) => [l.quantity, l.freeQuantity, l.billableQuantity, l.amount];
      assert.deepEqual(pick(line(bill, 'a', 'invocations')), ['80', '40', '40', '0.40']);
      assert.deepEqual(pick(line(bill, 'b', 'invocations')), ['80', '60', '20', '0.20']);
      // MB·ms: b@00 400, a@01 500, a@02 the last 100.
      assert.deepEqual(pick(line(bill, 'a', 'compute')), ['800', '600', '200', '0.02']);
      assert.deepEqual(pick(line(bill, 'b', 'compute')), ['600', '400', '200', '0.02']);
      assert.equal(bill.total, '0.64');
    });

    it('breaks free-tier ties at the same instant by service name', () => {
      const plan = { currency: 'USD', price_per_invocation: '0.01', free_tier_invocations: '15' };
      const bill = computeBill(plan, [chunk('b', at(3), { invocations: 10 }), chunk('a', at(3), { invocations: 10 })], january);
      assert.equal(line(bill, 'a', 'invocations').freeQuantity, '10');
      assert.equal(line(bill, 'b', 'invocations').freeQuantity, '5');
      assert.equal(line(bill, 'b', 'invocations').amount, '0.05');
    });

    it('zero usage gives no lines and a zero total in the currency’s format', () => {
      const usd = computeBill(standardUsdPlan, [], january);
      assert.deepEqual(usd.lines, []);
      assert.equal(usd.total, '0.00');
      assert.equal(usd.totalUnrounded, '0');
      assert.equal(usd.currency, 'USD');
      assert.deepEqual(usd.period, { start: '2025-01-01T00:00:00.000Z', end: '2025-02-01T00:00:00.000Z' });
      // A chunk with all-zero quantities changes nothing.
      assert.deepEqual(computeBill(standardUsdPlan, [chunk('idle', at(5))], january), usd);
      assert.equal(computeBill({ currency: 'JPY' }, [], january).total, '0');
    });

    it('keeps lines wholly covered by the free tier, omits meters the plan neither prices nor gives free', () => {
      const bill = computeBill(standardUsdPlan, [chunk('f', at(1), { invocations: 10, billedMbMs: '5000', coldStarts: 3, cpuMs: '42' })], january);
      assert.deepEqual(
        bill.lines.map((l) => [l.meter, l.quantity, l.freeQuantity, l.billableQuantity, l.amount]),
        [
          ['invocations', '10', '10', '0', '0.00'],
          ['compute', '5000', '5000', '0', '0.00'],
        ],
      );
      // Priced, they appear.
      const priced = computeBill({ ...standardUsdPlan, price_per_cold_start: '0.001', price_per_cpu_ms: '0.00001' }, [chunk('f', at(1), { coldStarts: 3, cpuMs: '42' })], january);
      assert.deepEqual(
        priced.lines.map((l) => [l.meter, l.unit, l.amountUnrounded, l.amount]),
        [
          ['cold_starts', 'cold-start', '0.003', '0.00'],
          ['cpu', 'CPU-ms', '0.00042', '0.00'],
        ],
      );
    });

    it('rounds a line at exactly half a minor unit up', () => {
      const plan = { currency: 'USD', price_per_invocation: '0.00001' };
      const bill = computeBill(plan, [chunk('x', at(1), { invocations: 2500 }), chunk('y', at(1), { invocations: 500 })], january);
      assert.equal(line(bill, 'x', 'invocations').amountUnrounded, '0.025');
      assert.equal(line(bill, 'x', 'invocations').amount, '0.03');
      assert.equal(line(bill, 'y', 'invocations').amountUnrounded, '0.005');
      assert.equal(line(bill, 'y', 'invocations').amount, '0.01');
    });

    it('bills a 0-decimal currency (JPY) in whole yen, half-up', () => {
      const plan = { currency: 'JPY', price_per_invocation: '0.5', price_per_cold_start: '1.5' };
      const bill = computeBill(plan, [chunk('f', at(1), { invocations: 5, coldStarts: 1 })], january);
      assert.equal(bill.minorUnitDigits, 0);
      assert.equal(line(bill, 'f', 'invocations').amount, '3'); // 2.5 → 3
      assert.equal(line(bill, 'f', 'cold_starts').amount, '2'); // 1.5 → 2
      assert.equal(bill.total, '5');
      assert.equal(bill.totalUnrounded, '4');
    });

    it('bills a 3-decimal currency (BHD) to the fils, half-up', () => {
      const plan = { currency: 'BHD', price_per_invocation: '0.0001', price_per_mb_ms: '0.0000001' };
      const bill = computeBill(plan, [chunk('f', at(1), { invocations: 5, billedMbMs: '12345' })], january);
      assert.equal(bill.minorUnitDigits, 3);
      assert.equal(line(bill, 'f', 'invocations').amount, '0.001'); // 0.0005 → 0.001
      assert.equal(line(bill, 'f', 'compute').amount, '0.001'); // 0.0012345 → 0.001
      assert.equal(bill.total, '0.002');
    });

    it('keeps the tiny AWS GB-s price without loss (1.6e-11 per MB·ms)', () => {
      const plan = parsePlan({ currency: 'USD', price_per_gb_s: '0.0000166667' });
      assert.equal(plan.price_per_mb_ms, '0.00000000001627607421875');
      const one = computeBill(plan, [chunk('f', at(1), { billedMbMs: '1' })], january);
      assert.equal(line(one, 'f', 'compute').amountUnrounded, '0.00000000001627607421875');
      const gbS = computeBill(plan, [chunk('f', at(1), { billedMbMs: '1024000' })], january);
      assert.equal(line(gbS, 'f', 'compute').amountUnrounded, '0.0000166667');
      // A large quantity times the tiny price: every one of the 30 significant digits kept.
      const big = computeBill(plan, [chunk('f', at(1), { billedMbMs: '123456789012345.678' })], january);
      assert.equal(line(big, 'f', 'compute').amountUnrounded, '2009.3918607734977651587890625');
      assert.equal(line(big, 'f', 'compute').amount, '2009.39');
      // A 20-digit MB·ms price given directly keeps every digit too.
      const direct = computeBill({ currency: 'USD', price_per_mb_ms: '0.00000000001627607422' }, [chunk('f', at(1), { billedMbMs: '1000000000000' })], january);
      assert.equal(line(direct, 'f', 'compute').amountUnrounded, '16.27607422');
    });

    it('prices AWS’s worked example: 3M invocations × 1 s × 512 MB on the USD seed plan', () => {
      const plan = parsePlan(standardUsdPlan);
      const perDay = billedQuantities({ invocations: 1_000_000, durationMs: 1_000_000_000, memoryMb: 300, allocatedMemoryMb: 512 }, plan.rules);
      const usage = [1, 2, 3].map((d) => chunk('api', at(d), { invocations: 1_000_000, billedMbMs: perDay.mbMs.toFixed() }));
      const bill = computeBill(plan, usage, january);
      const compute = line(bill, 'api', 'compute');
      assert.deepEqual(compute.gbS, { quantity: '1500000', freeQuantity: '400000', billableQuantity: '1100000', unitPrice: '0.0000166667' });
      assert.equal(compute.amountUnrounded, '18.33337');
      assert.equal(compute.amount, '18.33');
      assert.equal(line(bill, 'api', 'invocations').amount, '0.40');
      assert.equal(bill.total, '18.73');
      assert.equal(bill.totalUnrounded, '18.73337');
    });

    it('totals the rounded lines, not the rounded sum (they differ here)', () => {
      const plan = { currency: 'USD', price_per_invocation: '0.00001' };
      const bill = computeBill(plan, ['a', 'b', 'c'].map((s) => chunk(s, at(1), { invocations: 500 })), january);
      assert.deepEqual(bill.lines.map((l) => l.amount), ['0.01', '0.01', '0.01']);
      assert.equal(bill.totalUnrounded, '0.015');
      assert.equal(roundHalfUp(new Dec(bill.totalUnrounded), 'USD').toFixed(2), '0.02');
      assert.equal(bill.total, '0.03');
    });

    it('orders lines by service then meter whatever the input order, and carries plan and currency', () => {
      const usage = [chunk('b', at(2), { invocations: 1, billedMbMs: '1' }), chunk('a', at(9), { invocations: 1, billedMbMs: '1' })];
      const plan = { name: 'p', version: 3, currency: 'RUB', price_per_invocation: '1', price_per_mb_ms: '1' };
      const one = computeBill(plan, usage, january);
      assert.deepEqual(one, computeBill(plan, [...usage].reverse(), january));
      assert.deepEqual(one.lines.map((l) => `${l.service}/${l.meter}`), ['a/invocations', 'a/compute', 'b/invocations', 'b/compute']);
      assert.deepEqual(one.plan, { name: 'p', version: 3 });
      assert.equal(one.currency, 'RUB');
    });

    it('rejects usage outside the period and malformed quantities', () => {
      const plan = { currency: 'USD' };
      assert.throws(() => computeBill(plan, [chunk('f', '2025-02-01T00:00:00Z')], january), /usage\[0\]\.start .* is outside the billing period/);
      assert.throws(() => computeBill(plan, [chunk('f', '2024-12-31T23:00:00Z')], january), /outside the billing period/);
      assert.throws(() => computeBill(plan, [chunk('f', 'yesterday')], january), /usage\[0\]\.start must be an ISO 8601 instant/);
      assert.throws(() => computeBill(plan, [chunk('f', at(1), { invocations: 1.5 })], january), /usage\[0\]\.invocations must be a whole number/);
      assert.throws(() => computeBill(plan, [chunk('f', at(1), { billedMbMs: '-1' })], january), /usage\[0\]\.billedMbMs must be a decimal string ≥ 0/);
      assert.throws(() => computeBill(plan, [], { start: january.end, end: january.start }), /period\.end .* must be after period\.start/);
      assert.throws(() => computeBill({ currency: 'USD', price_per_invocation: '-1' }, [], january), PlanValidationError);
    });
  });

  describe('adjustments for late usage', () => {
    const plan = { currency: 'USD', price_per_invocation: '0.01', free_tier_invocations: 100 };
    const onTime = [chunk('a', at(10), { invocations: 80 }), chunk('b', at(20), { invocations: 50 })];

    it('turns late usage for a finalized period into labelled adjustment lines that reconcile the totals', () => {
      const finalized = computeBill(plan, onTime, january);
      assert.equal(finalized.total, '0.30'); // a: 80 free; b: 20 free, 30 × 0.01
      const frozen = structuredClone(finalized);
      // Late: b ran 40 invocations on the 5th, before a — it takes free units a had.
      const recomputed = computeBill(plan, [...onTime, chunk('b', at(5), { invocations: 40 })], january);
      assert.equal(recomputed.total, '0.70');
      const adj = adjustmentLines(finalized, recomputed);
      assert.deepEqual(
        adj.map((l) => [l.service, l.meter, l.quantity, l.freeQuantity, l.billableQuantity, l.amount]),
        [
          ['a', 'invocations', '0', '-20', '20', '0.20'],
          ['b', 'invocations', '40', '20', '20', '0.20'],
        ],
      );
      for (const l of adj) {
        assert.equal(l.isAdjustment, true);
        assert.deepEqual(l.originalPeriod, { start: '2025-01-01T00:00:00.000Z', end: '2025-02-01T00:00:00.000Z' });
        assert.match(l.description, /^Adjustment for 2025-01-01T00:00:00\.000Z – 2025-02-01T00:00:00\.000Z: /);
      }
      const sum = adj.reduce((s, l) => s.plus(l.amount), new Dec(finalized.total));
      assert.equal(sum.toFixed(2), recomputed.total);
      assert.deepEqual(finalized, frozen, 'the finalized bill is not changed');
    });

    it('adjusts only what previous adjustments have not covered, and nothing when nothing changed', () => {
      const finalized = computeBill(plan, onTime, january);
      const late1 = [...onTime, chunk('b', at(5), { invocations: 40 })];
      const first = adjustmentLines(finalized, computeBill(plan, late1, january));
      const second = adjustmentLines(finalized, computeBill(plan, [...late1, chunk('c', at(25), { invocations: 10 })], january), first);
      assert.deepEqual(second.map((l) => [l.service, l.quantity, l.billableQuantity, l.amount]), [['c', '10', '10', '0.10']]);
      assert.deepEqual(adjustmentLines(finalized, computeBill(plan, onTime, january)), []);
    });

    it('gives negative lines when a recomputation has less usage, and refuses mismatched bills', () => {
      const finalized = computeBill(plan, onTime, january);
      const corrected = computeBill(plan, [chunk('a', at(10), { invocations: 80 }), chunk('b', at(20), { invocations: 30 })], january);
      assert.deepEqual(adjustmentLines(finalized, corrected).map((l) => [l.service, l.quantity, l.amountUnrounded, l.amount]), [['b', '-20', '-0.2', '-0.20']]);
      const february = { start: '2025-02-01T00:00:00Z', end: '2025-03-01T00:00:00Z' };
      assert.throws(() => adjustmentLines(finalized, computeBill(plan, [], february)), /the recomputed bill covers/);
      assert.throws(() => adjustmentLines(finalized, computeBill({ ...plan, currency: 'EUR' }, onTime, january)), /cannot adjust a USD bill with a EUR/);
      assert.throws(() => adjustmentLines(finalized, computeBill({ ...plan, price_per_invocation: '0.02' }, onTime, january)), /recompute with the plan version/);
    });
  });

  describe('properties', () => {
    const scaled = (n: bigint, decimals: number): string => {
      const s = n.toString().padStart(decimals + 1, '0');
      return decimals === 0 ? s : `${s.slice(0, -decimals)}.${s.slice(-decimals)}`;
    };
    const partArb = fc.record({
      invocations: fc.bigInt({ min: 0n, max: 5000n }),
      mbMs: fc.bigInt({ min: 0n, max: 10n ** 12n }), // thousandths of MB·ms
      coldStarts: fc.bigInt({ min: 0n, max: 20n }),
      cpuMs: fc.bigInt({ min: 0n, max: 10n ** 9n }), // thousandths of CPU-ms
      order: fc.nat(),
    });
    const chunkArb = fc.record({
      service: fc.constantFrom('a', 'b', 'c', 'svc-10'),
      hour: fc.nat({ max: 24 * 31 - 1 }),
      parts: fc.array(partArb, { minLength: 1, maxLength: 4 }),
    });
    const priceArb = fc.bigInt({ min: 0n, max: 10n ** 9n }).map((n) => scaled(n, 12));
    const planArb = fc.record({
      currency: fc.constantFrom('USD', 'JPY', 'BHD', 'RUB'),
      price_per_invocation: priceArb,
      price_per_mb_ms: priceArb,
      price_per_cold_start: priceArb,
      price_per_cpu_ms: priceArb,
      free_tier_invocations: fc.bigInt({ min: 0n, max: 20_000n }),
      free_tier_mb_ms: fc.bigInt({ min: 0n, max: 4n * 10n ** 9n }).map(String),
    });
    const hourStart = (h: number): string => new Date(Date.parse(january.start) + h * 3_600_000).toISOString();
    const toChunk = (service: string, hour: number, p: { invocations: bigint; mbMs: bigint; coldStarts: bigint; cpuMs: bigint }): UsageChunk => ({
      service,
      start: hourStart(hour),
      invocations: p.invocations,
      billedMbMs: scaled(p.mbMs, 3),
      coldStarts: String(p.coldStarts),
      cpuMs: scaled(p.cpuMs, 3),
    });

    it('splitting usage chunks into any sub-chunks, in any order, never changes the bill', () => {
      fc.assert(
        fc.property(planArb, fc.array(chunkArb, { maxLength: 25 }), (plan: PlanInput, chunks) => {
          const whole = chunks.map((c) =>
            toChunk(
              c.service,
              c.hour,
              c.parts.reduce(
                (s, p) => ({ invocations: s.invocations + p.invocations, mbMs: s.mbMs + p.mbMs, coldStarts: s.coldStarts + p.coldStarts, cpuMs: s.cpuMs + p.cpuMs }),
                { invocations: 0n, mbMs: 0n, coldStarts: 0n, cpuMs: 0n },
              ),
            ),
          );
          const split = chunks
            .flatMap((c) => c.parts.map((p) => ({ order: p.order, chunk: toChunk(c.service, c.hour, p) })))
            .sort((x, y) => x.order - y.order)
            .map((x) => x.chunk);
          const a = computeBill(plan, whole, january);
          const b = computeBill(plan, split, january);
          assert.deepEqual(b, a);
          // And the money rules hold on every bill.
          let total = new Dec(0);
          for (const l of a.lines) {
            assert.equal(roundHalfUp(new Dec(l.amountUnrounded), a.currency).toFixed(a.minorUnitDigits), l.amount);
            assert.ok(new Dec(l.amountUnrounded).eq(new Dec(l.billableQuantity).times(l.unitPrice)));
            total = total.plus(l.amount);
          }
          assert.equal(total.toFixed(a.minorUnitDigits), a.total);
        }),
        { numRuns: 200 },
      );
    });

    it('free units used never exceed the allowance, and all of it is used when usage exceeds it', () => {
      fc.assert(
        fc.property(planArb, fc.array(chunkArb, { maxLength: 25 }), (plan: PlanInput, chunks) => {
          const usage = chunks.flatMap((c) => c.parts.map((p) => toChunk(c.service, c.hour, p)));
          const bill = computeBill({ ...plan, price_per_invocation: '1' }, usage, january);
          const used = bill.lines.filter((l) => l.meter === 'invocations').reduce((s, l) => s.plus(l.freeQuantity), new Dec(0));
          const demand = usage.reduce((s, c) => s.plus(String(c.invocations)), new Dec(0));
          assert.ok(used.eq(Dec.min(demand, String(plan.free_tier_invocations))));
        }),
        { numRuns: 100 },
      );
    });
  });
});
