/**
 * Commitments, minimum charges and credits (issue 5, items 4 and 6):
 * - `pricing_plans.minimum_charge`: the least a tenant pays per period before tax and credits;
 *   `pricing_plans.commitments`: reserved capacity per meter; `pricing_plans.price_variants`:
 *   price multipliers by architecture, spot priority and time of day (src/core/pricing/plan.ts);
 *   `pricing_plans.free_tier_cpu_ms`: free CPU time per period.
 * - `bill_line_items.kind`: usage | commitment | minimum | credit. Only usage lines are
 *   reconciled against late usage (adjustments); the others are decided on the bill itself.
 * - `tenant_credits`: coupons (a percentage off a bill, optionally capped per bill) and prepaid or
 *   promotional credits (an amount drawn down bill after bill), each valid over a time range.
 *   `bill_line_items.credit_id` ties a credit line to its credit: what a credit has given is the
 *   sum of its lines on final and paid bills, so a balance can never be spent twice.
 * - `bill_line_items.variant`: the price variant of a usage line ("arm64 · spot · night", plan
 *   price_variants), so a finalized bill read back keeps its variants apart when reconciled.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE pricing_plans
      ADD COLUMN minimum_charge numeric(20,4) NOT NULL DEFAULT 0 CHECK (minimum_charge >= 0),
      ADD COLUMN commitments jsonb NOT NULL DEFAULT '[]',
      ADD COLUMN price_variants jsonb,
      ADD COLUMN free_tier_cpu_ms numeric(30,3) NOT NULL DEFAULT 0 CHECK (free_tier_cpu_ms >= 0);

    CREATE TABLE tenant_credits (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      code varchar(64) NOT NULL CHECK (length(code) >= 1),
      kind varchar(10) NOT NULL CHECK (kind IN ('credit', 'coupon')),
      amount numeric(20,4),
      percent numeric(7,4),
      max_amount_per_bill numeric(20,4) CHECK (max_amount_per_bill IS NULL OR max_amount_per_bill > 0),
      currency char(3) NOT NULL,
      description text,
      valid_from timestamptz NOT NULL,
      valid_until timestamptz,
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      voided_at timestamptz,
      CHECK ((kind = 'credit' AND amount > 0 AND percent IS NULL) OR (kind = 'coupon' AND amount IS NULL AND percent > 0 AND percent <= 100)),
      CHECK (valid_until IS NULL OR valid_until > valid_from),
      UNIQUE (tenant_id, code)
    );

    ALTER TABLE bill_line_items
      ADD COLUMN kind varchar(20) NOT NULL DEFAULT 'usage' CHECK (kind IN ('usage', 'commitment', 'minimum', 'credit')),
      ADD COLUMN credit_id uuid REFERENCES tenant_credits(id),
      ADD COLUMN variant varchar(160);
    CREATE INDEX bill_line_items_credit ON bill_line_items (credit_id) WHERE credit_id IS NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE bill_line_items DROP COLUMN variant, DROP COLUMN credit_id, DROP COLUMN kind;
    DROP TABLE IF EXISTS tenant_credits;
    ALTER TABLE pricing_plans DROP COLUMN free_tier_cpu_ms, DROP COLUMN price_variants, DROP COLUMN commitments, DROP COLUMN minimum_charge;
  `);
}
