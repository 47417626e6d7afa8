/**
 * The load generator: autocannon in a child process, so generating load never shares an event
 * loop with the server under test. Every event it sends has a unique id: autocannon replaces
 * "[<id>]" with a fresh id per request, and events of a batch add their index to it.
 */
import autocannon from 'autocannon';
import { EventType } from '../../src/contract/events.js';
import { childArgument, failInChild, fromParent, toParent } from './child.js';
import { loadSpec, type LoadResult } from './load-spec.js';
import { usageCloudEventOf, usageDataOf } from './workload.js';

type Spec = ReturnType<typeof loadSpec.parse>;

// A few payload variants, so requests do not all carry the same tenant and service.
const variants = 16;

function requestsOf(spec: Spec): autocannon.Request[] {
  const time = new Date().toISOString();
  if (spec.mode === 'binary') {
    return Array.from({ length: variants }, (_, i) => ({
      method: 'POST' as const,
      path: new URL(spec.url).pathname,
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-type': EventType.usage,
        'ce-source': spec.source,
        'ce-id': '[<id>]',
        'ce-time': time,
      },
      body: JSON.stringify(usageDataOf(i)),
    }));
  }
  // Bodies are built once; only the ids change per request.
  return Array.from({ length: variants }, (_, v) => ({
    method: 'POST' as const,
    path: new URL(spec.url).pathname,
    headers: { 'content-type': 'application/cloudevents-batch+json' },
    body: JSON.stringify(
      Array.from({ length: spec.batchSize }, (_, k) => usageCloudEventOf(v * spec.batchSize + k, `[<id>]-${k}`, spec.source, time)),
    ),
  }));
}

function cannon(spec: Spec, durationSeconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: durationSeconds,
    idReplacement: true,
    requests: requestsOf(spec),
    // A 1000-event batch can take a while under load; a timeout would be counted as an error.
    timeout: 30,
  });
}

async function main(): Promise<void> {
  const spec = loadSpec.parse(childArgument());
  toParent({ type: 'ready' });
  await fromParent('go');
  if (spec.warmupSeconds > 0) await cannon(spec, spec.warmupSeconds);
  toParent({ type: 'measuring' });
  const result = await cannon(spec, spec.durationSeconds);
  const answer: LoadResult = {
    type: 'result',
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
  toParent(answer);
  process.disconnect();
}

main().catch(failInChild);
