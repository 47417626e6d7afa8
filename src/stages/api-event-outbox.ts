/**
 * The outbox of the events the API causes (migration 0015): nothing the API announces is lost when
 * the Broker is down.
 *
 * - The API records the event (`recordEvent`) inside the transaction that makes the change it
 *   announces (a bill finalized or marked paid), so the change never commits without it.
 * - After the commit the API sends it to the Broker as before (`sendRecorded`); when the Broker
 *   accepts it the row is marked sent. A failure there never fails the request: the row waits.
 * - The notifications function sweeps the outbox on a PingSource (`sweepOutbox`, every 5 minutes):
 *   each row still unsent a minute after it was written (the API's own tries are over by then) is
 *   delivered to the webhooks directly, under the event's own source and id, and then marked sent.
 *   Notifications skips a webhook that already received that (source, id), so an event that did
 *   reach the Broker but was not marked sent (a crash between the two) reaches no webhook twice.
 *
 * "Sent" means handed to notifications (by the Broker or by the sweep), as for the budget and
 * anomaly outboxes: a webhook that fails every WEBHOOK_ATTEMPTS try is logged in
 * webhook_deliveries and not retried by the sweep, as it is not retried after the Broker's delivery.
 */
import { CloudEvent } from 'cloudevents';
import type { Knex } from 'knex';
import type { Logger } from '../runtime/logger.js';
import type { EventSender } from '../api/events.js';

/** Rows younger than this are left to the API's own send (3 tries of at most 5 s, with pauses). */
export const SWEEP_MIN_AGE_MS = 60_000;
/** A row a sweep took is not taken by another sweep for this long (its delivery is under way). */
export const SWEEP_LEASE_MS = 10 * 60_000;
/** Rows one sweep takes; the rest wait for the next tick. */
export const SWEEP_BATCH = 100;

const table = 'api_event_outbox';

/** Records `event` (about `tenantId`) in the outbox, inside `trx`; recording an id again changes nothing. */
export async function recordEvent(trx: Knex, event: CloudEvent<unknown>, tenantId: string): Promise<void> {
  await trx(table)
    .insert({ event_id: event.id, type: event.type, source: event.source, tenant_id: tenantId, data: JSON.stringify(event.data ?? null) })
    .onConflict('event_id')
    .ignore();
}

/** Marks a recorded event sent; an event already marked keeps its time. */
async function markSent(db: Knex, eventId: string): Promise<void> {
  await db(table).where({ event_id: eventId }).whereNull('sent_at').update({ sent_at: db.fn.now(), claimed_until: null });
}

/**
 * Sends an event recorded by `recordEvent` (after its transaction committed) to the Broker and
 * marks it sent when the Broker accepted it. Resolves whether it was accepted; never rejects (what
 * was not marked sent is the sweep's).
 */
export async function sendRecorded(db: Knex, sender: EventSender, event: CloudEvent<unknown>, logger: Logger): Promise<boolean> {
  if (!(await sender.send(event))) return false;
  try {
    await markSent(db, event.id);
  } catch (err) {
    logger.warn({ id: event.id, error: err instanceof Error ? err.message : String(err) }, 'event sent but not marked sent in the outbox; the sweep repeats it (webhooks get it once)');
  }
  return true;
}

export interface SweepOptions {
  db: Knex;
  /** Hands an event to its consumers (notifications' webhook delivery); resolves once that is recorded. */
  deliver: (event: CloudEvent<unknown>) => Promise<unknown>;
  logger: Logger;
  /** Rows younger than this are not taken (default SWEEP_MIN_AGE_MS). */
  minAgeMs?: number;
  /** How long a taken row is the sweep's (default SWEEP_LEASE_MS). */
  leaseMs?: number;
  /** Rows taken per sweep (default SWEEP_BATCH). */
  batch?: number;
}

/** What one sweep did. */
export interface SweepResult {
  /** Rows delivered and marked sent. */
  sent: number;
  /** Rows whose delivery failed (left unsent, with the error, for the next sweep). */
  failed: number;
  /** Rows still unsent when the sweep ended, whatever their age. */
  unsent: number;
}

interface OutboxRow {
  id: string;
  event_id: string;
  type: string;
  source: string;
  data: unknown;
  created_at: Date;
}

/** Takes up to `batch` unsent rows older than `minAgeMs` that no other sweep holds, oldest first. */
async function claim(db: Knex, minAgeMs: number, leaseMs: number, batch: number): Promise<OutboxRow[]> {
  const { rows } = await db.raw<{ rows: OutboxRow[] }>(
    `UPDATE ${table} o
        SET attempts = o.attempts + 1, claimed_until = now() + ?::bigint * interval '1 millisecond'
      WHERE o.id IN (
        SELECT id FROM ${table}
         WHERE sent_at IS NULL
           AND created_at <= now() - ?::bigint * interval '1 millisecond'
           AND (claimed_until IS NULL OR claimed_until < now())
         ORDER BY created_at, id
         LIMIT ?
           FOR UPDATE SKIP LOCKED)
      RETURNING o.id, o.event_id, o.type, o.source, o.data, o.created_at`,
    [leaseMs, minAgeMs, batch],
  );
  return rows.sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || Number(a.id) - Number(b.id));
}

/**
 * Delivers the outbox rows the API could not hand to the Broker (see the module comment), one at
 * a time, and marks each sent once delivered; a failed delivery keeps its row for the next sweep.
 * Rejects only when the outbox cannot be read (the tick is then retried by the Broker).
 */
export async function sweepOutbox(options: SweepOptions): Promise<SweepResult> {
  const { db, deliver, logger, minAgeMs = SWEEP_MIN_AGE_MS, leaseMs = SWEEP_LEASE_MS, batch = SWEEP_BATCH } = options;
  const result: SweepResult = { sent: 0, failed: 0, unsent: 0 };
  for (const row of await claim(db, minAgeMs, leaseMs, batch)) {
    // The event as the API sent it: same type, source and id (so no webhook gets it twice).
    const event = new CloudEvent<unknown>({ id: row.event_id, type: row.type, source: row.source, time: row.created_at.toISOString(), data: row.data });
    try {
      await deliver(event);
      await markSent(db, row.event_id);
      result.sent += 1;
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      logger.error({ id: row.event_id, type: row.type, error }, 'outbox event not delivered; the next sweep tries again');
      await db(table).where({ id: row.id }).update({ last_error: error.slice(0, 2000), claimed_until: null });
      result.failed += 1;
    }
  }
  const [counted] = (await db(table).whereNull('sent_at').count<{ n: string }[]>({ n: '*' })) as { n: string }[];
  result.unsent = Number(counted?.n ?? 0);
  return result;
}
