/**
 * Billing periods: a calendar month in the tenant's time zone (DESIGN §5), as UTC instants.
 * Pure (the clock is passed in). A caller names a period either as a month label ("2026-10",
 * the same calendar month for every tenant, each in its own zone) or by its exact bounds in the
 * tenant's zone.
 */
import { DateTime } from 'luxon';
import { billingPeriod, toEpochMs, type Instant, type WindowBounds } from '../core/windows/index.js';
import { BillingServiceError } from './errors.js';

/** A period as callers name it. */
export type PeriodRef = { month: string } | { start: Instant; end?: Instant };

const monthLabel = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** The calendar month `YYYY-MM` in `timeZone`. */
export function monthPeriod(label: string, timeZone: string): WindowBounds {
  const m = monthLabel.exec(label);
  if (!m) throw new BillingServiceError('invalid_period', `a billing month is written YYYY-MM, e.g. "2026-10" (got ${JSON.stringify(label)})`);
  // The 15th at noon is inside the month in every zone; billingPeriod finds the month's bounds.
  const inside = DateTime.fromObject({ year: Number(m[1]), month: Number(m[2]), day: 15, hour: 12 }, { zone: timeZone });
  return billingPeriod(inside.toMillis(), timeZone);
}

/** The month containing `now` in `timeZone` (the open period). */
export function currentPeriod(now: Date, timeZone: string): WindowBounds {
  return billingPeriod(now, timeZone);
}

/** The month before the one containing `now` in `timeZone` (what the monthly close bills). */
export function previousPeriod(now: Date, timeZone: string): WindowBounds {
  return billingPeriod(billingPeriod(now, timeZone).start.getTime() - 1, timeZone);
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Resolves a period reference in the tenant's zone. Explicit bounds must be exactly a calendar
 * month there (a bill never covers a partial or shifted month); the error says which month
 * `start` falls in and where that month starts and ends.
 */
export function resolvePeriod(ref: PeriodRef | undefined, timeZone: string, now: Date): WindowBounds {
  if (ref === undefined) return currentPeriod(now, timeZone);
  if ('month' in ref) return monthPeriod(ref.month, timeZone);
  let startMs: number;
  let endMs: number | undefined;
  try {
    startMs = toEpochMs(ref.start);
    endMs = ref.end === undefined ? undefined : toEpochMs(ref.end);
  } catch (err) {
    throw new BillingServiceError('invalid_period', err instanceof Error ? err.message : String(err));
  }
  const month = billingPeriod(startMs, timeZone);
  if (month.start.getTime() !== startMs || (endMs !== undefined && month.end.getTime() !== endMs)) {
    throw new BillingServiceError(
      'invalid_period',
      `a billing period is a calendar month in the tenant's time zone ${timeZone}: ${iso(startMs)} falls in the month ` +
        `[${month.start.toISOString()}, ${month.end.toISOString()}); give that month's bounds or a month label such as "2026-10"`,
    );
  }
  return month;
}

const firstInstantOfMonth = /^(\d{4})-(\d{2})-01T00:00(?::00(?:\.0+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/**
 * The month label of an instant written as the first instant of a month in some offset
 * ("2026-10-01T00:00:00Z" or "2026-10-01T00:00:00+09:00" → "2026-10"). Closing every tenant's
 * period at once names the calendar month this way: each tenant's bounds differ (its own zone),
 * so the instant itself cannot be every tenant's period start.
 */
export function monthLabelOf(writtenStart: string): string {
  const m = firstInstantOfMonth.exec(writtenStart.trim());
  if (!m || !monthLabel.test(`${m[1]}-${m[2]}`)) {
    throw new BillingServiceError(
      'invalid_period',
      `to close one calendar month for every tenant (each in its own time zone), period_start must be written as the first instant of that month, e.g. "2026-10-01T00:00:00Z" (got ${JSON.stringify(writtenStart)})`,
    );
  }
  return `${m[1]}-${m[2]}`;
}

/** The label of the month following `label`. */
export function nextMonthLabel(label: string): string {
  const [y, m] = label.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}
