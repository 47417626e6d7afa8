/**
 * Places a tenant's function in the cluster as a Knative Service, through the Kubernetes API
 * (@kubernetes/client-node's CustomObjectsApi, which sends the object as it is: its generic object
 * API would serialise a Knative Service as a core v1 Service and drop its template): a server-side
 * apply of the whole Service under our field manager,
 * then the Service is read until Knative reports the new generation Ready (or failed, or the
 * time is up). The Service is labelled with the tenant and service so metering maps its usage
 * back, and named deterministically from them. Nothing here knows HTTP routes or the database.
 */
import { createHash } from 'node:crypto';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';

export const fieldManager = 'faas-billing-api';
export const labels = {
  tenant: 'faasbilling.dev/tenant',
  tenantId: 'faasbilling.dev/tenant-id',
  service: 'faasbilling.dev/service',
  serviceId: 'faasbilling.dev/service-id',
} as const;

export interface DeployRequest {
  tenantId: string;
  tenantSlug: string;
  serviceId: string;
  serviceName: string;
  image: string;
  scale: { min: number; max: number; target: number };
  containerPort: number;
  memoryLimitMb: number | null;
  cpuLimitCores: string | null;
  env: Record<string, string>;
}

export interface DeployResult {
  name: string;
  namespace: string;
  /** False when the Service existed before (an update). */
  created: boolean;
  revision: string;
  url: string;
  generation: number;
}

export type DeployFailure = 'conflict' | 'rejected' | 'failed' | 'timeout' | 'unreachable';

export class DeployError extends Error {
  constructor(
    readonly kind: DeployFailure,
    message: string,
  ) {
    super(message);
    this.name = 'DeployError';
  }
}

export interface KnativeDeployerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** How long to wait for the new revision to become Ready. */
  readyTimeoutMs: number;
  pollIntervalMs?: number;
  /** Broker URL given to the function as K_SINK, so it can post usage. */
  sinkUrl?: string;
}

/** `<tenant>-<service>-<hash>`: a DNS label short enough for Knative's revision names (≤ 63 with "-00001"). */
export function knativeServiceName(tenantSlug: string, serviceName: string, serviceId: string): string {
  const clean = (s: string) => s.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  const stem = `${clean(tenantSlug)}-${clean(serviceName)}`.replace(/-+/g, '-').replace(/^-+/, '').slice(0, 48).replace(/-+$/, '');
  const hash = createHash('sha256').update(serviceId).digest('hex').slice(0, 6);
  return `${stem || 'fn'}-${hash}`;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}
interface ServiceStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  latestReadyRevisionName?: string;
  latestCreatedRevisionName?: string;
  url?: string;
}
type KnativeService = KubernetesObject & { status?: ServiceStatus };

/** The HTTP status of a failed client-node call, when it had one. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

function bodyMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      return body.slice(0, 500);
    }
  }
  return err instanceof Error ? err.message : String(err);
}

export class KnativeDeployer {
  private readonly api: CustomObjectsApi;
  private readonly resource = { group: 'serving.knative.dev', version: 'v1', plural: 'services' } as const;

  constructor(private readonly options: KnativeDeployerOptions) {
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  get namespace(): string {
    return this.options.namespace;
  }

  /** The Knative Service this request applies (what the cluster receives). */
  manifest(request: DeployRequest): KubernetesObject & { spec: Record<string, unknown> } {
    const name = knativeServiceName(request.tenantSlug, request.serviceName, request.serviceId);
    const owner = {
      [labels.tenant]: request.tenantSlug,
      [labels.tenantId]: request.tenantId,
      [labels.service]: request.serviceName,
      [labels.serviceId]: request.serviceId,
      'app.kubernetes.io/managed-by': fieldManager,
    };
    const limits: Record<string, string> = {};
    if (request.memoryLimitMb !== null) limits.memory = `${request.memoryLimitMb}Mi`;
    // Cores as stored (numeric text such as 0.500) become millicores, Kubernetes' usual unit.
    if (request.cpuLimitCores !== null) limits.cpu = `${Math.round(Number(request.cpuLimitCores) * 1000)}m`;
    const env = {
      ...request.env,
      FAASBILLING_TENANT: request.tenantSlug,
      FAASBILLING_SERVICE: request.serviceName,
      ...(this.options.sinkUrl ? { K_SINK: this.options.sinkUrl } : {}),
    };
    return {
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Service',
      metadata: { name, namespace: this.options.namespace, labels: owner },
      spec: {
        template: {
          metadata: {
            labels: owner,
            annotations: {
              'autoscaling.knative.dev/min-scale': String(request.scale.min),
              'autoscaling.knative.dev/max-scale': String(request.scale.max),
              'autoscaling.knative.dev/target': String(request.scale.target),
            },
          },
          spec: {
            containers: [
              {
                image: request.image,
                ports: [{ containerPort: request.containerPort }],
                env: Object.entries(env).map(([key, value]) => ({ name: key, value })),
                ...(Object.keys(limits).length > 0 ? { resources: { requests: limits, limits } } : {}),
              },
            ],
          },
        },
      },
    };
  }

  /** Applies the Service and waits until its new generation is Ready. */
  async deploy(request: DeployRequest): Promise<DeployResult> {
    const manifest = this.manifest(request);
    const name = manifest.metadata?.name ?? '';
    const existing = await this.read(name);
    const ownerId = existing?.metadata?.labels?.[labels.serviceId];
    if (existing && ownerId !== request.serviceId) {
      throw new DeployError('conflict', `a Knative Service ${name} that is not this service's already exists in ${this.namespace}`);
    }
    let applied: KnativeService;
    try {
      applied = (await this.api.patchNamespacedCustomObject(
        { ...this.resource, namespace: this.namespace, name, body: manifest, fieldManager, force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      )) as KnativeService;
    } catch (err) {
      const status = statusOf(err);
      if (status === 400 || status === 422) throw new DeployError('rejected', `the cluster refused the Knative Service: ${bodyMessage(err)}`);
      if (status === 409) throw new DeployError('conflict', `the cluster reports a conflict: ${bodyMessage(err)}`);
      throw new DeployError('unreachable', `the Kubernetes API failed${status ? ` (${status})` : ''}: ${bodyMessage(err)}`);
    }
    const generation = applied.metadata?.generation ?? 1;
    const ready = await this.waitReady(name, generation);
    return { name, namespace: this.namespace, created: existing === undefined, revision: ready.revision, url: ready.url, generation };
  }

  private async read(name: string): Promise<KnativeService | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({ ...this.resource, namespace: this.namespace, name })) as KnativeService;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new DeployError('unreachable', `the Kubernetes API failed${statusOf(err) ? ` (${statusOf(err)})` : ''}: ${bodyMessage(err)}`);
    }
  }

  private async waitReady(name: string, generation: number): Promise<{ revision: string; url: string }> {
    const deadline = Date.now() + this.options.readyTimeoutMs;
    const interval = this.options.pollIntervalMs ?? 500;
    let last = 'no status yet';
    for (;;) {
      const status = (await this.read(name))?.status;
      if (status && (status.observedGeneration ?? 0) >= generation) {
        const ready = status.conditions?.find((c) => c.type === 'Ready');
        if (ready?.status === 'True' && status.latestReadyRevisionName && status.url) return { revision: status.latestReadyRevisionName, url: status.url };
        if (ready?.status === 'False') throw new DeployError('failed', `${name} is not ready: ${ready.reason ?? 'failed'}${ready.message ? `: ${ready.message}` : ''}`);
        last = ready ? `Ready ${ready.status}${ready.reason ? ` (${ready.reason})` : ''}` : 'no Ready condition';
      }
      if (Date.now() + interval > deadline) throw new DeployError('timeout', `${name} was not ready within ${this.options.readyTimeoutMs} ms (${last})`);
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }
}

/** The deployer the configuration asks for, or undefined when deployments are off. */
export function deployerFromConfig(config: { DEPLOY_TARGET: 'off' | 'in-cluster' | 'kubeconfig'; KUBECONFIG?: string | undefined; DEPLOY_NAMESPACE: string; DEPLOY_READY_TIMEOUT_MS: number; DEPLOY_SINK_URL?: string | undefined }): KnativeDeployer | undefined {
  if (config.DEPLOY_TARGET === 'off') return undefined;
  const kubeConfig = new KubeConfig();
  if (config.DEPLOY_TARGET === 'in-cluster') kubeConfig.loadFromCluster();
  else if (config.KUBECONFIG) kubeConfig.loadFromFile(config.KUBECONFIG);
  else kubeConfig.loadFromDefault();
  return new KnativeDeployer({
    kubeConfig,
    namespace: config.DEPLOY_NAMESPACE,
    readyTimeoutMs: config.DEPLOY_READY_TIMEOUT_MS,
    ...(config.DEPLOY_SINK_URL ? { sinkUrl: config.DEPLOY_SINK_URL } : {}),
  });
}
