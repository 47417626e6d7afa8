/**
 * Events the API causes, sent to the Broker (K_SINK, as a SinkBinding injects it): a bill
 * finalized or marked paid through the API is announced as `faasbilling.bill.generated.v1`, the
 * event the price stage replies when it closes a period, so tenants' webhooks hear of every final
 * bill whichever way it was made. Binary mode, a few tries with growing pauses; a Broker that stays
 * down never fails the request (the bill is already committed): the failure is logged and counted
 * in `faasbilling_api_events_failed_total`, and the event waits in the outbox it was recorded
 * in with the bill (src/stages/api-event-outbox.ts) until notifications' sweep delivers it.
 * Without K_SINK nothing is sent here, and the sweep delivers every event.
 */
import { HTTP, type CloudEvent } from 'cloudevents';
import { Counter, type Registry } from 'prom-client';
import { isRetryableStatus } from '../contract/routing.js';
import type { Logger } from '../runtime/logger.js';

export interface EventSender {
  /** Sends the event; resolves whether it was accepted (never rejects). */
  send(event: CloudEvent<unknown>): Promise<boolean>;
}

export interface EventSenderOptions {
  /** The Broker's URL; undefined: events are not sent. */
  sink: string | undefined;
  logger: Logger;
  registry: Registry;
  attempts?: number;
  /** Pause before try n+1: backoffMs × 2^(n-1). */
  backoffMs?: number;
  timeoutMs?: number;
}

export function createEventSender(options: EventSenderOptions): EventSender {
  const { sink, logger, attempts = 3, backoffMs = 200, timeoutMs = 5000 } = options;
  const sent = new Counter({ name: 'faasbilling_api_events_sent_total', help: 'CloudEvents the API sent to the Broker, by type', labelNames: ['type'], registers: [options.registry] });
  const failed = new Counter({ name: 'faasbilling_api_events_failed_total', help: 'CloudEvents the API could not send to the Broker after every try, by type', labelNames: ['type'], registers: [options.registry] });
  return {
    async send(event) {
      if (sink === undefined) return false;
      const message = HTTP.binary(event);
      const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)]));
      let last = '';
      for (let attempt = 1; attempt <= attempts; attempt++) {
        try {
          const res = await fetch(sink, { method: 'POST', headers, body: typeof message.body === 'string' ? message.body : JSON.stringify(message.body), signal: AbortSignal.timeout(timeoutMs) });
          await res.arrayBuffer().catch(() => undefined);
          if (res.ok) {
            sent.inc({ type: event.type });
            return true;
          }
          last = `HTTP ${res.status}`;
          if (!isRetryableStatus(res.status)) break; // refused: a retry would be too (Knative's delivery rule)
        } catch (err) {
          last = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        }
        if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, backoffMs * 2 ** (attempt - 1)));
      }
      failed.inc({ type: event.type });
      logger.error({ type: event.type, id: event.id, sink, error: last }, 'event not sent to the Broker');
      return false;
    },
  };
}
