/**
 * Webhooks (issue 5, item 9): endpoints a tenant (or, with tenant_id NULL, the operator) wants
 * bill and budget events POSTed to, signed with HMAC-SHA256 under the webhook's secret, and the
 * log of every delivery attempt. A (webhook, event) delivered once is never delivered again,
 * however often the Broker redelivers the event.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE webhooks (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid REFERENCES tenants(id),
      url text NOT NULL CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
      secret text NOT NULL,
      events text[] NOT NULL CHECK (cardinality(events) >= 1),
      active boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhooks_tenant ON webhooks (tenant_id) WHERE active;
    CREATE TABLE webhook_deliveries (
      id bigserial PRIMARY KEY,
      webhook_id uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
      event_source text NOT NULL,
      event_id text NOT NULL,
      event_type text NOT NULL,
      attempt integer NOT NULL,
      status_code integer,
      error text,
      succeeded boolean NOT NULL,
      duration_ms integer NOT NULL,
      at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, at);
    CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook_id, event_source, event_id) WHERE succeeded;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS webhook_deliveries, webhooks');
}
