/**
 * What the bill lifecycle needs (draft → final → paid, adjustments for late usage, month-to-date
 * running cost):
 *
 * - `bills`: one bill per (tenant, period_start) (the unique index is what makes generate and the
 *   monthly close idempotent); `segments`, the plans in force over the period with their prorated
 *   free allowances (a finalized bill is recomputed with exactly these, never with a later
 *   assignment); `usage_as_of`, when the bill's usage was read (the late-usage watermark).
 *   The unused jsonb copy `line_items` is dropped: bill_line_items is the one place lines live
 *   (a copy doubled what a monthly close writes, and could drift from the rows).
 * - `bill_line_items`: the plan and segment a line was priced under, its free and billable
 *   quantities, its position, and `adjusts_bill_id` — the finalized bill an adjustment line
 *   corrects (set exactly on adjustment lines).
 * - A final bill is immutable, enforced by the database: triggers refuse any UPDATE or DELETE of
 *   a final/paid bill and any change to its line items; the one change allowed is status
 *   final → paid with paid_at set. TRUNCATE is refused while a final bill exists.
 * - `tenant_running_costs`: the month-to-date cost per tenant and period, rewritten by the price
 *   stage whenever aggregated usage changes.
 */
import type { Knex } from 'knex';

const AMOUNT = 'numeric(20,4)';
const AMOUNT_UNROUNDED = 'numeric(50,30)';
const QUANTITY = 'numeric(38,6)';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE bills
      ADD COLUMN segments jsonb NOT NULL DEFAULT '[]',
      ADD COLUMN usage_as_of timestamptz,
      DROP COLUMN line_items;
    DROP INDEX bills_tenant_period;
    CREATE UNIQUE INDEX bills_tenant_period ON bills (tenant_id, period_start);

    ALTER TABLE bill_line_items
      ADD COLUMN position integer NOT NULL DEFAULT 0,
      ADD COLUMN plan_id uuid REFERENCES pricing_plans(id),
      ADD COLUMN segment_start timestamptz,
      ADD COLUMN segment_end timestamptz,
      ADD COLUMN free_quantity ${QUANTITY} NOT NULL DEFAULT 0,
      ADD COLUMN billable_quantity ${QUANTITY} NOT NULL DEFAULT 0,
      ADD COLUMN adjusts_bill_id uuid REFERENCES bills(id),
      ADD CONSTRAINT bill_line_items_adjustment CHECK (is_adjustment = (adjusts_bill_id IS NOT NULL));
    CREATE INDEX bill_line_items_adjusts ON bill_line_items (adjusts_bill_id) WHERE adjusts_bill_id IS NOT NULL;

    -- A final bill never changes; the only transition after final is final -> paid (with paid_at).
    CREATE FUNCTION bills_guard_final() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.status = 'draft' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
      END IF;
      IF TG_OP = 'UPDATE' AND OLD.status = 'final' AND NEW.status = 'paid' AND NEW.paid_at IS NOT NULL
         AND to_jsonb(NEW) - 'status' - 'paid_at' - 'updated_at' = to_jsonb(OLD) - 'status' - 'paid_at' - 'updated_at' THEN
        RETURN NEW;
      END IF;
      RAISE EXCEPTION 'bill % is % and cannot be changed: a final bill is immutable (only final -> paid with paid_at is allowed; late usage becomes an adjustment on the next bill)', OLD.id, OLD.status
        USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    CREATE TRIGGER bills_guard_final BEFORE UPDATE OR DELETE ON bills
      FOR EACH ROW EXECUTE FUNCTION bills_guard_final();

    -- Line items are checked once per statement (transition tables), not per row: a close writes
    -- thousands of lines per statement, and a per-row lookup of the bill doubled that cost.
    CREATE FUNCTION bill_line_items_guard_final() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      frozen uuid;
    BEGIN
      -- One index lookup per distinct bill (a transition table has no statistics to plan a join by).
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT b.id INTO frozen FROM (SELECT DISTINCT bill_id FROM old_lines) l
          CROSS JOIN LATERAL (SELECT id FROM bills WHERE id = l.bill_id AND status <> 'draft') b LIMIT 1;
      END IF;
      IF frozen IS NULL AND TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT b.id INTO frozen FROM (SELECT DISTINCT bill_id FROM new_lines) l
          CROSS JOIN LATERAL (SELECT id FROM bills WHERE id = l.bill_id AND status <> 'draft') b LIMIT 1;
      END IF;
      IF frozen IS NOT NULL THEN
        RAISE EXCEPTION 'line items of bill % cannot be changed: a final bill is immutable (late usage becomes an adjustment on the next bill)', frozen
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER bill_line_items_guard_insert AFTER INSERT ON bill_line_items
      REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION bill_line_items_guard_final();
    CREATE TRIGGER bill_line_items_guard_update AFTER UPDATE ON bill_line_items
      REFERENCING OLD TABLE AS old_lines NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION bill_line_items_guard_final();
    CREATE TRIGGER bill_line_items_guard_delete AFTER DELETE ON bill_line_items
      REFERENCING OLD TABLE AS old_lines FOR EACH STATEMENT EXECUTE FUNCTION bill_line_items_guard_final();

    -- TRUNCATE skips row triggers, so it is refused outright while any bill is final.
    CREATE FUNCTION bills_guard_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM bills WHERE status <> 'draft') THEN
        RAISE EXCEPTION 'cannot truncate %: final bills are immutable', TG_TABLE_NAME
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER bills_guard_truncate BEFORE TRUNCATE ON bills
      FOR EACH STATEMENT EXECUTE FUNCTION bills_guard_truncate();
    CREATE TRIGGER bill_line_items_guard_truncate BEFORE TRUNCATE ON bill_line_items
      FOR EACH STATEMENT EXECUTE FUNCTION bills_guard_truncate();

    -- Month-to-date cost, rewritten by the price stage on every usage.aggregated event. total is
    -- the cost of the period's own usage (sum of rounded lines); adjustments_total what late usage
    -- of finalized periods adds to this period's bill; lines holds both (adjustments flagged).
    CREATE TABLE tenant_running_costs (
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      period_start timestamptz NOT NULL,
      period_end timestamptz NOT NULL,
      currency char(3) NOT NULL,
      plan_id uuid REFERENCES pricing_plans(id),
      total ${AMOUNT} NOT NULL,
      total_unrounded ${AMOUNT_UNROUNDED} NOT NULL,
      adjustments_total ${AMOUNT} NOT NULL DEFAULT 0,
      lines jsonb NOT NULL DEFAULT '[]',
      usage_as_of timestamptz NOT NULL,
      computed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, period_start),
      CHECK (period_end > period_start)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE IF EXISTS tenant_running_costs;
    DROP TRIGGER IF EXISTS bill_line_items_guard_truncate ON bill_line_items;
    DROP TRIGGER IF EXISTS bills_guard_truncate ON bills;
    DROP TRIGGER IF EXISTS bill_line_items_guard_delete ON bill_line_items;
    DROP TRIGGER IF EXISTS bill_line_items_guard_update ON bill_line_items;
    DROP TRIGGER IF EXISTS bill_line_items_guard_insert ON bill_line_items;
    DROP TRIGGER IF EXISTS bills_guard_final ON bills;
    DROP FUNCTION IF EXISTS bills_guard_truncate();
    DROP FUNCTION IF EXISTS bill_line_items_guard_final();
    DROP FUNCTION IF EXISTS bills_guard_final();
    DROP INDEX IF EXISTS bill_line_items_adjusts;
    ALTER TABLE bill_line_items
      DROP CONSTRAINT IF EXISTS bill_line_items_adjustment,
      DROP COLUMN IF EXISTS adjusts_bill_id,
      DROP COLUMN IF EXISTS billable_quantity,
      DROP COLUMN IF EXISTS free_quantity,
      DROP COLUMN IF EXISTS segment_end,
      DROP COLUMN IF EXISTS segment_start,
      DROP COLUMN IF EXISTS plan_id,
      DROP COLUMN IF EXISTS position;
    DROP INDEX IF EXISTS bills_tenant_period;
    CREATE INDEX bills_tenant_period ON bills (tenant_id, period_start);
    ALTER TABLE bills DROP COLUMN IF EXISTS usage_as_of, DROP COLUMN IF EXISTS segments,
      ADD COLUMN IF NOT EXISTS line_items jsonb NOT NULL DEFAULT '[]';
  `);
}
