/**
 * POST /api/v1/services/:id/deploy against a local server that speaks the Kubernetes API for the
 * calls the deployer makes (test/support/fake-kube-api.ts: token, server-side apply, the Knative
 * Service CRD schema, a Knative controller that makes revisions Ready or not). The API is the
 * real one on the real PostgreSQL, configured with DEPLOY_TARGET=kubeconfig and a kubeconfig
 * file pointing at that server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { deploymentSchema } from '../functions/api/routes/deploy.js';
import { fieldManager, knativeServiceName, labels } from '../src/adapters/knative-deployer.js';
import { startTestApi, type TestApi } from './support/api.js';
import { FakeKubeApi } from './support/fake-kube-api.js';
import { isRecord, readYaml } from './support/k8s.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const namespace = 'tenant-functions';
const sink = 'http://broker-ingress.knative-eventing.svc.cluster.local/faas-billing/default';
type Json = Record<string, unknown>;

const appliedService = z.looseObject({
  metadata: z.looseObject({ name: z.string(), labels: z.record(z.string(), z.string()) }),
  spec: z.looseObject({
    template: z.looseObject({
      metadata: z.looseObject({ labels: z.record(z.string(), z.string()), annotations: z.record(z.string(), z.string()) }),
      spec: z.looseObject({
        containers: z
          .array(
            z.looseObject({
              image: z.string(),
              ports: z.array(z.looseObject({ containerPort: z.number() })),
              env: z.array(z.strictObject({ name: z.string(), value: z.string() })),
              resources: z.looseObject({ limits: z.record(z.string(), z.string()) }).optional(),
            }),
          )
          .length(1),
      }),
    }),
  }),
});

describe('POST /api/v1/services/:id/deploy (Knative Service through the Kubernetes API)', function () {
  this.timeout(60_000);
  const kube = new FakeKubeApi();
  let dir: string;
  let api: TestApi;
  let tenantId: string;
  let serviceId: string;
  let tenantKey: string;
  let otherKey: string;
  let ingestKey: string;

  const created = async (method: string, p: string, body: Json, key?: string): Promise<Json> => {
    const res = await api.call<Json>(method, p, { body, ...(key ? { key } : {}) });
    assert.ok(res.status === 201 || res.status === 200, `${method} ${p}: ${res.status} ${res.text}`);
    return res.body;
  };
  const deploy = (id: string, body: Json, key?: string) => api.call<Json>('POST', `/services/${id}/deploy`, { body, ...(key ? { key } : {}) });
  const applies = () => kube.calls.filter((c) => c.method === 'PATCH');
  const ksvcName = () => knativeServiceName('acme-corp', 'image-resizer', serviceId);

  before(async () => {
    await kube.start();
    dir = mkdtempSync(path.join(tmpdir(), 'fb-kubeconfig-'));
    writeFileSync(path.join(dir, 'config'), kube.kubeconfig('default'));
    api = await startTestApi({
      env: { DEPLOY_TARGET: 'kubeconfig', KUBECONFIG: path.join(dir, 'config'), DEPLOY_NAMESPACE: namespace, DEPLOY_READY_TIMEOUT_MS: '10000', DEPLOY_SINK_URL: sink },
    });
    tenantId = String((await created('POST', '/tenants', { slug: 'acme-corp', name: 'Acme' })).id);
    const other = String((await created('POST', '/tenants', { slug: 'other-corp', name: 'Other' })).id);
    serviceId = String((await created('POST', '/services', { tenant_id: tenantId, name: 'image-resizer', memory_limit_mb: 256, cpu_limit_cores: 0.5 })).id);
    tenantKey = String((await created('POST', '/api-keys', { name: 'acme', role: 'tenant', tenant_id: tenantId })).key);
    otherKey = String((await created('POST', '/api-keys', { name: 'other', role: 'tenant', tenant_id: other })).key);
    ingestKey = String((await created('POST', '/api-keys', { name: 'acme ingest', role: 'ingest', tenant_id: tenantId })).key);
  });

  after(async () => {
    await api?.close();
    await kube.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the owning tenant deploys: server-side apply of a valid Knative Service, 201 once the revision is Ready', async () => {
    const res = await deploy(serviceId, { image: 'registry.example/acme/resizer:1.0', min_scale: 0, max_scale: 5, target: 20, env: { MODE: 'fast' } }, tenantKey);
    assert.equal(res.status, 201, res.text);
    const body = deploymentSchema.parse(res.body);
    assert.deepEqual(body, {
      service_id: serviceId,
      name: ksvcName(),
      namespace,
      revision: `${ksvcName()}-00001`,
      url: `http://${ksvcName()}.${namespace}.example.test`,
      image: 'registry.example/acme/resizer:1.0',
      scale: { min: 0, max: 5, target: 20 },
      created: true,
    });

    const [apply] = applies();
    assert.ok(apply);
    assert.equal(apply.path, `/apis/serving.knative.dev/v1/namespaces/${namespace}/services/${ksvcName()}`);
    assert.equal(apply.contentType, 'application/apply-patch+yaml');
    assert.deepEqual(apply.query, { fieldManager, force: 'true' });
    assert.equal(apply.authorization, `Bearer ${kube.token}`);
    assert.equal(apply.status, 201, 'the fake validated it against the Knative Service CRD and stored it');
    const svc = appliedService.parse(apply.body);
    const owner = { [labels.tenant]: 'acme-corp', [labels.tenantId]: tenantId, [labels.service]: 'image-resizer', [labels.serviceId]: serviceId };
    for (const [key, value] of Object.entries(owner)) {
      assert.equal(svc.metadata.labels[key], value, `Service label ${key}`);
      assert.equal(svc.spec.template.metadata.labels[key], value, `revision label ${key}`);
    }
    assert.deepEqual(svc.spec.template.metadata.annotations, { 'autoscaling.knative.dev/min-scale': '0', 'autoscaling.knative.dev/max-scale': '5', 'autoscaling.knative.dev/target': '20' });
    const [container] = svc.spec.template.spec.containers;
    assert.equal(container?.image, 'registry.example/acme/resizer:1.0');
    assert.deepEqual(container?.ports, [{ containerPort: 8080 }]);
    assert.deepEqual(Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value])), { MODE: 'fast', FAASBILLING_TENANT: 'acme-corp', FAASBILLING_SERVICE: 'image-resizer', K_SINK: sink });
    assert.deepEqual(container?.resources?.limits, { memory: '256Mi', cpu: '500m' }, 'the service\'s registered limits');

    const revisions = await api.call<{ items: Json[] }>('GET', `/services/${serviceId}/revisions`, { key: tenantKey });
    assert.deepEqual(
      revisions.body.items.map((r) => [r.name, r.image, r.scaling_config]),
      [[`${ksvcName()}-00001`, 'registry.example/acme/resizer:1.0', { min: 0, max: 5, target: 20 }]],
    );
    const audit = await api.call<{ items: Json[] }>('GET', '/audit-log?limit=500');
    assert.ok(audit.body.items.some((e) => e.action === 'service.deploy' && e.entity_id === serviceId));
  });

  it('a second deploy updates the same Knative Service: 200, the next revision', async () => {
    const res = await deploy(serviceId, { image: 'registry.example/acme/resizer:1.1' }, tenantKey);
    assert.equal(res.status, 200, res.text);
    const body = deploymentSchema.parse(res.body);
    assert.equal(body.created, false);
    assert.equal(body.revision, `${ksvcName()}-00002`);
    assert.deepEqual(body.scale, { min: 0, max: 10, target: 100 }, 'the defaults');
    assert.equal(applies().length, 2);
    const stored = appliedService.parse(kube.stored(namespace, ksvcName()));
    assert.equal(stored.spec.template.spec.containers[0]?.image, 'registry.example/acme/resizer:1.1');
  });

  it('another tenant gets the 404 of a missing service, an ingest key 403; nothing reaches the cluster', async () => {
    const before = kube.calls.length;
    assert.equal((await deploy(serviceId, { image: 'evil/x:1' }, otherKey)).status, 404);
    assert.equal((await deploy(serviceId, { image: 'evil/x:1' }, ingestKey)).status, 403);
    assert.equal((await deploy('6d9a7a5e-0000-4000-8000-000000000000', { image: 'evil/x:1' })).status, 404);
    assert.equal(kube.calls.length, before);
  });

  it('refuses a bad image reference, min above max, a reserved variable (422), before calling the cluster', async () => {
    const before = kube.calls.length;
    for (const [body, field] of [
      [{ image: 'Not An Image!' }, 'body.image'],
      [{ image: 'r.example/a:1', min_scale: 5, max_scale: 2 }, 'body.min_scale'],
      [{ image: 'r.example/a:1', env: { K_SINK: 'http://elsewhere' } }, 'body.env'],
      [{ image: 'r.example/a:1', replicas: 3 }, 'body'],
    ] as const) {
      const res = await deploy(serviceId, body);
      assert.equal(res.status, 422, JSON.stringify(body));
      const invalid = z.object({ invalid_fields: z.array(z.object({ name: z.string() })) }).parse(res.body);
      assert.ok(invalid.invalid_fields.some((f) => f.name.startsWith(field)), `${JSON.stringify(body)}: ${res.text}`);
    }
    assert.equal(kube.calls.length, before);
  });

  it('a revision that fails (image not found) answers 502 with Knative\'s reason', async () => {
    kube.reconcile = 'fail';
    try {
      const res = await deploy(serviceId, { image: 'registry.example/acme/resizer:missing' });
      assert.equal(res.status, 502, res.text);
      assert.match(String(res.body.detail), /RevisionFailed: Revision ".*-00003" failed with message: Unable to fetch image/);
    } finally {
      kube.reconcile = 'ready';
    }
  });

  it('a Service the cluster refuses answers 502 with the API server\'s message', async () => {
    kube.failNextApply = { status: 422, message: 'admission webhook "validation.webhook.serving.knative.dev" denied the request: bad' };
    const res = await deploy(serviceId, { image: 'registry.example/acme/resizer:1.2' });
    assert.equal(res.status, 502, res.text);
    assert.match(String(res.body.detail), /refused the Knative Service: admission webhook .* denied the request: bad/);
  });

  it('a Knative Service of that name that is not this service\'s is never taken over (409)', async () => {
    const intruder = String((await created('POST', '/services', { tenant_id: tenantId, name: 'squatted' })).id);
    const name = knativeServiceName('acme-corp', 'squatted', intruder);
    kube.seed({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name, namespace, labels: { team: 'someone-else' } }, spec: {} });
    const before = applies().length;
    const res = await deploy(intruder, { image: 'registry.example/acme/squat:1' });
    assert.equal(res.status, 409, res.text);
    assert.equal(applies().length, before);
  });

  it('the fake API server does validate against the Knative CRD (a broken Service is refused)', async () => {
    const name = 'broken';
    const res = await fetch(`${kube.url}/apis/serving.knative.dev/v1/namespaces/${namespace}/services/${name}?fieldManager=test`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${kube.token}`, 'content-type': 'application/apply-patch+yaml' },
      body: JSON.stringify({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name, namespace }, spec: { template: { metadata: { annotations: { 'autoscaling.knative.dev/min-scale': 0 } }, spec: { containers: [{ imagee: 'x' }] } } } }),
    });
    assert.equal(res.status, 422);
    const status = (await res.json()) as Json;
    assert.match(String(status.message), /min-scale must be string/);
    assert.match(String(status.message), /must NOT have additional properties.*imagee/);
  });

  it('the API\'s Role grants exactly the verbs these calls need, on Knative Services, to the API\'s ServiceAccount', () => {
    const docs = readYaml(path.join(root, 'deploy/base/api-rbac.yaml')).filter(isRecord);
    const role = z.looseObject({ rules: z.array(z.strictObject({ apiGroups: z.array(z.string()), resources: z.array(z.string()), verbs: z.array(z.string()) })) }).parse(docs.find((d) => d.kind === 'Role'));
    const binding = z.looseObject({ subjects: z.array(z.looseObject({ kind: z.string(), name: z.string() })) }).parse(docs.find((d) => d.kind === 'RoleBinding'));
    assert.deepEqual(role.rules.map((r) => [r.apiGroups, r.resources]), [[['serving.knative.dev'], ['services']]]);
    // Verbs of the recorded calls: GET → get; an apply → patch, and create when it created.
    const needed = new Set<string>();
    for (const call of kube.calls) {
      if (!call.path.includes('/services/') || call.path.includes('/broken')) continue;
      if (call.method === 'GET') needed.add('get');
      if (call.method === 'PATCH') needed.add('patch');
      if (call.method === 'PATCH' && call.status === 201) needed.add('create');
    }
    assert.deepEqual([...(role.rules[0]?.verbs ?? [])].sort(), [...needed].sort());
    const apiService = readFileSync(path.join(root, 'deploy/base/api.yaml'), 'utf8');
    const account = /serviceAccountName: (\S+)/.exec(apiService)?.[1];
    assert.deepEqual(binding.subjects.map((s) => [s.kind, s.name]), [['ServiceAccount', account]]);
  });

  describe('timeouts and an installation without deployments', () => {
    let slow: TestApi;
    let off: TestApi;

    before(async () => {
      slow = await startTestApi({ env: { DEPLOY_TARGET: 'kubeconfig', KUBECONFIG: path.join(dir, 'config'), DEPLOY_NAMESPACE: namespace, DEPLOY_READY_TIMEOUT_MS: '1500' } });
      off = await startTestApi();
    });

    after(async () => {
      kube.reconcile = 'ready';
      await slow?.close();
      await off?.close();
    });

    it('a revision that never becomes Ready answers 504 after DEPLOY_READY_TIMEOUT_MS', async () => {
      kube.reconcile = 'never';
      const [tenant] = await slow.server.db('tenants').insert({ slug: 'slow-corp', name: 'Slow' }).returning<{ id: string }[]>('id');
      const [service] = await slow.server.db('services').insert({ tenant_id: tenant?.id, name: 'sleepy' }).returning<{ id: string }[]>('id');
      const res = await slow.call<Json>('POST', `/services/${service?.id}/deploy`, { body: { image: 'registry.example/slow/sleepy:1' } });
      assert.equal(res.status, 504, res.text);
      assert.match(String(res.body.detail), /was not ready within 1500 ms/);
    });

    it('DEPLOY_TARGET=off answers 503 with the reason', async () => {
      const [tenant] = await off.server.db('tenants').insert({ slug: 'off-corp', name: 'Off' }).returning<{ id: string }[]>('id');
      const [service] = await off.server.db('services').insert({ tenant_id: tenant?.id, name: 'fn' }).returning<{ id: string }[]>('id');
      const res = await off.call<Json>('POST', `/services/${service?.id}/deploy`, { body: { image: 'registry.example/off/fn:1' } });
      assert.equal(res.status, 503);
      assert.match(String(res.body.detail), /DEPLOY_TARGET=off/);
    });
  });
});
