/**
 * The collect stage: turns a request (one CloudEvent, a cloudevents batch, or seed-shaped JSON)
 * into validated usage records, drops repeats it has seen recently, and appends the rest to the
 * buffer. It answers 202 only once the buffer holds them; a buffer that is down is a 503.
 * The API's /metrics/ingest uses the same path, so validation and dedup are the same everywhere.
 */
import { CloudEvent, HTTP } from 'cloudevents';
import type { StructuredReturn } from 'faas-js-runtime';
import { z } from 'zod';
import { EventType, eventSource } from '../contract/events.js';
import { BillingError, problemContentType, type ItemError } from '../contract/problem.js';
import {
  looksLikeSeedEvent,
  normaliseSeedEvent,
  normaliseUsageEvent,
  type UsageEnvelope,
  type UsageRecord,
  type UsageResult,
} from '../contract/usage.js';
import type { UsageBuffer } from '../adapters/buffer/types.js';
import type { FunctionRequest } from '../runtime/function.js';
import type { StageMetrics } from '../runtime/metrics.js';
import { RecentKeys } from './recent-keys.js';

export interface CollectOptions {
  buffer: UsageBuffer;
  metrics: StageMetrics;
  maxBatchEvents: number;
  flushEveryEvents: number;
  dedupCapacity: number;
  now?: () => Date;
}

/** A CloudEvent in structured form, as found in a batch or a structured body. */
const structuredEvent = z
  .object({
    specversion: z.literal('1.0', { message: 'specversion must be "1.0"' }),
    id: z.string().min(1),
    source: z.string().min(1),
    type: z.string().min(1),
    time: z.string().optional(),
    datacontenttype: z.string().optional(),
    data: z.unknown(),
    backfill: z.union([z.string(), z.boolean()]).optional(),
  })
  .loose();

type Candidate = { ok: true; envelope: UsageEnvelope; seed: boolean } | { ok: false; reason: string; detail: string };

function fromStructured(value: unknown): Candidate {
  if (looksLikeSeedEvent(value)) return { ok: true, envelope: { data: value }, seed: true };
  const parsed = structuredEvent.safeParse(value);
  if (!parsed.success) {
    return { ok: false, reason: 'invalid_cloudevent', detail: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  return fromCloudEvent(parsed.data);
}

function fromCloudEvent(event: { type: string } & UsageEnvelope): Candidate {
  if (event.type !== EventType.usage) {
    return { ok: false, reason: 'wrong_type', detail: `collect accepts type ${EventType.usage}, got ${event.type}` };
  }
  return { ok: true, envelope: event, seed: false };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BillingError('malformed_json', `the body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const bodyText = (body: unknown): string =>
  typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body ?? null);

/** Splits a request into candidate usage events, in order. Throws for a body that is unusable whole. */
export function candidatesOf(request: FunctionRequest, maxBatchEvents: number): Candidate[] {
  if (request.cloudevent) return [fromCloudEvent(request.cloudevent)];
  const mediaType = (request.contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  let items: unknown[];
  if (mediaType === 'application/cloudevents-batch+json') {
    const parsed = parseJson(bodyText(request.body));
    if (!Array.isArray(parsed)) throw new BillingError('malformed_json', 'a cloudevents batch must be a JSON array of events');
    items = parsed;
  } else if (mediaType === 'application/cloudevents+json' || mediaType === 'application/json') {
    // The runtime hands over structured events it could not read as CloudEvents, and plain JSON
    // (the seed's event shape, one object or an array of them).
    const parsed = typeof request.body === 'object' && !Buffer.isBuffer(request.body) ? request.body : parseJson(bodyText(request.body));
    items = Array.isArray(parsed) ? parsed : [parsed];
  } else {
    throw new BillingError(
      'unsupported_media_type',
      `content type "${mediaType || '(none)'}" is not accepted; send a CloudEvent (binary or application/cloudevents+json), a batch (application/cloudevents-batch+json) or seed JSON (application/json)`,
    );
  }
  if (items.length > maxBatchEvents) {
    throw new BillingError('batch_too_large', `a batch holds at most ${maxBatchEvents} events, this one has ${items.length}; split it`);
  }
  return items.map(fromStructured);
}

function flushReply(body: Record<string, unknown>, status: number): StructuredReturn {
  const flush = new CloudEvent({ type: EventType.bufferFlush, source: eventSource('collect'), data: { reason: 'threshold' } });
  const message = HTTP.binary(flush);
  const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)]));
  // The summary travels in a header so the body stays the reply event's data.
  return { statusCode: status, headers: { ...headers, 'x-faasbilling-accepted': JSON.stringify(body) }, body: message.body as string };
}

/** Restrictions of one request (the API's tenant-scoped keys). */
export interface AcceptScope {
  /** Whether the request may report usage for this tenant (id or slug as the event names it). */
  allowsTenant?: (tenantKey: string) => boolean;
}

/** The collect stage bound to a buffer. */
export class Collector {
  private readonly recent: RecentKeys;
  private sinceFlush = 0;
  private readonly now: () => Date;

  constructor(private readonly options: CollectOptions) {
    this.recent = new RecentKeys(options.dedupCapacity);
    this.now = options.now ?? (() => new Date());
  }

  /** Validates, dedups and buffers; the answer lists every rejected item by index. */
  async accept(request: FunctionRequest, scope: AcceptScope = {}): Promise<StructuredReturn> {
    const { metrics } = this.options;
    const candidates = candidatesOf(request, this.options.maxBatchEvents);
    metrics.batchSize.observe(candidates.length);
    const now = this.now();
    const errors: ItemError[] = [];
    const records: UsageRecord[] = [];
    const keys: string[] = [];
    const inRequest = new Set<string>();
    let duplicates = 0;
    candidates.forEach((candidate, index) => {
      const result: UsageResult | undefined = candidate.ok
        ? candidate.seed
          ? normaliseSeedEvent(candidate.envelope.data, now)
          : normaliseUsageEvent(candidate.envelope, now)
        : undefined;
      if (!candidate.ok || !result?.ok) {
        const reason = candidate.ok ? (result && !result.ok ? result.rejection.reason : 'invalid_data') : candidate.reason;
        const detail = candidate.ok ? (result && !result.ok ? result.rejection.detail : '') : candidate.detail;
        errors.push({ index, reason, detail });
        metrics.eventsRejected.inc({ reason });
        return;
      }
      if (scope.allowsTenant && !scope.allowsTenant(result.record.tenant_id)) {
        errors.push({ index, reason: 'tenant_forbidden', detail: `this key may only report usage for its own tenant, not ${JSON.stringify(result.record.tenant_id)}` });
        metrics.eventsRejected.inc({ reason: 'tenant_forbidden' });
        return;
      }
      // Per tenant: one tenant's event ids never make another's events duplicates (migration 0006).
      const key = `${result.record.tenant_id}\u0000${result.record.source}\u0000${result.record.id}`;
      if (inRequest.has(key) || this.recent.has(key)) {
        duplicates += 1;
        return;
      }
      inRequest.add(key);
      keys.push(key);
      records.push(result.record);
    });

    try {
      await this.options.buffer.append(records);
    } catch (err) {
      throw new BillingError('buffer_unavailable', `the usage buffer did not accept the events (retry later): ${err instanceof Error ? err.message : String(err)}`, true, undefined, { cause: err });
    }
    // Remembered only once buffered: a retry after a failed append must not be taken for a repeat.
    for (const key of keys) this.recent.add(key);
    metrics.eventsAccepted.inc(records.length);
    metrics.duplicatesDropped.inc({ stage: 'collect' }, duplicates);

    const summary = { accepted: records.length, duplicates, rejected: errors.length };
    if (errors.length > 0) {
      const single = candidates.length === 1;
      const error = new BillingError(
        single ? 'invalid_event' : 'invalid_events',
        single
          ? `the event was rejected: ${errors[0]?.detail ?? ''}`
          : `${errors.length} of ${candidates.length} events were rejected (see errors); the other ${records.length + duplicates} were accepted, so resend only the rejected ones`,
        false,
        errors,
      );
      return { statusCode: error.status, headers: { 'content-type': problemContentType }, body: error.toProblem(summary) };
    }
    this.sinceFlush += records.length;
    if (this.sinceFlush >= this.options.flushEveryEvents) {
      this.sinceFlush = 0;
      return flushReply(summary, 202);
    }
    return { statusCode: 202, headers: { 'content-type': 'application/json; charset=utf-8' }, body: summary };
  }
}
