/** Reading a revision pod's queue-proxy metrics endpoint (the scraper in pods mode, and the agent). */
import { parseExposition, requestCounters, type RequestCounter } from '../metering/exposition.js';

/** The pod a metrics URL template is filled from. */
export interface MetricsPod {
  ip: string | undefined;
  name: string;
  namespace: string;
}

/**
 * The request counters `pod` serves at `template` ({ip}, {name} and {namespace} filled in);
 * throws when the endpoint does not answer 2xx or serves something that is not text exposition.
 */
export async function readPodCounters(template: string, pod: MetricsPod, timeoutMs: number): Promise<RequestCounter[]> {
  if (!pod.ip) throw new Error(`pod ${pod.namespace}/${pod.name} has no IP yet`);
  const url = template.replaceAll('{ip}', pod.ip).replaceAll('{name}', pod.name).replaceAll('{namespace}', pod.namespace);
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return requestCounters(parseExposition(await res.text()), { pod: pod.name, namespace: pod.namespace });
}
