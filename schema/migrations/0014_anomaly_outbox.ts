/**
 * Anomalies found by forecast runs, as an outbox (like budget alerts, migration 0012). One row per
 * incident: a later run that sees the incident continue (src/stages/anomaly-outbox.ts) updates
 * its row, keeping `since`, and refreshes its details; the unique key catches two rows with the
 * same first hour. `notified_at` is set once the notifications function has handled it; until
 * then every forecast run of the tenant announces it again, so an anomaly whose event was lost is
 * still announced, and notifications delivers each one under its own id, so a repeat never
 * reaches a webhook twice.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE anomalies (
      id bigserial PRIMARY KEY,
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      service varchar(255) NOT NULL,
      metric varchar(32) NOT NULL,
      since timestamptz NOT NULL,
      until timestamptz NOT NULL,
      direction varchar(5) NOT NULL CHECK (direction IN ('spike', 'drop')),
      score double precision NOT NULL,
      expected double precision NOT NULL,
      observed double precision NOT NULL,
      cost_impact numeric(20,4) NOT NULL,
      currency char(3) NOT NULL,
      explanation text NOT NULL,
      detected_at timestamptz NOT NULL DEFAULT now(),
      last_seen_at timestamptz NOT NULL DEFAULT now(),
      notified_at timestamptz,
      UNIQUE (tenant_id, service, metric, since)
    );
    CREATE INDEX anomalies_unsent ON anomalies (tenant_id) WHERE notified_at IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS anomalies');
}
