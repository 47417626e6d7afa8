/**
 * Anomalies of a tenant's services (src/core/forecast/anomaly.ts on series read from
 * usage_aggregate): for each service, hourly series of invocations, duration p95, memory, errors
 * and cost over the last four weeks plus the examined window (the last 24 hours before the
 * current 1h window by default).
 *
 * Per service and hour (summed over revisions): invocations and errors are sums; duration p95 and
 * memory (the largest observed) are the largest of the revisions' (a new revision's worse p95 is
 * what should show); cost is the hour's usage at the unit prices of the plan in force at as_of —
 * a list-price estimate without free tier, tiers or discounts, to compare hours with each other,
 * never a bill. An hour without invocations has no duration or memory: it carries the last value
 * seen, so quiet hours are not mistaken for a drop.
 *
 * Each anomaly is explained (expected vs observed, since when, cost impact = the service's cost
 * over the anomaly's hours minus its expected cost). A scan sees only its window: an incident that
 * began before it starts at the window's first hour. `recordAnomalies` (anomaly-outbox.ts) makes
 * the runs that see one incident one stored anomaly, which notifications delivers once.
 */
import { Decimal } from 'decimal.js';
import { z } from 'zod';
import type { Db } from '../adapters/postgres.js';
import { PlanStore, type StoredPlan } from '../adapters/plans.js';
import type { AnomalyFinding } from '../contract/events.js';
import { DAY_HOURS, WEEK_HOURS, detectAnomalies, type AnomalyOptions } from '../core/forecast/index.js';
import { minorUnitDigits } from '../core/pricing/index.js';
import { windowBoundsMs } from '../core/windows/index.js';

/** The metrics scanned, with how their hours combine into an anomaly's expected/observed figure. */
export const anomalyMetrics = ['invocations', 'duration_p95_ms', 'memory_mb', 'errors', 'cost'] as const;
export type AnomalyMetric = (typeof anomalyMetrics)[number];
const summed: Record<AnomalyMetric, boolean> = { invocations: true, duration_p95_ms: false, memory_mb: false, errors: true, cost: true };
/** Smallest change worth an alert, per metric, in its unit (a handful of errors is not an incident). */
const minimumChange: Record<AnomalyMetric, number> = { invocations: 10, duration_p95_ms: 50, memory_mb: 32, errors: 5, cost: 0 };

/** An hour in milliseconds (the scan works on 1h windows). */
export const HOUR_MS = 3_600_000;
/** History before the examined window. */
const HISTORY_HOURS = 4 * WEEK_HOURS;

export type ServiceAnomaly = AnomalyFinding & Required<Pick<AnomalyFinding, 'until' | 'direction' | 'cost_impact' | 'currency' | 'explanation'>>;

interface ServiceHourRow {
  service: string;
  window_start: Date;
  invocations: string;
  errors: string;
  p95: string | null;
  memory: string | null;
  compute: string;
  cold_starts: string;
  cpu: string;
}

/** A service's hourly series per metric, oldest first, one entry per 1h window. */
interface ServiceSeries {
  service: string;
  starts: number[];
  values: Record<AnomalyMetric, number[]>;
}

export interface AnomalyScanRequest {
  /** The instant whose 1h window ends the examined span (now by default). */
  at?: Date;
  /** Hours examined before it (default 24). */
  windowHours?: number;
  /** Detector settings (threshold, minimum duration and relative magnitude). */
  options?: Pick<AnomalyOptions, 'threshold' | 'minHours' | 'minRelative'>;
}

/** The hourly cost of usage at the plan's unit prices (a float for scoring; see the module comment). */
function hourCost(plan: StoredPlan, row: ServiceHourRow): Decimal {
  return new Decimal(row.invocations)
    .times(plan.price_per_invocation)
    .plus(new Decimal(row.compute).times(plan.price_per_mb_ms))
    .plus(new Decimal(row.cold_starts).times(plan.price_per_cold_start))
    .plus(new Decimal(row.cpu).times(plan.price_per_cpu_ms));
}

const metricLabel: Record<AnomalyMetric, string> = {
  invocations: 'invocations',
  duration_p95_ms: 'p95 duration (ms)',
  memory_mb: 'peak memory (MB)',
  errors: 'errors',
  cost: 'cost',
};

const round = (v: number): number => Math.round(v * 1000) / 1000;

/** Scans tenants' services for anomalies. */
export class AnomalyScanner {
  private readonly plans: PlanStore;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
    plans?: PlanStore,
  ) {
    this.plans = plans ?? new PlanStore(db);
  }

  /** The anomalies of one tenant's services in the examined window, most costly first. */
  async scan(tenantId: string, request: AnomalyScanRequest = {}): Promise<ServiceAnomaly[]> {
    if (!z.uuid().safeParse(tenantId).success) throw new RangeError(`tenant id ${tenantId} is not a uuid`);
    const tenant = (await this.db('tenants').select('id', 'timezone').where({ id: tenantId }).first()) as { id: string; timezone: string } | undefined;
    if (!tenant) throw new RangeError(`tenant ${tenantId} does not exist`);
    const windowHours = request.windowHours ?? DAY_HOURS;
    const asOf = windowBoundsMs((request.at ?? this.now()).getTime(), '1h', tenant.timezone)[0];
    const plan = await this.plans.planAt(tenantId, new Date(asOf));
    const digits = minorUnitDigits(plan.currency);
    const out: ServiceAnomaly[] = [];
    for (const series of await this.serviceSeries(tenantId, tenant.timezone, plan, asOf - (HISTORY_HOURS + windowHours) * HOUR_MS, asOf)) {
      const cost = detectAnomalies(series.values.cost, { windowHours, minHours: 1, threshold: 0, minRelative: 0 });
      for (const metric of anomalyMetrics) {
        const scan = detectAnomalies(series.values[metric], { windowHours, minAbsolute: minimumChange[metric], ...request.options });
        for (const a of scan.anomalies) {
          const hours = a.end - a.start;
          const expected = summed[metric] ? a.expected : a.expected / hours;
          const observed = summed[metric] ? a.observed : a.observed / hours;
          // The service's extra cost over those hours (the cost scan's expectation of each hour).
          let impact = 0;
          for (const h of cost.hours) if (h.index >= a.start && h.index < a.end) impact += h.observed - h.expected;
          const since = new Date(series.starts[a.start] ?? asOf).toISOString();
          const until = new Date((series.starts[a.end - 1] ?? asOf) + HOUR_MS).toISOString();
          const costImpact = new Decimal(impact.toFixed(12)).toDecimalPlaces(digits, Decimal.ROUND_HALF_UP).toFixed(digits);
          out.push({
            tenant_id: tenantId,
            service: series.service,
            metric,
            score: round(a.score),
            expected: round(expected),
            observed: round(observed),
            since,
            until,
            direction: a.direction,
            cost_impact: costImpact,
            currency: plan.currency,
            explanation:
              `${metricLabel[metric]} of ${series.service} ${a.direction === 'spike' ? 'rose' : 'fell'} to ${round(observed)} ` +
              `(expected ${round(expected)}${summed[metric] ? ` over ${hours} h` : ''}) from ${since} for ${hours} h; ` +
              `cost impact ${costImpact} ${plan.currency} (model ${scan.model ?? 'none'}, score ${round(a.score)})`,
          });
        }
      }
    }
    return out.sort((x, y) => new Decimal(y.cost_impact).abs().cmp(new Decimal(x.cost_impact).abs()) || Math.abs(y.score) - Math.abs(x.score));
  }

  /**
   * The anomalies of each tenant (by id); a tenant that cannot be scanned (no plan, a bad time
   * zone) is listed in `failed` and the others go on.
   */
  async scanTenants(tenantIds: readonly string[], request: AnomalyScanRequest = {}): Promise<{ anomalies: ServiceAnomaly[]; failed: { tenant_id: string; reason: string }[] }> {
    const anomalies: ServiceAnomaly[] = [];
    const failed: { tenant_id: string; reason: string }[] = [];
    for (const id of tenantIds) {
      try {
        anomalies.push(...(await this.scan(id, request)));
      } catch (err) {
        if (!(err instanceof Error && ['NoPlanError', 'InvalidTimeZoneError', 'PlanValidationError'].includes(err.name))) throw err;
        failed.push({ tenant_id: id, reason: err.message });
      }
    }
    return { anomalies, failed };
  }

  /** Tenants with hourly usage in the last `windowHours` before `at`. */
  async activeTenants(at: Date, windowHours = DAY_HOURS): Promise<string[]> {
    const rows = (await this.db('usage_aggregate')
      .distinct('tenant_id')
      .where({ window_size: '1h' })
      .where('window_start', '>=', new Date(at.getTime() - (windowHours + 1) * HOUR_MS))
      .where('window_start', '<', at)
      .orderBy('tenant_id')) as { tenant_id: string }[];
    return rows.map((r) => r.tenant_id);
  }

  private async serviceSeries(tenantId: string, zone: string, plan: StoredPlan, from: number, asOf: number): Promise<ServiceSeries[]> {
    const { rows } = await this.db.raw<{ rows: ServiceHourRow[] }>(
      `SELECT s.name AS service, a.window_start, sum(a.invocations) AS invocations, sum(a.errors) AS errors,
              max(a.p95_duration_ms) AS p95, max(a.max_memory_mb) AS memory, sum(a.billed_mb_ms) AS compute,
              sum(a.cold_starts) AS cold_starts, sum(a.total_cpu_ms) AS cpu
         FROM usage_aggregate a JOIN services s ON s.id = a.service_id
        WHERE a.tenant_id = ? AND a.window_size = '1h' AND a.window_start >= ? AND a.window_start < ?
        GROUP BY s.name, a.window_start ORDER BY s.name, a.window_start`,
      [tenantId, new Date(from), new Date(asOf)],
    );
    const byService = new Map<string, Map<number, ServiceHourRow>>();
    for (const row of rows) {
      let hours = byService.get(row.service);
      if (!hours) byService.set(row.service, (hours = new Map<number, ServiceHourRow>()));
      hours.set(row.window_start.getTime(), row);
    }
    const out: ServiceSeries[] = [];
    for (const [service, hours] of byService) {
      // From the service's first hour with usage: the hours before it are not a history of zeros.
      const first = Math.min(...hours.keys());
      const values: Record<AnomalyMetric, number[]> = { invocations: [], duration_p95_ms: [], memory_mb: [], errors: [], cost: [] };
      const starts: number[] = [];
      let lastP95 = 0;
      let lastMemory = 0;
      for (let t = first; t < asOf; t = windowBoundsMs(t, '1h', zone)[1]) {
        const row = hours.get(t);
        starts.push(t);
        const invocations = row ? Number(row.invocations) : 0;
        if (row && invocations > 0) {
          lastP95 = row.p95 === null ? lastP95 : Number(row.p95);
          lastMemory = row.memory === null ? lastMemory : Number(row.memory);
        }
        values.invocations.push(invocations);
        values.errors.push(row ? Number(row.errors) : 0);
        values.duration_p95_ms.push(lastP95);
        values.memory_mb.push(lastMemory);
        values.cost.push(row ? hourCost(plan, row).toNumber() : 0);
      }
      out.push({ service, starts, values });
    }
    return out;
  }
}
