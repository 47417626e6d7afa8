/**
 * Webhook redelivery: what was sent, so a delivery that failed every try can be sent again
 * (`POST /webhooks/:id/deliveries/:deliveryId/redeliver`).
 *
 * - webhook_payloads keeps the exact body (the CloudEvent in structured mode, without its
 *   signature) once per (webhook, event source, event id), not once per attempt: the tries of one
 *   event carry the same body, and an operator webhook's bills.closed lists every tenant's bill, so
 *   a copy per try would multiply the largest bodies by WEBHOOK_ATTEMPTS. A delivery row finds its
 *   body by that key; rows logged before this migration have none. The body goes with its webhook.
 * - webhook_deliveries.redelivery_of marks a row as a redelivery and names the delivery it
 *   repeated (it goes with that delivery). A forced redelivery may succeed for an event that
 *   already succeeded, so the once-per-event unique index now covers the notifications
 *   function's own tries only.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE webhook_payloads (
      webhook_id uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
      event_source text NOT NULL,
      event_id text NOT NULL,
      event_type text NOT NULL,
      body text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (webhook_id, event_source, event_id)
    );
    ALTER TABLE webhook_deliveries ADD COLUMN redelivery_of bigint REFERENCES webhook_deliveries(id) ON DELETE CASCADE;
    CREATE INDEX webhook_deliveries_redelivery_of ON webhook_deliveries (redelivery_of) WHERE redelivery_of IS NOT NULL;
    DROP INDEX webhook_deliveries_once;
    CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook_id, event_source, event_id) WHERE succeeded AND redelivery_of IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  // Without the column a redelivery reads as one of notifications' tries, and a forced one would
  // break the once-per-event index: redeliveries go.
  await knex.raw(`
    DELETE FROM webhook_deliveries WHERE redelivery_of IS NOT NULL;
    DROP INDEX webhook_deliveries_once;
    ALTER TABLE webhook_deliveries DROP COLUMN redelivery_of;
    CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook_id, event_source, event_id) WHERE succeeded;
    DROP TABLE webhook_payloads;
  `);
}
