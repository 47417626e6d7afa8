/**
 * The events the API causes, as an outbox (like budget alerts, 0012, and anomalies, 0014): a bill
 * finalized or marked paid through the API writes its `faasbilling.bill.generated.v1` here in the
 * same transaction as the status change, so a committed final or paid bill always has its event
 * recorded. `sent_at` is set once the event reached the Broker (the API's own send, right after
 * the commit) or the notifications function's scheduled sweep has handled it; until then every
 * sweep takes it again. `claimed_until` is a sweep's lease on a row (two sweeps at once never take
 * the same row), `attempts` and `last_error` what the sweep's tries came to
 * (src/stages/api-event-outbox.ts).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE api_event_outbox (
      id bigserial PRIMARY KEY,
      event_id varchar(255) NOT NULL UNIQUE,
      type varchar(255) NOT NULL,
      source varchar(255) NOT NULL,
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      data jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      sent_at timestamptz,
      attempts integer NOT NULL DEFAULT 0,
      claimed_until timestamptz,
      last_error text
    );
    CREATE INDEX api_event_outbox_unsent ON api_event_outbox (created_at) WHERE sent_at IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS api_event_outbox');
}
