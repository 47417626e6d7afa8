/**
 * echo: the seed's echo server as a faas-js-runtime HTTP function: answers with the method, query,
 * headers and body it received. Its invocations are reported by the metering middleware.
 */
import type { Context, StructuredReturn } from 'faas-js-runtime';
import { meteredWorkload } from '../../src/metering/workload.js';

/** Answers what was sent. */
export function echo(context: Context, body?: unknown): StructuredReturn {
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: { method: context.method, query: context.query ?? {}, headers: context.headers, body: body ?? null },
  };
}

export default meteredWorkload('echo', echo);
