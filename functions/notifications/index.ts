/**
 * notifications: bill.generated, bills.closed, budget.exceeded and anomaly.detected events POSTed
 * to the webhooks subscribed to them, signed, retried and logged (src/stages/notify.ts); budget
 * alerts and anomalies each under their own id, then marked handled in their outbox. Answers 200 with each webhook's
 * outcome; a webhook that stays down is recorded in webhook_deliveries, not retried by the
 * Broker (which would redeliver to every webhook of the event).
 *
 * The PingSource api-outbox-sweep (every 5 minutes) makes it sweep the outbox of the events the
 * API causes (src/stages/api-event-outbox.ts): what the API could not hand to the Broker is
 * delivered to the webhooks here, under its own id, then marked sent. Answers 200 with the
 * sweep's counts.
 */
import { createDb, pingDb } from '../../src/adapters/postgres.js';
import { sweepOutbox } from '../../src/stages/api-event-outbox.js';
import { BillingError } from '../../src/contract/problem.js';
import { pingEventType } from '../../src/contract/routing.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Notifier, type DeliveryOutcome } from '../../src/stages/notify.js';
import type { CloudEvent } from 'cloudevents';
import { Counter, Gauge } from 'prom-client';

/** Creates the notifications function from its configuration. */
export const createNotifications: FunctionFactory = (config, logger) => {
  const db = createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX);
  const metrics = createStageMetrics('notifications');
  const deliveries = new Counter({
    name: 'faasbilling_webhook_deliveries_total',
    help: 'Webhook deliveries by outcome (delivered, failed, already_delivered)',
    labelNames: ['outcome'] as const,
    registers: [metrics.registry],
  });
  const swept = new Counter({
    name: 'faasbilling_api_event_outbox_swept_total',
    help: 'Events of the API event outbox the sweep handled, by outcome (sent: delivered and marked sent; failed: left for the next sweep)',
    labelNames: ['outcome'] as const,
    registers: [metrics.registry],
  });
  const unsent = new Gauge({
    name: 'faasbilling_api_event_outbox_unsent',
    help: 'Events of the API event outbox not sent yet, counted at the end of the last sweep',
    registers: [metrics.registry],
  });
  const notifier = new Notifier({
    db,
    logger,
    attempts: config.WEBHOOK_ATTEMPTS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_ADDRESSES,
  });
  /** Delivers an event to its webhooks and counts the outcomes. */
  const notify = async (event: CloudEvent<unknown>): Promise<DeliveryOutcome[]> => {
    const outcomes = await notifier.notify(event);
    for (const o of outcomes) deliveries.inc({ outcome: o.outcome });
    return outcomes;
  };
  return Promise.resolve({
    metrics,
    handle: async ({ cloudevent }) => {
      if (!cloudevent) throw new BillingError('invalid_event', 'notifications accepts CloudEvents only');
      if (cloudevent.type === pingEventType) {
        const outbox = await sweepOutbox({ db, logger, deliver: notify });
        swept.inc({ outcome: 'sent' }, outbox.sent);
        swept.inc({ outcome: 'failed' }, outbox.failed);
        unsent.set(outbox.unsent);
        return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: { outbox } };
      }
      const outcomes = await notify(cloudevent);
      return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: { deliveries: outcomes } };
    },
    ready: () => pingDb(db),
    close: () => db.destroy(),
  });
};

const notifications = defineFunction('notifications', createNotifications);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = notifications;
export default notifications;
