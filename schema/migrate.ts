/**
 * Runs the knex migrations. The migration list is explicit (not a directory scan) so the same
 * code runs from TypeScript sources under tsx and from the compiled JavaScript in the image.
 */
import type { Knex } from 'knex';
import * as initial from './migrations/0001_initial.js';
import * as plans from './migrations/0002_plans.js';
import * as aggregate from './migrations/0003_aggregate.js';
import * as billing from './migrations/0004_billing.js';
import * as forecast from './migrations/0005_forecast.js';
import * as tenantDedup from './migrations/0006_tenant_dedup.js';
import * as invoices from './migrations/0007_invoices.js';
import * as chargeModels from './migrations/0008_charge_models.js';
import * as budgets from './migrations/0009_budgets.js';
import * as webhooks from './migrations/0010_webhooks.js';
import * as creditNotes from './migrations/0011_credit_notes.js';
import * as budgetOutbox from './migrations/0012_budget_outbox.js';
import * as commitmentsCredits from './migrations/0013_commitments_credits.js';
import * as anomalyOutbox from './migrations/0014_anomaly_outbox.js';
import * as apiEventOutbox from './migrations/0015_api_event_outbox.js';
import * as webhookRedelivery from './migrations/0016_webhook_redelivery.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_plans': plans,
  '0003_aggregate': aggregate,
  '0004_billing': billing,
  '0005_forecast': forecast,
  '0006_tenant_dedup': tenantDedup,
  '0007_invoices': invoices,
  '0008_charge_models': chargeModels,
  '0009_budgets': budgets,
  '0010_webhooks': webhooks,
  '0011_credit_notes': creditNotes,
  '0012_budget_outbox': budgetOutbox,
  '0013_commitments_credits': commitmentsCredits,
  '0014_anomaly_outbox': anomalyOutbox,
  '0015_api_event_outbox': apiEventOutbox,
  '0016_webhook_redelivery': webhookRedelivery,
};

/** Every migration, in the order they apply. */
export const migrationNames: readonly string[] = Object.keys(migrations).sort();

const source: Knex.MigrationSource<string> = {
  getMigrations: () => Promise.resolve([...migrationNames]),
  getMigrationName: (name) => name,
  getMigration: (name) => {
    const migration = migrations[name];
    if (!migration) throw new Error(`unknown migration ${name}`);
    return Promise.resolve(migration);
  },
};

/** Applies every pending migration; returns the names applied (none when up to date). */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource: source })) as [number, string[]];
  return applied;
}

/** Rolls every migration back (tests and `npm run migrate -- --down`). */
export async function migrateDownAll(db: Knex): Promise<void> {
  await db.migrate.rollback({ migrationSource: source }, true);
}
