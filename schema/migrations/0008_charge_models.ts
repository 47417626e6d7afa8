/**
 * Charge models (issue 5, item 1):
 * - `pricing_plans.charge_models`: per meter, a per_unit, graduated, volume or package model
 *   (src/core/pricing/tiers.ts) priced on the tenant's total quantity in the period.
 * - `bill_line_items.service_label`: what a line is for when it is not one service — the
 *   tenant-wide tier and flat-fee lines of a meter with a charge model ("*tier-2", "*fee-1"), so
 *   a finalized bill read back keeps each tier apart (adjustments compare tier by tier).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE pricing_plans ADD COLUMN charge_models jsonb NOT NULL DEFAULT '{}';
    ALTER TABLE bill_line_items ADD COLUMN service_label varchar(64);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE bill_line_items DROP COLUMN service_label;
    ALTER TABLE pricing_plans DROP COLUMN charge_models;
  `);
}
