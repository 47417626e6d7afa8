/**
 * Budgets (issue 5, item 9): one monthly budget per tenant, in its currency, with alert
 * thresholds in percent (50/80/100 by default). `budget_alerts` records each threshold crossed
 * in a billing period; its unique key makes the alert happen once per threshold per period, however
 * often the month-to-date cost is recomputed.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE budgets (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid NOT NULL UNIQUE REFERENCES tenants(id),
      amount numeric(20,4) NOT NULL CHECK (amount > 0),
      thresholds integer[] NOT NULL DEFAULT '{50,80,100}' CHECK (cardinality(thresholds) BETWEEN 1 AND 10),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE budget_alerts (
      id bigserial PRIMARY KEY,
      budget_id uuid NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      period_start timestamptz NOT NULL,
      threshold integer NOT NULL,
      amount numeric(20,4) NOT NULL,
      limit_amount numeric(20,4) NOT NULL,
      currency char(3) NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (budget_id, period_start, threshold)
    );
    CREATE INDEX budget_alerts_tenant ON budget_alerts (tenant_id, created_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS budget_alerts, budgets');
}
