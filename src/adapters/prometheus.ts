/**
 * Knative request metrics read from a Prometheus server's HTTP query API: the requests of each
 * revision over one interval, as `increase()` over the interval evaluated at its end. Prometheus
 * already handles counter resets and pods that went away, so this path keeps no state.
 */
import { z } from 'zod';
import { metricSchemes, requestCounters, type RequestCounter, type Sample } from '../metering/exposition.js';

const vectorResponse = z.object({
  status: z.literal('success'),
  data: z.object({
    resultType: z.literal('vector'),
    result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) })),
  }),
});

/** Runs one instant query at `at`; throws with Prometheus' own error text when it fails. */
export async function instantQuery(baseUrl: string, query: string, at: Date, timeoutMs: number): Promise<Sample[]> {
  const url = new URL('api/v1/query', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  url.searchParams.set('query', query);
  url.searchParams.set('time', String(at.getTime() / 1000));
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`Prometheus query failed (${res.status}): ${text.slice(0, 300)}`);
  const parsed = vectorResponse.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`Prometheus answered an unexpected shape: ${parsed.error.message.slice(0, 300)}`);
  return parsed.data.data.result.map((r) => ({ name: '', labels: r.metric, value: Number(r.value[1]) }));
}

/**
 * Requests per revision and status over the `windowSeconds` ending at `at`, from both metric
 * naming schemes (a revision reports in one of them). Counts and sums are increments, not totals.
 */
export async function prometheusRequestIncrements(baseUrl: string, windowSeconds: number, at: Date, timeoutMs: number): Promise<RequestCounter[]> {
  const samples: Sample[] = [];
  for (const scheme of metricSchemes) {
    const l = scheme.labels;
    const by = [l.namespace, l.revision, l.service, l.status].join(', ');
    for (const metric of [scheme.count, scheme.sum]) {
      const results = await instantQuery(baseUrl, `sum by (${by}) (increase(${metric}[${windowSeconds}s]))`, at, timeoutMs);
      samples.push(...results.map((s) => ({ ...s, name: metric })));
    }
  }
  return requestCounters(samples);
}
