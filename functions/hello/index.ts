/**
 * hello: the seed's small greeting function, a faas-js-runtime HTTP function whose invocations the
 * metering middleware reports (meter.wrap). `GET /?name=Ada` answers {"message":"Hello, Ada!"}.
 */
import type { Context, StructuredReturn } from 'faas-js-runtime';
import { meteredWorkload } from '../../src/metering/workload.js';

/** Greets `name` (query or JSON body), or the world. */
export function greet(context: Context): StructuredReturn {
  const fromBody = typeof context.body === 'object' && context.body !== null ? (context.body as Record<string, unknown>).name : undefined;
  const requested: unknown = context.query?.name ?? fromBody;
  const name = typeof requested === 'string' && requested.trim() ? requested.trim().slice(0, 100) : 'world';
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: { message: `Hello, ${name}!` } };
}

export default meteredWorkload('hello', greet);
