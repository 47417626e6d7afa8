/**
 * deadletter: the Broker's dead-letter sink. Every event the Broker could not deliver after its
 * retries lands in dead_letters with the failed destination and status, so nothing is lost.
 */
import { createDb, pingDb } from '../../src/adapters/postgres.js';
import { recordDeadLetters } from '../../src/adapters/dead-letters.js';
import { BillingError } from '../../src/contract/problem.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';

const str = (value: unknown): string | null =>
  typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : null;

/** Decodes Knative's base64 `knativeerrordata` (the failed response's body), if present. */
function errorData(value: unknown): string {
  if (typeof value !== 'string' || value === '') return '';
  return Buffer.from(value, 'base64').toString('utf8').slice(0, 1000);
}

/** Creates the deadletter function from its configuration. */
export const createDeadletter: FunctionFactory = (config) => {
  const db = createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX);
  const metrics = createStageMetrics('deadletter');
  return Promise.resolve({
    metrics,
    handle: async ({ cloudevent }) => {
      if (!cloudevent) throw new BillingError('invalid_event', 'the dead-letter sink accepts CloudEvents only');
      const event = cloudevent.toJSON();
      const status = str(event.knativeerrorcode) ?? 'unknown';
      const data = typeof event.data === 'object' && event.data !== null ? (event.data as Record<string, unknown>) : {};
      await recordDeadLetters(db, [
        {
          stage: 'broker',
          reason: `delivery_failed_${status}`,
          detail: `delivery to ${str(event.knativeerrordest) ?? 'its subscriber'} failed with status ${status} after all retries: ${errorData(event.knativeerrordata)}`,
          source: cloudevent.source,
          eventId: cloudevent.id,
          eventType: cloudevent.type,
          tenantKey: str(data.tenant_id),
          payload: event,
        },
      ]);
      metrics.deadLettered.inc({ reason: 'delivery_failed' });
      return { statusCode: 202 };
    },
    ready: () => pingDb(db),
    close: () => db.destroy(),
  });
};

const deadletter = defineFunction('deadletter', createDeadletter);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = deadletter;
export default deadletter;
