/**
 * Number, money and time formatting for the dashboard: money in the tenant's currency (decimal
 * strings formatted exactly, never through a float), times in the tenant's time zone.
 */

/** The locale numbers are written in (the page's language; en-US when the browser has none). */
export const defaultLocale = (): string => (typeof navigator !== 'undefined' && navigator.language ? navigator.language : 'en-US');

const decimalPattern = /^-?\d+(\.\d+)?$/;

/** An amount (decimal string) in its currency, at the currency's minor unit ("1234.5", "USD" → "$1,234.50"). */
export function formatMoney(amount: string, currency: string, locale: string = defaultLocale()): string {
  if (!decimalPattern.test(amount)) return '—';
  return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(amount as `${number}`);
}

/** A change of an amount, always signed ("3.2", "USD" → "+$3.20"; "-1" → "-$1.00"; zero has no sign). */
export function formatMoneyChange(amount: string, currency: string, locale: string = defaultLocale()): string {
  if (!decimalPattern.test(amount)) return '—';
  return new Intl.NumberFormat(locale, { style: 'currency', currency, signDisplay: 'exceptZero' }).format(amount as `${number}`);
}

/** A unit price, which has more digits than the minor unit ("0.0000166667" stays whole). */
export function formatUnitPrice(price: string, currency: string, locale: string = defaultLocale()): string {
  if (!decimalPattern.test(price)) return '—';
  return new Intl.NumberFormat(locale, { style: 'currency', currency, maximumFractionDigits: 20, minimumFractionDigits: 0 }).format(price as `${number}`);
}

/** A decimal string or a number with at most `fractionDigits` decimals and grouping. */
export function formatNumber(value: string | number, fractionDigits = 2, locale: string = defaultLocale()): string {
  if (typeof value === 'string' && !decimalPattern.test(value)) return '—';
  if (typeof value === 'number' && !Number.isFinite(value)) return '—';
  const text = typeof value === 'number' ? value : (value as `${number}`);
  return new Intl.NumberFormat(locale, { maximumFractionDigits: fractionDigits }).format(text);
}

/** A ratio as a percentage: "0.0125" → "1.25%". */
export function formatRate(ratio: string | number, locale: string = defaultLocale()): string {
  const value = typeof ratio === 'string' ? Number(ratio) : ratio;
  if (!Number.isFinite(value)) return '—';
  return new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 2 }).format(value);
}

/** Milliseconds, in ms below a second and s above ("1530" → "1.53 s"). */
export function formatDurationMs(ms: string | number | null, locale: string = defaultLocale()): string {
  if (ms === null) return '—';
  const value = Number(ms);
  if (!Number.isFinite(value)) return '—';
  return value < 1000 ? `${formatNumber(value, 1, locale)} ms` : `${formatNumber(value / 1000, 2, locale)} s`;
}

/** An instant as a date and time in `timeZone` ("2026-11-05T14:00:00Z", "Asia/Tokyo" → "Nov 5, 2026, 11:00 PM"). */
export function formatDateTime(iso: string, timeZone: string, locale: string = defaultLocale()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '—';
  return new Intl.DateTimeFormat(locale, { timeZone, dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

/** An instant as a date in `timeZone`. */
export function formatDate(iso: string, timeZone: string, locale: string = defaultLocale()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '—';
  return new Intl.DateTimeFormat(locale, { timeZone, dateStyle: 'medium' }).format(date);
}

/** A billing period [start, end) as the tenant sees it: the first and the last day, in its zone. */
export function formatPeriod(startIso: string, endIso: string, timeZone: string, locale: string = defaultLocale()): string {
  // The period's end is exclusive: its last day is the day before the end instant.
  const lastMs = new Date(endIso).getTime() - 1;
  return `${formatDate(startIso, timeZone, locale)} – ${formatDate(new Date(lastMs).toISOString(), timeZone, locale)}`;
}

/** Exact sum of decimal strings (BigInt at the largest scale): sums money without a float. */
export function sumDecimals(values: readonly string[]): string {
  const valid = values.filter((v) => decimalPattern.test(v));
  const scale = Math.max(0, ...valid.map((v) => v.split('.')[1]?.length ?? 0));
  const total = valid.reduce((sum, v) => {
    const negative = v.startsWith('-');
    const [whole = '0', fraction = ''] = v.replace('-', '').split('.');
    const units = BigInt(whole + fraction.padEnd(scale, '0'));
    return sum + (negative ? -units : units);
  }, 0n);
  const negative = total < 0n;
  const digits = (negative ? -total : total).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}
