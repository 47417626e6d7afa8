/**
 * The billing service against a real PostgreSQL (DATABASE_URL) or embedded PGlite: one named test
 * per money rule, plan changes, the bill lifecycle enforced by the database, late usage, the
 * monthly close in each tenant's time zone and the running cost. Usage is written into
 * usage_aggregate (and usage_raw where a window must be recomputed) as the aggregate stage would.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { computeBill, parsePlan, type UsageChunk } from '../core/pricing/index.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { Billing, BillingServiceError, type ComposedBill, type PricedLine } from './index.js';
import { assignPlan, createPlan, createService, createTenant, defaultPlanId, insertHours, insertRawEvent } from './testing.js';

/** The bits of a line a test compares. */
const brief = (l: PricedLine) => [l.service, l.meter, l.quantity, l.freeQuantity, l.amount] as const;

const at = (iso: string) => () => new Date(iso);

describe('billing service', function () {
  let t: TestDatabase;

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase();
  });
  after(async () => t?.drop());

  /** A fresh USD tenant on its own plan, with services "api" and "worker". */
  async function tenantOnPlan(plan: Record<string, unknown>, options: { currency?: string; timezone?: string } = {}) {
    const currency = options.currency ?? 'USD';
    const tenantId = await createTenant(t.db, { currency, ...(options.timezone ? { timezone: options.timezone } : {}) });
    const planId = await createPlan(t.db, { name: `plan-${tenantId.slice(0, 8)}`, currency, ...plan });
    await assignPlan(t.db, tenantId, planId, '2000-01-01T00:00:00Z');
    const api = await createService(t.db, tenantId, 'api');
    const worker = await createService(t.db, tenantId, 'worker');
    const hour = (service: typeof api, start: string, invocations: number, billedMbMs = '0', extra: { coldStarts?: number; cpuMs?: string } = {}) =>
      insertHours(t.db, [{ tenantId, ...service, start, invocations, billedMbMs, planId, ...extra }]);
    return { tenantId, planId, api, worker, hour };
  }

  describe('money rules', () => {
    it('free tier exhausted mid-period: earlier hours are free, the crossing hour is split, later hours are billed, across services in time order', async () => {
      const { tenantId, api, worker, hour } = await tenantOnPlan({
        price_per_invocation: '0.001',
        price_per_mb_ms: '0.000001',
        free_tier_invocations: '1000',
        free_tier_mb_ms: '50000',
      });
      // Walk: api 10:00 (600 inv, 30 000 MB·ms) all free; worker 11:00 (700, 40 000) takes the
      // last 400 inv and 20 000 MB·ms; api on the 2nd (300, 10 000) is all billed.
      await hour(api, '2026-10-01T10:00:00Z', 600, '30000');
      await hour(worker, '2026-10-01T11:00:00Z', 700, '40000');
      await hour(api, '2026-10-02T09:00:00Z', 300, '10000');
      const bill = await new Billing({ db: t.db }).calculate(tenantId, { month: '2026-10' });
      assert.deepEqual(bill.lines.map(brief), [
        ['api', 'invocations', '900', '600', '0.30'], // 300 × 0.001
        ['api', 'compute', '40000', '30000', '0.01'], // 10 000 × 0.000001
        ['worker', 'invocations', '700', '400', '0.30'], // 300 × 0.001
        ['worker', 'compute', '40000', '20000', '0.02'], // 20 000 × 0.000001
      ]);
      assert.equal(bill.total, '0.63');
    });

    it('zero usage: a stored bill with no lines and a total of 0.00', async () => {
      const { tenantId } = await tenantOnPlan({ price_per_invocation: '0.001' });
      const bill = await new Billing({ db: t.db }).generate(tenantId, { month: '2026-10' });
      assert.equal(bill.status, 'draft');
      assert.deepEqual(bill.lines, []);
      assert.equal(bill.total, '0.00');
      const row = (await t.db('bills').where({ id: bill.id }).first()) as { total_amount: string; period_start: Date };
      assert.equal(row.total_amount, '0.0000');
      assert.equal(row.period_start.toISOString(), '2026-10-01T00:00:00.000Z');
    });

    it('rounding at exactly half a minor unit goes up (0.005 → 0.01), just below goes down (0.004 → 0.00)', async () => {
      const { tenantId, api, worker, hour } = await tenantOnPlan({ price_per_invocation: '0.001' });
      await hour(api, '2026-10-03T00:00:00Z', 5);
      await hour(worker, '2026-10-03T00:00:00Z', 4);
      const bill = await new Billing({ db: t.db }).calculate(tenantId, { month: '2026-10' });
      assert.deepEqual(
        bill.lines.map((l) => [l.service, l.amountUnrounded, l.amount]),
        [
          ['api', '0.005', '0.01'],
          ['worker', '0.004', '0.00'],
        ],
      );
      assert.equal(bill.total, '0.01');
      assert.equal(bill.totalUnrounded, '0.009');
    });

    it('a 0-decimal currency (JPY) is billed in whole yen, half-up', async () => {
      const { tenantId, api, worker, hour } = await tenantOnPlan({ price_per_invocation: '0.5' }, { currency: 'JPY', timezone: 'Asia/Tokyo' });
      // Asia/Tokyo's October starts at 2026-09-30T15:00Z.
      await hour(api, '2026-09-30T15:00:00Z', 3); // 1.5 yen → 2
      await hour(worker, '2026-10-10T00:00:00Z', 5); // 2.5 yen → 3
      const bill = await new Billing({ db: t.db }).generate(tenantId, { month: '2026-10' });
      assert.deepEqual(
        bill.lines.map((l) => [l.service, l.amount]),
        [
          ['api', '2'],
          ['worker', '3'],
        ],
      );
      assert.equal(bill.total, '5');
      assert.equal(bill.currency, 'JPY');
      assert.equal(bill.periodStart, '2026-09-30T15:00:00.000Z');
    });

    it('compressed usage bills exactly what computeBill bills over every hourly chunk (random months)', async function () {
      this.timeout(120_000);
      const planInput = { currency: 'USD', price_per_invocation: '0.0003', price_per_mb_ms: '0.0000007', price_per_cold_start: '0.0011', price_per_cpu_ms: '0.00002', free_tier_invocations: '500', free_tier_mb_ms: '90000', free_tier_cpu_ms: '20000' };
      const hourArb = fc.record({
        service: fc.constantFrom('api', 'worker', 'Zeta'),
        hour: fc.integer({ min: 0, max: 30 * 24 }),
        invocations: fc.integer({ min: 1, max: 400 }),
        mbMs: fc.integer({ min: 0, max: 60_000_000 }).map((v) => (v / 1000).toFixed(3)),
        coldStarts: fc.integer({ min: 0, max: 3 }),
        cpuMs: fc.integer({ min: 0, max: 9000 }).map(String),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(hourArb, { minLength: 0, maxLength: 25 }), async (hours) => {
          const { tenantId, planId, api, worker } = await tenantOnPlan(planInput);
          const zeta = await createService(t.db, tenantId, 'Zeta');
          const ids = { api, worker, Zeta: zeta };
          const seen = new Set<string>();
          const chunks: UsageChunk[] = [];
          for (const h of hours) {
            const start = new Date(Date.parse('2026-10-01T00:00:00Z') + h.hour * 3_600_000).toISOString();
            if (seen.has(`${h.service}@${start}`)) continue;
            seen.add(`${h.service}@${start}`);
            await insertHours(t.db, [{ tenantId, ...ids[h.service], start, invocations: h.invocations, billedMbMs: h.mbMs, coldStarts: h.coldStarts, cpuMs: h.cpuMs, planId }]);
            chunks.push({ service: h.service, start, invocations: h.invocations, billedMbMs: h.mbMs, coldStarts: h.coldStarts, cpuMs: h.cpuMs });
          }
          const bill = await new Billing({ db: t.db }).calculate(tenantId, { month: '2026-10' });
          const expected = computeBill(parsePlan(planInput), chunks, { start: '2026-10-01T00:00:00Z', end: '2026-11-01T00:00:00Z' });
          const strip = (l: { service: string; meter: string; quantity: string; freeQuantity: string; amountUnrounded: string; amount: string }) =>
            [l.service, l.meter, l.quantity, l.freeQuantity, l.amountUnrounded, l.amount].join(' ');
          assert.deepEqual(bill.lines.map(strip), expected.lines.map(strip));
          assert.equal(bill.total, expected.total);
        }),
        { numRuns: 20 },
      );
    });
  });

  describe('plan changes mid-period', () => {
    it('bills each segment under its own plan, with the free tier prorated by the segment’s share of the month', async () => {
      const tenantId = await createTenant(t.db);
      const a = await createPlan(t.db, { name: 'change-a', currency: 'USD', price_per_invocation: '0.001', free_tier_invocations: '300' });
      const b = await createPlan(t.db, { name: 'change-b', currency: 'USD', price_per_invocation: '0.002' });
      await assignPlan(t.db, tenantId, a, '2026-01-01T00:00:00Z', '2026-10-16T00:00:00Z');
      await assignPlan(t.db, tenantId, b, '2026-10-16T00:00:00Z');
      const api = await createService(t.db, tenantId, 'api');
      await insertHours(t.db, [
        { tenantId, ...api, start: '2026-10-05T10:00:00Z', invocations: 200, billedMbMs: '0', planId: a },
        { tenantId, ...api, start: '2026-10-20T10:00:00Z', invocations: 100, billedMbMs: '0', planId: b },
      ]);
      const bill = await new Billing({ db: t.db }).calculate(tenantId, { month: '2026-10' });
      // Plan A covers 15 of October's 31 days: floor(300 × 15/31) = 145 free invocations;
      // 55 × 0.001 = 0.055 → 0.06. Plan B: 100 × 0.002 = 0.20. Total 0.26.
      assert.deepEqual(
        bill.segments.map((s) => [s.plan, s.start, s.end, s.free_tier_invocations]),
        [
          ['change-a', '2026-10-01T00:00:00.000Z', '2026-10-16T00:00:00.000Z', '145'],
          ['change-b', '2026-10-16T00:00:00.000Z', '2026-11-01T00:00:00.000Z', '0'],
        ],
      );
      assert.deepEqual(
        bill.lines.map((l) => [l.quantity, l.freeQuantity, l.unitPrice, l.amount, l.planId]),
        [
          ['200', '145', '0.001', '0.06', a],
          ['100', '0', '0.002', '0.20', b],
        ],
      );
      assert.match(bill.lines[0]?.description ?? '', /change-a v1, 2026-10-01T00:00:00.000Z – 2026-10-16T00:00:00.000Z/);
      assert.equal(bill.total, '0.26');
      assert.equal(bill.planId, b);
    });

    it('a change inside an hour splits that hour exactly: each event is metered from usage_raw under the plan in force at its time', async () => {
      const tenantId = await createTenant(t.db);
      const rules = { duration_granularity_ms: 100, min_billed_duration_ms: 0, memory_step_mb: 1, billed_memory: 'observed' as const };
      const a = await createPlan(t.db, { name: 'split-a', currency: 'USD', price_per_mb_ms: '0.000001', rules });
      const b = await createPlan(t.db, { name: 'split-b', currency: 'USD', price_per_mb_ms: '0.000002' });
      await assignPlan(t.db, tenantId, a, '2026-01-01T00:00:00Z', '2026-10-16T00:30:00Z');
      await assignPlan(t.db, tenantId, b, '2026-10-16T00:30:00Z');
      const api = await createService(t.db, tenantId, 'api');
      await insertRawEvent(t.db, { tenantId, ...api, time: '2026-10-16T00:10:00Z', durationMs: '150', memoryMb: '128' });
      await insertRawEvent(t.db, { tenantId, ...api, time: '2026-10-16T00:40:00Z', durationMs: '150', memoryMb: '128' });
      // The aggregate metered the whole hour under plan A (in force at 00:00): 2 × 200 ms × 128 MB.
      await insertHours(t.db, [{ tenantId, ...api, start: '2026-10-16T00:00:00Z', invocations: 2, billedMbMs: '51200', planId: a }]);
      const bill = await new Billing({ db: t.db }).calculate(tenantId, { month: '2026-10' });
      // 00:10 under A: 150 ms → 200 ms × 128 MB = 25 600 MB·ms × 0.000001 = 0.0256 → 0.03.
      // 00:40 under B: 150 ms × 128 MB = 19 200 MB·ms × 0.000002 = 0.0384 → 0.04.
      assert.deepEqual(
        bill.lines.map((l) => [l.meter, l.quantity, l.amount, l.planId]),
        [
          ['compute', '25600', '0.03', a],
          ['compute', '19200', '0.04', b],
        ],
      );
      assert.equal(bill.total, '0.07');
    });

    it('a window metered under another plan than the one now in force is recomputed from usage_raw, never billed under the wrong rules', async () => {
      const tenantId = await createTenant(t.db);
      const usdDefault = await defaultPlanId(t.db, 'USD');
      const api = await createService(t.db, tenantId, 'api');
      await insertRawEvent(t.db, { tenantId, ...api, time: '2026-10-07T08:15:00Z', durationMs: '10', memoryMb: '100', invocations: 2 });
      // Aggregated while the tenant was on the USD default (1 ms, observed memory... whatever it billed).
      await insertHours(t.db, [{ tenantId, ...api, start: '2026-10-07T08:00:00Z', invocations: 2, billedMbMs: '1000', planId: usdDefault }]);
      // Then the assignment was back-dated to a plan with 100 ms granularity and 128 MB steps.
      const later = await createPlan(t.db, {
        name: 'backdated',
        currency: 'USD',
        price_per_mb_ms: '0.0000001',
        rules: { duration_granularity_ms: 100, min_billed_duration_ms: 0, memory_step_mb: 128, billed_memory: 'observed' },
      });
      await assignPlan(t.db, tenantId, later, '2026-01-01T00:00:00Z');
      const bill = await new Billing({ db: t.db }).calculate(tenantId, { month: '2026-10' });
      // 2 invocations of 5 ms each → 100 ms each; 100 MB → 128 MB: 2 × 100 × 128 = 25 600 MB·ms.
      assert.deepEqual(bill.lines.map((l) => [l.meter, l.quantity, l.amountUnrounded]), [['compute', '25600', '0.00256']]);
    });
  });

  describe('bill lifecycle', () => {
    it('a final bill is immutable: the database refuses UPDATE and DELETE of it and its lines; finalize twice is a no-op; only final → paid', async () => {
      const { tenantId, api, hour } = await tenantOnPlan({ price_per_invocation: '0.01' });
      await hour(api, '2026-10-04T12:00:00Z', 7);
      const billing = new Billing({ db: t.db, now: at('2026-11-02T00:00:00Z') });
      const draft = await billing.generate(tenantId, { month: '2026-10' });
      const final = await billing.finalize(draft.id);
      assert.equal(final.status, 'final');
      assert.equal(final.id, draft.id);
      assert.equal(final.total, '0.07');
      const immutable = /is final and cannot be changed: a final bill is immutable/;
      await assert.rejects(t.db('bills').where({ id: final.id }).update({ total_amount: '0' }), immutable);
      await assert.rejects(t.db('bills').where({ id: final.id }).update({ status: 'draft' }), immutable);
      await assert.rejects(t.db('bills').where({ id: final.id }).delete(), immutable);
      const lines = /line items of bill .* cannot be changed: a final bill is immutable/;
      await assert.rejects(t.db('bill_line_items').where({ bill_id: final.id }).update({ amount: '0' }), lines);
      await assert.rejects(t.db('bill_line_items').where({ bill_id: final.id }).delete(), lines);
      await assert.rejects(
        t.db('bill_line_items').insert({ bill_id: final.id, meter: 'invocations', description: 'x', quantity: '1', unit: 'invocation', unit_price: '1', amount_unrounded: '1', amount: '1' }),
        lines,
      );
      await assert.rejects(t.db.raw('TRUNCATE bill_line_items'), /cannot truncate bill_line_items: final bills are immutable/);
      await assert.rejects(t.db('bills').where({ id: final.id }).update({ status: 'paid' }), immutable, 'paid needs paid_at');

      // More usage arrives: finalizing again changes nothing, and generating the final period is refused.
      await hour(api, '2026-10-05T12:00:00Z', 100);
      const again = await billing.finalize(final.id);
      assert.deepEqual(again, final);
      await assert.rejects(billing.generate(tenantId, { month: '2026-10' }), (err: unknown) => err instanceof BillingServiceError && err.reason === 'bill_final');

      // A payment dated after "now" (2026-11-02) or before the period began is refused.
      for (const when of ['2026-11-20T10:00:00Z', '2026-09-30T23:59:59Z']) {
        await assert.rejects(billing.markPaid(final.id, new Date(when)), (err: unknown) => err instanceof BillingServiceError && err.reason === 'invalid_period');
      }
      const paid = await billing.markPaid(final.id, new Date('2026-11-01T10:00:00Z'));
      assert.equal(paid.status, 'paid');
      assert.equal(paid.paidAt, '2026-11-01T10:00:00.000Z');
      assert.deepEqual(paid.lines, final.lines);
      assert.deepEqual(await billing.markPaid(final.id), paid, 'paying a paid bill is a no-op');
      await assert.rejects(t.db('bills').where({ id: final.id }).update({ paid_at: null }), /is paid and cannot be changed/);
    });

    it('generate replaces the draft atomically under the same id; finalize recomputes it from current usage; paying a draft is refused', async () => {
      const { tenantId, api, hour } = await tenantOnPlan({ price_per_invocation: '0.01' });
      const billing = new Billing({ db: t.db });
      await hour(api, '2026-10-04T12:00:00Z', 1);
      const first = await billing.generate(tenantId, { month: '2026-10' });
      await hour(api, '2026-10-04T13:00:00Z', 2);
      const second = await billing.generate(tenantId, { start: '2026-10-01T00:00:00Z', end: '2026-11-01T00:00:00Z' });
      assert.equal(second.id, first.id);
      assert.deepEqual([first.total, second.total], ['0.01', '0.03']);
      const stored = await t.db('bill_line_items').where({ bill_id: first.id }).count<{ count: string }[]>({ count: '*' });
      assert.equal(Number(stored[0]?.count), 1, 'the old draft lines are gone');
      await assert.rejects(billing.markPaid(first.id), (err: unknown) => err instanceof BillingServiceError && err.reason === 'bill_not_final');
      await hour(api, '2026-10-04T14:00:00Z', 4);
      assert.equal((await billing.finalize(first.id)).total, '0.07');
    });

    it('late usage for a finalized period becomes an adjustment line on the next bill, exactly once', async () => {
      const { tenantId, api, hour } = await tenantOnPlan({ price_per_invocation: '0.001', free_tier_invocations: '100' });
      const billing = new Billing({ db: t.db });
      await hour(api, '2026-10-10T00:00:00Z', 150);
      const october = await billing.finalize((await billing.generate(tenantId, { month: '2026-10' })).id);
      assert.equal(october.total, '0.05'); // 50 billable × 0.001

      // Late: 30 invocations on 5 October, before the free tier ran out. Recomputed October:
      // 180 invocations, 100 free, 80 × 0.001 = 0.08; the adjustment is the difference, 0.03.
      await hour(api, '2026-10-05T00:00:00Z', 30);
      const adjustments = (b: { lines: PricedLine[] }) => b.lines.filter((l) => l.isAdjustment).map((l) => [l.quantity, l.amount, l.adjustsBillId]);
      const november = await billing.generate(tenantId, { month: '2026-11' });
      assert.deepEqual(adjustments(november), [['30', '0.03', october.id]]);
      assert.match(november.lines[0]?.description ?? '', /^Adjustment for 2026-10-01T00:00:00.000Z – 2026-11-01T00:00:00.000Z: api: Invocations/);
      assert.deepEqual(adjustments(await billing.generate(tenantId, { month: '2026-11' })), [['30', '0.03', october.id]], 'regenerating does not repeat it');
      const novemberFinal = await billing.finalize(november.id);
      assert.equal(novemberFinal.total, '0.03');
      assert.deepEqual((await billing.bill(october.id)).lines, october.lines, 'the finalized bill itself never changes');

      // December: October is already adjusted; only a further late hour is added.
      assert.deepEqual(adjustments(await billing.generate(tenantId, { month: '2026-12' })), []);
      await hour(api, '2026-10-20T00:00:00Z', 10);
      const december = await billing.generate(tenantId, { month: '2026-12' });
      assert.deepEqual(adjustments(december), [['10', '0.01', october.id]]);
      assert.equal(december.total, '0.01');
      const preview = await billing.calculate(tenantId, { month: '2026-12' });
      assert.equal(preview.adjustmentsTotal, '0.01');
    });
  });

  describe('closing a period', () => {
    it('closes each tenant’s previous month in its own time zone (Asia/Tokyo and America/Los_Angeles get different instants), once', async () => {
      const tokyo = await tenantOnPlan({ price_per_invocation: '1' }, { currency: 'JPY', timezone: 'Asia/Tokyo' });
      const la = await tenantOnPlan({ price_per_invocation: '0.01' }, { timezone: 'America/Los_Angeles' });
      // 2026-10-31T20:00Z is 1 November 05:00 in Tokyo but 31 October 13:00 in Los Angeles.
      await tokyo.hour(tokyo.api, '2026-10-31T20:00:00Z', 5);
      await la.hour(la.api, '2026-10-31T20:00:00Z', 5);
      await tokyo.hour(tokyo.api, '2026-10-01T00:00:00Z', 2);
      // At 2026-11-01T12:00Z it is November in both zones.
      const billing = new Billing({ db: t.db, now: at('2026-11-01T12:00:00Z') });
      const result = await billing.closePeriod({ tenants: [tokyo.tenantId, la.tenantId] });
      const byTenant = new Map(result.closed.map((b) => [b.tenantId, b]));
      assert.deepEqual(
        [byTenant.get(tokyo.tenantId), byTenant.get(la.tenantId)].map((b) => [b?.periodStart, b?.periodEnd, b?.total, b?.status]),
        [
          ['2026-09-30T15:00:00.000Z', '2026-10-31T15:00:00.000Z', '2', 'final'],
          ['2026-10-01T07:00:00.000Z', '2026-11-01T07:00:00.000Z', '0.05', 'final'],
        ],
      );
      const again = await billing.closePeriod({ tenants: [tokyo.tenantId, la.tenantId] });
      assert.deepEqual(again.closed, []);
      assert.deepEqual(again.alreadyFinal.map((b) => b.billId).sort(), result.closed.map((b) => b.billId).sort());
      // A month named by label is the same calendar month in each zone: September 2026.
      const september = await billing.closePeriod({ tenants: [tokyo.tenantId, la.tenantId], period: { month: '2026-09' } });
      assert.deepEqual(
        september.closed.map((b) => [b.periodStart, b.periodEnd]).sort(),
        [
          ['2026-08-31T15:00:00.000Z', '2026-09-30T15:00:00.000Z'],
          ['2026-09-01T07:00:00.000Z', '2026-10-01T07:00:00.000Z'],
        ],
      );
    });

    it('closing every tenant skips tenants created after the period, reports a tenant without a plan, and bills the rest', async () => {
      const db = (await freshDatabase()) satisfies TestDatabase;
      try {
        const ok = await createTenant(db.db, { slug: 'ok' });
        const rub = await createTenant(db.db, { slug: 'rub', currency: 'RUB', timezone: 'Europe/Moscow' });
        const noPlan = await createTenant(db.db, { slug: 'euro', currency: 'EUR' });
        await createTenant(db.db, { slug: 'new', createdAt: '2026-11-01T06:00:00Z' });
        const billing = new Billing({ db: db.db, now: at('2026-11-01T12:00:00Z'), batchTenants: 1 });
        const result = await billing.closePeriod();
        // One tenant per batch, two batches at a time.
        assert.deepEqual(
          result.closed.map((b) => [b.tenantId, b.total, b.currency, b.periodStart]).sort(),
          [
            [ok, '0.00', 'USD', '2026-10-01T00:00:00.000Z'],
            [rub, '0.00', 'RUB', '2026-09-30T21:00:00.000Z'],
          ].sort(),
        );
        assert.equal(result.skipped, 1);
        assert.deepEqual(result.failed.map((f) => [f.tenantId, f.reason]), [[noPlan, 'no_plan']]);
        assert.match(result.failed[0]?.message ?? '', /no default plan for EUR/);
      } finally {
        await db.drop();
      }
    });

    it('names unknown tenants and refuses periods that are not a calendar month in the tenant’s zone', async () => {
      const { tenantId } = await tenantOnPlan({}, { timezone: 'Asia/Tokyo' });
      const billing = new Billing({ db: t.db });
      await assert.rejects(billing.calculate('nobody'), (err: unknown) => err instanceof BillingServiceError && err.reason === 'unknown_tenant' && /"nobody"/.test(err.message));
      await assert.rejects(
        billing.generate(tenantId, { start: '2026-10-01T00:00:00Z' }),
        (err: unknown) => err instanceof BillingServiceError && err.reason === 'invalid_period' && /Asia\/Tokyo.*\[2026-09-30T15:00:00.000Z, 2026-10-31T15:00:00.000Z\)/.test(err.message),
      );
      await assert.rejects(billing.generate(tenantId, { month: '2026-13' }), /YYYY-MM/);
      const result = await billing.closePeriod({ tenants: ['nobody'] });
      assert.deepEqual(result.unknown, ['nobody']);
    });
  });

  describe('running cost', () => {
    it('stores the month-to-date cost of the open period and rewrites it when usage changes', async () => {
      const { tenantId, api, hour } = await tenantOnPlan({ price_per_invocation: '0.01' }, { timezone: 'Europe/Berlin' });
      const billing = new Billing({ db: t.db, now: at('2026-11-15T12:00:00Z') });
      await hour(api, '2026-11-02T10:00:00Z', 3);
      const read = async () =>
        (await t.db('tenant_running_costs').where({ tenant_id: tenantId })) as { period_start: Date; period_end: Date; total: string; currency: string; lines: ComposedBill['lines'] }[];
      assert.deepEqual(await billing.updateRunningCost([tenantId, 'ghost']), { updated: 1, failed: [], unknown: ['ghost'], alerts: [] });
      let rows = await read();
      assert.equal(rows.length, 1);
      // Berlin's November: 1 November 00:00 CET = 2026-10-31T23:00Z.
      assert.deepEqual([rows[0]?.period_start.toISOString(), rows[0]?.period_end.toISOString(), rows[0]?.total], ['2026-10-31T23:00:00.000Z', '2026-11-30T23:00:00.000Z', '0.0300']);
      await hour(api, '2026-11-03T10:00:00Z', 4);
      await billing.updateRunningCost([tenantId]);
      rows = await read();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.total, '0.0700');
      assert.equal(rows[0]?.lines[0]?.quantity, '7');
    });
  });
});
