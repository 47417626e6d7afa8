/**
 * Savings recommendations for one tenant, each with the money it is worth over the last 30 days of
 * its real usage (the 30 days before the current 1h window), priced by the pricing simulator
 * (`Billing.simulate`, which re-meters usage_raw under a plan's own rules). The 30 days are cut at
 * calendar months (the simulator prices inside one month, with allowances prorated by each part's
 * share of its month) and the parts summed.
 *
 * - **plan**: every active plan of the tenant's currency it may use is simulated on the same usage;
 *   the cheapest is suggested when it costs less than the plan in force.
 * - **memory_limit** (per service): observed p99 memory (usage_raw) against the revisions' limit; a
 *   lower limit with 20% headroom (core: suggestedMemoryLimit). Its saving is the difference of the
 *   service's compute lines between the plan in force and the same plan with billed memory capped at
 *   the suggested limit (`rules.max_memory_mb`), i.e. the usage re-priced as if the limit had been
 *   lower. Where the service ran under several limits and its durations moved with them (CPU
 *   allotted in proportion to memory), the re-priced compute is lengthened by
 *   (suggested / current)^(−e) (core: durationElasticity); otherwise durations are assumed to stay
 *   the same. A plan that bills observed memory saves nothing, and nothing is suggested.
 * - **min_scale** (per service): cold-start rate and the extra time of cold invocations against the
 *   cost of one warm instance (core: minScaleAdvice), at the plan's unit prices.
 * - **budget** and **quota** (capacity planning): when the month's cost will reach the budget, and
 *   its usage the plan's free invocations or compute, at the month-end forecast's pace.
 */
import { randomUUID } from 'node:crypto';
import type { Decimal } from 'decimal.js';
import type { Db } from '../adapters/postgres.js';
import { PlanStore, type StoredPlan } from '../adapters/plans.js';
import type { Billing } from '../billing/index.js';
import { budgetCrossing, durationElasticity, minScaleAdvice, suggestedMemoryLimit, type LimitRun } from '../core/forecast/index.js';
import { Dec, minorUnitDigits } from '../core/pricing/index.js';
import { billingPeriod, windowBoundsMs } from '../core/windows/index.js';
import type { Forecaster } from './forecast.js';

const DAY_MS = 86_400_000;
/** The usage a recommendation is judged on. */
export const RECOMMENDATION_DAYS = 30;
/** Fewest invocations a service needs before its memory or scaling is judged. */
const MIN_INVOCATIONS = 100;

export type RecommendationKind = 'plan' | 'memory_limit' | 'min_scale' | 'budget' | 'quota';

export interface Recommendation {
  kind: RecommendationKind;
  service: string | null;
  current: string;
  suggested: string;
  /** What the change would have saved over the last 30 days (decimal text, currency's minor unit); null for a budget or quota warning. */
  saving: string | null;
  /** The saving as a share of the tenant's cost over the 30 days (0–1, 4 decimals); null when there is none. */
  saving_share: string | null;
  explanation: string;
  /** The figures it rests on. */
  evidence: Record<string, number | string | null>;
}

export interface RecommendationReport {
  tenant_id: string;
  currency: string;
  period_start: string;
  period_end: string;
  /** The tenant's cost over the period under the plan in force (simulated). */
  cost: string;
  recommendations: Recommendation[];
  /** Sum of the savings of the plan and per-service recommendations (they can be combined only approximately). */
  total_saving: string;
}

interface TenantRow {
  id: string;
  timezone: string;
  currency: string;
}

interface ServiceFacts {
  service: string;
  invocations: string;
  events: string;
  p95_mb: number | null;
  p99_mb: number | null;
  limit_mb: number | null;
  cold_starts: string;
  cold_ms: string | null;
  warm_ms: string | null;
  min_scale: string | null;
  wakeups: string;
}

interface Piece {
  start: Date;
  end: Date;
}

export interface AdvisorOptions {
  db: Db;
  billing: Billing;
  forecaster: Forecaster;
  plans?: PlanStore;
  now?: () => Date;
}

/** Finds and prices a tenant's savings. */
export class Advisor {
  private readonly plans: PlanStore;
  private readonly now: () => Date;

  constructor(private readonly options: AdvisorOptions) {
    this.plans = options.plans ?? new PlanStore(options.db);
    this.now = options.now ?? (() => new Date());
  }

  /** The recommendations of one tenant (by id), most valuable first, budget and quota warnings last. */
  async recommend(tenantId: string, at: Date = this.now()): Promise<RecommendationReport> {
    const { db, billing } = this.options;
    const tenant = (await db('tenants').select('id', 'timezone', 'currency').where({ id: tenantId }).first()) as TenantRow | undefined;
    if (!tenant) throw new RangeError(`tenant ${tenantId} does not exist`);
    const currency = tenant.currency.trim();
    const digits = minorUnitDigits(currency);
    const money = (d: Decimal): string => d.toDecimalPlaces(digits, Dec.ROUND_HALF_UP).toFixed(digits);
    const end = windowBoundsMs(at.getTime(), '1h', tenant.timezone)[0];
    const start = end - RECOMMENDATION_DAYS * DAY_MS;
    const pieces = monthPieces(start, end, tenant.timezone);
    const plan = await this.plans.planAt(tenant.id, new Date(end));

    // Every usable plan, the one in force first, simulated on the same usage.
    const candidates = [plan, ...(await this.usablePlans(tenant)).filter((p) => p.id !== plan.id)];
    const totals = new Map<string, Decimal>(candidates.map((p) => [p.id, new Dec(0)]));
    const computeByService = new Map<string, Decimal>();
    for (const piece of pieces) {
      for (const { plan: simulated, bill } of await billing.simulate(tenant.id, piece, candidates)) {
        totals.set(simulated.id, (totals.get(simulated.id) ?? new Dec(0)).plus(bill.total));
        if (simulated.id !== plan.id) continue;
        for (const line of bill.lines) if (line.meter === 'compute' && line.service) computeByService.set(line.service, (computeByService.get(line.service) ?? new Dec(0)).plus(line.amount));
      }
    }
    const cost = totals.get(plan.id) ?? new Dec(0);
    const share = (saving: Decimal): string | null => (cost.gt(0) ? saving.div(cost).toDecimalPlaces(4, Dec.ROUND_HALF_UP).toFixed(4) : null);
    const out: Recommendation[] = [];

    let cheapest = plan;
    for (const p of candidates) if ((totals.get(p.id) ?? cost).lt(totals.get(cheapest.id) ?? cost)) cheapest = p;
    if (cheapest.id !== plan.id) {
      const saving = cost.minus(totals.get(cheapest.id) ?? cost);
      out.push({
        kind: 'plan',
        service: null,
        current: `${plan.name} v${plan.version}`,
        suggested: `${cheapest.name} v${cheapest.version}`,
        saving: money(saving),
        saving_share: share(saving),
        explanation: `Your last ${RECOMMENDATION_DAYS} days of usage cost ${money(cost)} ${currency} on ${plan.name} and would have cost ${money(totals.get(cheapest.id) ?? cost)} ${currency} on ${cheapest.name}.`,
        evidence: Object.fromEntries(candidates.map((p) => [`${p.name} v${p.version}`, money(totals.get(p.id) ?? new Dec(0))])),
      });
    }

    const limitRuns = await this.limitRuns(tenant.id, new Date(start), new Date(end));
    for (const facts of await this.serviceFacts(tenant.id, new Date(start), new Date(end))) {
      if (new Dec(facts.invocations).lt(MIN_INVOCATIONS)) continue;
      const elasticity = durationElasticity(limitRuns.get(facts.service) ?? [], MIN_INVOCATIONS);
      const memory = await this.memoryAdvice(tenant.id, plan, pieces, facts, computeByService.get(facts.service) ?? new Dec(0), elasticity);
      if (memory) out.push({ ...memory, saving: money(new Dec(memory.saving)), saving_share: share(new Dec(memory.saving)) });
      const scale = this.scaleAdvice(plan, facts, end - start);
      if (scale) out.push({ ...scale, saving: money(new Dec(scale.saving ?? 0)), saving_share: share(new Dec(scale.saving ?? 0)) });
    }
    const warnings = await this.capacityWarnings(tenant, plan, at, money);
    const ranked = out.filter((r) => r.saving !== null && new Dec(r.saving).gt(0)).sort((a, b) => new Dec(b.saving ?? 0).cmp(a.saving ?? 0));
    return {
      tenant_id: tenant.id,
      currency,
      period_start: new Date(start).toISOString(),
      period_end: new Date(end).toISOString(),
      cost: money(cost),
      recommendations: [...ranked, ...warnings],
      total_saving: money(ranked.reduce((s, r) => s.plus(r.saving ?? 0), new Dec(0))),
    };
  }

  private async usablePlans(tenant: TenantRow): Promise<StoredPlan[]> {
    const rows = (await this.options
      .db('pricing_plans')
      .select('id')
      .where({ currency: tenant.currency.trim(), active: true })
      .where((w) => void w.whereNull('tenant_id').orWhere('tenant_id', tenant.id))
      .orderBy(['name', 'version'])) as { id: string }[];
    return Promise.all(rows.map((r) => this.plans.plan(r.id)));
  }

  /** Per service over [start, end): memory percentiles, limit, cold starts, durations, minScale, wake-ups. */
  private async serviceFacts(tenantId: string, start: Date, end: Date): Promise<ServiceFacts[]> {
    const { rows } = await this.options.db.raw<{ rows: ServiceFacts[] }>(
      `SELECT s.name AS service, sum(u.invocations) AS invocations, count(*) AS events,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY u.memory_mb)::float8 AS p95_mb,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY u.memory_mb)::float8 AS p99_mb,
              max(COALESCE(rv.memory_limit_mb, s.memory_limit_mb))::float8 AS limit_mb,
              count(*) FILTER (WHERE u.cold_start) AS cold_starts,
              avg(u.duration_ms / u.invocations) FILTER (WHERE u.cold_start) AS cold_ms,
              avg(u.duration_ms / u.invocations) FILTER (WHERE NOT u.cold_start) AS warm_ms,
              (SELECT COALESCE(r2.scaling_config->>'minScale', r2.scaling_config->>'autoscaling.knative.dev/min-scale')
                 FROM revisions r2 WHERE r2.service_id = s.id ORDER BY r2.created_at DESC, r2.name DESC LIMIT 1) AS min_scale,
              (SELECT count(*) FROM (
                 SELECT a.window_start, lag(a.window_start) OVER (ORDER BY a.window_start) AS previous
                   FROM (SELECT DISTINCT window_start FROM usage_aggregate
                          WHERE service_id = s.id AND window_size = '5m' AND window_start >= ? AND window_start < ? AND invocations > 0) a
               ) w WHERE w.previous IS NULL OR w.previous < w.window_start - interval '5 minutes') AS wakeups
         FROM usage_raw u JOIN services s ON s.id = u.service_id JOIN revisions rv ON rv.id = u.revision_id
        WHERE u.tenant_id = ? AND u.time >= ? AND u.time < ?
        GROUP BY s.id, s.name ORDER BY s.name`,
      [start, end, tenantId, start, end],
    );
    return rows;
  }

  /** Per service, each memory limit it ran under in [start, end) with its invocations and mean duration. */
  private async limitRuns(tenantId: string, start: Date, end: Date): Promise<Map<string, LimitRun[]>> {
    const { rows } = await this.options.db.raw<{ rows: { service: string; limit_mb: number; invocations: string; ms: number }[] }>(
      `SELECT s.name AS service, COALESCE(rv.memory_limit_mb, s.memory_limit_mb)::float8 AS limit_mb,
              sum(u.invocations) AS invocations, (sum(u.duration_ms) / sum(u.invocations))::float8 AS ms
         FROM usage_raw u JOIN services s ON s.id = u.service_id JOIN revisions rv ON rv.id = u.revision_id
        WHERE u.tenant_id = ? AND u.time >= ? AND u.time < ? AND COALESCE(rv.memory_limit_mb, s.memory_limit_mb) IS NOT NULL
        GROUP BY 1, 2`,
      [tenantId, start, end],
    );
    const out = new Map<string, LimitRun[]>();
    for (const r of rows) out.set(r.service, [...(out.get(r.service) ?? []), { limitMb: r.limit_mb, invocations: Number(r.invocations), msPerInvocation: r.ms }]);
    return out;
  }

  private async memoryAdvice(
    tenantId: string,
    plan: StoredPlan,
    pieces: readonly Piece[],
    facts: ServiceFacts,
    currentCompute: Decimal,
    elasticity: number | null,
  ): Promise<(Omit<Recommendation, 'saving'> & { saving: string }) | null> {
    if (plan.rules.billed_memory !== 'allocated' || facts.limit_mb === null || facts.p99_mb === null) return null;
    const suggested = suggestedMemoryLimit(facts.p99_mb, facts.limit_mb, plan.rules.memory_step_mb);
    if (suggested === null || (plan.rules.max_memory_mb !== null && plan.rules.max_memory_mb <= suggested)) return null;
    // The plan in force with billed memory capped at the suggested limit; a fresh id makes the
    // simulator re-meter raw usage under these rules instead of reading the aggregate.
    const capped: StoredPlan = { ...plan, id: randomUUID(), rules: { ...plan.rules, max_memory_mb: suggested } };
    let cappedCompute = new Dec(0);
    for (const piece of pieces) {
      for (const { bill } of await this.options.billing.simulate(tenantId, piece, [capped])) {
        for (const line of bill.lines) if (line.meter === 'compute' && line.service === facts.service) cappedCompute = cappedCompute.plus(line.amount);
      }
    }
    // Where the data shows durations growing at lower limits, the capped compute grows with them.
    const durationFactor = elasticity === null || elasticity === 0 ? 1 : (suggested / facts.limit_mb) ** -elasticity;
    const saving = currentCompute.minus(cappedCompute.times(durationFactor.toFixed(6)));
    if (!saving.gt(0)) return null;
    const durationNote =
      durationFactor === 1
        ? elasticity === null
          ? ' Assumes durations stay the same (it never ran under another limit to show otherwise).'
          : ' Its durations did not change with the memory limit in the data.'
        : ` Its runs under other limits show durations ${((durationFactor - 1) * 100).toFixed(0)}% longer at ${suggested} MB (elasticity ${elasticity?.toFixed(2) ?? ''}), included in the saving.`;
    return {
      kind: 'memory_limit',
      service: facts.service,
      current: `${facts.limit_mb} MB`,
      suggested: `${suggested} MB`,
      saving: saving.toFixed(),
      saving_share: null,
      explanation: `${facts.service} used at most ${round(facts.p99_mb)} MB in 99% of its invocations (p95 ${round(facts.p95_mb ?? 0)} MB) against a ${facts.limit_mb} MB limit; a ${suggested} MB limit keeps 20% headroom.${durationNote}`,
      evidence: {
        p95_memory_mb: round(facts.p95_mb ?? 0),
        p99_memory_mb: round(facts.p99_mb),
        limit_mb: facts.limit_mb,
        compute_cost: currentCompute.toFixed(),
        compute_cost_at_suggested_limit: cappedCompute.toFixed(),
        duration_elasticity: elasticity,
        duration_factor: round(durationFactor),
      },
    };
  }

  private scaleAdvice(plan: StoredPlan, facts: ServiceFacts, periodMs: number): (Omit<Recommendation, 'saving'> & { saving: string }) | null {
    const memoryMb = facts.limit_mb ?? facts.p99_mb;
    if (memoryMb === null) return null;
    const step = plan.rules.memory_step_mb;
    const billedMemory = Math.ceil(memoryMb / step) * step;
    const coldExtraMs = Math.max(0, Number(facts.cold_ms ?? 0) - Number(facts.warm_ms ?? facts.cold_ms ?? 0));
    const currentMinScale = Number(facts.min_scale ?? 0) || 0;
    const advice = minScaleAdvice(
      { coldStarts: Number(facts.cold_starts), coldExtraMs, memoryMb: billedMemory, periodMs, coldStartsIfScaledToZero: Number(facts.wakeups), currentMinScale },
      { perColdStart: plan.price_per_cold_start, perMbMs: plan.price_per_mb_ms },
    );
    if (!advice) return null;
    const rate = Number(facts.cold_starts) / Math.max(1, Number(facts.events));
    return {
      kind: 'min_scale',
      service: facts.service,
      current: `minScale ${currentMinScale}`,
      suggested: `minScale ${advice.minScale}`,
      saving: advice.saving.toFixed(),
      saving_share: null,
      explanation:
        advice.minScale === 1
          ? `${facts.service} had ${facts.cold_starts} cold starts (${(rate * 100).toFixed(1)}% of its events, ${round(coldExtraMs)} ms slower each); keeping one instance warm costs less than they do.`
          : `${facts.service} keeps an instance warm but woke up from idle only ${facts.wakeups} times; scaling to zero costs less in cold starts than the warm instance.`,
      evidence: { cold_starts: Number(facts.cold_starts), cold_start_rate: round(rate), cold_extra_ms: round(coldExtraMs), wakeups: Number(facts.wakeups), warm_instance_cost: advice.warmCost.toFixed(), cold_start_cost: advice.coldCost.toFixed() },
    };
  }

  /**
   * Capacity planning from the month-end forecast: when the month's cost reaches the tenant's
   * budget, and when its usage uses up the plan's free invocations or free compute (a quota), at
   * the forecast's pace. Nothing when there is neither a budget nor a free allowance.
   */
  private async capacityWarnings(tenant: TenantRow, plan: StoredPlan, at: Date, money: (d: Decimal) => string): Promise<Recommendation[]> {
    const budget = (await this.options.db('budgets').select('amount').where({ tenant_id: tenant.id }).first()) as { amount: string } | undefined;
    const quotas = [
      { meter: 'invocations' as const, allowance: plan.free_tier_invocations, unit: 'invocations' },
      { meter: 'compute' as const, allowance: plan.free_tier_mb_ms, unit: 'MB·ms' },
    ].filter((q) => new Dec(q.allowance).gt(0));
    if (!budget && quotas.length === 0) return [];
    const summary = await this.options.forecaster.run({ tenantId: tenant.id, horizons: ['month_end'], at });
    const forecast = summary.forecasts?.[0];
    if (!forecast) return [];
    const asOf = Date.parse(forecast.as_of);
    const monthEnd = Date.parse(forecast.period_end);
    const when = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
    const out: Recommendation[] = [];
    if (budget) {
      const actual = forecast.actual_cost ?? '0';
      const expected = budgetCrossing(budget.amount, actual, forecast.forecasted_cost, asOf, monthEnd);
      const possible = budgetCrossing(budget.amount, actual, forecast.interval_80.upper, asOf, monthEnd);
      if (possible !== null) {
        out.push({
          kind: 'budget',
          service: null,
          current: `budget ${money(new Dec(budget.amount))} ${forecast.currency}`,
          suggested: expected === null ? 'watch: the 80% upper bound reaches the budget' : 'raise the budget or cut usage',
          saving: null,
          saving_share: null,
          explanation:
            `At the current trend this month will cost ${forecast.forecasted_cost} ${forecast.currency} (80%: ${forecast.interval_80.lower}–${forecast.interval_80.upper}); ` +
            `the budget of ${money(new Dec(budget.amount))} is reached ${expected === null ? `only if usage runs high (at the upper bound: ${when(possible) ?? ''})` : `around ${when(expected) ?? ''}`}.`,
          evidence: { budget: money(new Dec(budget.amount)), month_to_date: actual, month_end_forecast: forecast.forecasted_cost, upper_80: forecast.interval_80.upper, expected_crossing: when(expected), crossing_at_upper_80: when(possible) },
        });
      }
    }
    for (const quota of quotas) {
      const component = forecast.components[quota.meter];
      const actual = component.actual?.quantity ?? '0';
      const crossing = budgetCrossing(quota.allowance, actual, component.quantity.expected, asOf, monthEnd);
      if (crossing === null) continue;
      out.push({
        kind: 'quota',
        service: null,
        current: `${quota.allowance} free ${quota.unit} a month`,
        suggested: crossing === asOf ? 'used up: usage is billed from here on' : 'plan for billed usage from the crossing on',
        saving: null,
        saving_share: null,
        explanation: `This month's ${quota.unit} are forecast at ${component.quantity.expected} (${actual} so far); the ${quota.allowance} free ones ${crossing === asOf ? 'are used up already' : `run out around ${when(crossing) ?? ''}`}.`,
        evidence: { allowance: quota.allowance, month_to_date: actual, month_end_forecast: component.quantity.expected, crossing: when(crossing) },
      });
    }
    return out;
  }
}

const round = (v: number): number => Math.round(v * 100) / 100;

/** [start, end) cut at the calendar months of the zone. */
function monthPieces(start: number, end: number, zone: string): Piece[] {
  const out: Piece[] = [];
  for (let t = start; t < end; ) {
    const month = billingPeriod(t, zone);
    const pieceEnd = Math.min(end, month.end.getTime());
    out.push({ start: new Date(t), end: new Date(pieceEnd) });
    t = pieceEnd;
  }
  return out;
}
