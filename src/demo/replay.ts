/**
 * Replays CloudEvents to a broker ingress (or straight to collect) over HTTP, the way a busy
 * producer would: batches of `application/cloudevents-batch+json`, a few requests in flight,
 * retries with backoff, and a tally of what the receiver accepted and rejected.
 *
 * - Retried: 429, 502, 503, 504 and network errors/timeouts — the answers that mean "not now".
 *   The delay is `Retry-After` when the receiver sends one, else exponential backoff with jitter
 *   (so parallel senders do not retry in step). A batch that still fails after `maxRetries` stops
 *   the replay with a ReplayError carrying the totals so far: the receiver is down, and sending
 *   the rest would only fail too.
 * - 422 (problem+json listing the rejected items by index): the other items were accepted, so the
 *   batch is counted item by item and not resent (resending cannot fix an invalid event).
 * - Any other non-2xx answer rejects the whole batch; it is counted, the first reasons are kept,
 *   and the replay goes on.
 * Events are taken from the iterable lazily, so a generator of 10⁵ events is never held at once.
 */
import { z } from 'zod';

export interface ReplayProgress {
  /** Events whose batch has been answered (accepted or rejected). */
  done: number;
  /** Expected events, when known. */
  total: number | undefined;
  accepted: number;
  rejected: number;
  retries: number;
}

export interface ReplayOptions {
  /** Where to POST the batches (the broker ingress, or collect). */
  url: string;
  /** Events per request (1–1000; collect takes at most COLLECT_MAX_BATCH_EVENTS). Default 500. */
  batchSize?: number;
  /** Requests in flight at once. Default 4. */
  concurrency?: number;
  /** Retries of one batch before the replay gives up. Default 8. */
  maxRetries?: number;
  /** First backoff delay, ms; doubles per retry. Default 250. */
  initialBackoffMs?: number;
  /** Longest backoff delay (and longest Retry-After honoured), ms. Default 10 000. */
  maxBackoffMs?: number;
  /** Per-request timeout, ms. Default 60 000. */
  requestTimeoutMs?: number;
  /** Expected number of events, for progress reporting. */
  total?: number;
  /** Called after every answered batch. */
  onProgress?: (progress: ReplayProgress) => void;
  signal?: AbortSignal;
}

/** One rejected event (or batch), as the receiver explained it. */
export interface ReplayRejection {
  /** CloudEvent id of the rejected event; absent when a whole batch was refused. */
  id?: string;
  status: number;
  reason: string;
  detail: string;
}

export interface ReplayTotals {
  /** Events sent and answered. */
  events: number;
  accepted: number;
  rejected: number;
  /** Accepted events the receiver reported as repeats (collect's summary; the broker does not say). */
  duplicates: number;
  /** HTTP requests made, retries included. */
  requests: number;
  retries: number;
  /** The first rejections (at most 20), to show why. */
  rejections: ReplayRejection[];
  elapsedMs: number;
}

/** The replay stopped early (a batch kept failing, or it was aborted); `totals` says how far it got. */
export class ReplayError extends Error {
  constructor(
    message: string,
    readonly totals: ReplayTotals,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ReplayError';
  }
}

const retryableStatuses = new Set([429, 502, 503, 504]);
const maxKeptRejections = 20;

/** The parts of an answer the tally reads: a problem document or collect's summary. */
const answerSchema = z.object({
  detail: z.string().optional(),
  title: z.string().optional(),
  accepted: z.number().int().nonnegative().optional(),
  rejected: z.number().int().nonnegative().optional(),
  duplicates: z.number().int().nonnegative().optional(),
  errors: z.array(z.object({ index: z.number().int().nonnegative(), reason: z.string(), detail: z.string() })).optional(),
});
type Answer = z.infer<typeof answerSchema>;

function parseAnswer(text: string): Answer | undefined {
  if (text === '') return undefined;
  try {
    const parsed = answerSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function* batchesOf<T>(events: Iterable<T>, size: number): Generator<T[], void, undefined> {
  let batch: T[] = [];
  for (const event of events) {
    batch.push(event);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Retry-After in ms (delta-seconds or an HTTP date), or undefined. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function positiveInt(value: number | undefined, fallback: number, name: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`replay option ${name} must be a whole number from 0 to ${max}, got ${v}`);
  return v;
}

/**
 * Sends every event to `options.url` in batches and returns what was accepted and rejected.
 * Resolves once every batch is answered; rejects with a ReplayError when a batch keeps failing
 * (or on abort). The receiver decides what "accepted" means: the broker accepts valid CloudEvents
 * and validates usage later, collect validates before it answers.
 */
export async function replayEvents<T extends { id: string }>(events: Iterable<T>, options: ReplayOptions): Promise<ReplayTotals> {
  const batchSize = Math.max(1, positiveInt(options.batchSize, 500, 'batchSize', 1000));
  const concurrency = Math.max(1, positiveInt(options.concurrency, 4, 'concurrency', 64));
  const maxRetries = positiveInt(options.maxRetries, 8, 'maxRetries');
  const initialBackoffMs = positiveInt(options.initialBackoffMs, 250, 'initialBackoffMs');
  const maxBackoffMs = positiveInt(options.maxBackoffMs, 10_000, 'maxBackoffMs');
  const requestTimeoutMs = Math.max(1, positiveInt(options.requestTimeoutMs, 60_000, 'requestTimeoutMs'));
  const startedAt = Date.now();
  const totals: ReplayTotals = { events: 0, accepted: 0, rejected: 0, duplicates: 0, requests: 0, retries: 0, rejections: [], elapsedMs: 0 };
  const snapshot = (): ReplayTotals => ({ ...totals, rejections: [...totals.rejections], elapsedMs: Date.now() - startedAt });
  const keep = (rejection: ReplayRejection): void => {
    if (totals.rejections.length < maxKeptRejections) totals.rejections.push(rejection);
  };

  /** Tallies an answered batch. */
  function count(batch: T[], status: number, answer: Answer | undefined, text: string): void {
    totals.events += batch.length;
    if (status >= 200 && status < 300) {
      totals.accepted += batch.length;
      totals.duplicates += answer?.duplicates ?? 0;
    } else if (status === 422 && answer?.errors) {
      const rejected = new Set(answer.errors.map((e) => e.index));
      totals.rejected += rejected.size;
      totals.accepted += batch.length - rejected.size;
      totals.duplicates += answer.duplicates ?? 0;
      for (const e of answer.errors) keep({ id: batch[e.index]?.id, status, reason: e.reason, detail: e.detail });
    } else {
      totals.rejected += batch.length;
      keep({ status, reason: answer?.title ?? `http ${status}`, detail: answer?.detail ?? text.slice(0, 300) });
    }
    options.onProgress?.({ done: totals.events, total: options.total, accepted: totals.accepted, rejected: totals.rejected, retries: totals.retries });
  }

  async function send(batch: T[]): Promise<void> {
    const body = JSON.stringify(batch);
    for (let attempt = 0; ; attempt++) {
      let status = 0;
      let problem: string;
      let retryAfter: number | undefined;
      try {
        totals.requests += 1;
        const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(requestTimeoutMs)]) : AbortSignal.timeout(requestTimeoutMs);
        const res = await fetch(options.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body, signal });
        const text = await res.text();
        if (!retryableStatuses.has(res.status)) {
          // collect puts its summary in a header when the body is a reply event (a flush request).
          count(batch, res.status, parseAnswer(res.headers.get('x-faasbilling-accepted') ?? '') ?? parseAnswer(text), text);
          return;
        }
        status = res.status;
        problem = parseAnswer(text)?.detail ?? text.slice(0, 300);
        retryAfter = retryAfterMs(res.headers.get('retry-after'));
      } catch (err) {
        if (options.signal?.aborted) throw err;
        problem = err instanceof Error ? err.message : String(err);
      }
      if (attempt >= maxRetries) {
        throw new Error(`${options.url} kept failing (${status === 0 ? 'no answer' : `HTTP ${status}`}: ${problem}) after ${maxRetries} retries`);
      }
      totals.retries += 1;
      const backoff = Math.min(maxBackoffMs, initialBackoffMs * 2 ** attempt);
      await sleep(Math.min(maxBackoffMs, retryAfter ?? backoff * (0.5 + Math.random() / 2)), options.signal);
    }
  }

  const source = batchesOf(events, batchSize);
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined) {
      const next = source.next();
      if (next.done) return;
      try {
        await send(next.value);
      } catch (err) {
        failure ??= err instanceof Error ? err : new Error('a batch failed', { cause: err });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== undefined) {
    throw new ReplayError(`replay stopped after ${totals.events} events: ${failure.message}`, snapshot(), { cause: failure });
  }
  return snapshot();
}

/** A one-line progress bar on a stream (stderr by default); a line per 10% when it is not a terminal. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr, label = 'replay'): {
  update: (progress: ReplayProgress) => void;
  done: () => void;
} {
  const width = 30;
  let lastDecile = -1;
  let drawn = false;
  const text = (p: ReplayProgress): string => {
    const share = p.total ? Math.min(1, p.done / p.total) : undefined;
    const bar = share === undefined ? '' : `[${'#'.repeat(Math.round(share * width)).padEnd(width, '.')}] ${(share * 100).toFixed(0).padStart(3)}% `;
    const of = p.total ? `/${p.total.toLocaleString('en-US')}` : '';
    return `${label} ${bar}${p.done.toLocaleString('en-US')}${of} events, ${p.rejected.toLocaleString('en-US')} rejected, ${p.retries} retries`;
  };
  return {
    update(p) {
      if (stream.isTTY) {
        stream.write(`\r${text(p)}\u001b[K`);
        drawn = true;
        return;
      }
      const decile = p.total ? Math.floor((10 * p.done) / p.total) : Math.floor(p.done / 10_000);
      if (decile !== lastDecile) {
        lastDecile = decile;
        stream.write(`${text(p)}\n`);
      }
    },
    done() {
      if (drawn) stream.write('\n');
    },
  };
}
