/**
 * Plans that bill real provider prices exactly, and a default plan per currency.
 *
 * - Unit prices and unrounded amounts widen to numeric(50,30): AWS's compute price per MB·ms is
 *   0.00000000001627607421875 (23 decimals), and an unrounded amount is a quantity (6 decimals)
 *   times such a price (29 decimals), kept without loss.
 * - `default_for_currency`: a tenant with no plan assignment in force is billed on the default
 *   plan of its currency (one per currency), so usage is never unpriced.
 * - The seed plans (src/core/pricing/seed.ts): `standard-usd` and `standard-rub`, each the default
 *   of its currency.
 * - usage_aggregate keeps what billing reads from a window: `billed_plan_id`, the plan whose
 *   metering rules produced `billed_mb_ms` (the plan in force at window_start), `events` (usage
 *   reports in the window) and the observed `mb_ms` (before any rounding rule).
 */
import type { Knex } from 'knex';
import { planColumns } from '../../src/adapters/plans.js';
import { parsePlan, seedPlans } from '../../src/core/pricing/index.js';

const WIDE = 'numeric(50,30)';

/** The columns of a plan that exist at this migration (later ones add charge models, minimums and commitments). */
const columnsOf0002 = ({ charge_models: _models, minimum_charge: _minimum, commitments: _commitments, price_variants: _variants, free_tier_cpu_ms: _freeCpu, ...columns }: Record<string, string | number | null>): Record<string, string | number | null> =>
  columns;
const NARROW = 'numeric(38,20)';

const widened: readonly [table: string, column: string][] = [
  ['pricing_plans', 'price_per_invocation'],
  ['pricing_plans', 'price_per_mb_ms'],
  ['pricing_plans', 'price_per_cold_start'],
  ['pricing_plans', 'price_per_cpu_ms'],
  ['bills', 'total_unrounded'],
  ['bill_line_items', 'unit_price'],
  ['bill_line_items', 'amount_unrounded'],
];

export async function up(knex: Knex): Promise<void> {
  for (const [table, column] of widened) await knex.raw(`ALTER TABLE ${table} ALTER COLUMN ${column} TYPE ${WIDE}`);
  await knex.raw(`
    ALTER TABLE pricing_plans ADD COLUMN default_for_currency boolean NOT NULL DEFAULT false;
    CREATE UNIQUE INDEX pricing_plans_currency_default ON pricing_plans (currency) WHERE default_for_currency;
    ALTER TABLE usage_aggregate
      ADD COLUMN billed_plan_id uuid REFERENCES pricing_plans(id),
      ADD COLUMN events bigint NOT NULL DEFAULT 0,
      ADD COLUMN mb_ms numeric(30,3) NOT NULL DEFAULT 0;
  `);
  for (const input of seedPlans) {
    const plan = parsePlan(input);
    await knex('pricing_plans')
      // charge_models arrive with migration 0008, minimum_charge and commitments with 0013; the seed plans have none.
      .insert({ ...columnsOf0002(planColumns(plan)), default_for_currency: true })
      .onConflict(['name', 'version'])
      .ignore();
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex('pricing_plans').whereIn('name', seedPlans.map((p) => p.name ?? '')).where({ version: 1 }).delete();
  await knex.raw(`
    ALTER TABLE usage_aggregate DROP COLUMN IF EXISTS billed_plan_id, DROP COLUMN IF EXISTS events, DROP COLUMN IF EXISTS mb_ms;
    DROP INDEX IF EXISTS pricing_plans_currency_default;
    ALTER TABLE pricing_plans DROP COLUMN IF EXISTS default_for_currency;
  `);
  for (const [table, column] of widened) await knex.raw(`ALTER TABLE ${table} ALTER COLUMN ${column} TYPE ${NARROW}`);
}
