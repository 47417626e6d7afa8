/**
 * Knative request metrics, in the two shapes queue-proxy has served them: the OpenTelemetry
 * histogram `kn_serving_invocation_duration_seconds_{sum,count}` (labels k8s_namespace_name,
 * kn_revision_name, k8s_pod_name, http_response_status_code; seconds) and the older OpenCensus
 * `revision_app_request_count` / `revision_app_request_latencies_{sum,count}` (labels
 * namespace_name, revision_name, pod_name, response_code; milliseconds). Both become one form,
 * `RequestCounter`: cumulative requests and their summed duration in ms, per pod and status.
 */

/** One sample line of the Prometheus text exposition format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const unescape = (value: string): string => value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const pattern = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;
  let at = 0;
  while (at < text.length) {
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (!match) throw new Error(`malformed labels in exposition line: ${line.slice(0, 200)}`);
    labels[match[1]!] = unescape(match[2]!);
    at = pattern.lastIndex;
  }
  return labels;
}

/**
 * Parses the text exposition format (version 0.0.4, what queue-proxy serves): every sample line
 * with its labels and value; comments, HELP and TYPE lines are skipped, timestamps ignored.
 */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.search(/\s/);
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace !== -1 && (space === -1 || brace < space)) {
      const close = line.lastIndexOf('}');
      if (close < brace) throw new Error(`unclosed labels in exposition line: ${line.slice(0, 200)}`);
      name = line.slice(0, brace);
      labels = parseLabels(line.slice(brace + 1, close), line);
      rest = line.slice(close + 1).trim();
    } else {
      if (space === -1) throw new Error(`no value in exposition line: ${line.slice(0, 200)}`);
      name = line.slice(0, space);
      rest = line.slice(space).trim();
    }
    const valueText = rest.split(/\s+/)[0] ?? '';
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (valueText === '' || (Number.isNaN(value) && valueText !== 'NaN')) throw new Error(`bad value in exposition line: ${line.slice(0, 200)}`);
    samples.push({ name, labels, value });
  }
  return samples;
}

/** Cumulative request counters of one revision pod and status code. */
export interface RequestCounter {
  namespace: string;
  revision: string;
  /** The Knative Service, when the labels name it. */
  service?: string | undefined;
  pod: string;
  status: string;
  count: number;
  sumMs: number;
}

/** The two naming schemes: metric names, label names and the unit of the duration sum. */
export const metricSchemes = [
  {
    scheme: 'otel',
    count: 'kn_serving_invocation_duration_seconds_count',
    sum: 'kn_serving_invocation_duration_seconds_sum',
    msPerUnit: 1000,
    labels: { namespace: 'k8s_namespace_name', revision: 'kn_revision_name', service: 'kn_service_name', pod: 'k8s_pod_name', status: 'http_response_status_code' },
  },
  {
    scheme: 'opencensus',
    count: 'revision_app_request_count',
    sum: 'revision_app_request_latencies_sum',
    msPerUnit: 1,
    labels: { namespace: 'namespace_name', revision: 'revision_name', service: 'service_name', pod: 'pod_name', status: 'response_code' },
  },
] as const;

/** Identity of one counter series: namespace, revision, pod and status. */
export const counterKey = (c: Pick<RequestCounter, 'namespace' | 'revision' | 'pod' | 'status'>): string => [c.namespace, c.revision, c.pod, c.status].join('\u0000');

/**
 * The request counters in `samples`, from whichever scheme they use. `pod` fills the pod label
 * when the exposition has none (a pod's own endpoint may not label itself).
 */
export function requestCounters(samples: readonly Sample[], defaults: { pod?: string; namespace?: string } = {}): RequestCounter[] {
  const counters = new Map<string, RequestCounter>();
  for (const scheme of metricSchemes) {
    for (const sample of samples) {
      const isCount = sample.name === scheme.count;
      if (!isCount && sample.name !== scheme.sum) continue;
      const l = scheme.labels;
      const revision = sample.labels[l.revision];
      const namespace = sample.labels[l.namespace] ?? defaults.namespace;
      if (!revision || !namespace || !Number.isFinite(sample.value)) continue;
      const key = { namespace, revision, pod: sample.labels[l.pod] ?? defaults.pod ?? '', status: sample.labels[l.status] ?? '' };
      const id = counterKey(key);
      // Several series can fold into one (e.g. other labels we do not keep): their values add up.
      const counter = counters.get(id) ?? { ...key, service: sample.labels[l.service] ?? sample.labels.service_name, count: 0, sumMs: 0 };
      if (isCount) counter.count += sample.value;
      else counter.sumMs += sample.value * scheme.msPerUnit;
      counters.set(id, counter);
    }
  }
  return [...counters.values()];
}
