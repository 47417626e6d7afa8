/**
 * A local HTTP server that speaks the Kubernetes API for the calls the API's deployer makes, and
 * no more: discovery of serving.knative.dev/v1, GET and server-side-apply PATCH of a namespaced
 * Knative Service. It checks the bearer token, the apply content type and field manager, validates
 * every applied Service against the upstream Knative Service CRD schema (unknown fields refused,
 * like the API server's strict field validation), records every call, and plays Knative's
 * controller: a few reads after an apply the new generation is Ready (or failed, or never).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { isRecord, k8sObject, knativeCrdDir, loadCrdValidator, type CrdValidator, type Json } from './k8s.js';

export interface RecordedCall {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
  status: number;
}

export type Reconcile = 'ready' | 'fail' | 'never';

interface Stored {
  object: Json & { metadata: Json; spec: unknown };
  generation: number;
  /** Reads left before the controller reports the current generation. */
  readsUntilReconciled: number;
}

const servicesPath = /^\/apis\/serving\.knative\.dev\/v1\/namespaces\/([a-z0-9-]+)\/services\/([a-z0-9.-]+)$/;

export class FakeKubeApi {
  readonly calls: RecordedCall[] = [];
  readonly token = `fake-token-${randomUUID()}`;
  /** What the controller does with the next generations. */
  reconcile: Reconcile = 'ready';
  /** Answer the next apply with this status and message instead of storing it. */
  failNextApply: { status: number; message: string } | undefined;
  private readonly objects = new Map<string, Stored>();
  private readonly crds: CrdValidator = loadCrdValidator(knativeCrdDir);
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A kubeconfig (YAML) whose current context is this server with its token. */
  kubeconfig(namespace: string): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '  - name: fake',
      '    cluster:',
      `      server: ${this.url}`,
      '      insecure-skip-tls-verify: true',
      'users:',
      '  - name: deployer',
      '    user:',
      `      token: ${this.token}`,
      'contexts:',
      '  - name: fake',
      '    context:',
      '      cluster: fake',
      '      user: deployer',
      `      namespace: ${namespace}`,
      'current-context: fake',
      '',
    ].join('\n');
  }

  /** The stored Service, as a GET would return it. */
  stored(namespace: string, name: string): (Json & { metadata: Json; spec: unknown }) | undefined {
    return this.objects.get(`${namespace}/${name}`)?.object;
  }

  /** Puts a Service in place as if someone else had created it. */
  seed(object: Json & { metadata: { name: string; namespace: string; labels?: Record<string, string> } }): void {
    this.objects.set(`${object.metadata.namespace}/${object.metadata.name}`, { object: { ...object, spec: object.spec ?? {} }, generation: 1, readsUntilReconciled: 0 });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const call: RecordedCall = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers['content-type'],
      authorization: req.headers.authorization,
      body: text ? safeParse(text) : undefined,
      status: 0,
    };
    this.calls.push(call);
    const send = (status: number, body: unknown): void => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const failure = (status: number, reason: string, message: string) => send(status, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason, message, code: status });

    if (req.headers.authorization !== `Bearer ${this.token}`) return failure(401, 'Unauthorized', 'Unauthorized');
    if (req.method === 'GET' && url.pathname === '/apis/serving.knative.dev/v1') {
      return send(200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: 'serving.knative.dev/v1',
        resources: [{ name: 'services', singularName: 'service', namespaced: true, kind: 'Service', shortNames: ['kservice', 'ksvc'], verbs: ['delete', 'get', 'list', 'patch', 'create', 'update', 'watch'] }],
      });
    }
    const match = servicesPath.exec(url.pathname);
    if (!match) return failure(404, 'NotFound', `the server could not find the requested resource (${req.method} ${url.pathname})`);
    const [, namespace = '', name = ''] = match;
    const key = `${namespace}/${name}`;

    if (req.method === 'GET') {
      const stored = this.objects.get(key);
      if (!stored) return failure(404, 'NotFound', `services.serving.knative.dev "${name}" not found`);
      this.controllerStep(stored);
      return send(200, stored.object);
    }
    if (req.method !== 'PATCH') return failure(405, 'MethodNotAllowed', `${req.method} is not supported here`);
    if (call.contentType !== 'application/apply-patch+yaml') return failure(415, 'UnsupportedMediaType', `this fake accepts server-side apply only, not ${call.contentType}`);
    if (!call.query.fieldManager) return failure(422, 'Invalid', 'fieldManager is required for apply requests');
    if (this.failNextApply) {
      const { status, message } = this.failNextApply;
      this.failNextApply = undefined;
      return failure(status, 'Invalid', message);
    }
    let applied: unknown;
    try {
      applied = parseYaml(text);
    } catch (err) {
      return failure(400, 'BadRequest', `error decoding YAML: ${err instanceof Error ? err.message : String(err)}`);
    }
    const envelope = k8sObject.safeParse(applied);
    if (!envelope.success || !isRecord(applied)) return failure(400, 'BadRequest', 'not a Kubernetes object');
    if (envelope.data.apiVersion !== 'serving.knative.dev/v1' || envelope.data.kind !== 'Service') return failure(400, 'BadRequest', 'the body is not a serving.knative.dev/v1 Service');
    if (envelope.data.metadata.name !== name || (envelope.data.metadata.namespace ?? namespace) !== namespace) return failure(400, 'BadRequest', 'the name or namespace of the body does not match the URL');
    const problems = this.crds.validate(applied);
    if (problems.length > 0) return failure(422, 'Invalid', `Service.serving.knative.dev "${name}" is invalid: ${problems.join('; ')}`);

    const previous = this.objects.get(key);
    const specChanged = !previous || JSON.stringify(previous.object.spec) !== JSON.stringify(applied.spec);
    const generation = previous ? previous.generation + (specChanged ? 1 : 0) : 1;
    const metadata = {
      ...(isRecord(applied.metadata) ? applied.metadata : {}),
      namespace,
      uid: previous && isRecord(previous.object.metadata) ? previous.object.metadata.uid : randomUUID(),
      generation,
      resourceVersion: String(this.calls.length),
    };
    const status = previous && isRecord(previous.object.status) ? previous.object.status : { observedGeneration: 0, conditions: [{ type: 'Ready', status: 'Unknown', reason: 'Deploying' }] };
    const stored: Stored = { object: { ...applied, metadata, spec: applied.spec, status }, generation, readsUntilReconciled: specChanged ? 2 : 0 };
    this.objects.set(key, stored);
    return send(previous ? 200 : 201, stored.object);
  }

  /** Knative's controller, one read at a time. */
  private controllerStep(stored: Stored): void {
    if (stored.readsUntilReconciled <= 0) return;
    stored.readsUntilReconciled--;
    if (stored.readsUntilReconciled > 0 || this.reconcile === 'never') {
      if (this.reconcile === 'never') stored.readsUntilReconciled = 1;
      return;
    }
    const name = String(stored.object.metadata.name);
    const namespace = String(stored.object.metadata.namespace);
    const revision = `${name}-${String(stored.generation).padStart(5, '0')}`;
    const previous = isRecord(stored.object.status) ? stored.object.status : {};
    stored.object.status =
      this.reconcile === 'ready'
        ? { observedGeneration: stored.generation, conditions: [{ type: 'Ready', status: 'True' }], latestCreatedRevisionName: revision, latestReadyRevisionName: revision, url: `http://${name}.${namespace}.example.test` }
        : { ...previous, observedGeneration: stored.generation, latestCreatedRevisionName: revision, conditions: [{ type: 'Ready', status: 'False', reason: 'RevisionFailed', message: `Revision "${revision}" failed with message: Unable to fetch image.` }] };
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
