/** The demo's closing report: exact money formatting and what each tenant section shows. */
import assert from 'node:assert/strict';
import { formatDemoReport, formatMoney, groupThousands, type DemoTenantReport } from './report.js';

const acme: DemoTenantReport = {
  tenant: 'acme',
  timezone: 'Europe/Berlin',
  currency: 'USD',
  plan: 'standard-usd',
  invocations: '12345678',
  gbSeconds: '98765.4321',
  coldStarts: 321,
  p95DurationMs: 1834.2,
  monthToDate: {
    periodStart: '2025-02-28T23:00:00.000Z',
    asOf: '2025-03-12T12:00:00.000Z',
    total: '12345678901234.57',
    lines: [
      { service: 'api-orders', meter: 'invocations', quantity: '1000000', unit: 'invocation', amount: '0.20' },
      { service: 'api-orders', meter: 'compute', quantity: '2048000000', unit: 'MB-ms', amount: '12345678901234.12', gbS: { quantity: '2000' } },
      { service: 'cron-sync', meter: 'invocations', quantity: '500', unit: 'invocation', amount: '0.25' },
    ],
  },
  forecast: { monthEndTotal: '31.5', interval80: { lower: '28.004', upper: '35.995' }, interval95: { lower: '25', upper: '40' }, model: 'holt-winters@1' },
};

const tokyo: DemoTenantReport = {
  tenant: 'initech',
  timezone: 'Asia/Tokyo',
  currency: 'JPY',
  plan: 'yen-plan',
  invocations: 0,
  gbSeconds: '0',
  coldStarts: 0,
  p95DurationMs: null,
  monthToDate: { periodStart: '2025-02-28T15:00:00.000Z', asOf: '2025-03-12T12:00:00.000Z', total: '0', lines: [] },
  forecast: null,
};

describe('demo report', function () {
  it('formats money from decimal strings exactly, half-up to the minor unit, digits grouped', function () {
    // 17 significant digits: a float would print ...567.89 or ...568.00.
    assert.equal(formatMoney('12345678901234567.895', 'USD'), '12,345,678,901,234,567.90 USD');
    assert.equal(formatMoney('0.005', 'USD'), '0.01 USD');
    assert.equal(formatMoney('0.0049999999999999999', 'USD'), '0.00 USD');
    assert.equal(formatMoney('2.5', 'JPY'), '3 JPY');
    assert.equal(formatMoney('1234', 'RUB'), '1,234.00 RUB');
    assert.equal(groupThousands('-1234567.125'), '-1,234,567.125');
  });

  it('shows per tenant the usage, month-to-date line items largest first, and the forecast interval', function () {
    const text = formatDemoReport({
      tenants: [acme, tokyo],
      range: { start: '2025-03-05T12:00:00.000Z', end: '2025-03-12T12:00:00.000Z' },
      replay: { events: 81857, accepted: 81850, rejected: 7, elapsedMs: 41234 },
    });
    assert.match(text, /Simulated usage 2025-03-05 12:00 to 2025-03-12 12:00 UTC/);
    assert.match(text, /Replayed 81,857 events: 81,850 accepted, 7 rejected, in 41\.2 s/);
    const summary = text.split('\n').find((l) => l.startsWith('acme ')) ?? '';
    for (const cell of ['12,345,678', '98,765.43', '321', '1.83 s', '12,345,678,901,234.57 USD', '31.50 USD (80%: 28.00–36.00)']) {
      assert.ok(summary.includes(cell), `${cell} in "${summary}"`);
    }
    assert.match(text, /month to date: 12,345,678,901,234\.57 USD for 2025-03-01 00:00 to 2025-03-12 13:00 local time/);
    const items = text.split('\n').filter((l) => /^ {4}(api|cron)-/.test(l));
    assert.deepEqual(
      items.map((l) => l.trim().split(/\s+/)),
      [
        ['api-orders', 'compute', '2,000', 'GB-s', '12,345,678,901,234.12'],
        ['cron-sync', 'invocations', '500', 'invocation', '0.25'],
        ['api-orders', 'invocations', '1,000,000', 'invocation', '0.20'],
      ],
    );
    assert.match(text, /month-end forecast: 31\.50 USD \(80%: 28\.00 to 36\.00, 95%: 25\.00 to 40\.00\) \[holt-winters@1\]/);
    assert.match(text, /initech \(Asia\/Tokyo, plan yen-plan, JPY\)\n {2}month to date: 0 JPY for 2025-03-01 00:00/);
    assert.match(text, /\(no line items\)\n {2}month-end forecast: not available yet/);
  });

  it('sums the line items beyond the limit into one row', function () {
    const text = formatDemoReport({ tenants: [acme] }, { maxLinesPerTenant: 1 });
    assert.match(text, /\(2 more lines\)\s+0\.45\n/);
    assert.ok(!text.includes('cron-sync'));
  });
});
