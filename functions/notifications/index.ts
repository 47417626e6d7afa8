/**
 * notifications: bill.generated, bills.closed, budget.exceeded and anomaly.detected events POSTed
 * to the webhooks subscribed to them, signed, retried and logged (src/stages/notify.ts); budget
 * alerts and anomalies each under their own id, then marked handled in their outbox. Answers 200 with each webhook's
 * outcome; a webhook that stays down is recorded in webhook_deliveries, not retried by the
 * Broker (which would redeliver to every webhook of the event).
 */
import { createDb, pingDb } from '../../src/adapters/postgres.js';
import { BillingError } from '../../src/contract/problem.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Notifier } from '../../src/stages/notify.js';
import { Counter } from 'prom-client';

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
  const notifier = new Notifier({
    db,
    logger,
    attempts: config.WEBHOOK_ATTEMPTS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_ADDRESSES,
  });
  return Promise.resolve({
    metrics,
    handle: async ({ cloudevent }) => {
      if (!cloudevent) throw new BillingError('invalid_event', 'notifications accepts CloudEvents only');
      const outcomes = await notifier.notify(cloudevent);
      for (const o of outcomes) deliveries.inc({ outcome: o.outcome });
      return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: { deliveries: outcomes } };
    },
    ready: () => pingDb(db),
    close: () => db.destroy(),
  });
};

const notifications = defineFunction('notifications', createNotifications);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = notifications;
export default notifications;
