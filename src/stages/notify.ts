/**
 * The notifications stage: bill, budget and anomaly events POSTed to the webhooks that asked for them.
 *
 * - Which webhooks: active ones subscribed to the event's type, of the event's tenant(s), plus
 *   the operator's (tenant_id NULL). A tenant's webhook gets only its own part of the event (its
 *   own budget alerts); the operator's gets the whole event.
 * - Budget alerts and anomalies are outboxes (migrations 0012 and 0014): each item of the event
 *   goes out as an event of its own under the item's id, then its row is marked handled.
 * - The body is the event in CloudEvents structured mode (application/cloudevents+json), signed:
 *   `X-FaaSBilling-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, so a
 *   receiver can check origin and freshness (`verifySignature`).
 * - Retries: up to `attempts` tries per webhook with growing pauses, each logged in
 *   webhook_deliveries. A webhook that already received this event (source, id) successfully is
 *   skipped, so the Broker redelivering the event never sends it twice.
 * - The body sent is kept once per (webhook, event) in webhook_payloads (migration 0016), so a
 *   delivery can be sent again on request (`redeliver`, the API's
 *   POST /webhooks/:id/deliveries/:deliveryId/redeliver): same body and event id, fresh signature.
 * - Webhooks are never allowed to reach private, loopback or link-local addresses unless
 *   WEBHOOK_ALLOW_PRIVATE_ADDRESSES is set (local development): a tenant must not be able to make
 *   the system call into the cluster's own network. The check is made on the addresses the
 *   connection is made to (one resolution, at connect time), so DNS rebinding cannot slip past it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { lookup as lookupCallback, type LookupAddress } from 'node:dns';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { CloudEvent } from 'cloudevents';
import type { Knex } from 'knex';
import { CloudEvent as CloudEventClass } from 'cloudevents';
import { EventType, anomalyDetectedData, billGeneratedData, billsClosedData, budgetExceededData } from '../contract/events.js';
import { BillingError } from '../contract/problem.js';
import type { Logger } from '../runtime/logger.js';

const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const notifiableTypes: readonly string[] = [EventType.billGenerated, EventType.billsClosed, EventType.budgetExceeded, EventType.anomalyDetected];

/** The signature header of a body sent at `timestamp` (unix seconds). */
export function signature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Checks a signature header against a body (what a receiver does); `toleranceSeconds` bounds its age. */
export function verifySignature(secret: string, header: string, body: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || typeof parts.v1 !== 'string') return false;
  const expected = Buffer.from(signature(secret, t, body).split('v1=')[1] ?? '', 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d or ::ffff:xxxx:yyyy) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIPv4(v6: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/.exec(v6);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const hi = parseInt(m[2] ?? '0', 16);
  const lo = parseInt(m[3] ?? '0', 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether an IP address is private, loopback, link-local or otherwise not on the public internet. */
export function isPrivateAddress(ip: string): boolean {
  if (isIP(ip) === 4) {
    const [a = 0, b = 0] = ip.split('.').map(Number);
    return (
      a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) || (a === 198 && (b === 18 || b === 19)) || a >= 224
    );
  }
  const v6 = ip.toLowerCase();
  const v4 = embeddedIPv4(v6);
  if (v4 !== undefined) return isPrivateAddress(v4);
  // ::1, ::, unique local fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast ff00::/8.
  return v6 === '::1' || v6 === '::' || /^f[cd]/.test(v6) || /^fe[89ab]/.test(v6) || /^fe[c-f]/.test(v6) || v6.startsWith('ff');
}

/** Why a webhook URL may not be used (null when it may): scheme, and a literal private host. */
export function urlProblem(url: string, allowPrivate: boolean): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'only http and https URLs';
  if (parsed.username || parsed.password) return 'no credentials in the URL; the signature authenticates us';
  const host = parsed.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (!allowPrivate && (host === 'localhost' || host.endsWith('.localhost') || (isIP(host) !== 0 && isPrivateAddress(host)))) {
    return 'a private or loopback address (allowed only with WEBHOOK_ALLOW_PRIVATE_ADDRESSES)';
  }
  return null;
}

export interface NotifierOptions {
  db: Knex;
  logger: Logger;
  /** Tries per webhook and event. */
  attempts: number;
  timeoutMs: number;
  allowPrivate: boolean;
  /** Pause before try n+1 (ms): backoffMs × 4^(n-1). */
  backoffMs?: number;
  /** Resolves webhook host names (default: the system resolver). */
  lookup?: WebhookLookup;
  now?: () => Date;
}

interface WebhookRow {
  id: string;
  tenant_id: string | null;
  url: string;
  secret: string;
}

/** A row of webhook_deliveries: one try to deliver an event to a webhook. */
export interface DeliveryRow {
  id: string;
  webhook_id: string;
  event_source: string;
  event_id: string;
  event_type: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  succeeded: boolean;
  duration_ms: number;
  at: Date;
  /** The delivery this row sent again; null for the notifications function's own tries. */
  redelivery_of: string | null;
}

/** What a webhook is sent for one event (kept in webhook_payloads): enough to send it again. */
interface SentEvent {
  source: string;
  id: string;
  type: string;
  /** The exact body: the CloudEvent in structured mode; the signature is made per send. */
  body: string;
}

/** What a redelivery came to: not found, refused (no stored body; already delivered, with that delivery), or sent (with the new delivery). */
export type RedeliveryResult =
  | { outcome: 'not_found' }
  | { outcome: 'not_stored'; delivery: DeliveryRow }
  | { outcome: 'already_delivered'; delivery: DeliveryRow }
  | { outcome: 'delivered' | 'failed'; delivery: DeliveryRow };

/**
 * A webhook's logged delivery with the body its event was sent with (null for deliveries logged
 * before bodies were kept, migration 0016); undefined when the webhook has no such delivery.
 */
export async function storedDelivery(db: Knex, webhookId: string, deliveryId: string): Promise<{ delivery: DeliveryRow; body: string | null } | undefined> {
  if (!/^\d{1,18}$/.test(deliveryId)) return undefined;
  const row = await db('webhook_deliveries as d')
    .leftJoin('webhook_payloads as p', (j) => void j.on('p.webhook_id', 'd.webhook_id').andOn('p.event_source', 'd.event_source').andOn('p.event_id', 'd.event_id'))
    .where({ 'd.id': deliveryId, 'd.webhook_id': webhookId })
    .first<(DeliveryRow & { body: string | null }) | undefined>('d.*', 'p.body');
  if (!row) return undefined;
  const { body, ...delivery } = row;
  return { delivery, body };
}

export interface DeliveryOutcome {
  webhook_id: string;
  outcome: 'delivered' | 'failed' | 'already_delivered';
  attempts: number;
}

/** The tenants an event is about, and a tenant's own part of its data. */
function audience(event: CloudEvent<unknown>): { tenants: string[]; partFor: (tenantId: string | null) => unknown } {
  if (event.type === EventType.billGenerated) {
    const data = billGeneratedData.parse(event.data);
    return { tenants: [data.tenant_id], partFor: () => data };
  }
  if (event.type === EventType.billsClosed) {
    const data = billsClosedData.parse(event.data);
    return {
      tenants: [...new Set(data.bills.map((b) => b.tenant_id))],
      partFor: (tenantId) => (tenantId === null ? data : { bills: data.bills.filter((b) => b.tenant_id === tenantId) }),
    };
  }
  if (event.type === EventType.anomalyDetected) {
    const data = anomalyDetectedData.parse(event.data);
    return {
      tenants: [...new Set(data.anomalies.map((a) => a.tenant_id))],
      partFor: (tenantId) => (tenantId === null ? data : { anomalies: data.anomalies.filter((a) => a.tenant_id === tenantId) }),
    };
  }
  const data = budgetExceededData.parse(event.data);
  return {
    tenants: [...new Set(data.alerts.map((a) => a.tenant_id))],
    partFor: (tenantId) => (tenantId === null ? data : { alerts: data.alerts.filter((a) => a.tenant_id === tenantId) }),
  };
}

/** An outbox item of an event: its row id, the id of the event it goes out as, and that event's data. */
interface OutboxItem {
  rowId: string;
  eventId: string;
  data: unknown;
}

/** The events whose data lists outbox items, with the table of their rows and how to split them. */
const outboxes = new Map<string, { table: string; items: (data: unknown) => OutboxItem[] }>([
  [
    EventType.budgetExceeded,
    {
      table: 'budget_alerts',
      items: (data) => budgetExceededData.parse(data).alerts.map((a) => ({ rowId: a.alert_id, eventId: `budget-alert-${a.alert_id}`, data: { alerts: [a] } })),
    },
  ],
  [
    EventType.anomalyDetected,
    {
      table: 'anomalies',
      items: (data) => anomalyDetectedData.parse(data).anomalies.map((a) => ({ rowId: a.anomaly_id, eventId: `anomaly-${a.anomaly_id}`, data: { anomalies: [a] } })),
    },
  ],
]);

export class Notifier {
  constructor(private readonly options: NotifierOptions) {}

  async notify(event: CloudEvent<unknown>): Promise<DeliveryOutcome[]> {
    const outbox = outboxes.get(event.type);
    if (!outbox) return this.notifyOne(event);
    // Outbox items go out one by one under their own ids (their stage repeats an item until it is
    // handled here), then are marked handled.
    let items: OutboxItem[];
    try {
      items = outbox.items(event.data);
    } catch (err) {
      throw new BillingError('invalid_event', `${event.type} data is not valid: ${err instanceof Error ? err.message : String(err)}`);
    }
    const out: DeliveryOutcome[] = [];
    for (const item of items) {
      out.push(...(await this.notifyOne(new CloudEventClass<unknown>({ type: event.type, source: event.source, id: item.eventId, data: item.data }))));
    }
    const ids = items.map((i) => i.rowId).filter((id) => /^\d{1,18}$/.test(id));
    if (ids.length > 0) await this.options.db(outbox.table).whereIn('id', ids).whereNull('notified_at').update({ notified_at: this.options.db.fn.now() });
    return out;
  }

  private async notifyOne(event: CloudEvent<unknown>): Promise<DeliveryOutcome[]> {
    if (!notifiableTypes.includes(event.type)) {
      throw new BillingError('invalid_event', `notifications takes ${notifiableTypes.join(' and ')}, not ${JSON.stringify(event.type)}`);
    }
    let target: ReturnType<typeof audience>;
    try {
      target = audience(event);
    } catch (err) {
      throw new BillingError('invalid_event', `${event.type} data is not valid: ${err instanceof Error ? err.message : String(err)}`);
    }
    const { db } = this.options;
    const hooks = (await db('webhooks')
      .where({ active: true })
      .whereRaw('? = ANY(events)', [event.type])
      // Only ids can match a tenant's webhook (anything else in the data reaches operators only).
      .where((w) => void w.whereNull('tenant_id').orWhereIn('tenant_id', target.tenants.filter((t) => uuidText.test(t))))
      .orderBy('id')) as WebhookRow[];
    // Webhooks are independent: one slow receiver must not hold the others back.
    const outcomes = await Promise.all(hooks.map((hook) => this.deliver(hook, event, target.partFor(hook.tenant_id))));
    if (event.type === EventType.billsClosed) outcomes.push(...(await this.eachBill(event)));
    return outcomes;
  }

  /**
   * A close of every tenant: each bill also goes to the webhooks subscribed to bill.generated, as
   * the bill.generated event a single-tenant close would have sent (same id, so never twice), a
   * few bills at a time.
   */
  private async eachBill(event: CloudEvent<unknown>): Promise<DeliveryOutcome[]> {
    const { bills } = billsClosedData.parse(event.data);
    // One query for who listens: a close of thousands of tenants only walks the bills someone wants.
    const listeners: { tenant_id: string | null }[] = await this.options.db('webhooks').distinct('tenant_id').where({ active: true }).whereRaw('? = ANY(events)', [EventType.billGenerated]);
    if (listeners.length === 0) return [];
    const tenants = new Set(listeners.map((l) => l.tenant_id));
    const out: DeliveryOutcome[] = [];
    const queue = tenants.has(null) ? [...bills] : bills.filter((b) => tenants.has(b.tenant_id));
    const worker = async (): Promise<void> => {
      for (let bill = queue.shift(); bill; bill = queue.shift()) {
        const single = new CloudEventClass<unknown>({ type: EventType.billGenerated, source: event.source, id: `bill-${bill.bill_id}-${bill.status}`, data: bill });
        out.push(...(await this.notify(single)));
      }
    };
    await Promise.all(Array.from({ length: 4 }, () => worker()));
    return out;
  }

  private async deliver(hook: WebhookRow, event: CloudEvent<unknown>, data: unknown): Promise<DeliveryOutcome> {
    const { db, attempts, backoffMs = 200 } = this.options;
    const done: unknown = await db('webhook_deliveries').where({ webhook_id: hook.id, event_source: event.source, event_id: event.id, succeeded: true }).first();
    if (done) return { webhook_id: hook.id, outcome: 'already_delivered', attempts: 0 };
    const sent: SentEvent = {
      source: event.source,
      id: event.id,
      type: event.type,
      body: JSON.stringify({
        specversion: '1.0',
        id: event.id,
        source: event.source,
        type: event.type,
        ...(event.time ? { time: event.time } : {}),
        datacontenttype: 'application/json',
        data,
      }),
    };
    // Kept before the first try, so a webhook that stays down can be sent this body again later.
    await db('webhook_payloads')
      .insert({ webhook_id: hook.id, event_source: sent.source, event_id: sent.id, event_type: sent.type, body: sent.body })
      .onConflict(['webhook_id', 'event_source', 'event_id'])
      .merge(['event_type', 'body']);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const { succeeded } = await this.attempt(hook, sent, attempt, null);
      if (succeeded) return { webhook_id: hook.id, outcome: 'delivered', attempts: attempt };
      if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, backoffMs * 4 ** (attempt - 1)));
    }
    this.options.logger.warn({ webhook: hook.id, event: event.id }, 'webhook not delivered after all attempts');
    return { webhook_id: hook.id, outcome: 'failed', attempts };
  }

  /**
   * Sends a logged delivery's event again, now, once: the stored body (same event id, so the
   * receiver can dedup) to the webhook's current URL with a fresh signature, through the same
   * checks as every delivery, logged as a new row with `redelivery_of`. Refuses an event the
   * webhook already received unless `force`. Two redeliveries at once are not serialized: both
   * may send, under the same event id.
   */
  async redeliver(webhookId: string, deliveryId: string, options: { force: boolean }): Promise<RedeliveryResult> {
    const { db } = this.options;
    const stored = await storedDelivery(db, webhookId, deliveryId);
    if (!stored) return { outcome: 'not_found' };
    const { delivery, body } = stored;
    if (body === null) return { outcome: 'not_stored', delivery };
    if (!options.force) {
      const done = (await db('webhook_deliveries')
        .where({ webhook_id: webhookId, event_source: delivery.event_source, event_id: delivery.event_id, succeeded: true })
        .orderBy('id')
        .first()) as DeliveryRow | undefined;
      if (done) return { outcome: 'already_delivered', delivery: done };
    }
    const hook = (await db('webhooks').where({ id: webhookId }).first()) as WebhookRow | undefined;
    if (!hook) return { outcome: 'not_found' };
    const { succeeded, row } = await this.attempt(hook, { source: delivery.event_source, id: delivery.event_id, type: delivery.event_type, body }, 1, delivery.id);
    // A redelivery is outside the once-per-event index, so its row is always written.
    if (!row) throw new Error(`redelivery of ${deliveryId} logged no row`);
    return { outcome: succeeded ? 'delivered' : 'failed', delivery: row };
  }

  /** One try: the body POSTed with a fresh signature, then logged in webhook_deliveries (no row when a concurrent try already logged the event's success). */
  private async attempt(hook: WebhookRow, sent: SentEvent, attempt: number, redeliveryOf: string | null): Promise<{ succeeded: boolean; row: DeliveryRow | undefined }> {
    const { db } = this.options;
    const started = performance.now();
    const { status, error } = await this.post(hook, sent.body);
    const succeeded = status !== null && status >= 200 && status < 300;
    const [row] = (await db('webhook_deliveries')
      .insert({
        webhook_id: hook.id,
        event_source: sent.source,
        event_id: sent.id,
        event_type: sent.type,
        attempt,
        status_code: status,
        error,
        succeeded,
        duration_ms: Math.round(performance.now() - started),
        redelivery_of: redeliveryOf,
      })
      .returning('*')
      .onConflict(db.raw('(webhook_id, event_source, event_id) WHERE succeeded AND redelivery_of IS NULL'))
      .ignore()) as DeliveryRow[];
    return { succeeded, row };
  }

  private async post(hook: WebhookRow, body: string): Promise<{ status: number | null; error: string | null }> {
    const { allowPrivate, timeoutMs } = this.options;
    const problem = urlProblem(hook.url, allowPrivate);
    if (problem) return { status: null, error: `refused: ${problem}` };
    const url = new URL(hook.url);
    const now = Math.floor((this.options.now?.() ?? new Date()).getTime() / 1000);
    const payload = Buffer.from(body);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      const req = send(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/cloudevents+json',
            'content-length': String(payload.length),
            'user-agent': 'faas-billing-webhooks/1',
            'x-faasbilling-webhook-id': hook.id,
            'x-faasbilling-signature': signature(hook.secret, now, body),
          },
          // The addresses are checked where the connection is made, so a name cannot resolve to a
          // public address for a check and to a private one for the request (DNS rebinding).
          ...(allowPrivate ? {} : { lookup: publicOnlyLookup(this.options.lookup ?? dnsLookup) }),
          timeout: timeoutMs,
          agent: false,
        },
        (res) => {
          res.resume(); // the body is not read, only drained; redirects are not followed
          res.on('end', () => {
            const status = res.statusCode ?? null;
            resolve({ status, error: status !== null && status >= 200 && status < 300 ? null : `HTTP ${status ?? '?'}` });
          });
          res.on('error', (err) => resolve({ status: null, error: `${err.name}: ${err.message}` }));
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })));
      req.on('error', (err) => resolve({ status: null, error: err.message.startsWith('refused:') ? err.message : `${err.name}: ${err.message}` }));
      req.end(payload);
    });
  }
}

/** What a webhook's host name resolves to (node:dns lookup, all addresses); tests may pass another. */
export type WebhookLookup = (hostname: string, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const dnsLookup: WebhookLookup = (hostname, callback) => void lookupCallback(hostname, { all: true }, callback);

/**
 * A connect-time `lookup` for http(s).request that resolves the host once and refuses the
 * connection when any of its addresses is private, loopback or link-local.
 */
function publicOnlyLookup(resolveHost: WebhookLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolveHost(hostname, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const bad = addresses.find((a) => isPrivateAddress(a.address));
      const first = addresses[0];
      if (bad || !first) {
        const why = bad ? `refused: ${hostname} resolves to a private address (${bad.address})` : `refused: ${hostname} has no address`;
        return callback(Object.assign(new Error(why), { code: 'EREFUSED' }), '', 0);
      }
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}
