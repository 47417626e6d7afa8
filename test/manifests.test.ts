/**
 * The deployable manifests: eventing/ (Broker, Triggers, PingSources), deploy/base (Knative
 * Services, config) and functions/<name>/func.yaml. Each document is validated against the
 * openAPIV3Schema of its upstream Knative CRD (test/fixtures/k8s-schemas/knative), with unknown fields
 * rejected as `kubectl apply` (strict field validation) would; then the cross-file rules no CRD can
 * state are checked: routing (src/contract/routing.ts) against the Triggers, func.yaml against the
 * Knative Services and Triggers, and every env var against the config schema.
 *
 * The kustomizations are rendered by a small renderer below (resources, components, delete
 * patches, namespace, labels), so the test needs no kubectl; when kubectl is on PATH its `kubectl
 * kustomize` output is compared too. deploy/base is also rendered with the agent component
 * (deploy/components/agent), which swaps the queue-proxy scraper for the billing agent.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CronExpressionParser } from 'cron-parser';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { deployedFunctionNames } from '../functions/sources.js';
import { EventType } from '../src/contract/events.js';
import {
  billingNamespace,
  brokerName,
  pingEventType,
  pingSourceSource,
  plannedConsumerOf,
  plannedConsumers,
  routing,
  type FunctionRoute,
} from '../src/contract/routing.js';
import { scrapeConfigSchema } from '../src/metering/scrape-config.js';
import { configSchema, loadConfig } from '../src/runtime/config.js';
import { findOnPath, isRecord, k8sObject, knativeCrdDir, kubectlKustomize, loadCrdValidator, objectMeta, readYaml, type Json, type K8sObject } from './support/k8s.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const crdDir = knativeCrdDir;
const eventingDir = path.join(root, 'eventing');
const baseDir = path.join(root, 'deploy/base');
const agentComponentDir = path.join(root, 'deploy/components/agent');

// ---------------------------------------------------------------------------------------------
// Reading and rendering


interface Rendered {
  doc: K8sObject;
  /** File and document number it came from. */
  from: string;
}

/** The keys this renderer implements; anything else in a kustomization fails the test loudly. */
const kustomizationSchema = z.strictObject({
  apiVersion: z.enum(['kustomize.config.k8s.io/v1beta1', 'kustomize.config.k8s.io/v1alpha1']),
  kind: z.enum(['Kustomization', 'Component']),
  namespace: z.string().optional(),
  labels: z
    .array(
      z.strictObject({
        pairs: z.record(z.string(), z.string()),
        includeSelectors: z.literal(false).optional(),
        includeTemplates: z.literal(false).optional(),
      }),
    )
    .optional(),
  resources: z.array(z.string()),
  components: z.array(z.string()).optional(),
  /** Deletions only: each patch is one `$patch: delete` document. */
  patches: z.array(z.strictObject({ patch: z.string() })).optional(),
});
const deletePatchSchema = z.strictObject({
  $patch: z.literal('delete'),
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.strictObject({ name: z.string() }),
});
const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding']);
const idOf = (doc: K8sObject): string => `${doc.kind}/${doc.metadata.namespace ?? ''}/${doc.metadata.name}`;

/**
 * What `kustomize build dir` produces for the subset of kustomize the project uses; with
 * `components`, what it produces when the kustomization also lists them.
 */
function renderKustomization(dir: string, components: readonly string[] = []): Rendered[] {
  const out: Rendered[] = [];
  accumulate(dir, 'Kustomization', out, components);
  const seen = new Map<string, string>();
  for (const { doc, from } of out) {
    const previous = seen.get(idOf(doc));
    assert.equal(previous, undefined, `${idOf(doc)} is defined twice: ${previous} and ${from}`);
    seen.set(idOf(doc), from);
  }
  return out;
}

/**
 * Adds the resources of the kustomization (or Component) in `dir` to `out`, then applies its
 * components, its delete patches and its namespace and labels. As in kustomize, a Kustomization
 * starts from nothing while a Component works on what the kustomization listing it has so far.
 */
function accumulate(dir: string, kind: 'Kustomization' | 'Component', out: Rendered[], extraComponents: readonly string[] = []): void {
  const file = path.join(dir, 'kustomization.yaml');
  assert.ok(existsSync(file), `${path.relative(root, dir)} has no kustomization.yaml`);
  const parsed = kustomizationSchema.safeParse(readYaml(file)[0]);
  if (!parsed.success) {
    throw new Error(`${path.relative(root, file)}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} (extend the renderer in test/manifests.test.ts)`);
  }
  const kustomization = parsed.data;
  assert.equal(kustomization.kind, kind, `${path.relative(root, file)} is used as a ${kind}`);
  for (const resource of kustomization.resources) {
    const target = path.resolve(dir, resource);
    assert.ok(existsSync(target), `${path.relative(root, file)} lists ${resource}, which does not exist`);
    if (statSync(target).isDirectory()) {
      out.push(...renderKustomization(target));
      continue;
    }
    readYaml(target).forEach((value, index) => {
      const from = `${path.relative(root, target)} document ${index + 1}`;
      const result = k8sObject.safeParse(value);
      if (!result.success) throw new Error(`${from}: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      out.push({ doc: result.data, from });
    });
  }
  for (const component of [...(kustomization.components ?? []), ...extraComponents]) accumulate(path.resolve(dir, component), 'Component', out);
  for (const { patch } of kustomization.patches ?? []) {
    const target = deletePatchSchema.parse(parseAllDocuments(patch)[0]?.toJS());
    const index = out.findIndex(({ doc }) => doc.apiVersion === target.apiVersion && doc.kind === target.kind && doc.metadata.name === target.metadata.name);
    assert.ok(index >= 0, `${path.relative(root, file)} deletes ${target.kind} ${target.metadata.name}, which is not there`);
    out.splice(index, 1);
  }
  for (const { doc } of out) {
    if (kustomization.namespace && !clusterScoped.has(doc.kind)) doc.metadata.namespace = kustomization.namespace;
    for (const { pairs } of kustomization.labels ?? []) doc.metadata.labels = { ...doc.metadata.labels, ...pairs };
  }
}


// ---------------------------------------------------------------------------------------------
// Typed views of the documents the explicit checks read

const reference = z.looseObject({ apiVersion: z.string().optional(), kind: z.string(), name: z.string(), namespace: z.string().optional() });
const triggerView = z.looseObject({
  kind: z.literal('Trigger'),
  metadata: objectMeta,
  spec: z.looseObject({
    broker: z.string(),
    filter: z.strictObject({ attributes: z.record(z.string(), z.string()) }),
    filters: z.undefined({ error: 'use spec.filter.attributes (exact match) only: the func.yaml subscriptions and this test read it' }).optional(),
    subscriber: z.looseObject({ ref: reference }),
  }),
});
type TriggerView = z.infer<typeof triggerView>;
const brokerView = z.looseObject({
  kind: z.literal('Broker'),
  metadata: objectMeta,
  spec: z.looseObject({
    delivery: z.looseObject({
      retry: z.number().int().min(1),
      backoffPolicy: z.literal('exponential'),
      backoffDelay: z.string().regex(/^PT(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?$/, 'an ISO 8601 duration such as PT0.5S'),
      deadLetterSink: z.looseObject({ ref: reference }),
    }),
  }),
});
const pingSourceView = z.looseObject({
  kind: z.literal('PingSource'),
  metadata: objectMeta,
  spec: z.looseObject({
    schedule: z.string(),
    timezone: z.string().optional(),
    contentType: z.string().optional(),
    data: z.string().optional(),
    sink: z.looseObject({ ref: reference }),
  }),
});
type PingSourceView = z.infer<typeof pingSourceView>;
const envVar = z.looseObject({ name: z.string(), value: z.string().optional() });
const probe = z.looseObject({ httpGet: z.looseObject({ path: z.string() }) });
const quantities = z.strictObject({ cpu: z.string(), memory: z.string() });
const serviceView = z.looseObject({
  apiVersion: z.literal('serving.knative.dev/v1'),
  kind: z.literal('Service'),
  metadata: objectMeta,
  spec: z.looseObject({
    template: z.looseObject({
      metadata: z.looseObject({ annotations: z.record(z.string(), z.string()) }),
      spec: z.looseObject({
        containers: z
          .array(
            z.looseObject({
              image: z.string(),
              env: z.array(envVar),
              envFrom: z.array(z.looseObject({ configMapRef: z.looseObject({ name: z.string() }).optional(), secretRef: z.looseObject({ name: z.string(), optional: z.boolean().optional() }).optional() })),
              livenessProbe: probe,
              readinessProbe: probe,
              resources: z.strictObject({ requests: quantities, limits: quantities }),
              securityContext: z.looseObject({
                runAsNonRoot: z.literal(true),
                allowPrivilegeEscalation: z.literal(false),
                capabilities: z.looseObject({ drop: z.array(z.string()).refine((drop) => drop.includes('ALL'), 'drops ALL') }),
              }),
            }),
          )
          .length(1),
      }),
    }),
  }),
});
const configMapView = z.looseObject({ kind: z.literal('ConfigMap'), metadata: objectMeta, data: z.record(z.string(), z.string()) });
const secretView = z.looseObject({ kind: z.literal('Secret'), metadata: objectMeta, stringData: z.record(z.string(), z.string()) });

/**
 * func.yaml as the func CLI reads it: the fields of its JSON schema (knative/func
 * schema/func_yaml-schema.json, specVersion 0.36.0) that this project uses, unknown keys rejected.
 */
const funcEnv = z.strictObject({ name: z.string().regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/).optional(), value: z.string() });
const quantity = z.string().regex(/^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/);
const funcYamlSchema = z.strictObject({
  specVersion: z.string().regex(/^\d+\.\d+\.\d+$/),
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
  runtime: z.literal('typescript'),
  created: z.iso.datetime({ offset: true }),
  // func build writes the image it pushed here; a registry host must not be committed.
  registry: z.literal('').optional(),
  image: z.literal('').optional(),
  invoke: z.literal('cloudevent'),
  build: z.strictObject({
    builder: z.enum(['pack', 's2i']),
    buildEnvs: z.array(funcEnv).optional(),
    buildpacks: z.array(z.string()).optional(),
  }),
  run: z.strictObject({ envs: z.array(funcEnv) }),
  deploy: z.strictObject({
    namespace: z.string(),
    options: z.strictObject({
      scale: z.strictObject({
        min: z.number().int().min(0),
        max: z.number().int().min(0),
        metric: z.enum(['concurrency', 'rps']).optional(),
        target: z.number().min(0.01),
        utilization: z.number().min(1).max(100).optional(),
      }),
      resources: z.strictObject({
        requests: z.strictObject({ cpu: quantity, memory: quantity }),
        limits: z.strictObject({ cpu: quantity, memory: quantity, concurrency: z.number().int().min(0).optional() }),
      }),
    }),
    healthEndpoints: z.strictObject({ liveness: z.string(), readiness: z.string() }),
    subscriptions: z.array(z.strictObject({ source: z.string(), filters: z.record(z.string(), z.string()) })).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    serviceAccountName: z.string().optional(),
  }),
});
type FuncYaml = z.infer<typeof funcYamlSchema>;

function view<T extends z.ZodType>(schema: T, rendered: Rendered): z.infer<T> {
  const result = schema.safeParse(rendered.doc);
  if (!result.success) {
    throw new Error(`${rendered.from} (${idOf(rendered.doc)}): ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return result.data;
}

// ---------------------------------------------------------------------------------------------
// Explicit checks, as functions returning problems so that the tests can show they catch faults

interface Eventing {
  triggers: TriggerView[];
  brokers: z.infer<typeof brokerView>[];
  pingSources: PingSourceView[];
}
type Routes = Readonly<Record<string, FunctionRoute>>;

function eventingOf(rendered: Rendered[]): Eventing {
  return {
    triggers: rendered.filter((r) => r.doc.kind === 'Trigger').map((r) => view(triggerView, r)),
    brokers: rendered.filter((r) => r.doc.kind === 'Broker').map((r) => view(brokerView, r)),
    pingSources: rendered.filter((r) => r.doc.kind === 'PingSource').map((r) => view(pingSourceView, r)),
  };
}

/** Triggers: on our Broker, to one of our functions (a Knative Service), filtered on `type`. */
function triggerProblems(triggers: unknown[], functions: readonly string[]): string[] {
  return triggers.flatMap((value) => {
    const parsed = triggerView.safeParse(value);
    const name = isRecord(value) && isRecord(value.metadata) ? String(value.metadata.name) : '?';
    if (!parsed.success) return parsed.error.issues.map((i) => `Trigger ${name}: ${i.path.join('.')}: ${i.message}`);
    const { spec } = parsed.data;
    const problems: string[] = [];
    if (spec.broker !== brokerName) problems.push(`Trigger ${name}: broker ${spec.broker}, not ${brokerName}`);
    const ref = spec.subscriber.ref;
    if (ref.kind !== 'Service' || ref.apiVersion !== 'serving.knative.dev/v1') problems.push(`Trigger ${name}: subscriber is a ${ref.apiVersion}/${ref.kind}, not a Knative Service`);
    if (!functions.includes(ref.name)) problems.push(`Trigger ${name}: subscriber ${ref.name} is not a function of functions/index.ts or functions/sources.ts`);
    if (typeof spec.filter.attributes.type !== 'string' || spec.filter.attributes.type === '') problems.push(`Trigger ${name}: no filter on type`);
    return problems;
  });
}

/** Every type a function emits has a Trigger, or a consumer that a later issue will add. */
function emittedTypeProblems(routes: Routes, triggers: TriggerView[]): string[] {
  return Object.entries(routes).flatMap(([fn, route]) =>
    route.emits
      .filter((type) => !triggers.some((t) => t.spec.filter.attributes.type === type) && plannedConsumerOf(type) === undefined)
      .map((type) => `${fn} emits ${type}, which no Trigger routes and no planned consumer takes`),
  );
}

/** Every trigger-consumption of routing.ts has its Trigger, and every Trigger is declared there. */
function consumptionProblems(routes: Routes, triggers: TriggerView[], namespace: string): string[] {
  const problems: string[] = [];
  const declared = new Set<TriggerView>();
  for (const [fn, route] of Object.entries(routes)) {
    for (const consumption of route.consumes) {
      if (consumption.via !== 'trigger') continue;
      const source = 'pingSource' in consumption ? pingSourceSource(namespace, consumption.pingSource) : undefined;
      const matching = triggers.filter(
        (t) => t.spec.subscriber.ref.name === fn && t.spec.filter.attributes.type === consumption.type && t.spec.filter.attributes.source === source,
      );
      if (matching.length === 0) problems.push(`${fn} consumes ${consumption.type}${source ? ` from ${source}` : ''}, but no Trigger routes it there`);
      matching.forEach((t) => declared.add(t));
    }
  }
  for (const trigger of triggers.filter((t) => !declared.has(t))) {
    problems.push(`Trigger ${trigger.metadata.name} (${JSON.stringify(trigger.spec.filter.attributes)} → ${trigger.spec.subscriber.ref.name}) is not declared in src/contract/routing.ts`);
  }
  return problems;
}

/** A PingSource: sends to our Broker, a valid cron schedule and timezone, JSON data, a Trigger. */
function pingSourceProblems(source: PingSourceView, triggers: TriggerView[], namespace: string): string[] {
  const name = source.metadata.name;
  const problems: string[] = [];
  const { ref } = source.spec.sink;
  if (ref.kind !== 'Broker' || ref.apiVersion !== 'eventing.knative.dev/v1' || ref.name !== brokerName) {
    problems.push(`PingSource ${name}: sink is ${ref.apiVersion}/${ref.kind} ${ref.name}, not the Broker ${brokerName}`);
  }
  // Knative parses schedules with robfig/cron's standard parser: five fields or a descriptor.
  const { schedule } = source.spec;
  if (!/^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(schedule) && schedule.trim().split(/\s+/).length !== 5) {
    problems.push(`PingSource ${name}: schedule ${JSON.stringify(schedule)} does not have five fields`);
  }
  try {
    CronExpressionParser.parse(schedule, { tz: source.spec.timezone ?? 'UTC' });
  } catch (err) {
    problems.push(`PingSource ${name}: schedule ${JSON.stringify(source.spec.schedule)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (source.spec.contentType === 'application/json' && source.spec.data !== undefined) {
    try {
      JSON.parse(source.spec.data);
    } catch {
      problems.push(`PingSource ${name}: data is not JSON although contentType is application/json`);
    }
  }
  const uri = pingSourceSource(namespace, name);
  if (!triggers.some((t) => t.spec.filter.attributes.type === pingEventType && t.spec.filter.attributes.source === uri)) {
    problems.push(`PingSource ${name}: no Trigger filters its ticks (type ${pingEventType}, source ${uri})`);
  }
  return problems;
}

/** func.yaml deploy.subscriptions must be exactly the Triggers that route to the function. */
function subscriptionProblems(fn: string, funcYaml: FuncYaml, triggers: TriggerView[]): string[] {
  const key = (source: string, filters: Record<string, string>) =>
    JSON.stringify([source, Object.entries(filters).sort(([a], [b]) => a.localeCompare(b))]);
  const fromTriggers = triggers.filter((t) => t.spec.subscriber.ref.name === fn).map((t) => key(t.spec.broker, t.spec.filter.attributes));
  const fromFuncYaml = (funcYaml.deploy.subscriptions ?? []).map((s) => key(s.source, s.filters));
  return [
    ...fromTriggers.filter((k) => !fromFuncYaml.includes(k)).map((k) => `functions/${fn}/func.yaml: no subscription for Trigger ${k}`),
    ...fromFuncYaml.filter((k) => !fromTriggers.includes(k)).map((k) => `functions/${fn}/func.yaml: subscription ${k} has no Trigger in eventing/`),
  ];
}

// ---------------------------------------------------------------------------------------------
// The tests

const kubectl = findOnPath('kubectl');
const haveCrds = existsSync(crdDir);

describe(haveCrds ? 'deployment manifests' : 'deployment manifests (Knative CRDs absent at test/fixtures/k8s-schemas/knative: explicit checks only)', () => {
  const base = renderKustomization(baseDir);
  const withAgent = renderKustomization(baseDir, [agentComponentDir]);
  const eventingOnly = renderKustomization(eventingDir);
  const eventing = eventingOf(base);
  const ofKind = (kind: string) => base.filter((r) => r.doc.kind === kind);
  const services = new Map(ofKind('Service').filter((r) => r.doc.apiVersion === 'serving.knative.dev/v1').map((r) => [r.doc.metadata.name, view(serviceView, r)] as const));
  const configMaps = ofKind('ConfigMap').map((r) => view(configMapView, r));
  const secrets = ofKind('Secret').map((r) => view(secretView, r));
  const funcYamls = new Map(
    deployedFunctionNames.map((fn) => {
      const file = path.join(root, 'functions', fn, 'func.yaml');
      return [fn, existsSync(file) ? funcYamlSchema.safeParse(readYaml(file)[0]) : undefined] as const;
    }),
  );
  const funcYaml = (fn: string): FuncYaml => {
    const parsed = funcYamls.get(fn);
    assert.ok(parsed, `functions/${fn}/func.yaml is missing`);
    assert.ok(parsed.success, `functions/${fn}/func.yaml: ${parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return parsed.data;
  };

  describe('rendering', () => {
    it('eventing/ and deploy/base render, every namespaced document in faas-billing', () => {
      assert.ok(eventingOnly.length > 0 && base.length > eventingOnly.length);
      for (const { doc, from } of [...base, ...eventingOnly]) {
        if (clusterScoped.has(doc.kind)) continue;
        assert.equal(doc.metadata.namespace, billingNamespace, `${from}: namespace`);
      }
      assert.deepEqual(
        ofKind('Namespace').map((r) => r.doc.metadata.name),
        [billingNamespace],
      );
    });

    it('deploy/base includes eventing/ unchanged apart from its labels', () => {
      const inBase = new Map(base.map((r) => [idOf(r.doc), r.doc]));
      for (const { doc } of eventingOnly) {
        const ours = inBase.get(idOf(doc));
        assert.ok(ours, `${idOf(doc)} is missing from deploy/base`);
        assert.deepEqual({ ...ours, metadata: { ...ours.metadata, labels: undefined } }, { ...doc, metadata: { ...doc.metadata, labels: undefined } });
      }
    });

    if (kubectl) {
      it('the renderer agrees with `kubectl kustomize` (kubectl is on PATH)', () => {
        for (const [dir, ours, components] of [
          [baseDir, base, []],
          [baseDir, withAgent, [agentComponentDir]],
          [eventingDir, eventingOnly, []],
        ] as const) {
          const run = kubectlKustomize(kubectl, dir, components);
          assert.equal(run.status, 0, `kubectl kustomize ${path.relative(root, dir)} ${components.join(' ')}: ${run.stderr}`);
          const theirs = parseAllDocuments(run.stdout).map((d) => k8sObject.parse(d.toJS()));
          const byId = (docs: K8sObject[]) => Object.fromEntries(docs.map((doc) => [idOf(doc), doc]));
          assert.deepEqual(byId(ours.map((r) => r.doc)), byId(theirs));
        }
      });
    }
  });

  if (haveCrds) {
    describe('against the upstream Knative CRD schemas', () => {
      const crds = loadCrdValidator(crdDir);
      const knativeDocs = [...base, ...withAgent, ...eventingOnly].filter((r) => crds.groups.has(r.doc.apiVersion.split('/')[0] ?? ''));

      it('has schemas for Broker, Trigger, PingSource, Service and SinkBinding', () => {
        for (const kind of [
          'eventing.knative.dev/v1/Broker',
          'eventing.knative.dev/v1/Trigger',
          'sources.knative.dev/v1/PingSource',
          'serving.knative.dev/v1/Service',
          'sources.knative.dev/v1/SinkBinding',
        ]) {
          assert.ok(crds.kinds.has(kind), `no CRD schema for ${kind}`);
        }
      });

      it('every Knative document is valid against its CRD, unknown fields rejected', () => {
        assert.deepEqual(
          [...new Set(knativeDocs.map((r) => r.doc.kind))].sort(),
          ['Broker', 'PingSource', 'Service', 'SinkBinding', 'Trigger'],
        );
        const problems = knativeDocs.flatMap((r) => crds.validate(r.doc).map((p) => `${r.from} (${idOf(r.doc)}): ${p}`));
        assert.deepEqual(problems, []);
      });

      it('every rendered document is a core kind or has a CRD', () => {
        const core = new Set(['v1/Namespace', 'v1/ConfigMap', 'v1/Secret', 'v1/Service', 'v1/PersistentVolumeClaim', 'apps/v1/StatefulSet', 'batch/v1/Job', 'batch/v1/CronJob', 'v1/ServiceAccount', 'apps/v1/DaemonSet', 'rbac.authorization.k8s.io/v1/Role', 'rbac.authorization.k8s.io/v1/RoleBinding', 'rbac.authorization.k8s.io/v1/ClusterRole', 'rbac.authorization.k8s.io/v1/ClusterRoleBinding']);
        for (const { doc, from } of [...base, ...withAgent]) {
          assert.ok(core.has(`${doc.apiVersion}/${doc.kind}`) || crds.kinds.has(`${doc.apiVersion}/${doc.kind}`), `${from}: ${doc.apiVersion}/${doc.kind} is neither`);
        }
      });

      describe('rejects broken manifests', () => {
        const find = (kind: string, name: string): Json => {
          const found = base.find((r) => r.doc.kind === kind && r.doc.metadata.name === name);
          assert.ok(found, `${kind} ${name} not rendered`);
          assert.deepEqual(crds.validate(found.doc), [], `the unbroken ${kind} ${name} must be valid`);
          return structuredClone(found.doc);
        };
        const spec = (doc: Json): Json => {
          assert.ok(isRecord(doc.spec));
          return doc.spec;
        };

        it('a Trigger whose filter.attributes is a string', () => {
          const trigger = find('Trigger', 'collect-usage');
          spec(trigger).filter = { attributes: 'type=faasbilling.usage.v1' };
          assert.match(crds.validate(trigger).join('\n'), /\/spec\/filter\/attributes must be object/);
        });

        it('a PingSource whose schedule is a number', () => {
          const source = find('PingSource', 'save-flush-tick');
          spec(source).schedule = 60;
          assert.match(crds.validate(source).join('\n'), /\/spec\/schedule must be string/);
        });

        it('a Broker whose retry is a string', () => {
          const broker = find('Broker', brokerName);
          const delivery = spec(broker).delivery;
          assert.ok(isRecord(delivery));
          delivery.retry = 'five';
          assert.match(crds.validate(broker).join('\n'), /\/spec\/delivery\/retry must be integer/);
        });

        it('a Service with a numeric scale annotation and a misspelled container field', () => {
          const service = find('Service', 'collect');
          const template = spec(service).template;
          assert.ok(isRecord(template) && isRecord(template.metadata) && isRecord(template.metadata.annotations) && isRecord(template.spec));
          template.metadata.annotations['autoscaling.knative.dev/min-scale'] = 0;
          const containers = template.spec.containers;
          assert.ok(Array.isArray(containers) && isRecord(containers[0]));
          containers[0].livenessprobe = containers[0].livenessProbe;
          const problems = crds.validate(service).join('\n');
          assert.match(problems, /annotations\/autoscaling\.knative\.dev~1min-scale must be string/);
          assert.match(problems, /containers\/0 must NOT have additional properties.*livenessprobe/);
        });

        it('a PingSource with an unknown spec field', () => {
          const source = find('PingSource', 'save-flush-tick');
          spec(source).scheduel = '* * * * *';
          assert.match(crds.validate(source).join('\n'), /\/spec must NOT have additional properties.*scheduel/);
        });
      });
    });
  }

  describe('routing (src/contract/routing.ts) against eventing/', () => {
    it('routing.ts declares exactly the deployed functions (functions/index.ts and functions/sources.ts)', () => {
      assert.deepEqual(Object.keys(routing).sort(), [...deployedFunctionNames].sort());
    });

    it('every Trigger is on the Broker "default", to a function, with a filter on type', () => {
      assert.ok(eventing.triggers.length > 0);
      assert.deepEqual(triggerProblems(eventing.triggers, deployedFunctionNames), []);
      // and the check does catch faults
      const [first] = eventing.triggers;
      assert.ok(first);
      const noSubscriber = { ...first, spec: { ...first.spec, subscriber: undefined } };
      const elsewhere = { ...first, spec: { ...first.spec, broker: 'other', subscriber: { ref: { ...first.spec.subscriber.ref, name: 'nobody' } } } };
      const noType = { ...first, spec: { ...first.spec, filter: { attributes: { source: '/x' } } } };
      assert.match(triggerProblems([noSubscriber], deployedFunctionNames).join('\n'), /spec\.subscriber/);
      assert.match(triggerProblems([elsewhere], deployedFunctionNames).join('\n'), /broker other.*\n.*nobody is not a function/);
      assert.match(triggerProblems([noType], deployedFunctionNames).join('\n'), /no filter on type/);
    });

    it('the Broker retries with exponential backoff and dead-letters to the deadletter function', () => {
      assert.deepEqual(
        eventing.brokers.map((b) => b.metadata.name),
        [brokerName],
      );
      const [broker] = eventing.brokers;
      assert.ok(broker);
      const sink = broker.spec.delivery.deadLetterSink.ref;
      assert.equal(sink.kind, 'Service');
      assert.equal(sink.apiVersion, 'serving.knative.dev/v1');
      assert.ok(deployedFunctionNames.includes(sink.name), `dead-letter sink ${sink.name} is not a function`);
      assert.ok(services.has(sink.name), `dead-letter sink ${sink.name} has no Knative Service in deploy/base`);
      const route: FunctionRoute | undefined = (routing as Routes)[sink.name];
      assert.ok(route?.consumes.some((c) => c.via === 'deadLetterSink' && c.broker === brokerName), `routing.ts does not say ${sink.name} takes the dead letters`);
      const deadLetterFunctions = Object.entries(routing as Routes)
        .filter(([, r]) => r.consumes.some((c) => c.via === 'deadLetterSink'))
        .map(([fn]) => fn);
      assert.deepEqual(deadLetterFunctions, [sink.name]);
    });

    it('every PingSource sends to the Broker on a valid cron schedule, and a Trigger takes its ticks', () => {
      assert.ok(eventing.pingSources.length > 0);
      for (const source of eventing.pingSources) {
        assert.deepEqual(pingSourceProblems(source, eventing.triggers, billingNamespace), []);
      }
      const [first] = eventing.pingSources;
      assert.ok(first);
      const broken = { ...first, spec: { ...first.spec, schedule: '61 * * * * *', sink: { ref: { kind: 'Service', name: 'save' } } } };
      const problems = pingSourceProblems(broken, [], billingNamespace).join('\n');
      assert.match(problems, /sink is .*Service save/);
      assert.match(problems, /schedule "61 \* \* \* \* \*" does not have five fields/);
      assert.match(problems, /schedule "61 \* \* \* \* \*": .*range/);
      assert.match(problems, /no Trigger filters its ticks/);
    });

    it('the save-flush-tick Trigger filters on the source of the save-flush-tick PingSource', () => {
      const trigger = eventing.triggers.find((t) => t.metadata.name === 'save-flush-tick');
      assert.ok(trigger);
      assert.deepEqual(trigger.spec.filter.attributes, { type: pingEventType, source: pingSourceSource('faas-billing', 'save-flush-tick') });
      assert.equal(pingSourceSource('faas-billing', 'save-flush-tick'), '/apis/v1/namespaces/faas-billing/pingsources/save-flush-tick');
      assert.ok(eventing.pingSources.some((s) => s.metadata.name === 'save-flush-tick' && s.metadata.namespace === 'faas-billing'));
    });

    it('every type a function emits has a Trigger or a planned consumer', () => {
      assert.deepEqual(emittedTypeProblems(routing, eventing.triggers), []);
      const extra: Routes = { collect: { ...routing.collect, emits: [...routing.collect.emits, EventType.usage] } };
      assert.deepEqual(emittedTypeProblems(extra, []), [
        `collect emits ${EventType.bufferFlush}, which no Trigger routes and no planned consumer takes`,
        `collect emits ${EventType.usage}, which no Trigger routes and no planned consumer takes`,
      ]);
    });

    it('every type a function consumes has a Trigger to it, and every Trigger is declared', () => {
      assert.deepEqual(consumptionProblems(routing, eventing.triggers, billingNamespace), []);
      const withoutTick = eventing.triggers.filter((t) => t.metadata.name !== 'save-flush-tick');
      assert.deepEqual(consumptionProblems(routing, withoutTick, billingNamespace), [
        `save consumes ${pingEventType} from ${pingSourceSource(billingNamespace, 'save-flush-tick')}, but no Trigger routes it there`,
      ]);
      const undeclared: Routes = { ...routing, save: { ...routing.save, consumes: [{ via: 'trigger', type: EventType.bufferFlush }] } };
      assert.match(consumptionProblems(undeclared, eventing.triggers, billingNamespace).join('\n'), /Trigger save-flush-tick .* is not declared/);
    });

    it('planned consumers are still to come: no Trigger routes their types yet, no such function exists', () => {
      for (const [type, consumer] of Object.entries<string>(plannedConsumers)) {
        assert.ok(!deployedFunctionNames.includes(consumer), `${consumer} exists now: move ${type} from plannedConsumers to routing`);
        assert.ok(!eventing.triggers.some((t) => t.spec.filter.attributes.type === type), `${type} has a Trigger now: drop it from plannedConsumers`);
      }
    });

    it('every event type of the contract has a consumer, now or planned', () => {
      const consumed = new Set<string>(
        Object.values(routing as Routes).flatMap((r) => r.consumes.flatMap((c) => (c.via === 'trigger' ? [c.type] : []))),
      );
      for (const type of Object.values(EventType)) {
        assert.ok(consumed.has(type) || plannedConsumerOf(type) !== undefined, `${type} has no consumer in routing.ts and none planned`);
      }
    });
  });

  describe('functions: func.yaml and Knative Services', () => {
    it('every function has a valid func.yaml named after it', () => {
      for (const fn of deployedFunctionNames) {
        const spec = funcYaml(fn);
        assert.equal(spec.name, fn);
        assert.equal(spec.deploy.namespace, billingNamespace);
        assert.deepEqual(spec.deploy.healthEndpoints, { liveness: '/health/liveness', readiness: '/health/readiness' });
        assert.ok(spec.run.envs.some((e) => e.name === 'FUNCTION' && e.value === fn), `functions/${fn}/func.yaml: FUNCTION=${fn}`);
      }
      assert.ok(!funcYamlSchema.safeParse({ ...funcYaml('collect'), deploy: { ...funcYaml('collect').deploy, subscription: [] } }).success, 'unknown keys are rejected');
    });

    it('func.yaml subscriptions are the Triggers of that function', () => {
      for (const fn of deployedFunctionNames) {
        assert.deepEqual(subscriptionProblems(fn, funcYaml(fn), eventing.triggers), []);
      }
      const save = funcYaml('save');
      const dropped = { ...save, deploy: { ...save.deploy, subscriptions: save.deploy.subscriptions?.slice(1) } };
      assert.equal(subscriptionProblems('save', dropped, eventing.triggers).length, 1);
    });

    it('every function has exactly one Knative Service in deploy/base, and besides them only the API is one', () => {
      assert.deepEqual([...services.keys()].sort(), [...deployedFunctionNames, 'api'].sort());
    });

    it('each Service: scale to zero, the placeholder image, FUNCTION, config and secret, probes, limits, non-root', () => {
      const configMapNames = configMaps.map((c) => c.metadata.name);
      const secretNames = secrets.map((s) => s.metadata.name);
      for (const [fn, service] of services) {
        const annotations = service.spec.template.metadata.annotations;
        assert.equal(annotations['autoscaling.knative.dev/min-scale'], '0', `${fn}: min-scale`);
        for (const key of ['autoscaling.knative.dev/max-scale', 'autoscaling.knative.dev/target']) {
          assert.match(annotations[key] ?? '', /^[1-9]\d*$/, `${fn}: ${key}`);
        }
        const [container] = service.spec.template.spec.containers;
        assert.ok(container);
        assert.equal(container.image, 'faas-billing', `${fn}: image (a placeholder overlays replace; never a registry host)`);
        assert.deepEqual(container.env.filter((e) => e.name === 'FUNCTION'), [{ name: 'FUNCTION', value: fn }]);
        const fromConfigMaps = container.envFrom.flatMap((e) => (e.configMapRef ? [e.configMapRef.name] : []));
        // An optional Secret (the API's admin key) is created outside the manifests.
        const fromSecrets = container.envFrom.flatMap((e) => (e.secretRef && e.secretRef.optional !== true ? [e.secretRef.name] : []));
        assert.ok(fromConfigMaps.length > 0 && fromSecrets.length > 0, `${fn}: envFrom a ConfigMap and a Secret`);
        for (const name of fromConfigMaps) assert.ok(configMapNames.includes(name), `${fn}: ConfigMap ${name} is not in deploy/base`);
        for (const name of fromSecrets) assert.ok(secretNames.includes(name), `${fn}: Secret ${name} is not in deploy/base`);
        assert.equal(container.livenessProbe.httpGet.path, '/health/liveness');
        assert.equal(container.readinessProbe.httpGet.path, '/health/readiness');
      }
    });

    it('each Service matches its func.yaml: namespace, scale, resources, health endpoints, FUNCTION', () => {
      for (const [fn, service] of services) {
        if (fn === 'api') continue; // an express app, not a func project
        const spec = funcYaml(fn);
        const annotations = service.spec.template.metadata.annotations;
        const [container] = service.spec.template.spec.containers;
        assert.ok(container);
        assert.equal(service.metadata.namespace, spec.deploy.namespace);
        assert.deepEqual(
          {
            min: Number(annotations['autoscaling.knative.dev/min-scale']),
            max: Number(annotations['autoscaling.knative.dev/max-scale']),
            target: Number(annotations['autoscaling.knative.dev/target']),
          },
          spec.deploy.options.scale,
          `${fn}: scale`,
        );
        assert.deepEqual(container.resources, spec.deploy.options.resources, `${fn}: resources`);
        assert.deepEqual(
          { liveness: container.livenessProbe.httpGet.path, readiness: container.readinessProbe.httpGet.path },
          spec.deploy.healthEndpoints,
        );
      }
    });

    it("func.yaml secret and configMap references name what deploy/base defines", () => {
      for (const fn of deployedFunctionNames) {
        for (const { name, value } of funcYaml(fn).run.envs) {
          const secret = /^\{\{\s*secret:([^:\s]+)(?::([^\s}]+))?\s*\}\}$/.exec(value);
          const configMap = /^\{\{\s*configMap:([^:\s]+)(?::([^\s}]+))?\s*\}\}$/.exec(value);
          const [, refName, refKey] = secret ?? configMap ?? [];
          if (!refName) {
            assert.ok(!value.startsWith('{{'), `functions/${fn}/func.yaml: ${name ?? '(all keys)'} has an unknown template ${value}`);
            continue;
          }
          const data = secret ? secrets.find((s) => s.metadata.name === refName)?.stringData : configMaps.find((c) => c.metadata.name === refName)?.data;
          assert.ok(data, `functions/${fn}/func.yaml: ${secret ? 'Secret' : 'ConfigMap'} ${refName} is not in deploy/base`);
          if (refKey) assert.ok(Object.hasOwn(data, refKey), `functions/${fn}/func.yaml: ${refName} has no key ${refKey}`);
          if (refKey && name) assert.equal(name, refKey, `functions/${fn}/func.yaml: ${name} reads ${refName}:${refKey}`);
        }
      }
    });
  });

  describe('metering sources: the scraper (deploy/base) or the billing agent (with deploy/components/agent)', () => {
    const rbacRef = z.looseObject({ kind: z.string(), name: z.string(), namespace: z.string().optional() });
    const binding = z.looseObject({ metadata: objectMeta, roleRef: z.looseObject({ kind: z.string(), name: z.string() }), subjects: z.array(rbacRef) });
    const role = z.looseObject({ metadata: objectMeta, rules: z.array(z.strictObject({ apiGroups: z.array(z.string()), resources: z.array(z.string()), verbs: z.array(z.string()) })) });
    const podSpec = z.looseObject({ serviceAccountName: z.string() });
    const renders = { 'deploy/base': base, 'deploy/base with the agent component': withAgent };
    const rbacOf = (rendered: Rendered[]) => ({
      bindings: rendered.filter((r) => r.doc.kind === 'ClusterRoleBinding').map((r) => view(binding, r)),
      clusterRoles: rendered.filter((r) => r.doc.kind === 'ClusterRole').map((r) => view(role, r)),
      accounts: rendered.filter((r) => r.doc.kind === 'ServiceAccount').map((r) => r.doc.metadata),
    });
    /** What the ClusterRoles bound to a ServiceAccount grant in a render, as "group/resource": sorted verbs. */
    const grantsOf = (rendered: Rendered[], account: string): Record<string, string> => {
      const { bindings, clusterRoles } = rbacOf(rendered);
      const grants: Record<string, string> = {};
      for (const b of bindings.filter((x) => x.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === account && s.namespace === billingNamespace))) {
        const bound = clusterRoles.find((r) => b.roleRef.kind === 'ClusterRole' && r.metadata.name === b.roleRef.name);
        for (const rule of bound?.rules ?? []) for (const g of rule.apiGroups) for (const res of rule.resources) grants[`${g}/${res}`] = [...rule.verbs].sort().join(',');
      }
      return grants;
    };
    const serviceAccountOf = (rendered: Rendered[], kind: string, name: string): string => {
      const found = rendered.find((r) => r.doc.kind === kind && r.doc.metadata.name === name);
      assert.ok(found, `${kind} ${name} is rendered`);
      const spec = z.looseObject({ spec: z.looseObject({ template: z.looseObject({ spec: podSpec }) }) }).parse(found.doc);
      return spec.spec.template.spec.serviceAccountName;
    };
    const has = (rendered: Rendered[], kind: string, name: string): boolean => rendered.some((r) => r.doc.kind === kind && r.doc.metadata.name === name);

    it('deploy/base meters with the scraper alone; the agent component swaps it for the billing agent', () => {
      const scraper = [['Service', 'scrape'], ['PingSource', 'scrape-tick'], ['Trigger', 'scrape-tick'], ['SinkBinding', 'scrape-events']] as const;
      assert.deepEqual(scraper.filter(([kind, name]) => !has(base, kind, name)), [], 'deploy/base has the scraper');
      assert.ok(!base.some((r) => r.doc.kind === 'DaemonSet'), 'deploy/base has no billing agent');
      assert.deepEqual(scraper.filter(([kind, name]) => has(withAgent, kind, name)), [], 'the component removes the scraper');
      assert.ok(has(withAgent, 'DaemonSet', 'billing-agent'), 'the component adds the billing agent');
    });

    for (const [name, rendered] of Object.entries(renders)) {
      it(`${name}: every ClusterRoleBinding binds a ClusterRole and ServiceAccounts that the render defines`, () => {
        const { bindings, clusterRoles, accounts } = rbacOf(rendered);
        assert.ok(bindings.length > 0);
        for (const b of bindings) {
          assert.ok(clusterRoles.some((r) => b.roleRef.kind === 'ClusterRole' && r.metadata.name === b.roleRef.name), `${b.metadata.name}: no ClusterRole ${b.roleRef.name}`);
          for (const s of b.subjects) assert.ok(s.kind === 'ServiceAccount' && accounts.some((a) => a.name === s.name && a.namespace === s.namespace), `${b.metadata.name}: no ServiceAccount ${s.namespace ?? ''}/${s.name}`);
        }
      });
    }

    it('the scrape Service and the billing agent read pods and Revisions, read-only, through one shared ClusterRole', () => {
      const readOnly = { '/pods': 'get,list,watch', 'serving.knative.dev/revisions': 'get,list,watch' };
      const scrape = serviceAccountOf(base, 'Service', 'scrape');
      const agent = serviceAccountOf(withAgent, 'DaemonSet', 'billing-agent');
      assert.notEqual(scrape, agent, 'each has its own identity');
      assert.deepEqual(grantsOf(base, scrape), readOnly);
      assert.deepEqual(grantsOf(withAgent, agent), readOnly);
      assert.deepEqual(grantsOf(withAgent, scrape), {}, 'the scraper’s binding goes with it');
      for (const rendered of Object.values(renders)) assert.equal(rbacOf(rendered).clusterRoles.length, 1, 'the role is shared, not duplicated');
      // and an account bound to nothing is granted nothing
      assert.deepEqual(grantsOf(base, 'faas-billing-api'), {});
    });

    it('a SinkBinding gives the scrape Service K_SINK, the Broker', () => {
      const sinkBinding = z.looseObject({
        spec: z.looseObject({ subject: z.looseObject({ apiVersion: z.string(), kind: z.string(), name: z.string().optional() }), sink: z.looseObject({ ref: reference }) }),
      });
      const toScrape = ofKind('SinkBinding')
        .map((r) => view(sinkBinding, r))
        .filter((b) => b.spec.subject.apiVersion === 'serving.knative.dev/v1' && b.spec.subject.kind === 'Service' && b.spec.subject.name === 'scrape');
      assert.equal(toScrape.length, 1);
      assert.deepEqual(toScrape[0]?.spec.sink.ref, { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: brokerName });
    });
  });

  describe('configuration', () => {
    /**
     * Config schemas of single functions, validated by that function at start: their variables
     * belong to it alone (set on another function they are read by nothing), and what its manifests
     * set must pass its schema.
     */
    const ownSchemas: Readonly<Record<string, z.ZodObject>> = { scrape: scrapeConfigSchema };
    const shared = new Set<string>(Object.keys(configSchema.shape));
    const ownOnly = new Set(Object.values(ownSchemas).flatMap((schema) => Object.keys(schema.shape).filter((name) => !shared.has(name))));
    const declared = new Set<string>(shared);
    for (const line of readFileSync(path.join(root, '.env.example'), 'utf8').split('\n')) {
      const match = /^#?\s*([A-Z][A-Z0-9_]*)=/.exec(line);
      if (match?.[1] && !ownOnly.has(match[1])) declared.add(match[1]);
    }
    // The entry point of a function's image reads FUNCTION (which function to serve).
    for (const match of readFileSync(path.join(root, 'src/runtime/run-function.ts'), 'utf8').matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)) {
      if (match[1]) declared.add(match[1]);
    }
    interface Use {
      name: string;
      where: string;
      /** The function whose environment it is; undefined for the shared ConfigMap and Secret. */
      fn?: string;
    }
    const used = (): Use[] => {
      const uses: Use[] = [];
      for (const fn of deployedFunctionNames) {
        for (const { name } of funcYaml(fn).run.envs) if (name) uses.push({ name, where: `functions/${fn}/func.yaml`, fn });
      }
      for (const [fn, service] of services) {
        for (const { name } of service.spec.template.spec.containers[0]?.env ?? []) uses.push({ name, where: `deploy/base Service ${fn}`, fn });
      }
      for (const c of configMaps) for (const name of Object.keys(c.data)) uses.push({ name, where: `ConfigMap ${c.metadata.name}` });
      // Secrets our containers read (faas-billing-postgres is the PostgreSQL image's own).
      const read = new Set([...services.values()].flatMap((svc) => svc.spec.template.spec.containers.flatMap((c) => c.envFrom.flatMap((e) => (e.secretRef ? [e.secretRef.name] : [])))));
      for (const s of secrets.filter((x) => read.has(x.metadata.name))) for (const name of Object.keys(s.stringData)) uses.push({ name, where: `Secret ${s.metadata.name}` });
      return uses;
    };
    /** Names set where nothing reads them: not shared configuration, nor the own schema of the function they are set on. */
    const unread = (uses: Use[]): string[] =>
      uses.filter(({ name, fn }) => !declared.has(name) && !(fn !== undefined && Object.hasOwn(ownSchemas[fn]?.shape ?? {}, name))).map(({ name, where }) => `${where} sets ${name}, which nothing reads`);
    /** A function's environment in the cluster: the ConfigMap, the example Secret, then its Service's own values. */
    const serviceEnv = (fn: string): NodeJS.ProcessEnv => {
      const env: NodeJS.ProcessEnv = {};
      for (const c of configMaps) Object.assign(env, c.data);
      for (const s of secrets) Object.assign(env, s.stringData);
      for (const { name, value } of services.get(fn)?.spec.template.spec.containers[0]?.env ?? []) if (value !== undefined) env[name] = value;
      return env;
    };

    it('every env var the manifests set is in src/runtime/config.ts, .env.example, the entry point or the own schema of its function', () => {
      const uses = used();
      const names = new Set(uses.map((u) => u.name));
      assert.ok(names.has('DATABASE_URL') && names.has('REDIS_URL') && names.has('FUNCTION') && names.has('SCRAPE_MODE'));
      assert.deepEqual(unread(uses), []);
      // and a function's own variable is accepted on that function only
      assert.deepEqual(unread([{ name: 'SCRAPE_MODE', where: 'deploy/base Service collect', fn: 'collect' }]), ['deploy/base Service collect sets SCRAPE_MODE, which nothing reads']);
      assert.deepEqual(unread([{ name: 'SCRAPE_MODE', where: 'ConfigMap faas-billing-config' }]), ['ConfigMap faas-billing-config sets SCRAPE_MODE, which nothing reads']);
      assert.deepEqual(unread([{ name: 'SCRAPE_MODEL', where: 'deploy/base Service scrape', fn: 'scrape' }]), ['deploy/base Service scrape sets SCRAPE_MODEL, which nothing reads']);
    });

    it('no manifest sets a variable Knative reserves', () => {
      for (const { name, where } of used()) {
        assert.ok(!['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION'].includes(name), `${where} sets ${name}, which Knative sets itself`);
      }
    });

    it('the ConfigMap and the example Secret together pass the config schema', () => {
      const env: NodeJS.ProcessEnv = {};
      for (const c of configMaps) Object.assign(env, c.data);
      for (const s of secrets) Object.assign(env, s.stringData);
      const config = loadConfig(env);
      assert.ok(config.DATABASE_URL?.startsWith('postgres://'));
      assert.ok(config.REDIS_URL?.startsWith('redis://'));
      assert.throws(() => loadConfig({ ...env, DATABASE_POOL_MAX: 'four' }), /DATABASE_POOL_MAX/);
    });

    it('a function with its own config schema: its Service and func.yaml environment pass that schema', () => {
      for (const [fn, schema] of Object.entries(ownSchemas)) {
        assert.ok(services.has(fn), `${fn} has a Knative Service`);
        const env = serviceEnv(fn);
        const parsed = schema.safeParse(env);
        assert.ok(parsed.success, `deploy/base Service ${fn}: ${parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        const fromFuncYaml: NodeJS.ProcessEnv = { ...env };
        for (const { name, value } of funcYaml(fn).run.envs) if (name && !value.startsWith('{{')) fromFuncYaml[name] = value;
        assert.ok(schema.safeParse(fromFuncYaml).success, `functions/${fn}/func.yaml sets values its schema refuses`);
      }
      // and a value the schema refuses is caught
      assert.match(JSON.stringify(scrapeConfigSchema.safeParse({ ...serviceEnv('scrape'), SCRAPE_MODE: 'both' }).error?.issues), /SCRAPE_MODE/);
    });
  });
});
