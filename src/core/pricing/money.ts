/**
 * Money primitives of the pricing core (DESIGN §5): a private decimal.js clone, currency codes and
 * their minor units, half-up rounding. No JS `number` ever carries an amount or a price here.
 */
import { Decimal } from 'decimal.js';

/**
 * decimal.js clone for every pricing computation. 64 significant digits hold any product of a
 * billed quantity (≤ 30 digits) and a unit price (≤ 34 digits) exactly, so nothing is rounded
 * before a line amount is rounded on purpose. The global `Decimal` is never configured.
 */
export const Dec = Decimal.clone({
  precision: 64,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -64,
  toExpPos: 64,
});
export type Dec = Decimal;

/** MB·ms in one GB-s: 1 GB = 1024 MB, 1 s = 1000 ms. */
export const MB_MS_PER_GB_S = new Dec(1024 * 1000);


/** Plain decimal text without exponent or trailing zeros ("0.0000002", "12", "-3.5"). */
export function plain(value: Dec): string {
  return value.isZero() ? '0' : value.toFixed();
}

let knownCurrencies: ReadonlySet<string> | undefined;

/** Whether `code` is an ISO 4217 currency code this runtime knows (upper case, e.g. "USD"). */
export function isCurrencyCode(code: string): boolean {
  if (!/^[A-Z]{3}$/.test(code)) return false;
  knownCurrencies ??= new Set(Intl.supportedValuesOf('currency'));
  return knownCurrencies.has(code);
}

const minorDigitsCache = new Map<string, number>();

/** Digits of the currency's minor unit (USD/RUB 2, JPY 0, BHD 3), from the runtime's CLDR data. */
export function minorUnitDigits(currency: string): number {
  const cached = minorDigitsCache.get(currency);
  if (cached !== undefined) return cached;
  if (!isCurrencyCode(currency)) throw new RangeError(`"${currency}" is not an ISO 4217 currency code`);
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  if (digits === undefined) throw new RangeError(`no minor unit known for ${currency}`);
  minorDigitsCache.set(currency, digits);
  return digits;
}

/**
 * Rounds an amount to the currency's minor unit, half-up: a tie goes away from zero
 * (0.005 USD → 0.01, 2.5 JPY → 3, −0.005 USD → −0.01), never to even.
 */
export function roundHalfUp(amount: Dec, currency: string): Dec {
  return amount.toDecimalPlaces(minorUnitDigits(currency), Dec.ROUND_HALF_UP);
}

/** An amount already at (or rounded to) the minor unit, as text with exactly that many decimals. */
export function formatAmount(amount: Dec, currency: string): string {
  return roundHalfUp(amount, currency).toFixed(minorUnitDigits(currency));
}
