/**
 * Sending usage CloudEvents to a sink (K_SINK from a SinkBinding: the Broker, or collect
 * directly). A Knative Broker takes one event per request, so "single" mode posts each event in
 * binary mode; "batch" mode posts one application/cloudevents-batch+json request, which collect
 * and the local broker accept.
 */
import { randomUUID } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import { EventType } from '../contract/events.js';
import type { UsageData } from '../contract/usage.js';

export type SinkMode = 'single' | 'batch';

/** One usage report ready to leave: its data, when it ran, and (for idempotent senders) its id. */
export interface PendingUsage {
  data: UsageData;
  time: Date;
  id?: string;
}

/**
 * Builds the `faasbilling.usage.v1` CloudEvent of a report; a fresh UUID unless `id` is given.
 * The SDK's schema check is skipped (it costs more than the rest of metering a request): every
 * attribute is set here from typed values, and collect validates the data on arrival anyway.
 */
export function usageCloudEvent(source: string, usage: PendingUsage): CloudEvent<UsageData> {
  return new CloudEvent<UsageData>(
    {
      specversion: '1.0',
      type: EventType.usage,
      source,
      id: usage.id ?? randomUUID(),
      time: usage.time.toISOString(),
      datacontenttype: 'application/json',
      data: usage.data,
    },
    false,
  );
}

/** Raised when the sink does not take the events; `status` is absent when it was not reached. */
export class SinkError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SinkError';
  }
}

async function post(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new SinkError(`sink ${url} not reachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  // The body is read so the connection can be reused; its text names the problem on failure.
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new SinkError(`sink ${url} answered ${res.status}: ${text.slice(0, 300)}`, res.status);
}

/**
 * Posts `events` to `sink`; resolves once every request was answered 2xx, throws a SinkError
 * otherwise (some events of a "single" send may have been taken: their ids make a resend safe).
 */
export async function sendToSink(sink: string, events: readonly CloudEvent<UsageData>[], mode: SinkMode, timeoutMs: number, concurrency = 8): Promise<void> {
  if (events.length === 0) return;
  if (mode === 'batch') {
    await post(sink, { 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(events), timeoutMs);
    return;
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < events.length) {
      const event = events[next++];
      if (!event) return;
      const message = HTTP.binary(event);
      const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)]));
      await post(sink, headers, String(message.body), timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, events.length) }, worker));
}
