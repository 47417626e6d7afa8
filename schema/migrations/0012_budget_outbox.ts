/**
 * Budget alerts as an outbox: `notified_at` is set once the notifications function has handled
 * the alert. Until then the price stage announces it again with every running-cost update, so an
 * alert whose event was lost (a crash, a timeout, a failed reply delivery) is still announced;
 * notifications delivers each alert under its own id, so a repeat never reaches a webhook twice.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE budget_alerts ADD COLUMN notified_at timestamptz;
    CREATE INDEX budget_alerts_unsent ON budget_alerts (tenant_id) WHERE notified_at IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX IF EXISTS budget_alerts_unsent;
    ALTER TABLE budget_alerts DROP COLUMN notified_at;
  `);
}
