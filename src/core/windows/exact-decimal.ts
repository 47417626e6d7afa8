/**
 * Exact decimal sums for the aggregation hot path. A JS number counts as the decimal it prints as
 * (`String(x)`: 0.1 is exactly 0.1). Values with at most 3 (or 6) decimals, which is what
 * usage_raw's numeric(14,3) columns hold, travel as float64 integers of thousandths (millionths)
 * and add exactly below 2^53, spilling into a bigint before that; anything else is an
 * `ExactDecimal` (bigint × 10^−scale). Results leave as canonical decimal strings (no exponent,
 * no trailing zeros), the form decimal.js and the `decimalString` contract use. This is an order
 * of magnitude cheaper than a decimal.js object per addition, which matters at a million events
 * times three window sizes; decimal.js stays the library for money arithmetic elsewhere.
 */
import { Decimal } from 'decimal.js';

/** Largest magnitude a scaled integer may have on the fast path (sums of two stay exact in float64). */
const FAST_LIMIT = 2 ** 52;

/**
 * `x` as an integer count of 10^(−scale) units when that is exact (x prints with at most `scale`
 * decimals and is small enough), otherwise null.
 */
export function toScaledInteger(x: number, scale: number): number | null {
  const f = 10 ** scale;
  const k = Math.round(x * f);
  return Math.abs(k) <= FAST_LIMIT && k / f === x ? k : null;
}

/** An exact amount on its way into a {@link FixedSum}: a scaled integer (fast) or any decimal. */
export type Amount = number | ExactDecimal;

/** `x` as an {@link Amount} of the given scale. */
export function amountOf(x: number | string, scale: number): Amount {
  if (typeof x === 'number') {
    const k = toScaledInteger(x, scale);
    if (k !== null) return k;
  }
  return ExactDecimal.of(x);
}

/** a × b of two amounts with scales sa and sb, as an amount of scale sa + sb. */
export function multiplyAmounts(a: Amount, sa: number, b: Amount, sb: number): Amount {
  if (typeof a === 'number' && typeof b === 'number') {
    const p = a * b;
    if (Math.abs(p) <= FAST_LIMIT) return p;
  }
  const ea = typeof a === 'number' ? ExactDecimal.fromScaled(BigInt(a), sa) : a;
  const eb = typeof b === 'number' ? ExactDecimal.fromScaled(BigInt(b), sb) : b;
  return ea.times(eb);
}

/**
 * An exact running sum: scaled integers add as float64 integers (exact below 2^53) and spill into
 * a bigint before they could lose a digit; amounts that are not scaled integers add exactly aside.
 */
export class FixedSum {
  private lo = 0;
  private hi = 0n;
  private other: ExactDecimal | null = null;

  constructor(readonly scale: number) {}

  add(a: Amount): this {
    if (typeof a === 'number') {
      if (this.lo > FAST_LIMIT || this.lo < -FAST_LIMIT) {
        this.hi += BigInt(this.lo);
        this.lo = 0;
      }
      this.lo += a;
    } else {
      (this.other ??= ExactDecimal.zero()).add(a);
    }
    return this;
  }

  toExact(): ExactDecimal {
    const fixed = ExactDecimal.fromScaled(this.hi + BigInt(this.lo), this.scale);
    return this.other ? fixed.add(this.other) : fixed;
  }

  /** The sum as a safe integer of 10^(−scale) units when it still is one (the common case), else null. */
  private small(): number | null {
    return this.other === null && this.hi === 0n && Number.isSafeInteger(this.lo) ? this.lo : null;
  }

  toString(): string {
    const small = this.small();
    if (small === null) return this.toExact().toString();
    const fixed = formatScaledNumber(small, this.scale);
    return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
  }

  /** The sum divided by a positive integer, rounded half-up to `places` (as ExactDecimal.divideToFixed). */
  divideToFixed(divisor: number, places: number): string {
    const small = this.small();
    const num = small === null ? Number.NaN : Math.abs(small) * 10 ** Math.max(0, places - this.scale);
    const den = divisor * 10 ** Math.max(0, this.scale - places);
    // Number arithmetic only where every operand and product is a safe integer; else exactly in bigint.
    if (small === null || !Number.isSafeInteger(num) || !Number.isSafeInteger(den) || !(Number.isSafeInteger(divisor) && divisor > 0)) {
      return this.toExact().divideToFixed(divisor, places);
    }
    let q = Math.floor(num / den);
    if (q * den > num) q -= 1;
    else if ((q + 1) * den <= num) q += 1;
    if (2 * (num - q * den) >= den) q += 1;
    return formatScaledNumber(small < 0 ? -q : q, places);
  }
}

/** A safe integer n as n·10^(−scale) with exactly `scale` decimals. */
function formatScaledNumber(n: number, scale: number): string {
  const digits = String(Math.abs(n)).padStart(scale + 1, '0');
  const sign = n < 0 ? '-' : '';
  if (scale === 0) return sign + digits;
  return `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** decimal.js with room for any sum of usage quantities (money paths need exact digits). */
export const Dec = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP, toExpNeg: -60, toExpPos: 60 });
export type Dec = Decimal;

const pow10Cache: bigint[] = [];
const pow10 = (k: number): bigint => (pow10Cache[k] ??= 10n ** BigInt(k));

const numberForm = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/;

/** An exact decimal value n·10^(−scale). */
export class ExactDecimal {
  private constructor(
    private n: bigint,
    private scale: number,
  ) {}

  static zero(): ExactDecimal {
    return new ExactDecimal(0n, 0);
  }

  /** n·10^(−scale). */
  static fromScaled(n: bigint, scale: number): ExactDecimal {
    return new ExactDecimal(n, scale);
  }

  /** The decimal a finite number prints as, or a decimal string (e.g. "12.345", "1e-7"). */
  static of(value: number | string): ExactDecimal {
    let text: string;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
      text = String(value);
    } else {
      text = value.trim();
    }
    const m = numberForm.exec(text) ?? numberForm.exec(new Dec(text).toFixed());
    if (!m) throw new RangeError(`not a decimal number: ${JSON.stringify(value)}`);
    const fraction = m[3] ?? '';
    let n = BigInt(`${m[1]}${m[2]}${fraction}`);
    let scale = fraction.length - Number(m[4] ?? 0);
    if (scale < 0) {
      n *= pow10(-scale);
      scale = 0;
    }
    return new ExactDecimal(n, scale);
  }

  /** this × other, exactly (a new value). */
  times(other: ExactDecimal): ExactDecimal {
    return new ExactDecimal(this.n * other.n, this.scale + other.scale);
  }

  /** this += other (in place). */
  add(other: ExactDecimal): this {
    if (other.scale > this.scale) {
      this.n = this.n * pow10(other.scale - this.scale) + other.n;
      this.scale = other.scale;
    } else {
      this.n += other.scale === this.scale ? other.n : other.n * pow10(this.scale - other.scale);
    }
    return this;
  }

  toDecimal(): Decimal {
    return new Dec(this.toString());
  }

  /** Canonical decimal string: no exponent, no trailing zeros ("0.3", "15", "-2.5"). */
  toString(): string {
    const fixed = formatScaled(this.n, this.scale);
    return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
  }

  /** this / divisor (a positive integer) rounded half-up (away from zero) to `places` decimals, e.g. "6.120". */
  divideToFixed(divisor: number, places: number): string {
    if (!(Number.isSafeInteger(divisor) && divisor > 0)) throw new RangeError(`divisor must be a positive integer, got ${divisor}`);
    const num = (this.n < 0n ? -this.n : this.n) * pow10(places);
    const den = BigInt(divisor) * pow10(this.scale);
    let q = num / den;
    if (2n * (num % den) >= den) q += 1n;
    return formatScaled(this.n < 0n ? -q : q, places);
  }
}

/** n·10^(−scale) with exactly `scale` decimals. */
function formatScaled(n: bigint, scale: number): string {
  const negative = n < 0n;
  const digits = (negative ? -n : n).toString().padStart(scale + 1, '0');
  const sign = negative ? '-' : '';
  if (scale === 0) return sign + digits;
  return `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}
