/**
 * The local broker of `npm start`: a development stand-in for a Knative Broker, driven by the same
 * manifests as the cluster (eventing/). It accepts CloudEvents over HTTP (binary, structured, and
 * — a local convenience — batches), matches them against every Trigger's filters, and delivers
 * each match in binary mode to the subscriber with the Trigger's (or Broker's) retry, backoff and
 * dead-letter sink. A subscriber's reply event goes back into the broker; PingSources fire on
 * their cron schedule. It keeps everything in memory: it is not built to scale; Knative is.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudEvent, HTTP, type CloudEventV1 } from 'cloudevents';
import { CronExpressionParser } from 'cron-parser';
import { BillingError, problemContentType, type ItemError } from '../contract/problem.js';
import { isRetryableStatus } from '../contract/routing.js';
import type { Logger } from '../runtime/logger.js';
import {
  parseIsoDuration,
  type DeliverySpec,
  type Destination,
  type Eventing,
  type FilterExpression,
  type PingSourceManifest,
  type TriggerManifest,
} from './manifests.js';

/** The event type and source a Knative PingSource sends. */
export const pingEventType = 'dev.knative.sources.ping';
export const pingSourceUri = (namespace: string, name: string): string => `/apis/v1/namespaces/${namespace}/pingsources/${name}`;

export interface LocalBrokerOptions {
  eventing: Eventing;
  /** Port of the ingress; 0 picks a free one. */
  port: number;
  host?: string;
  logger: Logger;
  /** Turns a destination that is not a Broker (a Service ref, or a URI) into a URL. */
  resolveSink: (destination: Destination) => string | undefined;
  /** Largest accepted request body (default 8 MiB). */
  maxBodyBytes?: number;
  /** Deliveries in flight at once across all triggers (default 32). */
  concurrency?: number;
  /** Per-attempt timeout when the delivery spec has none (default 60 s). */
  defaultTimeoutMs?: number;
}

export interface LocalBroker {
  url: string;
  /** Puts events into the broker as if they had been posted to its ingress. */
  publish(events: CloudEventV1<unknown>[]): void;
  /** Fires a PingSource now (also `POST /_local/pingsources/<name>`). */
  firePingSource(name: string): void;
  /** Resolves when no delivery is queued, waiting to retry, or in flight. */
  idle(): Promise<void>;
  /** Stops the ingress and the schedules, then waits (up to `timeoutMs`) for deliveries to finish. */
  close(timeoutMs?: number): Promise<void>;
}

/** Which event attributes a filter can see: context attributes and extensions, as strings. */
function attributeOf(event: CloudEventV1<unknown>, name: string): string | undefined {
  const value = (event as unknown as Record<string, unknown>)[name];
  if (value === undefined || value === null) return undefined;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

function matchesExpression(event: CloudEventV1<unknown>, expression: FilterExpression): boolean {
  const every = (map: Record<string, string>, test: (actual: string, wanted: string) => boolean): boolean =>
    Object.entries(map).every(([name, wanted]) => {
      const actual = attributeOf(event, name);
      return actual !== undefined && test(actual, wanted);
    });
  if ('exact' in expression) return every(expression.exact, (a, w) => a === w);
  if ('prefix' in expression) return every(expression.prefix, (a, w) => a.startsWith(w));
  if ('suffix' in expression) return every(expression.suffix, (a, w) => a.endsWith(w));
  if ('all' in expression) return expression.all.every((inner) => matchesExpression(event, inner));
  if ('any' in expression) return expression.any.some((inner) => matchesExpression(event, inner));
  return !matchesExpression(event, expression.not);
}

/**
 * Knative's matching: when `spec.filters` is set it wins and all its expressions must hold;
 * otherwise every `spec.filter.attributes` entry must equal the event's attribute exactly.
 */
export function triggerMatches(trigger: TriggerManifest, event: CloudEventV1<unknown>): boolean {
  if (trigger.spec.filters && trigger.spec.filters.length > 0) {
    return trigger.spec.filters.every((expression) => matchesExpression(event, expression));
  }
  return Object.entries(trigger.spec.filter?.attributes ?? {}).every(([name, wanted]) => attributeOf(event, name) === wanted);
}

/** Delay before retry number `retry` (1-based): linear `delay × n`, exponential `delay × 2^(n-1)`. */
export function backoffMs(delivery: DeliverySpec, retry: number): number {
  const delay = delivery.backoffDelay ? parseIsoDuration(delivery.backoffDelay) : 0;
  return delivery.backoffPolicy === 'linear' ? delay * retry : delay * 2 ** (retry - 1);
}

interface Delivery {
  trigger: TriggerManifest;
  event: CloudEventV1<unknown>;
}

interface AttemptResult {
  ok: boolean;
  status: number;
  body: string;
  reply?: CloudEventV1<unknown>[];
  error?: string;
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BillingError('payload_too_large', `request body is larger than ${limit} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendProblem(res: ServerResponse, error: BillingError, extra: Record<string, unknown> = {}): void {
  res.writeHead(error.status, { 'content-type': problemContentType });
  res.end(JSON.stringify(error.toProblem(extra)));
}

/** Turns a validated plain object into a CloudEvent, or says why it is not one. */
function toCloudEvent(value: unknown): CloudEventV1<unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
  return new CloudEvent<unknown>(value);
}

/** Parses an ingress request into events; a batch keeps its valid events and lists the others. */
function parseIngress(headers: IncomingMessage['headers'], body: string): { events: CloudEventV1<unknown>[]; errors: ItemError[] } {
  const contentType = (headers['content-type'] ?? '').toLowerCase();
  if (contentType.startsWith('application/cloudevents-batch+json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      throw new BillingError('malformed_json', `the batch is not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw new BillingError('invalid_event', 'a batch must be a JSON array of CloudEvents');
    const events: CloudEventV1<unknown>[] = [];
    const errors: ItemError[] = [];
    parsed.forEach((item: unknown, index) => {
      try {
        events.push(toCloudEvent(item));
      } catch (err) {
        errors.push({ index, reason: 'invalid_cloudevent', detail: (err as Error).message });
      }
    });
    return { events, errors };
  }
  const structured = contentType.startsWith('application/cloudevents+json');
  if (!structured && headers['ce-id'] === undefined) {
    throw new BillingError(
      'unsupported_media_type',
      'send a CloudEvent: binary mode (ce-id, ce-source, ce-type, ce-specversion headers), structured mode (application/cloudevents+json) or a batch (application/cloudevents-batch+json)',
    );
  }
  let event: CloudEventV1<unknown>;
  try {
    const parsed = HTTP.toEvent<unknown>({ headers, body });
    event = Array.isArray(parsed) ? toCloudEvent(parsed[0]) : parsed;
    // The SDK's binary and structured parsers do not validate; do it here, as Knative's ingress does.
    if (event instanceof CloudEvent) event.validate();
  } catch (err) {
    if (err instanceof SyntaxError) throw new BillingError('malformed_json', `the body is not valid JSON: ${err.message}`);
    throw new BillingError('invalid_event', `not a valid CloudEvent: ${(err as Error).message}`);
  }
  return { events: [event], errors: [] };
}

/** Reads a subscriber's answer as a reply event, when it carries one. */
function replyOf(headers: Headers, body: string): CloudEventV1<unknown>[] | undefined {
  const plain: Record<string, string> = {};
  headers.forEach((value, key) => (plain[key] = value));
  const contentType = plain['content-type'] ?? '';
  if (plain['ce-id'] === undefined && !contentType.startsWith('application/cloudevents')) return undefined;
  const parsed = HTTP.toEvent<unknown>({ headers: plain, body });
  return Array.isArray(parsed) ? parsed : [parsed];
}

export async function startLocalBroker(options: LocalBrokerOptions): Promise<LocalBroker> {
  const { eventing, logger } = options;
  const maxBodyBytes = options.maxBodyBytes ?? 8 * 1024 * 1024;
  const concurrency = options.concurrency ?? 32;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
  const broker = eventing.brokers[0];
  if (!broker) throw new Error('eventing/ defines no Broker');

  const queue: Delivery[] = [];
  let inFlight = 0;
  let waitingRetries = 0;
  let closed = false;
  const idleWaiters: (() => void)[] = [];
  const retryTimers = new Set<NodeJS.Timeout>();
  const pingTimers = new Set<NodeJS.Timeout>();

  const isIdle = (): boolean => queue.length === 0 && inFlight === 0 && waitingRetries === 0;
  const notifyIdle = (): void => {
    if (!isIdle()) return;
    for (const resolve of idleWaiters.splice(0)) resolve();
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        retryTimers.delete(timer);
        resolve();
      }, ms);
      retryTimers.add(timer);
    });

  /** A destination that is this Broker: its events are routed in-process, not over HTTP. */
  const isBroker = (destination: Destination): boolean => destination.ref?.kind === 'Broker' && !destination.uri;
  const urlOf = (destination: Destination): string | undefined => (isBroker(destination) ? undefined : options.resolveSink(destination));

  async function attempt(url: string, event: CloudEventV1<unknown>, timeoutMs: number): Promise<AttemptResult> {
    const message = HTTP.binary(event);
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(message.headers)) if (value !== undefined) headers[key] = String(value);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body: message.body as string | undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = await res.text();
      if (!res.ok) return { ok: false, status: res.status, body };
      let reply: CloudEventV1<unknown>[] | undefined;
      try {
        reply = replyOf(res.headers, body);
      } catch (err) {
        logger.warn({ url, err: (err as Error).message }, 'subscriber replied with something that is not a CloudEvent; reply ignored');
      }
      return { ok: true, status: res.status, body, reply };
    } catch (err) {
      return { ok: false, status: 0, body: '', error: err instanceof Error ? err.message : String(err) };
    }
  }

  async function deadLetter(delivery: Delivery, spec: DeliverySpec, url: string, last: AttemptResult): Promise<void> {
    const sink = spec.deadLetterSink ? urlOf(spec.deadLetterSink) : undefined;
    const context = { trigger: delivery.trigger.metadata.name, type: delivery.event.type, id: delivery.event.id, status: last.status };
    if (!sink) {
      logger.error({ ...context, error: last.error ?? last.body.slice(0, 200) }, 'delivery failed and there is no dead-letter sink: event dropped');
      return;
    }
    // Knative's dead-letter extensions: where it failed, the status, and the response (base64).
    const errorData = Buffer.from((last.body || last.error || '').slice(0, 1024)).toString('base64');
    const letter = new CloudEvent<unknown>({
      ...(delivery.event),
      knativeerrordest: url,
      knativeerrorcode: String(last.status),
      ...(errorData ? { knativeerrordata: errorData } : {}),
    });
    const result = await attempt(sink, letter, defaultTimeoutMs);
    if (result.ok) logger.warn(context, 'delivery failed after the last retry; sent to the dead-letter sink');
    else logger.error({ ...context, sink, deadLetterStatus: result.status, error: result.error }, 'dead-letter sink failed too: event dropped');
  }

  async function deliver(delivery: Delivery): Promise<void> {
    const { trigger, event } = delivery;
    const spec: DeliverySpec = trigger.spec.delivery ?? broker?.spec.delivery ?? {};
    const url = urlOf(trigger.spec.subscriber);
    if (!url) {
      logger.error({ trigger: trigger.metadata.name }, 'trigger subscriber cannot be resolved to a URL; event dropped');
      return;
    }
    const timeoutMs = spec.timeout ? parseIsoDuration(spec.timeout) : defaultTimeoutMs;
    const retries = spec.retry ?? 0;
    let last: AttemptResult = { ok: false, status: 0, body: '' };
    for (let n = 0; n <= retries; n++) {
      if (n > 0) {
        // A delivery waiting for its retry does not hold a delivery slot.
        waitingRetries++;
        inFlight--;
        pump();
        try {
          await sleep(backoffMs(spec, n));
        } finally {
          inFlight++;
          waitingRetries--;
        }
      }
      const started = Date.now();
      last = await attempt(url, event, timeoutMs);
      logger.debug(
        { trigger: trigger.metadata.name, type: event.type, id: event.id, subscriber: url, attempt: n + 1, status: last.status, ms: Date.now() - started, error: last.error },
        'delivery',
      );
      if (last.ok) {
        if (last.reply && last.reply.length > 0) ingest(last.reply);
        return;
      }
      if (last.status !== 0 && !isRetryableStatus(last.status)) break;
    }
    await deadLetter(delivery, spec, url, last);
  }

  function pump(): void {
    while (inFlight < concurrency && queue.length > 0) {
      const delivery = queue.shift() as Delivery;
      inFlight++;
      deliver(delivery)
        .catch((err: unknown) => logger.error({ err }, 'delivery crashed'))
        .finally(() => {
          inFlight--;
          pump();
          notifyIdle();
        });
    }
  }

  /** Routes events to every matching Trigger of the broker. */
  function ingest(events: CloudEventV1<unknown>[]): void {
    for (const original of events) {
      const event = original.knativearrivaltime
        ? original
        : new CloudEvent<unknown>({ ...(original), knativearrivaltime: new Date().toISOString() });
      const matched = eventing.triggers.filter((t) => t.spec.broker === broker?.metadata.name && triggerMatches(t, event));
      if (matched.length === 0) logger.debug({ type: event.type, id: event.id }, 'no trigger matches; event not delivered');
      for (const trigger of matched) queue.push({ trigger, event });
    }
    pump();
  }

  function pingEvent(source: PingSourceManifest): CloudEventV1<unknown> {
    const contentType = source.spec.contentType ?? 'application/json';
    let data: unknown = source.spec.data;
    if (source.spec.dataBase64 !== undefined) data = Buffer.from(source.spec.dataBase64, 'base64').toString('utf8');
    if (typeof data === 'string' && contentType.includes('json')) {
      try {
        data = JSON.parse(data);
      } catch {
        // Not JSON after all: sent as the text it is, like Knative does.
      }
    }
    return new CloudEvent<unknown>({
      id: randomUUID(),
      type: pingEventType,
      source: pingSourceUri(source.namespace, source.metadata.name),
      time: new Date().toISOString(),
      datacontenttype: contentType,
      ...(data === undefined ? {} : { data }),
      ...(source.spec.ceOverrides?.extensions ?? {}),
    });
  }

  function firePingSource(name: string): void {
    const source = eventing.pingSources.find((p) => p.metadata.name === name);
    if (!source) throw new Error(`no PingSource named ${name}`);
    const event = pingEvent(source);
    logger.debug({ pingsource: name, id: event.id }, 'ping');
    if (isBroker(source.spec.sink)) return ingest([event]);
    const sink = urlOf(source.spec.sink);
    if (!sink) return void logger.error({ pingsource: name }, 'PingSource sink cannot be resolved to a URL');
    void attempt(sink, event, defaultTimeoutMs).then((result) => {
      if (!result.ok) logger.error({ pingsource: name, status: result.status, error: result.error }, 'PingSource delivery failed');
    });
  }

  // Schedules: one timer per PingSource, re-armed after each firing.
  const schedules = eventing.pingSources.map((source) => {
    const tz = source.spec.timezone ?? 'UTC';
    const expression = CronExpressionParser.parse(source.spec.schedule, { tz });
    return { source, expression };
  });
  /** Longest single timer; a later firing (a monthly schedule) is reached in several waits. */
  const maxTimerMs = 60 * 60 * 1000;
  function arm(entry: (typeof schedules)[number], due = entry.expression.next().getTime()): void {
    if (closed) return;
    const wait = due - Date.now();
    const timer = setTimeout(() => {
      pingTimers.delete(timer);
      if (wait > maxTimerMs) return arm(entry, due);
      try {
        firePingSource(entry.source.metadata.name);
      } finally {
        arm(entry);
      }
    }, Math.min(Math.max(0, wait), maxTimerMs));
    timer.unref();
    pingTimers.add(timer);
  }

  const server = http.createServer((req, res) => {
    void (async () => {
      try {
        const pathname = new URL(req.url ?? '/', 'http://local').pathname;
        const ping = /^\/_local\/pingsources\/([^/]+)$/.exec(pathname);
        if (req.method === 'POST' && ping) {
          firePingSource(decodeURIComponent(ping[1] as string));
          res.writeHead(202).end();
          return;
        }
        const brokerPath = `/${broker.namespace}/${broker.metadata.name}`;
        if (pathname !== '/' && pathname !== brokerPath) {
          res.writeHead(404, { 'content-type': problemContentType });
          res.end(JSON.stringify({ type: 'about:blank', title: 'not found', status: 404, detail: `post CloudEvents to / or ${brokerPath}` }));
          return;
        }
        if (req.method !== 'POST') {
          res.writeHead(405, { allow: 'POST', 'content-type': problemContentType });
          res.end(JSON.stringify({ type: 'about:blank', title: 'method not allowed', status: 405, detail: 'POST CloudEvents here' }));
          return;
        }
        if (closed) throw new BillingError('buffer_unavailable', 'the broker is shutting down');
        const body = await readBody(req, maxBodyBytes);
        const { events, errors } = parseIngress(req.headers, body);
        ingest(events);
        if (errors.length > 0) {
          return sendProblem(res, new BillingError('invalid_events', `${errors.length} of ${errors.length + events.length} events are not valid CloudEvents; the others were accepted`, false, errors), {
            accepted: events.length,
            rejected: errors.length,
          });
        }
        res.writeHead(202).end();
      } catch (err) {
        const error = err instanceof BillingError ? err : new BillingError('internal', (err as Error).message);
        if (error.status >= 500) logger.error({ err }, 'broker ingress failed');
        sendProblem(res, error);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${address.port}`;
  for (const entry of schedules) arm(entry);
  logger.info({ url, triggers: eventing.triggers.length, pingSources: eventing.pingSources.length }, 'local broker listening');

  return {
    url,
    publish: (events) => ingest(events),
    firePingSource,
    idle: () => (isIdle() ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    async close(timeoutMs = 10_000) {
      closed = true;
      for (const timer of pingTimers) clearTimeout(timer);
      pingTimers.clear();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await stopped;
      const drained = await Promise.race([
        new Promise<boolean>((resolve) => (isIdle() ? resolve(true) : idleWaiters.push(() => resolve(true)))),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref()),
      ]);
      if (!drained) {
        logger.warn({ queued: queue.length, inFlight, waitingRetries }, 'broker closed with deliveries unfinished');
        for (const timer of retryTimers) clearTimeout(timer);
      }
    },
  };
}
