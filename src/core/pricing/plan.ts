/**
 * Pricing plans: the zod schema that validates one (from the API, a seed file or a pricing_plans
 * row) and the plain `Plan` data the rest of the core prices with.
 *
 * Field names are the pricing_plans columns (snake_case), so a database row parses as it comes
 * (numeric columns arrive as text, bigint as text or bigint). Every price is a decimal string —
 * a JS number is refused, so no float ever becomes a price. After parsing, every price and free
 * allowance is canonical decimal text (no exponent, no trailing zeros).
 *
 * Compute can be priced per MB·ms (`price_per_mb_ms`, the column) or per GB-s (`price_per_gb_s`,
 * how providers publish it): 1 GB-s = 1024 MB × 1000 ms, so per_mb_ms = per_gb_s / 1 024 000,
 * which is always a finite decimal (1 024 000 = 2^13·5^3). Both are present after parsing; given
 * both, they must agree exactly. The free compute allowance likewise (`free_tier_mb_ms` /
 * `free_tier_gb_s`).
 *
 * `rules` (the jsonb column) holds the metering rules applied per invocation (see meter.ts). It is
 * a strict object: a rule this version does not know is an error, never silently ignored — a plan
 * written for a later version (tiers, time-of-day, ...) must not be priced as if flat.
 */
import { z } from 'zod';
import { Dec, MB_MS_PER_GB_S, isCurrencyCode, plain } from './money.js';
import { safeParseChargeModel, type ChargeModel } from './tiers.js';
import { scheduleSchema, type Schedule } from './schedule.js';

/** The meters a plan can give a charge model (bill.ts `meters`, repeated here: bill.ts imports this module). */
const chargeableMeters = ['invocations', 'compute', 'cold_starts', 'cpu'] as const;
type ChargeableMeter = (typeof chargeableMeters)[number];
/** A meter's per-unit price field, which a charge model replaces. */
const unitPriceField: Record<ChargeableMeter, 'price_per_invocation' | 'price_per_mb_ms' | 'price_per_cold_start' | 'price_per_cpu_ms'> = {
  invocations: 'price_per_invocation',
  compute: 'price_per_mb_ms',
  cold_starts: 'price_per_cold_start',
  cpu: 'price_per_cpu_ms',
};

/**
 * A commitment (reserved capacity): the tenant commits to `quantity` units of a meter per billing
 * period at `unit_price`, below the list price; usage beyond it is billed at the list price.
 * Compute commitments are written as providers sell them, in GB-s and per GB-s (`quantity_gb_s`,
 * `unit_price_per_gb_s`; or in MB·ms as `quantity` / `unit_price`, which must then agree); other
 * meters in their own units (`quantity`, `unit_price`). `bill_unused`: the unused part is
 * billed too (a take-or-pay commitment, the default) or not (a discount up to a cap).
 */
export interface Commitment {
  meter: ChargeableMeter;
  /** Committed units per billing period (compute: MB·ms). */
  quantity: string;
  /** Price per unit of the commitment (compute: per MB·ms). */
  unit_price: string;
  /** Compute only: quantity and unit price in GB-s (exact; how they were written). */
  quantity_gb_s?: string;
  unit_price_per_gb_s?: string;
  bill_unused: boolean;
}

/** The usage-event label naming the CPU architecture an invocation ran on (e.g. "arm64"). */
export const ARCHITECTURE_LABEL = 'architecture';
/** The usage-event label marking low-priority (spot) invocations: `priority=spot`. */
export const PRIORITY_LABEL = 'priority';
export const SPOT_PRIORITY = 'spot';

/** Price multipliers by meter ("0.8" = −20 %); a meter left out keeps its price. */
export type MeterMultipliers = Partial<Record<ChargeableMeter, string>>;

/**
 * Price variants of a plan's flat meter prices, multiplied together for each invocation:
 * - `architectures`: by the value of the event label `architecture` ("arm64": {"compute": "0.8"});
 *   invocations without the label, or with another value, pay the list price;
 * - `spot`: for invocations labelled `priority=spot`;
 * - `schedule`: time-of-day / day-of-week multipliers on the tenant's local clock (schedule.ts),
 *   applied to every meter.
 * Usage is split exactly at schedule boundaries (each event at its own instant), and the free
 * tier is consumed in time order across variants as across services.
 */
export interface PriceVariants {
  architectures: Readonly<Record<string, MeterMultipliers>>;
  spot: MeterMultipliers;
  schedule: Schedule;
}

/** Charge models by meter (tiers.ts), instead of the meter's flat per-unit price. */
export type ChargeModels = Partial<Record<ChargeableMeter, ChargeModel>>;
import type { Decimal } from 'decimal.js';

/** Longest duration granularity / minimum accepted: 15 minutes, the longest FaaS invocation. */
const MAX_DURATION_RULE_MS = 15 * 60 * 1000;
/** Largest memory rounding step: 64 GB. */
const MAX_MEMORY_STEP_MB = 64 * 1024;
/** Prices and allowances stay below 10^18 (the integer part numeric(38,20) holds). */
const MAX_VALUE = new Dec('1e18');

type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

const show = (v: unknown): string => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) ?? String(v));

/** A zod field checked by a plain function that returns a value or one clear message. */
function checkedField<T>(check: (input: unknown) => Checked<T>) {
  return z.unknown().transform((input, ctx): T => {
    const r = check(input);
    if (r.ok) return r.value;
    ctx.issues.push({ code: 'custom', message: r.message, input });
    return z.NEVER;
  });
}

function parseDecimalText(input: unknown, what: string, allowIntegers: boolean): Checked<Decimal> {
  if (typeof input === 'bigint' && allowIntegers) return { ok: true, value: new Dec(input.toString()) };
  if (typeof input === 'number' && allowIntegers && Number.isSafeInteger(input)) return { ok: true, value: new Dec(input) };
  if (typeof input === 'number') {
    return { ok: false, message: `${what} must be a decimal string such as "0.0000002", not a JS number (got ${show(input)})` };
  }
  if (typeof input !== 'string' || !/^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(input)) {
    return { ok: false, message: `${what} must be a decimal string such as "0.0000002" (got ${show(input)})` };
  }
  return { ok: true, value: new Dec(input.trim()) };
}

/** A unit price: decimal string, ≥ 0. */
function price(what: string) {
  return checkedField<string>((input) => {
    const r = parseDecimalText(input, what, false);
    if (!r.ok) return r;
    if (r.value.isNegative() && !r.value.isZero()) return { ok: false, message: `${what} must not be negative (got ${show(input)})` };
    if (r.value.gte(MAX_VALUE)) return { ok: false, message: `${what} must be below 10^18 (got ${show(input)})` };
    return { ok: true, value: plain(r.value) };
  });
}

/** A free allowance: decimal string or whole number, ≥ 0 (whole when `integer`). */
function allowance(what: string, integer: boolean) {
  return checkedField<string>((input) => {
    const r = parseDecimalText(input, what, true);
    if (!r.ok) return r;
    if (r.value.isNegative() && !r.value.isZero()) return { ok: false, message: `${what} must not be negative (got ${show(input)})` };
    if (integer && !r.value.isInteger()) return { ok: false, message: `${what} must be a whole number (got ${show(input)})` };
    if (r.value.gte(MAX_VALUE)) return { ok: false, message: `${what} must be below 10^18 (got ${show(input)})` };
    return { ok: true, value: plain(r.value) };
  });
}

/** A whole number rule within [min, max], given as a JSON number. */
function wholeRule(what: string, unit: string, min: number, max: number) {
  return checkedField<number>((input) => {
    if (typeof input !== 'number' || !Number.isSafeInteger(input) || input < min || input > max) {
      const bound = min === 0 ? 'a whole number' : 'a positive whole number';
      return { ok: false, message: `${what} must be ${bound} of ${unit} between ${min} and ${max} (got ${show(input)})` };
    }
    return { ok: true, value: input };
  });
}

export const billedMemoryModes = ['allocated', 'observed'] as const;
export type BilledMemoryMode = (typeof billedMemoryModes)[number];

/**
 * Metering rules, applied per invocation (meter.ts):
 * - `duration_granularity_ms`: each invocation's duration is rounded up to a multiple (1 = whole
 *   ms, 100 = the old AWS / Yandex rule). Default 1.
 * - `min_billed_duration_ms`: billed duration is at least this (after rounding). Default 0.
 * - `memory_step_mb`: billed memory is rounded up to a multiple (1, or 128 like Azure / Yandex).
 *   Default 1.
 * - `billed_memory`: `allocated` bills the revision's (else the service's) memory limit when one
 *   is known and the observed memory otherwise; `observed` always bills the memory the event
 *   reported. Default `observed`, the seed's behaviour (events carry memory_mb).
 * - `max_memory_mb`: billed memory is at most this (after rounding; a multiple of the step), as
 *   providers cap the memory they bill (Azure Consumption: 1 536 MB). Default null: no cap.
 */
export const planRulesSchema = z
  .strictObject({
    duration_granularity_ms: wholeRule('rules.duration_granularity_ms', 'ms', 1, MAX_DURATION_RULE_MS).default(1),
    min_billed_duration_ms: wholeRule('rules.min_billed_duration_ms', 'ms', 0, MAX_DURATION_RULE_MS).default(0),
    memory_step_mb: wholeRule('rules.memory_step_mb', 'MB', 1, MAX_MEMORY_STEP_MB).default(1),
    billed_memory: z
      .enum(billedMemoryModes, { error: `rules.billed_memory must be "allocated" or "observed"` })
      .default('observed'),
    max_memory_mb: wholeRule('rules.max_memory_mb', 'MB', 1, MAX_MEMORY_STEP_MB).nullable().default(null),
  })
  .superRefine((r, ctx) => {
    if (r.max_memory_mb !== null && r.max_memory_mb % r.memory_step_mb !== 0) {
      ctx.addIssue({ code: 'custom', path: ['max_memory_mb'], message: `rules.max_memory_mb (${r.max_memory_mb}) must be a multiple of rules.memory_step_mb (${r.memory_step_mb})`, input: r });
    }
  })
  .default({ duration_granularity_ms: 1, min_billed_duration_ms: 0, memory_step_mb: 1, billed_memory: 'observed', max_memory_mb: null });

export type PlanRules = z.output<typeof planRulesSchema>;

/** Rules with every default: whole-ms duration, no minimum, whole-MB memory, observed memory. */
export const defaultPlanRules: PlanRules = Object.freeze({
  duration_granularity_ms: 1,
  min_billed_duration_ms: 0,
  memory_step_mb: 1,
  billed_memory: 'observed',
  max_memory_mb: null,
});

const currency = checkedField<string>((input) =>
  typeof input === 'string' && isCurrencyCode(input)
    ? { ok: true, value: input }
    : { ok: false, message: `currency must be an upper-case ISO 4217 code such as "USD", "RUB" or "JPY" (got ${show(input)})` },
);

const optionalText = z.string().trim().min(1).max(255).nullish();

function multipliers(what: string) {
  return z.partialRecord(
    z.enum(chargeableMeters, { error: `${what}: a meter is one of ${chargeableMeters.join(', ')}` }),
    price(`${what} multiplier`),
  );
}

const priceVariantsSchema = z.strictObject({
  architectures: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,31}$/, 'an architecture is a label value such as "arm64" or "x86_64"'), multipliers('architectures'))
    .refine((a) => Object.keys(a).length <= 8, 'at most 8 architectures')
    .default({}),
  spot: multipliers('spot').default({}),
  schedule: scheduleSchema.default([]),
});

/** A commitment as written (see `Commitment`); units are checked against the meter in planSchema. */
const commitmentSchema = z.strictObject({
  meter: z.enum(chargeableMeters, { error: `meter must be one of ${chargeableMeters.join(', ')}` }),
  quantity: allowance('quantity', false).optional(),
  unit_price: price('unit_price').optional(),
  quantity_gb_s: allowance('quantity_gb_s', false).optional(),
  unit_price_per_gb_s: price('unit_price_per_gb_s').optional(),
  bill_unused: z.boolean({ error: 'bill_unused must be true or false' }).default(true),
});



export const planSchema = z
  .strictObject({
    id: optionalText,
    name: optionalText,
    version: z.number().int().min(1).nullish(),
    currency,
    price_per_invocation: price('price_per_invocation').optional(),
    price_per_mb_ms: price('price_per_mb_ms').optional(),
    price_per_gb_s: price('price_per_gb_s').optional(),
    price_per_cold_start: price('price_per_cold_start').optional(),
    price_per_cpu_ms: price('price_per_cpu_ms').optional(),
    /** CPU priced per vCPU-second of CPU time (÷ 1000 per CPU-ms). */
    price_per_vcpu_s: price('price_per_vcpu_s').optional(),
    /** CPU priced per GHz-second: CPU time × `cpu_ghz` (the clock of the allocation), as Google Cloud Functions publishes it. */
    price_per_ghz_s: price('price_per_ghz_s').optional(),
    cpu_ghz: price('cpu_ghz').optional(),
    free_tier_invocations: allowance('free_tier_invocations', true).optional(),
    free_tier_mb_ms: allowance('free_tier_mb_ms', false).optional(),
    free_tier_gb_s: allowance('free_tier_gb_s', false).optional(),
    /** CPU-ms free per period; or as vCPU-seconds (× 1000), or GHz-seconds at `cpu_ghz` (÷ cpu_ghz × 1000, rounded down to 0.001 ms). */
    free_tier_cpu_ms: allowance('free_tier_cpu_ms', false).optional(),
    free_tier_vcpu_s: allowance('free_tier_vcpu_s', false).optional(),
    free_tier_ghz_s: allowance('free_tier_ghz_s', false).optional(),
    rules: planRulesSchema,
    /**
     * Per meter, a charge model (per_unit, graduated, volume, package; tiers.ts) priced on the
     * tenant's total quantity of the meter in the period after free units; the meter's flat price
     * must then be 0. Compute quantities are in MB·ms.
     */
    charge_models: z.record(z.string(), z.unknown()).nullish(),
    /**
     * The least the tenant pays for a billing period (before tax and credits): a usage subtotal
     * below it is topped up by a "minimum monthly charge" line. Prorated with the plan's share of
     * a period, as free allowances are.
     */
    minimum_charge: price('minimum_charge').optional(),
    /** Price variants by architecture, spot priority and time of day; see `PriceVariants`. */
    price_variants: z.unknown().optional(),
    /** Commitments (reserved capacity), at most one per meter; see `Commitment`. */
    commitments: z.array(z.unknown()).readonly().nullish(),
    // pricing_plans columns the core does not use: accepted so a row parses, then dropped.
    tenant_id: z.unknown().optional(),
    previous_version_id: z.unknown().optional(),
    active: z.unknown().optional(),
    default_for_currency: z.unknown().optional(),
    created_at: z.unknown().optional(),
    updated_at: z.unknown().optional(),
  })
  .transform((p, ctx) => {
    const compute = perMbMsAndGbS('price', p.price_per_mb_ms, p.price_per_gb_s);
    const free = perMbMsAndGbS('free_tier', p.free_tier_mb_ms, p.free_tier_gb_s);
    for (const r of [compute, free]) {
      if (!r.ok) ctx.issues.push({ code: 'custom', message: r.message, input: p, path: [] });
    }
    if (!compute.ok || !free.ok) return z.NEVER;
    const cpu = cpuPerMs(p.price_per_cpu_ms, p.price_per_vcpu_s, p.price_per_ghz_s, p.cpu_ghz);
    if (!cpu.ok) {
      ctx.issues.push({ code: 'custom', message: cpu.message, input: p, path: [] });
      return z.NEVER;
    }
    p.price_per_cpu_ms = cpu.value;
    const freeCpu = freeCpuMs(p.free_tier_cpu_ms, p.free_tier_vcpu_s, p.free_tier_ghz_s, p.cpu_ghz);
    if (!freeCpu.ok) {
      ctx.issues.push({ code: 'custom', message: freeCpu.message, input: p, path: [] });
      return z.NEVER;
    }
    const chargeModels: ChargeModels = {};
    for (const [meter, input] of Object.entries(p.charge_models ?? {})) {
      if (input === undefined || input === null) continue;
      if (!(chargeableMeters as readonly string[]).includes(meter)) {
        ctx.issues.push({ code: 'custom', message: `charge_models.${meter}: not a meter (one of ${chargeableMeters.join(', ')})`, input, path: ['charge_models', meter] });
        continue;
      }
      const parsed = safeParseChargeModel(input);
      if (!parsed.ok) {
        for (const issue of parsed.error.issues) {
          ctx.issues.push({ code: 'custom', message: `charge_models.${meter}${issue.path ? `.${issue.path}` : ''}: ${issue.message}`, input, path: ['charge_models', meter] });
        }
        continue;
      }
      const m = meter as ChargeableMeter;
      const flat = m === 'compute' ? compute.value.mbMs : p[unitPriceField[m]];
      if (flat !== undefined && !new Dec(flat).isZero()) {
        ctx.issues.push({ code: 'custom', message: `charge_models.${meter} replaces ${unitPriceField[m]}${m === 'compute' ? ' (or price_per_gb_s)' : ''}; leave that at 0`, input, path: ['charge_models', meter] });
        continue;
      }
      chargeModels[m] = parsed.model;
    }
    const commitments: Commitment[] = [];
    (p.commitments ?? []).forEach((input, i) => {
      const at = `commitments[${i}]`;
      const r = commitmentSchema.safeParse(input);
      if (!r.success) {
        for (const issue of r.error.issues) {
          const where = issue.path.length > 0 ? `${at}.${issue.path.map(String).join('.')}` : at;
          ctx.issues.push({ code: 'custom', message: `${where}: ${issue.message}`, input, path: ['commitments', i] });
        }
        return;
      }
      const c = r.data;
      const problem = (message: string): void => {
        ctx.issues.push({ code: 'custom', message: `${at}: ${message}`, input, path: ['commitments', i] });
      };
      if (commitments.some((o) => o.meter === c.meter)) return problem(`a second commitment on ${c.meter}; give one per meter`);
      if (chargeModels[c.meter]) return problem(`${c.meter} is priced by a charge model; a commitment needs the meter's flat list price`);
      const isCompute = c.meter === 'compute';
      const gbS = c.quantity_gb_s !== undefined || c.unit_price_per_gb_s !== undefined;
      if (!isCompute && gbS) return problem(`write quantity and unit_price for ${c.meter} (the GB-s fields are for compute)`);
      let quantity = c.quantity === undefined ? undefined : new Dec(c.quantity);
      let unitPrice = c.unit_price === undefined ? undefined : new Dec(c.unit_price);
      if (isCompute && c.quantity_gb_s !== undefined) {
        const q = new Dec(c.quantity_gb_s).times(MB_MS_PER_GB_S);
        if (quantity !== undefined && !quantity.eq(q)) return problem(`quantity (${c.quantity} MB·ms) and quantity_gb_s (${c.quantity_gb_s}) disagree; give one`);
        quantity = q;
      }
      if (isCompute && c.unit_price_per_gb_s !== undefined) {
        const u = new Dec(c.unit_price_per_gb_s).div(MB_MS_PER_GB_S);
        if (unitPrice !== undefined && !unitPrice.eq(u)) return problem(`unit_price (per MB·ms) and unit_price_per_gb_s disagree; give one`);
        unitPrice = u;
      }
      if (quantity === undefined || unitPrice === undefined) {
        return problem(isCompute ? 'a compute commitment needs quantity_gb_s and unit_price_per_gb_s (or quantity in MB·ms and unit_price per MB·ms)' : 'quantity and unit_price are required');
      }
      if (quantity.isZero()) return problem('quantity must be above 0');
      if (c.meter === 'invocations' || c.meter === 'cold_starts') {
        if (!quantity.isInteger()) return problem(`quantity of ${c.meter} must be a whole number`);
      }
      const list = c.meter === 'compute' ? compute.value.mbMs : (p[unitPriceField[c.meter]] ?? '0');
      if (unitPrice.gt(list)) return problem(`unit price ${plain(unitPrice)} is above the list price ${list} of ${c.meter}; a commitment is sold below it`);
      commitments.push({
        meter: c.meter,
        quantity: plain(quantity),
        unit_price: plain(unitPrice),
        ...(isCompute ? { quantity_gb_s: plain(quantity.div(MB_MS_PER_GB_S)), unit_price_per_gb_s: plain(unitPrice.times(MB_MS_PER_GB_S)) } : {}),
        bill_unused: c.bill_unused,
      });
    });
    let variants: PriceVariants | null = null;
    if (p.price_variants !== undefined && p.price_variants !== null) {
      const r = priceVariantsSchema.safeParse(p.price_variants);
      if (!r.success) {
        for (const issue of r.error.issues) {
          const where = issue.path.length > 0 ? `price_variants.${issue.path.map(String).join('.')}` : 'price_variants';
          let message = issue.message.startsWith('schedule') ? `price_variants.${issue.message}` : `${where}: ${issue.message}`;
          if (issue.code === 'unrecognized_keys') {
            const keys = issue.keys.map((k) => `"${k}"`).join(', ');
            message =
              issue.path.length === 0
                ? `price_variants: ${keys} unknown (price_variants has architectures, spot, schedule)`
                : `${where}: ${keys} is not a meter (a meter is one of ${chargeableMeters.join(', ')})`;
          } else if (issue.code === 'invalid_key') {
            message = `${where}: an architecture is a label value such as "arm64" or "x86_64" (lower case, digits, "_", ".", "-")`;
          }
          ctx.issues.push({ code: 'custom', message, input: p.price_variants, path: ['price_variants'] });
        }
      } else {
        const v = r.data;
        const none = Object.keys(v.architectures).length === 0 && Object.keys(v.spot).length === 0 && v.schedule.length === 0;
        if (!none && Object.keys(chargeModels).length > 0) {
          ctx.issues.push({ code: 'custom', message: 'price_variants apply to flat meter prices; this plan prices meters by charge_models (use one or the other)', input: p.price_variants, path: ['price_variants'] });
        } else if (!none && commitments.length > 0) {
          ctx.issues.push({ code: 'custom', message: 'price_variants and commitments cannot be combined (a commitment is priced against one list price)', input: p.price_variants, path: ['price_variants'] });
        } else if (!none) {
          variants = Object.freeze(v);
        }
      }
    }
    if (ctx.issues.length > 0) return z.NEVER;
    const plan: Plan = {
      ...(p.id ? { id: p.id } : {}),
      ...(p.name ? { name: p.name } : {}),
      ...(p.version ? { version: p.version } : {}),
      currency: p.currency,
      price_per_invocation: p.price_per_invocation ?? '0',
      price_per_mb_ms: compute.value.mbMs,
      price_per_gb_s: compute.value.gbS,
      price_per_cold_start: p.price_per_cold_start ?? '0',
      price_per_cpu_ms: p.price_per_cpu_ms ?? '0',
      free_tier_invocations: p.free_tier_invocations ?? '0',
      free_tier_mb_ms: free.value.mbMs,
      free_tier_gb_s: free.value.gbS,
      free_tier_cpu_ms: freeCpu.value,
      rules: p.rules,
      charge_models: Object.freeze(chargeModels),
      minimum_charge: p.minimum_charge ?? '0',
      commitments: Object.freeze(commitments.map((c) => Object.freeze(c))),
      price_variants: variants,
    };
    return plan;
  });

/** A validated plan: canonical decimal text for every price and allowance, all rules resolved. */
export interface Plan {
  id?: string;
  name?: string;
  version?: number;
  /** ISO 4217. */
  currency: string;
  price_per_invocation: string;
  price_per_mb_ms: string;
  /** price_per_mb_ms × 1 024 000 (display; exact). */
  price_per_gb_s: string;
  price_per_cold_start: string;
  price_per_cpu_ms: string;
  /** Whole number of invocations free per billing period. */
  free_tier_invocations: string;
  /** MB·ms free per billing period. */
  free_tier_mb_ms: string;
  /** free_tier_mb_ms / 1 024 000 (display; exact). */
  free_tier_gb_s: string;
  /** CPU-ms free per billing period. */
  free_tier_cpu_ms: string;
  rules: PlanRules;
  /** Meters priced by a charge model instead of their flat price (empty: all flat). */
  charge_models: ChargeModels;
  /** The least billed per period before tax and credits ("0": none). */
  minimum_charge: string;
  /** Commitments (reserved capacity), at most one per meter. */
  commitments: readonly Commitment[];
  /** Price variants (architecture, spot, time of day); null: every invocation at list prices. */
  price_variants: PriceVariants | null;
}

/** What a plan may be written as (the schema's input; prices as decimal strings). */
export interface PlanInput {
  id?: string | null;
  name?: string | null;
  version?: number | null;
  currency: string;
  price_per_invocation?: string;
  price_per_mb_ms?: string;
  price_per_gb_s?: string;
  price_per_cold_start?: string;
  price_per_cpu_ms?: string;
  price_per_vcpu_s?: string;
  price_per_ghz_s?: string;
  cpu_ghz?: string;
  free_tier_invocations?: string | number | bigint;
  free_tier_mb_ms?: string | number | bigint;
  free_tier_gb_s?: string | number | bigint;
  free_tier_cpu_ms?: string | number | bigint;
  free_tier_vcpu_s?: string | number | bigint;
  free_tier_ghz_s?: string | number | bigint;
  rules?: Partial<PlanRules>;
  charge_models?: Record<string, unknown> | null;
  minimum_charge?: string;
  commitments?: readonly unknown[] | null;
  price_variants?: unknown;
  [column: string]: unknown;
}

/**
 * Resolves a compute price (per MB·ms = per GB-s / 1 024 000) or free allowance (MB·ms = GB-s ×
 * 1 024 000) given in either unit; both exact. Given both, they must agree.
 */
function perMbMsAndGbS(kind: 'price' | 'free_tier', mbMs: string | undefined, gbS: string | undefined): Checked<{ mbMs: string; gbS: string }> {
  const [mbMsName, gbSName] = kind === 'price' ? ['price_per_mb_ms', 'price_per_gb_s'] : ['free_tier_mb_ms', 'free_tier_gb_s'];
  const toMbMs = (v: string): Decimal => (kind === 'price' ? new Dec(v).div(MB_MS_PER_GB_S) : new Dec(v).times(MB_MS_PER_GB_S));
  const toGbS = (v: string): Decimal => (kind === 'price' ? new Dec(v).times(MB_MS_PER_GB_S) : new Dec(v).div(MB_MS_PER_GB_S));
  if (gbS === undefined) return { ok: true, value: { mbMs: mbMs ?? '0', gbS: plain(toGbS(mbMs ?? '0')) } };
  const fromGbS = toMbMs(gbS); // exact: 1 024 000 = 2^13·5^3
  if (mbMs !== undefined && !fromGbS.eq(mbMs)) {
    const op = kind === 'price' ? '/' : '×';
    return {
      ok: false,
      message: `${mbMsName} (${mbMs}) and ${gbSName} (${gbS}) disagree: ${gbSName} ${op} 1024000 = ${plain(fromGbS)}; give one of them`,
    };
  }
  return { ok: true, value: { mbMs: plain(fromGbS), gbS } };
}

type Written = [what: string, value: Decimal | undefined];

/** The one value of several ways of writing it (those given must agree exactly); undefined when none is given. */
function agreed(written: readonly Written[], what: string): Checked<string | undefined> {
  const given = written.filter((w): w is [string, Decimal] => w[1] !== undefined);
  const [first, ...rest] = given;
  if (!first) return { ok: true, value: undefined };
  const clash = rest.find(([, v]) => !v.eq(first[1]));
  if (clash) return { ok: false, message: `${first[0]} (${plain(first[1])}) and ${clash[0]} (${plain(clash[1])}) disagree; give one ${what}` };
  return { ok: true, value: plain(first[1]) };
}

/** Why a GHz-s field cannot be converted (null when it can): it needs a clock above 0. */
function ghzProblem(field: string, value: string | undefined, ghz: string | undefined, example: string): string | null {
  if (value !== undefined && ghz === undefined) return `${field} needs cpu_ghz (the clock of the CPU allocation, e.g. "${example}")`;
  if (ghz !== undefined && new Dec(ghz).isZero()) return 'cpu_ghz must be above 0';
  return null;
}

/**
 * The CPU price per CPU-ms from whichever way it is written: per CPU-ms, per vCPU-second (÷ 1000),
 * or per GHz-second at a clock of `cpu_ghz` GHz (× cpu_ghz ÷ 1000). All exact; given more than
 * one, they must agree.
 */
function cpuPerMs(perMs: string | undefined, perVcpuS: string | undefined, perGhzS: string | undefined, ghz: string | undefined): Checked<string | undefined> {
  const problem = ghzProblem('price_per_ghz_s', perGhzS, ghz, '2.4');
  if (problem) return { ok: false, message: problem };
  return agreed(
    [
      ['price_per_cpu_ms', perMs === undefined ? undefined : new Dec(perMs)],
      ['price_per_vcpu_s ÷ 1000', perVcpuS === undefined ? undefined : new Dec(perVcpuS).div(1000)],
      ['price_per_ghz_s × cpu_ghz ÷ 1000', perGhzS === undefined || ghz === undefined ? undefined : new Dec(perGhzS).times(ghz).div(1000)],
    ],
    'CPU price',
  );
}

/** The free CPU allowance in CPU-ms from CPU-ms, vCPU-s or GHz-s (see planSchema); given more than one, they must agree. */
function freeCpuMs(ms: string | undefined, vcpuS: string | undefined, ghzS: string | undefined, ghz: string | undefined): Checked<string> {
  const problem = ghzProblem('free_tier_ghz_s', ghzS, ghz, '0.2');
  if (problem) return { ok: false, message: problem };
  const r = agreed(
    [
      ['free_tier_cpu_ms', ms === undefined ? undefined : new Dec(ms)],
      ['free_tier_vcpu_s × 1000', vcpuS === undefined ? undefined : new Dec(vcpuS).times(1000)],
      ['free_tier_ghz_s ÷ cpu_ghz × 1000', ghzS === undefined || ghz === undefined ? undefined : new Dec(ghzS).div(ghz).times(1000).toDecimalPlaces(3, Dec.ROUND_DOWN)],
    ],
    'free CPU allowance',
  );
  return r.ok ? { ok: true, value: r.value ?? '0' } : r;
}

/** One problem found in a plan: where (dotted path, "" for the whole plan) and what. */
export interface PlanIssue {
  path: string;
  message: string;
}

export class PlanValidationError extends Error {
  readonly issues: PlanIssue[];
  constructor(issues: PlanIssue[]) {
    super(`invalid pricing plan: ${issues.map((i) => (i.path && !i.message.startsWith(i.path) ? `${i.path}: ${i.message}` : i.message)).join('; ')}`);
    this.name = 'PlanValidationError';
    this.issues = issues;
  }
}

function toIssues(error: z.ZodError): PlanIssue[] {
  return error.issues.flatMap((i): PlanIssue[] => {
    const path = i.path.map(String).join('.');
    if (i.code !== 'unrecognized_keys') return [{ path, message: i.message }];
    return i.keys.map((k) =>
      path === 'rules'
        ? { path: `rules.${k}`, message: `rules.${k} is not a rule this version knows (it cannot be applied, so the plan is refused)` }
        : { path: k, message: `${k} is not a pricing plan field` },
    );
  });
}

export type PlanParseResult = { ok: true; plan: Plan } | { ok: false; error: PlanValidationError };

/**
 * Plans this module produced. They are frozen, so one passed back in (e.g. to computeBill, which
 * parses its plan argument) is known valid and unchanged, and is not validated again.
 */
const parsedPlans = new WeakSet<Plan>();

/** Validates a plan; never throws. A plan it returned before comes back as it is. */
export function safeParsePlan(input: unknown): PlanParseResult {
  if (typeof input === 'object' && input !== null && parsedPlans.has(input as Plan)) return { ok: true, plan: input as Plan };
  const r = planSchema.safeParse(input);
  if (!r.success) return { ok: false, error: new PlanValidationError(toIssues(r.error)) };
  const plan = Object.freeze({ ...r.data, rules: Object.freeze({ ...r.data.rules }) });
  parsedPlans.add(plan);
  return { ok: true, plan };
}

/** Validates a plan (a row, API body or seed object); throws PlanValidationError listing every problem. */
export function parsePlan(input: unknown): Plan {
  const r = safeParsePlan(input);
  if (!r.ok) throw r.error;
  return r.plan;
}
