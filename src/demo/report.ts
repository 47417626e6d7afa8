/**
 * The demo's closing report: per tenant, usage (invocations, GB-s, cold starts, p95 duration),
 * month-to-date cost with its line items, and the month-end forecast with its interval, as text
 * tables. Pure formatting of plain input (the caller reads the figures from the database).
 *
 * Money arrives as decimal strings and is formatted with the pricing core (decimal.js, half-up to
 * the currency's minor unit): an amount never passes through a JS float on its way to the screen.
 */
import { DateTime } from 'luxon';
import { Dec, formatAmount, plain } from '../core/pricing/index.js';

/** One line item of the month-to-date bill (a pricing core `BillLine` fits). */
export interface DemoReportLine {
  service: string;
  meter: string;
  /** Decimal string, in `unit`. */
  quantity: string;
  unit: string;
  /** Decimal string in the bill's currency, already rounded to the minor unit. */
  amount: string;
  /** Compute lines: the quantity in GB-s, shown instead of MB-ms. */
  gbS?: { quantity: string };
}

export interface DemoForecast {
  /** Month-to-date actual + forecast of the rest of the month, decimal string. */
  monthEndTotal: string;
  interval80: { lower: string; upper: string };
  interval95?: { lower: string; upper: string };
  /** Model name and version, e.g. "holt-winters@1". */
  model?: string;
}

export interface DemoTenantReport {
  tenant: string;
  timezone: string;
  currency: string;
  plan: string;
  /** Counts may come from PostgreSQL as bigint text. */
  invocations: number | string;
  /** Observed GB-s, decimal string. */
  gbSeconds: string;
  coldStarts: number | string;
  /** p95 of the per-invocation duration over the simulated range, ms; null when there was no usage. */
  p95DurationMs: number | null;
  monthToDate: {
    /** Start of the billing period (ISO 8601), shown in the tenant's zone. */
    periodStart: string;
    /** The instant the figures are as of (ISO 8601). */
    asOf: string;
    /** Decimal string: the sum of the rounded line amounts. */
    total: string;
    lines: DemoReportLine[];
  };
  /** Null when the forecast stage has produced nothing (yet) for the tenant. */
  forecast: DemoForecast | null;
}

export interface DemoReportInput {
  tenants: DemoTenantReport[];
  /** The simulated range, ISO 8601 instants. */
  range?: { start: string; end: string };
  replay?: { events: number; accepted: number; rejected: number; elapsedMs: number };
}

export interface DemoReportOptions {
  /** Line items shown per tenant, largest amounts first; the rest are summed in one row. Default 12. */
  maxLinesPerTenant?: number;
}

/** Digits grouped by thousands in the integer part of a plain decimal text ("-1234567.5" → "-1,234,567.5"). */
export function groupThousands(text: string): string {
  const match = /^(-?)(\d+)(\.\d+)?$/.exec(text);
  if (!match) return text;
  return `${match[1] ?? ''}${(match[2] ?? '').replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${match[3] ?? ''}`;
}

/** A decimal-string amount, half-up to the currency's minor unit, grouped: "1,234.50". */
function formatAmountGrouped(amount: string, currency: string): string {
  return groupThousands(formatAmount(new Dec(amount), currency));
}

/** A decimal-string amount in its currency, half-up to the minor unit, e.g. "1,234.50 USD". */
export function formatMoney(amount: string, currency: string): string {
  return `${formatAmountGrouped(amount, currency)} ${currency}`;
}

/** A decimal-string quantity with at most `places` decimals (display only). */
function formatQuantity(value: string | number, places: number): string {
  return groupThousands(plain(new Dec(value).toDecimalPlaces(places, Dec.ROUND_HALF_UP)));
}

function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

function formatInstant(iso: string, zone: string): string {
  const at = DateTime.fromISO(iso, { zone });
  return at.isValid ? at.toFormat('yyyy-LL-dd HH:mm') : iso;
}

/** Columns padded to their widest cell; `right` marks right-aligned (numeric) columns. */
function table(header: string[], rows: string[][], right: boolean[], indent = ''): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    indent +
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), indent + widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function forecastCell(t: DemoTenantReport): string {
  if (!t.forecast) return 'not yet';
  const f = t.forecast;
  return `${formatMoney(f.monthEndTotal, t.currency)} (80%: ${formatAmountGrouped(f.interval80.lower, t.currency)}–${formatAmountGrouped(f.interval80.upper, t.currency)})`;
}

function lineRows(t: DemoTenantReport, maxLines: number): string[][] {
  const lines = [...t.monthToDate.lines].sort(
    (a, b) => new Dec(b.amount).comparedTo(new Dec(a.amount)) || (a.service < b.service ? -1 : a.service > b.service ? 1 : 0) || (a.meter < b.meter ? -1 : 1),
  );
  const shown = lines.slice(0, maxLines).map((l) => [
    l.service,
    l.meter,
    l.gbS ? formatQuantity(l.gbS.quantity, 3) : formatQuantity(l.quantity, 3),
    l.gbS ? 'GB-s' : l.unit,
    groupThousands(formatAmount(new Dec(l.amount), t.currency)),
  ]);
  const rest = lines.slice(maxLines);
  if (rest.length > 0) {
    const sum = rest.reduce((acc, l) => acc.plus(l.amount), new Dec(0));
    shown.push([`(${rest.length} more lines)`, '', '', '', groupThousands(formatAmount(sum, t.currency))]);
  }
  return shown;
}

function tenantSection(t: DemoTenantReport, maxLines: number): string[] {
  const mtd = t.monthToDate;
  const out = [
    '',
    `${t.tenant} (${t.timezone}, plan ${t.plan}, ${t.currency})`,
    `  month to date: ${formatMoney(mtd.total, t.currency)} for ${formatInstant(mtd.periodStart, t.timezone)} to ${formatInstant(mtd.asOf, t.timezone)} local time`,
  ];
  if (mtd.lines.length === 0) out.push('    (no line items)');
  else out.push(...table(['service', 'meter', 'quantity', 'unit', 'amount'], lineRows(t, maxLines), [false, false, true, false, true], '    '));
  const f = t.forecast;
  if (!f) {
    out.push('  month-end forecast: not available yet');
  } else {
    const interval = (i: { lower: string; upper: string }): string =>
      `${formatAmountGrouped(i.lower, t.currency)} to ${formatAmountGrouped(i.upper, t.currency)}`;
    const i95 = f.interval95 ? `, 95%: ${interval(f.interval95)}` : '';
    out.push(`  month-end forecast: ${formatMoney(f.monthEndTotal, t.currency)} (80%: ${interval(f.interval80)}${i95})${f.model ? ` [${f.model}]` : ''}`);
  }
  return out;
}

/** The report as text: a summary table, then each tenant's line items and forecast. */
export function formatDemoReport(input: DemoReportInput, options: DemoReportOptions = {}): string {
  const maxLines = options.maxLinesPerTenant ?? 12;
  const out: string[] = [];
  if (input.range) out.push(`Simulated usage ${formatInstant(input.range.start, 'UTC')} to ${formatInstant(input.range.end, 'UTC')} UTC`);
  if (input.replay) {
    const r = input.replay;
    out.push(
      `Replayed ${groupThousands(String(r.events))} events: ${groupThousands(String(r.accepted))} accepted, ${groupThousands(String(r.rejected))} rejected, in ${(r.elapsedMs / 1000).toFixed(1)} s`,
    );
  }
  if (out.length > 0) out.push('');
  out.push(
    ...table(
      ['tenant', 'invocations', 'GB-s', 'cold starts', 'p95 duration', 'month to date', 'month-end forecast'],
      input.tenants.map((t) => [
        t.tenant,
        formatQuantity(t.invocations, 0),
        groupThousands(new Dec(t.gbSeconds).toFixed(2, Dec.ROUND_HALF_UP)),
        formatQuantity(t.coldStarts, 0),
        formatDuration(t.p95DurationMs),
        formatMoney(t.monthToDate.total, t.currency),
        forecastCell(t),
      ]),
      [false, true, true, true, true, true, false],
    ),
  );
  for (const t of input.tenants) out.push(...tenantSection(t, maxLines));
  return `${out.join('\n')}\n`;
}
