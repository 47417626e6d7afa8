/**
 * Packaging and deployment, offline: every kustomization under deploy/ rendered by `kubectl
 * kustomize`, the base and the overlays also with the agent component (deploy/components/agent),
 * and every document validated against its schema (the upstream Knative CRDs, core Kubernetes and
 * the Prometheus Operator's from kubernetes-models); one metering source per render (the scraper,
 * or the billing agent instead); the overlays' Knative Services (scale annotations, probes,
 * resources, the image scripts/deploy-all.sh rewrites); the data
 * services, migration, backup and SinkBinding; monitoring (a PodMonitor for every function, the
 * alerts and the Grafana dashboard, whose every PromQL metric must appear in a live /metrics
 * scrape of the functions and the API); the scripts (shellcheck); docker-compose.yml.
 * (test/manifests.test.ts covers eventing/, deploy/base against routing and func.yaml.)
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { deployedFunctionNames } from '../functions/sources.js';
import { configSchema } from '../src/runtime/config.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { findOnPath, isRecord, k8sObject, knativeCrdDir, kubectlKustomize, loadCrdValidator, modelKinds, validateModel, type K8sObject } from './support/k8s.js';
import { freePort } from './support/net.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const kubectl = findOnPath('kubectl');
const shellcheck = findOnPath('shellcheck');
const overlays = ['local', 'production'] as const;
const servedByUs = [...deployedFunctionNames, 'api'].sort();
const agentComponent = 'deploy/components/agent';
/** The name under which a render of `dir` with the agent component is kept. */
const withAgent = (dir: string): string => `${dir} + ${agentComponent}`;
const meteringSources = ['scrape', 'agent'] as const;
/** What each metering source adds ("apiVersion Kind name"); the agent component swaps the first for the second. */
const sourceResources = {
  scrape: [
    'serving.knative.dev/v1 Service scrape',
    'sources.knative.dev/v1 PingSource scrape-tick',
    'eventing.knative.dev/v1 Trigger scrape-tick',
    'sources.knative.dev/v1 SinkBinding scrape-events',
    'v1 ServiceAccount faas-billing-scrape',
    'rbac.authorization.k8s.io/v1 ClusterRoleBinding faas-billing-scrape',
  ],
  agent: ['apps/v1 DaemonSet billing-agent', 'v1 ServiceAccount billing-agent', 'rbac.authorization.k8s.io/v1 ClusterRoleBinding faas-billing-agent'],
};
const resourceId = (doc: K8sObject): string => `${doc.apiVersion} ${doc.kind} ${doc.metadata.name}`;

function parseDocs(text: string, from: string): K8sObject[] {
  return parseAllDocuments(text).flatMap((document, index) => {
    if (document.errors.length > 0) throw new Error(`${from} document ${index + 1}: ${document.errors[0]?.message}`);
    const value: unknown = document.toJS();
    return value === null || value === undefined ? [] : [k8sObject.parse(value)];
  });
}

function kustomize(dir: string, components: readonly string[] = []): K8sObject[] {
  assert.ok(kubectl, 'kubectl is needed for `kubectl kustomize` (.ci/run installs it)');
  const run = kubectlKustomize(kubectl, path.join(root, dir), components.map((c) => path.join(root, c)));
  assert.equal(run.status, 0, `kubectl kustomize ${dir} ${components.join(' ')}: ${run.stderr}`);
  return parseDocs(run.stdout, dir);
}

/** What `scripts/deploy-all.sh --print` renders: the overlay with the pushed image put in. */
function deployAllPrint(overlay: string, env: Record<string, string>): { status: number | null; docs: K8sObject[]; stderr: string } {
  const run = spawnSync('bash', [path.join(root, 'scripts/deploy-all.sh'), '--print', overlay], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: run.status, docs: run.status === 0 ? parseDocs(run.stdout, `deploy-all --print ${overlay}`) : [], stderr: run.stderr };
}

const quantityMultipliers: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
function quantity(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?$/.exec(value);
  assert.ok(match?.[1], `a quantity: ${value}`);
  return Number(match[1]) * (quantityMultipliers[match[2] ?? ''] ?? NaN);
}

const probe = z.looseObject({ httpGet: z.looseObject({ path: z.string().startsWith('/') }) });
const resourceList = z.strictObject({ cpu: z.string(), memory: z.string() });
const container = z.looseObject({
  image: z.string(),
  livenessProbe: probe,
  readinessProbe: probe,
  resources: z.strictObject({ requests: resourceList, limits: resourceList }),
  env: z.array(z.looseObject({ name: z.string(), value: z.string().optional() })).optional(),
});
const knativeService = z.looseObject({
  apiVersion: z.literal('serving.knative.dev/v1'),
  kind: z.literal('Service'),
  metadata: z.looseObject({ name: z.string() }),
  spec: z.looseObject({
    template: z.looseObject({
      metadata: z.looseObject({ annotations: z.record(z.string(), z.string()) }),
      spec: z.looseObject({ containers: z.array(container).length(1) }),
    }),
  }),
});
type KnativeService = z.infer<typeof knativeService>;

const ksvcsOf = (docs: K8sObject[]): KnativeService[] =>
  docs.filter((d) => d.apiVersion === 'serving.knative.dev/v1' && d.kind === 'Service').map((d) => knativeService.parse(d));
const find = (docs: K8sObject[], kind: string, name: string): K8sObject | undefined => docs.find((d) => d.kind === kind && d.metadata.name === name);

/** Every image a document's pod templates name, with where. */
function imagesOf(doc: unknown, at = ''): { at: string; image: string }[] {
  if (Array.isArray(doc)) return doc.flatMap((item, i) => imagesOf(item, `${at}/${i}`));
  if (!isRecord(doc)) return [];
  return Object.entries(doc).flatMap(([key, value]) => (key === 'image' && typeof value === 'string' ? [{ at: `${at}/image`, image: value }] : imagesOf(value, `${at}/${key}`)));
}

// ---------------------------------------------------------------------------------------------
// PromQL: the metric names an expression selects

const promqlKeywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'Inf', 'NaN']);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const index = match.index;
    if (/[0-9.]/.test(stripped[index - 1] ?? '')) continue; // an exponent such as 1e-9
    if (stripped.slice(index + word.length).trimStart().startsWith('(')) continue; // a function
    if (promqlKeywords.has(word)) continue;
    names.add(word);
  }
  return [...names];
}

/** Sample names a /metrics text exposes: each family, and _bucket/_sum/_count of histograms and summaries. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type] = match;
    names.add(name);
    if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

const ruleFile = z.looseObject({
  spec: z.strictObject({
    groups: z.array(
      z.strictObject({
        name: z.string(),
        rules: z.array(
          z.strictObject({
            alert: z.string(),
            expr: z.string(),
            for: z.string().optional(),
            labels: z.record(z.string(), z.string()),
            annotations: z.strictObject({ summary: z.string(), description: z.string() }),
          }),
        ),
      }),
    ),
  }),
});
const dashboardSchema = z.looseObject({
  title: z.string(),
  uid: z.string(),
  panels: z.array(
    z.looseObject({
      id: z.number(),
      title: z.string(),
      type: z.string(),
      gridPos: z.strictObject({ x: z.number(), y: z.number(), w: z.number(), h: z.number() }),
      targets: z.array(z.looseObject({ refId: z.string(), expr: z.string().min(1) })).min(1),
    }),
  ),
});

// ---------------------------------------------------------------------------------------------

describe('packaging and deployment (deploy/, scripts/, docker-compose.yml)', function () {
  this.timeout(120_000);

  const rendered = new Map<string, K8sObject[]>();
  const renderedOf = (dir: string): K8sObject[] => {
    const docs = rendered.get(dir);
    assert.ok(docs, `${dir} was not rendered`);
    return docs;
  };
  const kustomizations = ['deploy/base', 'deploy/overlays/local', 'deploy/overlays/production', 'deploy/monitoring'];
  /** The kustomizations that deploy a metering source: the scraper, or with the agent component the agent. */
  const metered = ['deploy/base', ...overlays.map((o) => `deploy/overlays/${o}`)];
  const renders = [...kustomizations, ...metered.map(withAgent)];

  describe('kustomize', () => {
    for (const dir of kustomizations) {
      it(`\`kubectl kustomize ${dir}\` succeeds`, () => {
        const docs = kustomize(dir);
        assert.ok(docs.length > 0);
        rendered.set(dir, docs);
      });
    }
    for (const dir of metered) {
      it(`\`kubectl kustomize\` of ${dir} with the component ${agentComponent} succeeds`, () => {
        rendered.set(withAgent(dir), kustomize(dir, [agentComponent]));
      });
    }

    it('every rendered document is valid against its CRD schema (Knative) or its core / Prometheus Operator schema', () => {
      const crds = loadCrdValidator(knativeCrdDir);
      const problems: string[] = [];
      for (const dir of renders) {
        for (const doc of renderedOf(dir)) {
          const key = `${doc.apiVersion}/${doc.kind}`;
          const where = `${dir}: ${doc.kind} ${doc.metadata.name}`;
          if (crds.kinds.has(key)) problems.push(...crds.validate(doc).map((p) => `${where}: ${p}`));
          else if (modelKinds.has(key)) problems.push(...validateModel(doc).map((p) => `${where}: ${p}`));
          else problems.push(`${where}: no schema for ${key}`);
        }
      }
      assert.deepEqual(problems, []);
    });

    it('the validation catches broken documents of each family', () => {
      const crds = loadCrdValidator(knativeCrdDir);
      const local = renderedOf('deploy/overlays/local');
      const postgres = structuredClone(find(local, 'StatefulSet', 'postgres'));
      assert.ok(postgres && isRecord(postgres.spec));
      postgres.spec.replicas = 'one';
      assert.match(validateModel(postgres).join('\n'), /replicas must be integer/);
      const backup = structuredClone(find(local, 'CronJob', 'postgres-backup'));
      assert.ok(backup && isRecord(backup.spec));
      delete backup.spec.jobTemplate;
      assert.match(validateModel(backup).join('\n'), /jobTemplate/);
      const agent = structuredClone(find(renderedOf(withAgent('deploy/overlays/local')), 'DaemonSet', 'billing-agent'));
      assert.ok(agent && isRecord(agent.spec));
      delete agent.spec.selector;
      assert.match(validateModel(agent).join('\n'), /selector/);
      const roleBinding = structuredClone(find(local, 'ClusterRoleBinding', 'faas-billing-scrape'));
      assert.ok(roleBinding);
      delete roleBinding.roleRef;
      assert.match(validateModel(roleBinding).join('\n'), /roleRef/);
      const monitor = structuredClone(find(renderedOf('deploy/monitoring'), 'PodMonitor', 'faas-billing'));
      assert.ok(monitor && isRecord(monitor.spec) && Array.isArray(monitor.spec.podMetricsEndpoints) && isRecord(monitor.spec.podMetricsEndpoints[0]));
      monitor.spec.podMetricsEndpoints[0].port = 8080;
      assert.match(validateModel(monitor).join('\n'), /port must be string/);
      const binding = structuredClone(find(local, 'SinkBinding', 'usage-producers'));
      assert.ok(binding && isRecord(binding.spec));
      binding.spec.sinc = binding.spec.sink;
      assert.match(crds.validate(binding).join('\n'), /must NOT have additional properties.*sinc/);
    });
  });

  describe('metering sources: the scraper by default, the billing agent instead with its component', () => {
    /** The resources only in `a`, by "apiVersion Kind name". */
    const onlyIn = (a: K8sObject[], b: K8sObject[]): string[] => {
      const inB = new Set(b.map(resourceId));
      return a.map(resourceId).filter((id) => !inB.has(id)).sort();
    };

    for (const dir of metered) {
      it(`${dir}: the scraper and no DaemonSet; with the component the billing agent and none of the scraper, all else unchanged`, () => {
        const scraped = renderedOf(dir);
        const agent = renderedOf(withAgent(dir));
        assert.deepEqual(scraped.filter((d) => d.kind === 'DaemonSet'), [], 'no billing agent by default');
        assert.deepEqual(onlyIn(scraped, agent), [...sourceResources.scrape].sort());
        assert.deepEqual(onlyIn(agent, scraped), [...sourceResources.agent].sort());
        assert.deepEqual(agent.filter((d) => d.kind === 'DaemonSet').map(resourceId), ['apps/v1 DaemonSet billing-agent']);
        const byId = new Map(scraped.map((d) => [resourceId(d), d]));
        for (const doc of agent) {
          const before = byId.get(resourceId(doc));
          if (before) assert.deepEqual(doc, before, `${resourceId(doc)} is unchanged by the component`);
          // The component's own resources get the namespace and labels of the rest.
          else if (doc.kind !== 'ClusterRoleBinding') assert.equal(doc.metadata.namespace, 'faas-billing', resourceId(doc));
          assert.equal(doc.metadata.labels?.['app.kubernetes.io/part-of'], 'faas-billing', resourceId(doc));
        }
      });
    }
  });

  describe('overlays', () => {
    for (const overlay of overlays) {
      for (const source of meteringSources) {
        describe(`${overlay}, metering source ${source}`, () => {
          const dir = `deploy/overlays/${overlay}`;
          const docs = () => renderedOf(source === 'agent' ? withAgent(dir) : dir);
          const functions = source === 'agent' ? servedByUs.filter((name) => name !== 'scrape') : servedByUs;

          it('every function and the API is a Knative Service with scale annotations on the template, probes and resources', () => {
            const services = ksvcsOf(docs());
            assert.deepEqual(services.map((s) => s.metadata.name).sort(), functions);
            for (const service of services) {
              const name = service.metadata.name;
              const annotations = service.spec.template.metadata.annotations;
              const min = Number(annotations['autoscaling.knative.dev/min-scale']);
              const max = Number(annotations['autoscaling.knative.dev/max-scale']);
              assert.ok(Number.isInteger(min) && Number.isInteger(max) && min >= 0 && max >= Math.max(1, min), `${name}: min-scale ${min}, max-scale ${max}`);
              assert.match(annotations['autoscaling.knative.dev/target'] ?? '', /^[1-9]\d*$/, `${name}: a target`);
              if (name !== 'api') assert.equal(min, 0, `${name}: a stage scales to zero`);
              const [c] = service.spec.template.spec.containers;
              assert.ok(c);
              assert.deepEqual([c.livenessProbe.httpGet.path, c.readinessProbe.httpGet.path], ['/health/liveness', '/health/readiness']);
              assert.ok(quantity(c.resources.requests.cpu) <= quantity(c.resources.limits.cpu), `${name}: cpu request ≤ limit`);
              assert.ok(quantity(c.resources.requests.memory) <= quantity(c.resources.limits.memory), `${name}: memory request ≤ limit`);
            }
          });

          it('scripts/deploy-all.sh puts the image it pushed into every container of ours and changes nothing else', () => {
            const env = { REGISTRY: 'localhost:5999', TAG: 'test-tag', METERING_SOURCE: source };
            const printed = deployAllPrint(overlay, env);
            assert.equal(printed.status, 0, printed.stderr);
            const pushed = 'localhost:5999/faas-billing:test-tag';
            const before = docs();
            assert.equal(printed.docs.length, before.length);
            const ours = new Set<string>();
            printed.docs.forEach((doc, i) => {
              const original = before[i];
              assert.ok(original);
              const was = imagesOf(original);
              const now = imagesOf(doc);
              assert.deepEqual(now.map((x) => x.at), was.map((x) => x.at));
              was.forEach(({ image }, j) => {
                const isOurs = /(^|\/)faas-billing(:[\w.-]+)?$/.test(image);
                if (isOurs) ours.add(`${doc.kind}/${doc.metadata.name}`);
                assert.equal(now[j]?.image, isOurs ? pushed : image, `${doc.kind} ${doc.metadata.name}: ${image}`);
              });
              // Apart from images, the document is what the overlay rendered.
              const withoutImages = (value: unknown): string => JSON.stringify(value, (key, v: unknown) => (key === 'image' ? undefined : v));
              assert.equal(withoutImages(doc), withoutImages(original));
            });
            // Every Knative Service, the migration Job and the billing agent's DaemonSet (when deployed) run our image.
            const agent = source === 'agent' ? ['DaemonSet/billing-agent'] : [];
            assert.deepEqual([...ours].sort(), [...functions.map((name) => `Service/${name}`), 'Job/faas-billing-migrate', ...agent].sort());
          });
        });
      }
    }

    it('deploy-all.sh --print refuses an overlay that does not exist, with a clear message', () => {
      const printed = deployAllPrint('staging', {});
      assert.notEqual(printed.status, 0);
      assert.match(printed.stderr, /no overlay deploy\/overlays\/staging/);
    });

    it('deploy-all.sh --print refuses a metering source other than scrape or agent', () => {
      const printed = deployAllPrint('local', { METERING_SOURCE: 'both' });
      assert.notEqual(printed.status, 0);
      assert.match(printed.stderr, /METERING_SOURCE is scrape or agent, not both/);
    });

    it('local: the localhost:5000 registry, PostgreSQL and Redis in the cluster, the example Secrets', () => {
      const local = renderedOf('deploy/overlays/local');
      for (const service of ksvcsOf(local)) assert.equal(service.spec.template.spec.containers[0]?.image, 'localhost:5000/faas-billing:dev');
      for (const name of ['postgres', 'redis']) {
        const set = z
          .looseObject({
            spec: z.looseObject({
              volumeClaimTemplates: z.array(z.looseObject({ spec: z.looseObject({ resources: z.looseObject({ requests: z.looseObject({ storage: z.string() }) }) }) })).length(1),
              template: z.looseObject({ spec: z.looseObject({ containers: z.array(z.looseObject({ readinessProbe: z.looseObject({ exec: z.looseObject({ command: z.array(z.string()) }) }), args: z.array(z.string()).optional() })).length(1) }) }),
            }),
          })
          .parse(find(local, 'StatefulSet', name));
        const [c] = set.spec.template.spec.containers;
        assert.ok(c);
        if (name === 'redis') assert.deepEqual(c.args?.slice(0, 2), ['--appendonly', 'yes'], 'Redis persists with the append-only file');
        if (name === 'postgres') assert.match(c.readinessProbe.exec.command.join(' '), /pg_isready/);
        assert.ok(find(local, 'Service', name), `a Service for ${name}`);
      }
      assert.ok(find(local, 'Secret', 'faas-billing-db') && find(local, 'Secret', 'faas-billing-postgres'));
    });

    it('production: no in-cluster data services or example Secrets, higher limits, the API kept warm', () => {
      const production = renderedOf('deploy/overlays/production');
      const base = renderedOf('deploy/base');
      for (const [kind, name] of [['StatefulSet', 'postgres'], ['StatefulSet', 'redis'], ['Secret', 'faas-billing-db'], ['Secret', 'faas-billing-postgres']] as const) {
        assert.equal(find(production, kind, name), undefined, `${kind} ${name} is external in production`);
      }
      assert.ok(!production.some((d) => d.apiVersion === 'v1' && d.kind === 'Service'), 'no core Service (postgres, redis)');
      const baseServices = new Map(ksvcsOf(base).map((s) => [s.metadata.name, s]));
      for (const service of ksvcsOf(production)) {
        const [ours] = service.spec.template.spec.containers;
        const [theirs] = baseServices.get(service.metadata.name)?.spec.template.spec.containers ?? [];
        assert.ok(ours && theirs);
        for (const resource of ['cpu', 'memory'] as const) {
          assert.ok(quantity(ours.resources.limits[resource]) > quantity(theirs.resources.limits[resource]), `${service.metadata.name}: ${resource} limit above the base's`);
        }
      }
      const api = ksvcsOf(production).find((s) => s.metadata.name === 'api');
      assert.equal(api?.spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'], '1');
    });

    it('the base: the migration Job runs the image\'s migrate command, the backup writes to its PVC, producers are bound to the Broker', () => {
      const base = renderedOf('deploy/base');
      const job = z
        .looseObject({ spec: z.looseObject({ template: z.looseObject({ spec: z.looseObject({ containers: z.array(z.looseObject({ image: z.string(), command: z.array(z.string()) })).length(1) }) }) }) })
        .parse(find(base, 'Job', 'faas-billing-migrate'));
      const [migrate] = job.spec.template.spec.containers;
      assert.deepEqual(migrate?.command, ['node', 'dist/scripts/migrate.js']);
      const build = z.looseObject({ include: z.array(z.string()) }).parse(JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')));
      assert.ok(build.include.includes('scripts/migrate.ts'), 'the image build compiles scripts/migrate.ts');

      const cron = z
        .looseObject({
          spec: z.looseObject({
            schedule: z.string(),
            jobTemplate: z.looseObject({
              spec: z.looseObject({
                template: z.looseObject({
                  spec: z.looseObject({
                    containers: z.array(z.looseObject({ command: z.array(z.string()), volumeMounts: z.array(z.looseObject({ name: z.string(), mountPath: z.string() })) })),
                    volumes: z.array(z.looseObject({ name: z.string(), persistentVolumeClaim: z.looseObject({ claimName: z.string() }) })),
                  }),
                }),
              }),
            }),
          }),
        })
        .parse(find(base, 'CronJob', 'postgres-backup'));
      const pod = cron.spec.jobTemplate.spec.template.spec;
      const backup = pod.containers[0]?.command.join(' ') ?? '';
      assert.match(backup, /file="\/backups\/faasbilling-/);
      assert.match(backup, /pg_dump --format=custom /);
      const claim = pod.volumes[0]?.persistentVolumeClaim.claimName ?? '';
      assert.ok(find(base, 'PersistentVolumeClaim', claim), `the PVC ${claim} is in the base`);
      assert.equal(pod.containers[0]?.volumeMounts[0]?.mountPath, '/backups');

      const binding = z
        .looseObject({ spec: z.looseObject({ sink: z.looseObject({ ref: z.looseObject({ kind: z.string(), name: z.string() }) }) }) })
        .parse(find(base, 'SinkBinding', 'usage-producers'));
      assert.deepEqual([binding.spec.sink.ref.kind, binding.spec.sink.ref.name], ['Broker', 'default']);
    });
  });

  describe('backups', () => {
    const shellOf = (doc: unknown): string => {
      const containers = z.array(z.looseObject({ command: z.array(z.string()) })).length(1);
      const job = z.looseObject({ spec: z.looseObject({ template: z.looseObject({ spec: z.looseObject({ containers }) }) }) });
      const cron = z.looseObject({ spec: z.looseObject({ jobTemplate: job }) });
      const pod = cron.safeParse(doc).success ? cron.parse(doc).spec.jobTemplate.spec.template.spec : job.parse(doc).spec.template.spec;
      const [command] = pod.containers;
      assert.deepEqual(command?.command.slice(0, 2), ['sh', '-c']);
      return command?.command[2] ?? '';
    };
    let source: TestDatabase | undefined;
    let target: TestDatabase | undefined;
    let dir: string | undefined;

    after(async () => {
      await source?.drop();
      await target?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('the CronJob\'s pg_dump and the restore Job\'s pg_restore (README) bring a database back', async () => {
      source = await freshDatabase();
      target = await freshDatabase();
      dir = mkdtempSync(path.join(tmpdir(), 'fb-backups-'));
      await source.db('tenants').insert({ slug: 'backed-up', name: 'backed up', currency: 'USD', timezone: 'UTC' });
      await target.db('tenants').insert({ slug: 'lost-since', name: 'created after the dump', currency: 'USD', timezone: 'UTC' });
      // The same shell commands, with the PVC's mount point replaced by a temp dir.
      const backup = shellOf(find(renderedOf('deploy/base'), 'CronJob', 'postgres-backup')).replaceAll('/backups', dir);
      const dumped = spawnSync('sh', ['-c', backup], { encoding: 'utf8', env: { PATH: process.env.PATH, DATABASE_URL: source.url } });
      assert.equal(dumped.status, 0, dumped.stderr);
      const dumps = readdirSync(dir).filter((f) => /^faasbilling-\d{8}T\d{6}Z\.dump$/.test(f));
      assert.equal(dumps.length, 1, `one dump in ${readdirSync(dir).join(', ')}`);
      const restoreJob = parseDocs(readFileSync(path.join(root, 'deploy/restore/restore-job.yaml'), 'utf8'), 'deploy/restore/restore-job.yaml');
      assert.equal(restoreJob.length, 1);
      assert.deepEqual(validateModel(restoreJob[0] as K8sObject), []);
      const restore = shellOf(restoreJob[0]).replaceAll('/backups', dir);
      const restored = spawnSync('sh', ['-c', restore], { encoding: 'utf8', env: { PATH: process.env.PATH, DATABASE_URL: target.url, DUMP_FILE: dumps[0] ?? '' } });
      assert.equal(restored.status, 0, restored.stderr);
      const slugs = (await target.db('tenants').pluck<string[]>('slug')).sort();
      assert.ok(slugs.includes('backed-up') && !slugs.includes('lost-since'), slugs.join(', '));
      const missing = spawnSync('sh', ['-c', restore], { encoding: 'utf8', env: { PATH: process.env.PATH, DATABASE_URL: target.url, DUMP_FILE: 'nope.dump' } });
      assert.notEqual(missing.status, 0, 'a missing dump file fails the Job');
    });
  });

  describe('monitoring', () => {
    const monitoring = () => renderedOf('deploy/monitoring');

    it('one PodMonitor selects the pods of every function and the API and scrapes their pod IPs, not the Knative route', () => {
      const monitor = z
        .looseObject({
          spec: z.looseObject({
            selector: z.strictObject({ matchExpressions: z.array(z.strictObject({ key: z.string(), operator: z.literal('In'), values: z.array(z.string()) })).length(1) }),
            podMetricsEndpoints: z.array(z.looseObject({ port: z.string(), path: z.string() })).length(1),
          }),
        })
        .parse(find(monitoring(), 'PodMonitor', 'faas-billing'));
      const [expression] = monitor.spec.selector.matchExpressions;
      assert.equal(expression?.key, 'serving.knative.dev/service');
      assert.deepEqual([...(expression?.values ?? [])].sort(), servedByUs);
      // Knative names the user container's port user-port; a pod IP scrape never wakes a function.
      assert.deepEqual(monitor.spec.podMetricsEndpoints[0], { ...monitor.spec.podMetricsEndpoints[0], port: 'user-port', path: '/metrics' });
      assert.ok(!monitoring().some((d) => d.kind === 'ServiceMonitor'), 'no ServiceMonitor (a Knative Service is scraped through its route)');
    });

    it('the alerts: buffer lag growing, dead letters, save failures, bill generation failed, ingest error rate', () => {
      const rules = ruleFile.parse(find(monitoring(), 'PrometheusRule', 'faas-billing'));
      const alerts = rules.spec.groups.flatMap((g) => g.rules.map((r) => r.alert));
      for (const alert of ['FaasBillingBufferLagGrowing', 'FaasBillingDeadLetters', 'FaasBillingSaveFailures', 'FaasBillingBillGenerationFailed', 'FaasBillingIngestErrorRate']) {
        assert.ok(alerts.includes(alert), `${alert} in ${alerts.join(', ')}`);
      }
    });

    it('the Grafana dashboard parses and has the panels the operators asked for, shipped as a sidecar-labelled ConfigMap', () => {
      const file = readFileSync(path.join(root, 'deploy/monitoring/dashboards/faas-billing.json'), 'utf8');
      const dashboard = dashboardSchema.parse(JSON.parse(file));
      const titles = dashboard.panels.map((p) => p.title);
      for (const title of ['Ingest rate', 'Buffer lag', 'Save throughput', 'Windows recomputed', 'Month-to-date cost by tenant', 'Forecast vs actual (month end)']) {
        assert.ok(titles.includes(title), `panel "${title}" in ${titles.join(', ')}`);
      }
      assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids are unique');
      const configMap = z
        .looseObject({ metadata: z.looseObject({ labels: z.record(z.string(), z.string()) }), data: z.record(z.string(), z.string()) })
        .parse(find(monitoring(), 'ConfigMap', 'faas-billing-dashboard'));
      assert.equal(configMap.metadata.labels.grafana_dashboard, '1');
      assert.equal(configMap.data['faas-billing.json'], file);
    });

    it('promqlMetricNames reads metric names, not functions, labels, keywords or durations', () => {
      assert.deepEqual(
        promqlMetricNames('sum by (le) (rate(a_bucket{x="y z"}[5m])) / clamp_min(sum(rate(b_total[5m])), 1e-9) > 0.05 and on (job) c offset 5m'),
        ['a_bucket', 'b_total', 'c'],
      );
      assert.deepEqual(promqlMetricNames('max(delta(faasbilling_buffer_lag_seconds[10m])) > 0'), ['faasbilling_buffer_lag_seconds']);
    });

    describe('every metric in the rules and the dashboard is exported (a live /metrics scrape)', () => {
      let database: TestDatabase;
      const children: ChildProcess[] = [];
      const exposed = new Set<string>();
      let apiMetrics = '';

      before(async function () {
        this.timeout(180_000);
        database = await freshDatabase();
        // A tenant with a month-to-date cost and a month-end forecast, for the API's cost gauges.
        const [tenant] = await database.db('tenants').insert({ slug: 'gauge-tenant', name: 'gauge tenant', currency: 'EUR', timezone: 'UTC' }).returning<{ id: string }[]>('id');
        assert.ok(tenant);
        const now = new Date();
        const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
        const monthEnd = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
        await database.db('tenant_running_costs').insert({ tenant_id: tenant.id, period_start: monthStart, period_end: monthEnd, currency: 'EUR', total: '12.34', total_unrounded: '12.3412', usage_as_of: now });
        await database.db('ml_predictions').insert({
          tenant_id: tenant.id,
          prediction_date: now.toISOString().slice(0, 10),
          horizon: 'month_end',
          horizon_hours: 100,
          horizon_days: 5,
          as_of: now,
          period_start: monthStart,
          period_end: monthEnd,
          currency: 'EUR',
          predicted_cost: '20.00',
          predicted_cost_lower_80: '15.00',
          predicted_cost_upper_80: '25.50',
          predicted_cost_lower_95: '10.00',
          predicted_cost_upper_95: '30.00',
          model_name: 'seasonal_naive',
          model_version: 'test',
        });
        const redis = process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, BUFFER_STREAM: `faasbilling:deploy-test:${Date.now()}` } : {};
        const scrapes = servedByUs.map(async (fn) => {
          const port = await freePort();
          const child = spawn(process.execPath, ['--import', 'tsx', 'src/runtime/run-function.ts', fn], {
            cwd: root,
            env: { PATH: process.env.PATH, PORT: String(port), DATABASE_URL: database.url, LOG_LEVEL: 'silent', ...redis },
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          children.push(child);
          let stderr = '';
          child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
          const deadline = Date.now() + 90_000;
          for (;;) {
            assert.equal(child.exitCode, null, `${fn} exited: ${stderr}`);
            const res = await fetch(`http://127.0.0.1:${port}/health/readiness`).catch(() => undefined);
            if (res?.status === 200) break;
            assert.ok(Date.now() < deadline, `${fn} did not become ready: ${stderr}`);
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          if (fn === 'api') apiMetrics = text;
          for (const name of exposedNames(text)) exposed.add(name);
        });
        await Promise.all(scrapes);
      });

      after(async () => {
        for (const child of children) child.kill('SIGTERM');
        await Promise.all(children.filter((c) => c.exitCode === null).map((c) => new Promise((resolve) => c.once('exit', resolve))));
        await database?.drop();
      });

      it('the scrape has the stage and API metrics', () => {
        for (const name of ['faasbilling_events_accepted_total', 'faasbilling_rows_inserted_total', 'faasbilling_aggregate_windows_total', 'faasbilling_api_requests_total', 'faasbilling_retention_partitions_dropped_total']) {
          assert.ok(exposed.has(name), name);
        }
      });

      it('the API exports month-to-date and month-end forecast cost per tenant from PostgreSQL', () => {
        assert.match(apiMetrics, /^faasbilling_tenant_month_to_date_cost\{tenant="gauge-tenant",currency="EUR"\} 12\.34$/m);
        assert.match(apiMetrics, /^faasbilling_tenant_forecast_month_end_cost\{tenant="gauge-tenant",currency="EUR",bound="expected"\} 20$/m);
        assert.match(apiMetrics, /^faasbilling_tenant_forecast_month_end_cost\{tenant="gauge-tenant",currency="EUR",bound="upper_80"\} 25\.5$/m);
      });

      it('every PromQL expression of the alerts and the dashboard names exported metrics only', () => {
        const rules = ruleFile.parse(find(renderedOf('deploy/monitoring'), 'PrometheusRule', 'faas-billing'));
        const dashboard = dashboardSchema.parse(JSON.parse(readFileSync(path.join(root, 'deploy/monitoring/dashboards/faas-billing.json'), 'utf8')));
        const expressions = [
          ...rules.spec.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
          ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr }))),
        ];
        assert.ok(expressions.length >= 10);
        const unknown = expressions.flatMap(({ where, expr }) => {
          const names = promqlMetricNames(expr);
          assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
          return names.filter((n) => !exposed.has(n)).map((n) => `${where}: ${n}`);
        });
        assert.deepEqual(unknown, []);
      });
    });
  });

  describe('scripts', () => {
    const scripts = readdirSync(path.join(root, 'scripts')).filter((f) => f.endsWith('.sh'));

    it('the four cluster scripts exist, are executable and stop on the first error', () => {
      assert.deepEqual(['deploy-all.sh', 'setup-k8s.sh', 'setup-prometheus.sh', 'test-e2e.sh'].filter((s) => !scripts.includes(s)), []);
      for (const script of scripts) {
        const file = path.join(root, 'scripts', script);
        assert.ok((statSync(file).mode & 0o111) !== 0, `${script} is executable`);
        const text = readFileSync(file, 'utf8');
        assert.match(text, /^#!\/usr\/bin\/env bash\n/, `${script}: bash shebang`);
        assert.match(text, /^set -euo pipefail$/m, `${script}: set -euo pipefail`);
        assert.match(text, /die\(\) \{.*\}\nneed\(\) \{/, `${script}: checks its prerequisites with a message`);
      }
    });

    it('shellcheck passes on scripts/*.sh', () => {
      assert.ok(shellcheck, 'shellcheck is needed (.ci/run installs Debian shellcheck)');
      const run = spawnSync(shellcheck, ['--severity=style', ...scripts.map((s) => path.join(root, 'scripts', s))], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stdout + run.stderr);
    });

    describe('deploy-all.sh against a stand-in kubectl (renders with the real one, records every other call)', () => {
      const fakeKubectl = [
        '#!/usr/bin/env bash',
        'set -euo pipefail',
        'if [ "$1" = kustomize ]; then exec "$REAL_KUBECTL" "$@"; fi',
        'echo "$*" >>"$KUBECTL_LOG"',
        'if [ "$*" = "apply -f -" ]; then cat >>"$KUBECTL_APPLIED"; fi',
        '',
      ].join('\n');
      /** The kubectl resource names deploy-all.sh deletes, as "apiVersion Kind". */
      const kindOfResource: Record<string, string> = {
        'services.serving.knative.dev': 'serving.knative.dev/v1 Service',
        'pingsources.sources.knative.dev': 'sources.knative.dev/v1 PingSource',
        'triggers.eventing.knative.dev': 'eventing.knative.dev/v1 Trigger',
        'sinkbindings.sources.knative.dev': 'sources.knative.dev/v1 SinkBinding',
        serviceaccount: 'v1 ServiceAccount',
        clusterrolebinding: 'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
        daemonset: 'apps/v1 DaemonSet',
      };
      let bin = '';
      before(() => {
        bin = mkdtempSync(path.join(tmpdir(), 'fb-kubectl-'));
        writeFileSync(path.join(bin, 'kubectl'), fakeKubectl, { mode: 0o755 });
      });
      after(() => rmSync(bin, { recursive: true, force: true }));

      for (const source of meteringSources) {
        const other = source === 'agent' ? 'scrape' : 'agent';
        it(`METERING_SOURCE=${source}: deletes the other source's (${other}) before applying, waits for the agent's DaemonSet only if it deploys it`, () => {
          assert.ok(kubectl);
          const log = path.join(bin, `${source}.log`);
          const applied = path.join(bin, `${source}.yaml`);
          const env = { REGISTRY: 'localhost:5999', TAG: 'test-tag', METERING_SOURCE: source };
          const run = spawnSync('bash', [path.join(root, 'scripts/deploy-all.sh'), 'local'], {
            encoding: 'utf8',
            env: { ...process.env, ...env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, SKIP_BUILD: '1', REAL_KUBECTL: kubectl, KUBECTL_LOG: log, KUBECTL_APPLIED: applied },
          });
          assert.equal(run.status, 0, run.stderr);
          const calls = readFileSync(log, 'utf8').trim().split('\n');
          const deleted = calls.filter((c) => c.startsWith('delete --namespace faas-billing --ignore-not-found '));
          assert.equal(deleted.length, 1, calls.join('\n'));
          const names = (deleted[0] ?? '').split(' ').slice(4);
          assert.deepEqual(names.map((n) => `${kindOfResource[n.split('/')[0] ?? ''] ?? n} ${n.split('/')[1]}`).sort(), [...sourceResources[other]].sort());
          assert.ok(calls.indexOf(deleted[0] ?? '') < calls.lastIndexOf('apply -f -'), 'the other source goes first');
          assert.deepEqual(parseDocs(readFileSync(applied, 'utf8'), applied), deployAllPrint('local', env).docs);
          assert.equal(calls.includes('rollout status daemonset/billing-agent --namespace faas-billing --timeout=300s'), source === 'agent');
          assert.match(run.stdout, new RegExp(`metering source: ${source}\\)`));
        });
      }
    });

    it('shellcheck does flag a script with an unquoted expansion (the check is live)', () => {
      assert.ok(shellcheck);
      const run = spawnSync(shellcheck, ['-s', 'bash', '-'], { input: '#!/usr/bin/env bash\nrm -rf $1/tmp\n', encoding: 'utf8' });
      assert.notEqual(run.status, 0);
      assert.match(run.stdout, /SC2086/);
    });
  });

  describe('docker-compose.yml', () => {
    const compose = z
      .looseObject({
        services: z.record(
          z.string(),
          z.looseObject({
            image: z.string().optional(),
            build: z.string().optional(),
            command: z.array(z.string()).optional(),
            environment: z.record(z.string(), z.string()).optional(),
          }),
        ),
      })
      .parse(parseYaml(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')));

    it('runs PostgreSQL, Redis (append-only), the migration and the API from the Dockerfile', () => {
      assert.deepEqual(Object.keys(compose.services).sort(), ['api', 'migrate', 'postgres', 'redis']);
      assert.equal(compose.services.migrate?.build, '.');
      assert.equal(compose.services.api?.image, compose.services.migrate?.image);
      assert.equal(compose.services.api?.environment?.FUNCTION, 'api');
      assert.deepEqual(compose.services.redis?.command?.slice(0, 3), ['redis-server', '--appendonly', 'yes']);
    });

    it('sets only variables the configuration reads', () => {
      const known = new Set([...Object.keys(configSchema.shape), 'FUNCTION']);
      for (const name of ['api', 'migrate']) {
        for (const key of Object.keys(compose.services[name]?.environment ?? {})) assert.ok(known.has(key), `${name}: ${key}`);
      }
    });
  });
});
