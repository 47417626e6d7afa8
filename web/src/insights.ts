/**
 * The Overview's insights, as words: anomalies with their figures in each metric's unit,
 * recommendations split into savings and warnings, each with a one-line headline, and the API's
 * sentences made readable (instants in the tenant's zone, long numbers grouped). Pure: plain data
 * in, strings out (tested in insights.test.ts).
 */
import type { Anomaly, Recommendation, RecommendationReport } from './api.ts';
import { defaultLocale, formatDateTime, formatDurationMs, formatMoney, formatNumber } from './format.ts';

/** Hours GET /ml/insights scans for anomalies (the scanner's default window). */
export const anomalyWindowHours = 24;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

const metricLabels: Record<string, string> = {
  invocations: 'invocations',
  duration_p95_ms: 'p95 duration',
  memory_mb: 'peak memory',
  errors: 'errors',
  cost: 'cost',
};

/** A metric's name in words ("duration_p95_ms" → "p95 duration"); an unknown one with spaces for underscores. */
export const anomalyMetricLabel = (metric: string): string => metricLabels[metric] ?? metric.replace(/_/g, ' ');

/** Whole hours from an anomaly's first hour to the end of its last. */
export function anomalyHours(anomaly: Pick<Anomaly, 'since' | 'until'>): number {
  const hours = Math.round((Date.parse(anomaly.until) - Date.parse(anomaly.since)) / HOUR_MS);
  return Number.isFinite(hours) ? Math.max(hours, 0) : 0;
}

/**
 * An anomaly's expected or observed figure in its metric's unit. Counts and cost are sums over
 * the anomaly's hours ("1,200 over 3 h"); duration and memory are hourly levels, averaged ("1.5 s (hourly average)").
 */
export function formatAnomalyFigure(anomaly: Pick<Anomaly, 'metric' | 'since' | 'until' | 'currency'>, value: number, locale: string = defaultLocale()): string {
  if (!Number.isFinite(value)) return '—';
  const over = `over ${anomalyHours(anomaly)} h`;
  switch (anomaly.metric) {
    case 'duration_p95_ms':
      return `${formatDurationMs(value, locale)} (hourly average)`;
    case 'memory_mb':
      return `${formatNumber(value, 0, locale)} MB (hourly average)`;
    case 'cost':
      // Fixed notation: a tiny float would print as 1e-7, which is no decimal string.
      return `${formatMoney(value.toFixed(6), anomaly.currency, locale)} ${over}`;
    default:
      return `${formatNumber(value, 0, locale)} ${over}`;
  }
}

/** Savings (a saving, largest first as the API orders them) apart from budget and free-allowance warnings. */
export function splitRecommendations(recommendations: readonly Recommendation[]): { savings: Recommendation[]; warnings: Recommendation[] } {
  return { savings: recommendations.filter((r) => r.saving !== null), warnings: recommendations.filter((r) => r.saving === null) };
}

/** Whole days the recommendations were priced on (30 unless the API changes its period). */
export function reportDays(report: Pick<RecommendationReport, 'period_start' | 'period_end'>): number {
  return Math.round((Date.parse(report.period_end) - Date.parse(report.period_start)) / DAY_MS);
}

const capitalized = (text: string): string => text.charAt(0).toUpperCase() + text.slice(1);

/** What to change, in one line: "Memory limit of api: 256 MB → 86 MB"; for a warning, what it is about and what to do. */
export function recommendationHeadline(recommendation: Recommendation, locale: string = defaultLocale()): string {
  const { kind, service, current, suggested } = recommendation;
  const change = `${current} → ${suggested}`;
  switch (kind) {
    case 'plan':
      return `Switch plan: ${change}`;
    case 'memory_limit':
      return `Memory limit of ${service ?? 'a service'}: ${change}`;
    case 'min_scale':
      return `Scaling of ${service ?? 'a service'}: ${change}`;
    case 'budget':
    case 'quota':
      return `${capitalized(groupLongNumbers(current, locale))} — ${suggested}`;
  }
}

const isoInstant = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})/g;
// Five or more digits in a row that are not part of a longer token (a date, an id, a decimal's fraction).
const longNumber = /(?<![\w.-])\d{5,}(?:\.\d+)?(?![\w.])/g;

/** Integers of five digits or more with grouping ("11350911" → "11,350,911"), decimals kept to 3 places. */
function groupLongNumbers(text: string, locale: string): string {
  return text.replace(longNumber, (digits) => formatNumber(digits, 3, locale));
}

/**
 * One of the API's sentences as the dashboard writes things: ISO instants as a date and time in
 * the tenant's zone, and long numbers with grouping. Everything else is left as the API wrote it.
 */
export function readableText(text: string, timeZone: string, locale: string = defaultLocale()): string {
  return groupLongNumbers(
    text.replace(isoInstant, (iso) => formatDateTime(iso, timeZone, locale)),
    locale,
  );
}
