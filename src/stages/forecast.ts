/**
 * The forecast stage: for each tenant, its hourly usage history from usage_aggregate (1h windows,
 * summed over services and revisions; the last 8 weeks, from its first window with usage), a
 * forecast of every billed component (src/core/forecast), priced with the tenant's plan
 * (src/core/pricing, through src/core/forecast/cost.ts) and stored in ml_predictions.
 *
 * Definitions:
 * - **as_of** is the start of the tenant's current 1h window: the history is every window before
 *   it (the current one is still filling), and every horizon starts there.
 * - **'1h' / '1d' / '1w' / '30d'** cover the next 1 / 24 / 168 / 720 1h windows. Their cost is
 *   the **marginal cost** of the forecast usage: what it adds to the bill given the usage the
 *   billing period has had so far (its free tier, tiers and commitments taken by the month-to-date
 *   usage first; nothing while the month stays under the plan's minimum charge).
 *   A target crossing into the next month is split there; the next month starts a fresh free tier.
 * - **'month_end'** is the whole current calendar month (tenant's zone): the month-to-date bill
 *   plus the marginal cost of the forecast of the rest of the month, i.e. the month's bill at the
 *   forecast usage, minimum charge and unused commitment included (coupons and credits are not
 *   forecast); `actual_cost` is what has accrued so far (usage after commitment discounts).
 * - Bounds price the same bound of every component (assumes the components move together; see
 *   cost.ts). `confidence` = 1 − half the 80% interval's width relative to the point forecast.
 * - The plan is the one in force at as_of (and at the start of each later month a target reaches);
 *   a mid-month plan change is prorated by the price stage, not by this forecast.
 * - The row's model is the model of the component with the largest expected cost; every
 *   component's model and backtest MASE are in `components`.
 * - **Deploys**: the hours in which a revision served for the first time (a new revision of a
 *   service, or a new service) are passed to the forecasting core, which judges whether the
 *   tenant's usage took a new level there (level-shift.ts: `levelShiftAtDeploy`). Not for cold
 *   starts: a deploy restarts pods, so they burst at every deploy without a new level.
 *
 * Re-running for the same tenant, horizon and as_of replaces the row (unique key), so a repeated
 * tick changes nothing but `updated_at`.
 */
import { DateTime } from 'luxon';
import { z } from 'zod';
import { pingDb, type Db } from '../adapters/postgres.js';
import { PlanStore, type StoredPlan } from '../adapters/plans.js';
import {
  billByMeter,
  forecastHorizons,
  forecastSeries,
  priceForecast,
  toForecastResponse,
  type ForecastHorizon,
  type ForecastPart,
  type ForecastPeriod,
  type ForecastResponse,
  type MeterUsage,
  type SeriesForecast,
} from '../core/forecast/index.js';
import { computeBill, meters, type Meter, type UsageChunk } from '../core/pricing/index.js';
import { billingPeriod, windowBoundsMs } from '../core/windows/index.js';
import type { Logger } from '../runtime/logger.js';

// The response contract lives in the pure core; the API imports it from here with forecastCost.
export { forecastHorizons, forecastResponseSchema } from '../core/forecast/index.js';
export type { ForecastHorizon, ForecastPeriod, ForecastResponse } from '../core/forecast/index.js';

const fixedHorizonHours: Record<Exclude<ForecastHorizon, 'month_end'>, number> = { '1h': 1, '1d': 24, '1w': 168, '30d': 720 };
/** How much hourly history a forecast reads. */
export const HISTORY_HOURS = 8 * 168;
const HOUR_MS = 3_600_000;
/** backtest_mase is numeric(12,6): a larger MASE (a near-constant history) is stored as this. */
const MAX_STORED_MASE = 999_999;

/** What a run did: counts, the tenants it could not price, and (for one tenant) the forecasts. */
export interface ForecastRunSummary {
  horizons: ForecastHorizon[];
  tenants: number;
  predictions: number;
  /** Tenants with no hourly usage in the history window (nothing to forecast). */
  without_history: number;
  failed: { tenant_id: string; reason: string }[];
  forecasts?: ForecastResponse[];
}

export interface ForecastRequest {
  /** One tenant (id); every tenant with recent hourly usage when absent. */
  tenantId?: string;
  horizons?: readonly ForecastHorizon[];
  /** The instant to forecast from (its 1h window is as_of); now when absent. */
  at?: Date;
}

/** The tenant named in a request does not exist (the caller's mistake, not a retryable failure). */
export class UnknownForecastTenantError extends Error {
  constructor(readonly tenantId: string) {
    super(`tenant ${tenantId} does not exist`);
    this.name = 'UnknownForecastTenantError';
  }
}

interface TenantRow {
  id: string;
  timezone: string;
}

type NumericText = string | number;

interface HourRow {
  window_start: Date;
  invocations: NumericText;
  compute: NumericText;
  cold_starts: NumericText;
  cpu: NumericText;
}

interface ServiceHourRow extends HourRow {
  service: string;
}

export interface ForecasterOptions {
  db: Db;
  plans?: PlanStore;
  logger?: Logger;
  now?: () => Date;
}

/** Forecasts tenants' costs and stores them in ml_predictions. */
export class Forecaster {
  private readonly db: Db;
  private readonly plans: PlanStore;
  private readonly now: () => Date;

  constructor(private readonly options: ForecasterOptions) {
    this.db = options.db;
    this.plans = options.plans ?? new PlanStore(options.db);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Forecasts one tenant or every tenant with recent hourly usage, for `horizons` (all by default),
   * and stores the predictions. In a run over every tenant, a tenant that cannot be forecast (no
   * plan, a bad time zone, data the pricing core refuses) is listed in `failed` and the others go
   * on, so one tenant never blocks the rest; a database failure fails the run (to be retried).
   * For one tenant, any failure is thrown.
   */
  async run(request: ForecastRequest = {}): Promise<ForecastRunSummary> {
    const horizons = [...new Set(request.horizons ?? forecastHorizons)];
    const at = request.at ?? this.now();
    const tenants = request.tenantId ? [await this.tenant(request.tenantId)] : await this.activeTenants(at);
    const summary: ForecastRunSummary = { horizons, tenants: 0, predictions: 0, without_history: 0, failed: [] };
    const forecasts: ForecastResponse[] = [];
    for (const tenant of tenants) {
      let results: ForecastResponse[];
      try {
        results = await this.forecastTenant(tenant, horizons, at);
      } catch (err) {
        if (request.tenantId || !(await this.databaseAnswers())) throw err;
        // Setup problems are routine (a tenant without a plan); anything else is our bug.
        if (isTenantProblem(err)) this.options.logger?.warn({ tenant: tenant.id, err }, 'tenant not forecast');
        else this.options.logger?.error({ tenant: tenant.id, err }, 'tenant not forecast');
        summary.failed.push({ tenant_id: tenant.id, reason: err instanceof Error ? err.message : String(err) });
        continue;
      }
      if (results.length === 0) summary.without_history++;
      else summary.tenants++;
      summary.predictions += results.length;
      forecasts.push(...results);
    }
    if (request.tenantId) summary.forecasts = forecasts;
    return summary;
  }

  /**
   * The seed's forecast: the cost of the next hour, day or week for a tenant (computed now and
   * stored). Throws UnknownForecastTenantError for an unknown tenant; a tenant without hourly
   * history gets a zero forecast.
   */
  async forecastCost(tenantId: string, period: ForecastPeriod, at: Date = this.now()): Promise<ForecastResponse> {
    const [result] = await this.forecastTenant(await this.tenant(tenantId), [period], at, true);
    if (!result) throw new Error(`no ${period} forecast was produced for tenant ${tenantId}`);
    return result;
  }

  private async databaseAnswers(): Promise<boolean> {
    try {
      await pingDb(this.db);
      return true;
    } catch {
      return false;
    }
  }

  private async tenant(tenantId: string): Promise<TenantRow> {
    const parsed = z.uuid().safeParse(tenantId);
    const row = parsed.success ? ((await this.db('tenants').select('id', 'timezone').where({ id: tenantId }).first()) as TenantRow | undefined) : undefined;
    if (!row) throw new UnknownForecastTenantError(tenantId);
    return row;
  }

  /** Tenants with hourly usage in the history window before `at`. */
  private async activeTenants(at: Date): Promise<TenantRow[]> {
    const since = new Date(at.getTime() - HISTORY_HOURS * HOUR_MS - HOUR_MS);
    return (await this.db('tenants')
      .select('id', 'timezone')
      .whereIn('id', this.db('usage_aggregate').distinct('tenant_id').where({ window_size: '1h' }).where('window_start', '>=', since).where('window_start', '<', at))
      .orderBy('id')) as TenantRow[];
  }

  /** Forecasts and stores one tenant's horizons; [] when it has no history (unless `evenWithoutHistory`). */
  private async forecastTenant(tenant: TenantRow, horizons: readonly ForecastHorizon[], at: Date, evenWithoutHistory = false): Promise<ForecastResponse[]> {
    const zone = tenant.timezone;
    const asOf = windowBoundsMs(at.getTime(), '1h', zone)[0];
    const month = billingPeriod(asOf, zone);
    const { history, deploys } = await this.hourlyHistory(tenant.id, zone, asOf);
    if (horizons.length === 0 || (history.length === 0 && !evenWithoutHistory)) return [];

    const targets = horizons.map((horizon) => ({ horizon, hours: horizon === 'month_end' ? countWindows(asOf, month.end.getTime(), zone) : fixedHorizonHours[horizon] }));
    const future = futureWindows(asOf, Math.max(...targets.map((t) => t.hours)), zone);
    const series = Object.fromEntries(meters.map((m) => [m, forecastSeries(history.map((h) => h[m]), { horizonHours: future.length, deploys: m === 'cold_starts' ? [] : deploys })])) as Record<Meter, SeriesForecast>;

    // The plan in force at the start of each billing period a target reaches, looked up once.
    const plansAt = new Map<number, Promise<StoredPlan>>();
    const planAt = (instant: number): Promise<StoredPlan> => {
      let plan = plansAt.get(instant);
      if (!plan) plansAt.set(instant, (plan = this.plans.planAt(tenant.id, new Date(instant))));
      return plan;
    };
    const plan = await planAt(asOf);
    const monthToDate = computeBill(plan, await this.monthToDateChunks(tenant.id, month.start, asOf), { start: month.start.toISOString(), end: month.end.toISOString() });
    const used = billByMeter(monthToDate).quantity;

    const results: ForecastResponse[] = [];
    for (const { horizon, hours } of targets) {
      const parts = await partsOf(future.slice(0, hours), series, zone, used, planAt);
      const totals = Object.fromEntries(meters.map((m) => [m, series[m].total(hours)])) as Record<Meter, ReturnType<SeriesForecast['total']>>;
      const priced = priceForecast(parts, totals, horizon === 'month_end' ? monthToDate : undefined);
      const periodStart = horizon === 'month_end' ? month.start.getTime() : asOf;
      const periodEnd = horizon === 'month_end' ? month.end.getTime() : (future[hours - 1]?.end ?? asOf + HOUR_MS);
      results.push(toForecastResponse(tenant.id, horizon, hours, { asOf, periodStart, periodEnd }, priced, series));
    }
    await this.store(results, zone);
    return results;
  }

  /**
   * Hourly usage per meter, one entry per 1h window from the first window with usage to as_of, and
   * the deploys in it: the positions of the hours in which a revision (of a service new or old)
   * served for the first time, after the history's first hour.
   */
  private async hourlyHistory(tenantId: string, zone: string, asOf: number): Promise<{ history: MeterUsage[]; deploys: number[] }> {
    const since = windowBoundsMs(asOf - HISTORY_HOURS * HOUR_MS, '1h', zone)[0];
    const rows = (await this.db('usage_aggregate')
      .select('window_start')
      .sum({ invocations: 'invocations', compute: 'billed_mb_ms', cold_starts: 'cold_starts', cpu: 'total_cpu_ms' })
      .where({ tenant_id: tenantId, window_size: '1h' })
      .where('window_start', '>=', new Date(since))
      .where('window_start', '<', new Date(asOf))
      .groupBy('window_start')
      .orderBy('window_start')) as HourRow[];
    const first = rows[0];
    if (!first) return { history: [], deploys: [] };
    // Revisions serving inside the history that had served no hour up to its first: read within the
    // history and by index probes, so a tenant's older years of windows are not scanned.
    const { rows: firstRevisionHours } = await this.db.raw<{ rows: { first_hour: Date }[] }>(
      `SELECT min(a.window_start) AS first_hour
         FROM usage_aggregate a
        WHERE a.window_size = '1h' AND a.tenant_id = ? AND a.window_start > ? AND a.window_start < ?
        GROUP BY a.service_id, a.revision_id
       HAVING NOT EXISTS (SELECT 1 FROM usage_aggregate b
                           WHERE b.window_size = '1h' AND b.tenant_id = ? AND b.service_id = a.service_id
                             AND b.revision_id = a.revision_id AND b.window_start <= ?)`,
      [tenantId, first.window_start, new Date(asOf), tenantId, first.window_start],
    );
    const deployHours = new Set(firstRevisionHours.map((r) => r.first_hour.getTime()));
    const byStart = new Map(rows.map((r) => [r.window_start.getTime(), r]));
    const history: MeterUsage[] = [];
    const deploys: number[] = [];
    for (let t = first.window_start.getTime(); t < asOf; t = windowBoundsMs(t, '1h', zone)[1]) {
      if (deployHours.has(t)) deploys.push(history.length);
      const row = byStart.get(t);
      // Hours without a window had no usage. Usage forecasts are floats (money is not).
      history.push(row ? { invocations: Number(row.invocations), compute: Number(row.compute), cold_starts: Number(row.cold_starts), cpu: Number(row.cpu) } : { invocations: 0, compute: 0, cold_starts: 0, cpu: 0 });
    }
    return { history, deploys };
  }

  /** The month's actual usage before as_of, per service and hour, as the pricing core takes it. */
  private async monthToDateChunks(tenantId: string, monthStart: Date, asOf: number): Promise<UsageChunk[]> {
    const { rows } = await this.db.raw<{ rows: ServiceHourRow[] }>(
      `SELECT s.name AS service, a.window_start,
              sum(a.invocations) AS invocations, sum(a.billed_mb_ms) AS compute,
              sum(a.cold_starts) AS cold_starts, sum(a.total_cpu_ms) AS cpu
         FROM usage_aggregate a JOIN services s ON s.id = a.service_id
        WHERE a.tenant_id = ? AND a.window_size = '1h' AND a.window_start >= ? AND a.window_start < ?
        GROUP BY s.name, a.window_start`,
      [tenantId, monthStart, new Date(asOf)],
    );
    return rows.map((r) => ({
      service: r.service,
      start: r.window_start.toISOString(),
      invocations: String(r.invocations),
      billedMbMs: String(r.compute),
      coldStarts: String(r.cold_starts),
      cpuMs: String(r.cpu),
    }));
  }

  /** Upserts the predictions of one tenant run in one statement (replacing the same as_of's rows). */
  private async store(results: readonly ForecastResponse[], zone: string): Promise<void> {
    if (results.length === 0) return;
    const rows = results.map((r) => ({
      tenant_id: r.tenant_id,
      service_id: null,
      prediction_date: DateTime.fromISO(r.as_of, { zone }).toISODate(),
      horizon: r.horizon,
      horizon_hours: r.horizon_hours,
      horizon_days: Math.max(1, Math.ceil(r.horizon_hours / 24)),
      as_of: r.as_of,
      period_start: r.period_start,
      period_end: r.period_end,
      currency: r.currency,
      predicted_cost: r.forecasted_cost,
      predicted_cost_lower_80: r.interval_80.lower,
      predicted_cost_upper_80: r.interval_80.upper,
      predicted_cost_lower_95: r.interval_95.lower,
      predicted_cost_upper_95: r.interval_95.upper,
      actual_cost: r.actual_cost,
      predicted_invocations: r.components.invocations.quantity.expected,
      confidence: r.confidence,
      model_name: r.model.name,
      model_version: r.model.version,
      backtest_mase: r.model.backtest_mase === null ? null : Math.min(MAX_STORED_MASE, r.model.backtest_mase).toFixed(6),
      components: JSON.stringify(r.components),
      updated_at: this.db.fn.now(),
    }));
    await this.db('ml_predictions')
      .insert(rows)
      .onConflict(['tenant_id', 'service_id', 'horizon', 'as_of'])
      .merge();
  }
}

interface Window {
  start: number;
  end: number;
}

/** The next `count` 1h windows of the zone from `from` (a window start). */
function futureWindows(from: number, count: number, zone: string): Window[] {
  const out: Window[] = [];
  for (let t = from; out.length < count; ) {
    const [start, end] = windowBoundsMs(t, '1h', zone);
    out.push({ start, end });
    t = end;
  }
  return out;
}

/** How many 1h windows of the zone lie in [from, to). */
function countWindows(from: number, to: number, zone: string): number {
  let count = 0;
  for (let t = from; t < to; t = windowBoundsMs(t, '1h', zone)[1]) count++;
  return count;
}

/** The billing periods `windows` fall in, with each one's plan, expected usage and prior usage. */
async function partsOf(
  windows: readonly Window[],
  series: Record<Meter, SeriesForecast>,
  zone: string,
  usedThisMonth: NonNullable<ForecastPart['used']>,
  planAt: (at: number) => Promise<StoredPlan>,
): Promise<ForecastPart[]> {
  const parts: ForecastPart[] = [];
  let current: { part: ForecastPart; end: number } | undefined;
  for (const [k, w] of windows.entries()) {
    if (!current || w.start >= current.end) {
      const period = billingPeriod(w.start, zone);
      const part: ForecastPart = {
        plan: await planAt(w.start),
        period: { start: period.start.toISOString(), end: period.end.toISOString() },
        start: new Date(w.start).toISOString(),
        expected: { invocations: 0, compute: 0, cold_starts: 0, cpu: 0 },
        // Only the first part shares its month with the usage so far.
        ...(parts.length === 0 ? { used: usedThisMonth } : {}),
      };
      parts.push(part);
      current = { part, end: period.end.getTime() };
    }
    for (const m of meters) current.part.expected[m] += series[m].point[k] ?? 0;
  }
  return parts;
}

/** Errors that concern one tenant's setup rather than the system. */
function isTenantProblem(err: unknown): boolean {
  return err instanceof Error && ['NoPlanError', 'InvalidTimeZoneError', 'PlanValidationError'].includes(err.name);
}
