/**
 * A stand-in for what the metering sources read, over real HTTP: the Kubernetes API (pod list and
 * Knative Revision list, in their API shapes), each pod's queue-proxy metrics endpoint (text
 * exposition) and a Prometheus server's query API. Tests change its contents between ticks.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A pod of a Knative revision in the shape the Kubernetes API returns it. */
export function revisionPod(p: {
  namespace: string;
  name: string;
  uid: string;
  revision: string;
  service: string;
  tenant?: string;
  meteredBy?: string;
  node?: string;
  ip?: string;
  startTime?: string;
  memory?: string;
  containerId?: string;
}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace,
      uid: p.uid,
      labels: {
        'serving.knative.dev/revision': p.revision,
        'serving.knative.dev/service': p.service,
        'serving.knative.dev/configuration': p.service,
        ...(p.tenant ? { 'faasbilling.dev/tenant': p.tenant } : {}),
        ...(p.meteredBy ? { 'faasbilling.dev/metered-by': p.meteredBy } : {}),
      },
    },
    spec: {
      nodeName: p.node ?? 'node-1',
      containers: [
        { name: 'user-container', image: 'example/app', resources: p.memory ? { limits: { memory: p.memory } } : {} },
        { name: 'queue-proxy', image: 'knative/queue' },
      ],
    },
    status: {
      phase: 'Running',
      podIP: p.ip ?? '10.0.0.1',
      startTime: p.startTime ?? '2026-11-30T11:00:00Z',
      containerStatuses: [{ name: 'user-container', containerID: `containerd://${p.containerId ?? `c-${p.name}`}`, ready: true, restartCount: 0, image: 'example/app', imageID: '' }],
    },
  };
}

/** A Knative Revision in the shape serving.knative.dev/v1 returns it. */
export function knativeRevision(r: { namespace: string; name: string; service: string; tenant?: string; meteredBy?: string; memory?: string }) {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Revision',
    metadata: {
      name: r.name,
      namespace: r.namespace,
      labels: {
        'serving.knative.dev/service': r.service,
        'serving.knative.dev/configuration': r.service,
        ...(r.tenant ? { 'faasbilling.dev/tenant': r.tenant } : {}),
        ...(r.meteredBy ? { 'faasbilling.dev/metered-by': r.meteredBy } : {}),
      },
    },
    spec: { containers: [{ name: 'user-container', image: 'example/app', resources: r.memory ? { limits: { memory: r.memory } } : {} }] },
  };
}

export interface FakeCluster {
  url: string;
  pods: ReturnType<typeof revisionPod>[];
  revisions: ReturnType<typeof knativeRevision>[];
  /** Text exposition served at /pods/<namespace>/<name>/metrics; a missing entry answers 503. */
  podMetrics: Map<string, string>;
  /** Answers /api/v1/query (query and time given); undefined answers 400. */
  prometheus: ((query: string, time: string) => unknown) | undefined;
  /** Every request's path and query, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Starts the fake cluster on a free port. */
export async function startFakeCluster(): Promise<FakeCluster> {
  const cluster: FakeCluster = { url: '', pods: [], revisions: [], podMetrics: new Map(), prometheus: undefined, requests: [], close: () => Promise.resolve() };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    cluster.requests.push(`${url.pathname}${url.search}`);
    if (url.pathname === '/api/v1/pods') {
      const node = /spec\.nodeName=(.+)/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1];
      const selector = url.searchParams.get('labelSelector');
      const items = cluster.pods.filter((p) => (!node || p.spec.nodeName === node) && (!selector || selector in p.metadata.labels));
      return json(res, 200, { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '1' }, items });
    }
    if (url.pathname === '/apis/serving.knative.dev/v1/revisions') {
      return json(res, 200, { apiVersion: 'serving.knative.dev/v1', kind: 'RevisionList', metadata: { resourceVersion: '1' }, items: cluster.revisions });
    }
    const podPath = /^\/pods\/([^/]+)\/([^/]+)\/metrics$/.exec(url.pathname);
    if (podPath) {
      const text = cluster.podMetrics.get(`${podPath[1]}/${podPath[2]}`);
      if (text === undefined) return void res.writeHead(503).end('unavailable');
      return void res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text);
    }
    if (url.pathname === '/api/v1/query' && cluster.prometheus) {
      return json(res, 200, cluster.prometheus(url.searchParams.get('query') ?? '', url.searchParams.get('time') ?? ''));
    }
    json(res, 404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cluster.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cluster.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return cluster;
}
