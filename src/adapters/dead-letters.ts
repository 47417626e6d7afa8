/** Writes to dead_letters: events that could not be stored or delivered, kept with the reason. */
import type { Knex } from 'knex';

export interface DeadLetter {
  /** Stage that gave up: save, broker... */
  stage: string;
  /** Stable, machine-readable reason (a metric label): unknown_tenant, insert_failed, delivery_failed... */
  reason: string;
  /** What happened and what to do about it. */
  detail: string;
  source: string | null;
  eventId: string | null;
  eventType: string | null;
  tenantKey: string | null;
  payload: unknown;
}

/** Inserts dead letters; the same (stage, source, id) twice is kept once. Returns rows written. */
export async function recordDeadLetters(db: Knex | Knex.Transaction, letters: DeadLetter[]): Promise<number> {
  if (letters.length === 0) return 0;
  const inserted = await db('dead_letters')
    .insert(
      letters.map((l) => ({
        stage: l.stage,
        reason: l.reason,
        detail: l.detail,
        source: l.source,
        event_id: l.eventId,
        event_type: l.eventType,
        tenant_key: l.tenantKey,
        payload: JSON.stringify(l.payload ?? null),
      })),
    )
    .onConflict(['stage', 'source', 'event_id'])
    .ignore()
    .returning('id');
  return inserted.length;
}
