/**
 * The dedup key of usage_raw becomes per tenant: (tenant_id, source, event_id, time) instead of
 * (source, event_id, time). A CloudEvent's (source, id) is unique only as far as its producer
 * keeps it so; with a key shared across tenants, one tenant reusing another's event ids (by
 * mistake, or on purpose after seeing them) would make the other's usage "duplicates" and drop it,
 * and the answer would tell it that the other had sent those ids. Per tenant, a redelivered event
 * is still stored once, and tenants cannot touch each other's usage.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE usage_raw DROP CONSTRAINT usage_raw_source_event_id_time_key;
    ALTER TABLE usage_raw ADD CONSTRAINT usage_raw_tenant_event_key UNIQUE (tenant_id, source, event_id, time);
  `);
}

/** Back to the shared key: of rows that now collide (other tenants' reuse of an event key), the first stored stays. */
export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DELETE FROM usage_raw u USING usage_raw k
     WHERE u.source = k.source AND u.event_id = k.event_id AND u.time = k.time AND u.id > k.id;
    ALTER TABLE usage_raw DROP CONSTRAINT usage_raw_tenant_event_key;
    ALTER TABLE usage_raw ADD CONSTRAINT usage_raw_source_event_id_time_key UNIQUE (source, event_id, time);
  `);
}
