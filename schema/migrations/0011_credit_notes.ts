/**
 * Credit notes (issue 5, item 7): the way to correct a final bill, which itself never changes. A
 * credit note credits part or all of a final (or paid) bill with a reason; the credited amounts of
 * a bill never exceed its total (checked under the tenant's billing lock). Numbered per tenant,
 * gapless (`CN-<slug>-00001`, the slug as written), immutable once written.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE credit_notes (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      bill_id uuid NOT NULL REFERENCES bills(id),
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      number varchar(170) NOT NULL,
      amount numeric(20,4) NOT NULL CHECK (amount > 0),
      currency char(3) NOT NULL,
      reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX credit_notes_bill ON credit_notes (bill_id);
    CREATE UNIQUE INDEX credit_notes_number ON credit_notes (tenant_id, number);
    CREATE FUNCTION credit_notes_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'credit note % cannot be changed or deleted: issue another one to correct it', OLD.number
        USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    CREATE TRIGGER credit_notes_immutable BEFORE UPDATE OR DELETE ON credit_notes
      FOR EACH ROW EXECUTE FUNCTION credit_notes_immutable();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE IF EXISTS credit_notes;
    DROP FUNCTION IF EXISTS credit_notes_immutable();
  `);
}
