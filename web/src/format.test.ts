import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDateTime, formatDurationMs, formatMoney, formatMoneyChange, formatNumber, formatPeriod, formatRate, formatUnitPrice, sumDecimals } from './format.ts';

// ICU writes a narrow no-break space before AM/PM in newer versions; compare with plain spaces.
const plainSpaces = (text: string): string => text.replace(/[\u202f\u00a0]/g, ' ');

describe('dashboard formatting', () => {
  describe('money in the tenant’s currency', () => {
    it('writes an amount at the currency’s minor unit, with its symbol and grouping', () => {
      assert.equal(formatMoney('1234.5', 'USD', 'en-US'), '$1,234.50');
      assert.equal(plainSpaces(formatMoney('1234.5', 'RUB', 'en-US')), 'RUB 1,234.50');
      assert.equal(plainSpaces(formatMoney('1234567.891', 'EUR', 'de-DE')), '1.234.567,89 €');
    });

    it('a currency without minor units (JPY) shows whole yen', () => {
      assert.equal(formatMoney('1234', 'JPY', 'en-US'), '¥1,234');
    });

    it('formats the decimal string exactly, beyond what a float can hold', () => {
      // 12345678901234567.89 is not representable as a double (it would print …568).
      assert.equal(formatMoney('12345678901234567.89', 'USD', 'en-US'), '$12,345,678,901,234,567.89');
    });

    it('a change of money carries its sign either way, and zero none', () => {
      assert.equal(formatMoneyChange('3.2', 'USD', 'en-US'), '+$3.20');
      assert.equal(formatMoneyChange('-1', 'USD', 'en-US'), '-$1.00');
      assert.equal(formatMoneyChange('0.00', 'USD', 'en-US'), '$0.00');
      assert.equal(formatMoneyChange('12.5', 'JPY', 'en-US'), '+¥13');
      assert.equal(formatMoneyChange('n/a', 'USD', 'en-US'), '—');
    });

    it('unit prices keep their digits (AWS’s GB-s price)', () => {
      assert.equal(formatUnitPrice('0.0000166667', 'USD', 'en-US'), '$0.0000166667');
    });

    it('anything that is not a decimal number is shown as a dash, never as NaN', () => {
      assert.equal(formatMoney('abc', 'USD', 'en-US'), '—');
      assert.equal(formatNumber('1e5', 2, 'en-US'), '—');
      assert.equal(formatRate('x', 'en-US'), '—');
      assert.equal(formatDateTime('not a date', 'UTC', 'en-US'), '—');
    });
  });

  describe('numbers, rates and durations', () => {
    it('groups and rounds numbers to the asked digits', () => {
      assert.equal(formatNumber(1234567.891, 1, 'en-US'), '1,234,567.9');
      assert.equal(formatNumber('0.125', 2, 'en-US'), '0.13');
    });

    it('writes a ratio as a percentage', () => {
      assert.equal(formatRate('0.0125', 'en-US'), '1.25%');
      assert.equal(formatRate(0, 'en-US'), '0%');
    });

    it('writes durations in ms below a second and in s above', () => {
      assert.equal(formatDurationMs('250.25', 'en-US'), '250.3 ms');
      assert.equal(formatDurationMs(1530, 'en-US'), '1.53 s');
      assert.equal(formatDurationMs(null, 'en-US'), '—');
    });
  });

  describe('times in the tenant’s time zone', () => {
    it('shows an instant in the zone’s local time', () => {
      assert.equal(plainSpaces(formatDateTime('2026-11-05T14:00:00Z', 'Asia/Tokyo', 'en-US')), 'Nov 5, 2026, 11:00 PM');
      assert.equal(plainSpaces(formatDateTime('2026-11-05T14:00:00Z', 'America/New_York', 'en-US')), 'Nov 5, 2026, 9:00 AM');
    });

    it('a period ends the day before its exclusive end, in the zone', () => {
      // November in Moscow (UTC+3): [Oct 31 21:00Z, Nov 30 21:00Z).
      assert.equal(formatPeriod('2026-10-31T21:00:00Z', '2026-11-30T21:00:00Z', 'Europe/Moscow', 'en-US'), 'Nov 1, 2026 – Nov 30, 2026');
    });
  });

  describe('exact sums of money', () => {
    it('adds decimals without float error', () => {
      assert.equal(sumDecimals(['0.1', '0.2']), '0.3');
      assert.equal(sumDecimals(['10.50', '-0.75', '3']), '12.75');
      assert.equal(sumDecimals(['-1.5', '0.25']), '-1.25');
      assert.equal(sumDecimals([]), '0');
    });

    it('equals the integer sum of the same amounts in minor units (property)', () => {
      fc.assert(
        fc.property(fc.array(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), { maxLength: 30 }), (cents) => {
          const asText = cents.map((c) => {
            const negative = c < 0n;
            const digits = (negative ? -c : c).toString().padStart(3, '0');
            return `${negative ? '-' : ''}${digits.slice(0, -2)}.${digits.slice(-2)}`;
          });
          const expected = cents.reduce((a, b) => a + b, 0n);
          const sum = sumDecimals(asText);
          const [whole = '0', fraction = '00'] = sum.replace('-', '').split('.');
          const back = BigInt(whole + fraction.padEnd(2, '0')) * (sum.startsWith('-') ? -1n : 1n);
          assert.equal(back, expected);
        }),
      );
    });
  });
});
