/**
 * Reading Kubernetes manifests and validating them offline, shared by test/manifests.test.ts and
 * test/deploy.test.ts: YAML documents, the object envelope, the upstream Knative CRD schemas
 * (test/fixtures/k8s-schemas/knative, copied from the shared CRD folder with their provenance)
 * with unknown fields rejected as the API server does, and the core Kubernetes and Prometheus
 * Operator schemas of kubernetes-models; `kubectl kustomize` of a directory with components added.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { DaemonSet, Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';

/** The Knative CRDs the manifests are validated against (in the repository, so CI has them). */
export const knativeCrdDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/k8s-schemas/knative');

export type Json = Record<string, unknown>;
export const isRecord = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every non-empty YAML document of a file, as plain data; a syntax error fails with the file named. */
export function readYaml(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).flatMap((document, index) => {
    if (document.errors.length > 0) throw new Error(`${file} document ${index + 1}: ${document.errors[0]?.message}`);
    const value: unknown = document.toJS();
    return value === null || value === undefined ? [] : [value];
  });
}

export const objectMeta = z.looseObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a DNS-1123 name'),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export const k8sObject = z.looseObject({ apiVersion: z.string().min(1), kind: z.string().min(1), metadata: objectMeta });
export type K8sObject = z.infer<typeof k8sObject>;

export function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * `kubectl kustomize dir`, or, with `components`, of a temporary kustomization that takes `dir`
 * as its resource and adds them (what scripts/deploy-all.sh renders for METERING_SOURCE=agent).
 * kustomize refuses absolute paths, so both are named relative to the temporary directory.
 */
export function kubectlKustomize(kubectl: string, dir: string, components: readonly string[] = []): SpawnSyncReturns<string> {
  if (components.length === 0) return spawnSync(kubectl, ['kustomize', dir], { encoding: 'utf8' });
  const wrapper = realpathSync(mkdtempSync(path.join(tmpdir(), 'kustomization-')));
  try {
    const relative = (target: string) => JSON.stringify(path.relative(wrapper, realpathSync(target)));
    const lines = ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', `resources: [${relative(dir)}]`, `components: [${components.map(relative).join(', ')}]`];
    writeFileSync(path.join(wrapper, 'kustomization.yaml'), `${lines.join('\n')}\n`);
    return spawnSync(kubectl, ['kustomize', wrapper], { encoding: 'utf8' });
  } finally {
    rmSync(wrapper, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Validation against the Knative CRDs

/**
 * Makes a CRD schema reject unknown fields wherever Kubernetes would (an object schema with
 * `properties` and without `x-kubernetes-preserve-unknown-fields`), as the API server does for
 * `kubectl apply` with its default strict field validation. Plain JSON Schema would accept them.
 */
export function rejectUnknownFields(schema: unknown): unknown {
  if (!isRecord(schema)) return schema;
  const out: Json = { ...schema };
  const { properties, additionalProperties, items } = schema;
  if (isRecord(properties)) {
    out.properties = Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, rejectUnknownFields(value)]));
    if (schema['x-kubernetes-preserve-unknown-fields'] !== true && additionalProperties === undefined) out.additionalProperties = false;
  }
  if (isRecord(additionalProperties)) out.additionalProperties = rejectUnknownFields(additionalProperties);
  if (items !== undefined) out.items = Array.isArray(items) ? items.map(rejectUnknownFields) : rejectUnknownFields(items);
  for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
    const list = schema[keyword];
    if (Array.isArray(list)) out[keyword] = list.map(rejectUnknownFields);
  }
  return out;
}

const crdSchema = z.looseObject({
  kind: z.literal('CustomResourceDefinition'),
  spec: z.looseObject({
    group: z.string(),
    names: z.looseObject({ kind: z.string() }),
    versions: z.array(z.looseObject({ name: z.string(), served: z.boolean(), schema: z.looseObject({ openAPIV3Schema: z.record(z.string(), z.unknown()) }).optional() })),
  }),
});

export interface CrdValidator {
  /** `group/version/Kind` of every served version with a schema. */
  readonly kinds: ReadonlySet<string>;
  readonly groups: ReadonlySet<string>;
  /** Error messages for a document; empty when valid. Throws when no CRD covers it. */
  validate(doc: unknown): string[];
}

export function loadCrdValidator(dir: string): CrdValidator {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
  // Kubernetes' structural-schema extensions. preserve-unknown-fields is honoured by
  // rejectUnknownFields; int-or-string always comes with an anyOf of integer/string; list and map
  // types (merge strategies) and their keys do not change what a single document may contain.
  for (const keyword of [
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-int-or-string',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-map-type',
  ]) {
    ajv.addKeyword({ keyword });
  }
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });

  const validators = new Map<string, ValidateFunction>();
  for (const file of readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort()) {
    for (const value of readYaml(path.join(dir, file))) {
      const crd = crdSchema.safeParse(value);
      if (!crd.success) continue;
      for (const version of crd.data.spec.versions) {
        if (!version.served || !version.schema) continue;
        const key = `${crd.data.spec.group}/${version.name}/${crd.data.spec.names.kind}`;
        // The API server always accepts apiVersion, kind and metadata at the root (it validates
        // ObjectMeta itself), whether or not the CRD's schema lists them.
        const rootSchema = version.schema.openAPIV3Schema;
        const implicit = { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' } };
        const withRoot = { ...rootSchema, properties: { ...implicit, ...(isRecord(rootSchema.properties) ? rootSchema.properties : {}) } };
        validators.set(key, ajv.compile(rejectUnknownFields(withRoot) as object));
      }
    }
  }
  const kinds = new Set(validators.keys());
  return {
    kinds,
    groups: new Set([...kinds].map((key) => key.split('/')[0] ?? '')),
    validate(doc) {
      const parsed = k8sObject.parse(doc);
      const key = `${parsed.apiVersion}/${parsed.kind}`;
      const validator = validators.get(key);
      if (!validator) throw new Error(`no served CRD version for ${key} in ${dir}`);
      if (validator(doc)) return [];
      return (validator.errors ?? []).map((e) => `${e.instancePath || '(document)'} ${e.message ?? 'is invalid'}${e.keyword === 'additionalProperties' ? ` (${JSON.stringify(e.params)})` : ''}`);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Core Kubernetes kinds and the Prometheus Operator's, with the schemas of kubernetes-models

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

/** `apiVersion/kind` → the kubernetes-models class that validates it. */
const modelClasses: Record<string, ModelClass> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/** The `apiVersion/kind` keys the model validator covers. */
export const modelKinds: ReadonlySet<string> = new Set(Object.keys(modelClasses));

/**
 * Problems of a core Kubernetes or Prometheus Operator document against its OpenAPI schema (types,
 * enums, required fields); empty when valid. Throws for a kind it does not know.
 */
export function validateModel(doc: K8sObject): string[] {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const Model = modelClasses[key];
  if (!Model) throw new Error(`no schema for ${key} in test/support/k8s.ts`);
  try {
    new Model(structuredClone(doc) as never).validate();
    return [];
  } catch (err) {
    return [err instanceof Error ? err.message : String(err)];
  }
}
