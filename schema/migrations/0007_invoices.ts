/**
 * Invoices (issue 5, item 7): tax per tenant and invoice numbers.
 *
 * - `tenants.tax_rate`: the tenant's tax (VAT) rate as a fraction (0.2 = 20%), 0 by default, and
 *   `tax_label` ("VAT") printed on its invoices.
 * - `bills.subtotal`: the sum of the rounded lines (usage and adjustments); `tax_rate`: the rate
 *   the bill was taxed at; `tax_amount`: subtotal × rate rounded half-up to the minor unit, applied
 *   once on the rounded subtotal; `total_amount` = subtotal + tax_amount.
 * - `bills.number`: the invoice number, given when the bill is finalized, gapless per tenant
 *   (`INV-<slug>-<5+ digits>`, the slug as written, in finalization order); drafts have none.
 *   Unique per tenant (and, the slug being unique, across tenants).
 * Existing bills keep their totals: subtotal = total, no tax (the final ones are updated with
 * the immutability trigger off, since nothing about what was billed changes).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE tenants
      ADD COLUMN tax_rate numeric(7,6) NOT NULL DEFAULT 0 CHECK (tax_rate >= 0 AND tax_rate <= 1),
      ADD COLUMN tax_label varchar(50) NOT NULL DEFAULT 'VAT';
    ALTER TABLE bills
      ADD COLUMN subtotal numeric(20,4) NOT NULL DEFAULT 0,
      ADD COLUMN tax_rate numeric(7,6) NOT NULL DEFAULT 0,
      ADD COLUMN tax_amount numeric(20,4) NOT NULL DEFAULT 0,
      ADD COLUMN number varchar(160),
      ADD CONSTRAINT bills_number_final CHECK (number IS NULL OR status <> 'draft');
    CREATE UNIQUE INDEX bills_number ON bills (tenant_id, number) WHERE number IS NOT NULL;
    ALTER TABLE bills DISABLE TRIGGER bills_guard_final;
    UPDATE bills SET subtotal = total_amount;
    -- Bills finalized before numbers existed get theirs, in finalization order.
    UPDATE bills b SET number = n.number
      FROM (SELECT x.id, 'INV-' || t.slug || '-' || lpad(k::text, greatest(5, length(k::text)), '0') AS number
              FROM (SELECT id, tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY finalized_at, period_start) AS k
                      FROM bills WHERE status <> 'draft') x
              JOIN tenants t ON t.id = x.tenant_id) n
     WHERE b.id = n.id;
    ALTER TABLE bills ENABLE TRIGGER bills_guard_final;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE bills DISABLE TRIGGER bills_guard_final;
    DROP INDEX IF EXISTS bills_number;
    ALTER TABLE bills DROP CONSTRAINT IF EXISTS bills_number_final,
      DROP COLUMN number, DROP COLUMN tax_amount, DROP COLUMN tax_rate, DROP COLUMN subtotal;
    ALTER TABLE bills ENABLE TRIGGER bills_guard_final;
    ALTER TABLE tenants DROP COLUMN tax_label, DROP COLUMN tax_rate;
  `);
}
