/**
 * Glue between our functions and faas-js-runtime: the module shape a Knative function exports
 * (init, handle, readiness, liveness, shutdown), errors turned into problem+json instead of
 * thrown, and readiness that really checks the function's dependencies.
 */
import { CloudEvent, HTTP, type Message } from 'cloudevents';
import type { Context, StructuredReturn } from 'faas-js-runtime';
import type { IncomingHttpHeaders } from 'node:http';
import { BillingError, problemContentType } from '../contract/problem.js';
import { loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import type { StageMetrics } from './metrics.js';

// faas-js-runtime 3.x treats a cloudevents batch as one event and fails with a 500 when it calls
// validate() on the array. Reporting batches as "not an event" hands the raw body to our handler,
// which parses the batch itself (collect). Single events are unaffected.
const isEventUpstream = HTTP.isEvent.bind(HTTP);
HTTP.isEvent = (message: Message): boolean =>
  !String(message.headers['content-type'] ?? '').startsWith('application/cloudevents-batch+json') && isEventUpstream(message);

/** What a handler sees of a request: the CloudEvent if it was one, else the raw body. */
export interface FunctionRequest {
  cloudevent: CloudEvent<unknown> | undefined;
  body: unknown;
  headers: IncomingHttpHeaders;
  contentType: string | undefined;
}

/** A handler's answer: a plain HTTP answer, or a CloudEvent sent back as the reply (200). */
export type FunctionResult = StructuredReturn | CloudEvent<unknown> | undefined;

/** One running function: its handler, its health and its metrics. */
export interface BillingFunction {
  metrics: StageMetrics;
  handle(request: FunctionRequest): Promise<FunctionResult>;
  /** Throws (with a reason) when a dependency the function needs is not reachable. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export type FunctionFactory = (config: Config, logger: Logger) => Promise<BillingFunction>;

/** A problem+json answer for an error; unknown errors become a retryable 500. */
export function problemResult(err: unknown): StructuredReturn {
  const error = err instanceof BillingError ? err : new BillingError('internal', err instanceof Error ? err.message : String(err));
  return { statusCode: error.status, headers: { 'content-type': problemContentType }, body: error.toProblem() };
}

interface HealthReply {
  code(status: number): HealthReply;
  header(name: string, value: string): HealthReply;
  send(body: string): unknown;
}

/**
 * Builds the module a faas-js-runtime function exports. `init` reads the configuration (from
 * `env`, process.env by default) and creates the function; `handle` never throws (errors are
 * answered as problem+json).
 */
export function defineFunction(name: string, factory: FunctionFactory, env: NodeJS.ProcessEnv = process.env) {
  let instance: BillingFunction | undefined;
  const logger = createLogger(name, env.LOG_LEVEL ?? 'info');

  const current = (): BillingFunction => {
    if (!instance) throw new BillingError('internal', `${name} is not initialised yet`);
    return instance;
  };

  const probe = (check: (fn: BillingFunction) => Promise<void>) => async (_request: unknown, reply: HealthReply) => {
    try {
      await check(current());
      reply.code(200).header('content-type', 'text/plain; charset=utf-8').send('OK');
    } catch (err) {
      reply.code(503).header('content-type', 'text/plain; charset=utf-8').send(`not ready: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  return {
    logger,
    /** The running instance (tests and the local host read its metrics). */
    instance: (): BillingFunction | undefined => instance,
    init: async (): Promise<void> => {
      instance = await factory(loadConfig(env), logger);
    },
    handle: async (context: Context, event?: unknown): Promise<FunctionResult> => {
      try {
        const cloudevent = context.cloudevent instanceof CloudEvent ? context.cloudevent : undefined;
        return await current().handle({
          cloudevent,
          body: cloudevent ? undefined : event,
          headers: context.headers,
          contentType: context.headers['content-type'],
        });
      } catch (err) {
        const answer = problemResult(err);
        // A client's mistake is routine (it is counted in metrics); our own failures are errors.
        if ((answer.statusCode ?? 500) >= 500) logger.error({ err }, 'handler failed');
        else logger.debug({ problem: answer.body }, 'request rejected');
        return answer;
      }
    },
    readiness: probe((fn) => fn.ready()),
    // Liveness only says the process serves HTTP; a dead dependency is readiness' business.
    liveness: probe(() => Promise.resolve()),
    shutdown: async (): Promise<void> => {
      await instance?.close();
      instance = undefined;
    },
  };
}

export type FunctionModule = ReturnType<typeof defineFunction>;
