/**
 * The Kubernetes API as the metering sources need it (read-only): Knative revision pods (to find
 * their metrics endpoints and cgroups, and map them to tenant/service/revision) and Revisions
 * (their configured memory, still known when the revision has scaled to zero).
 * Tenant comes from the `faasbilling.dev/tenant` label (put it on the Knative Service's template
 * so revisions and pods inherit it).
 */
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';

/** Label naming the tenant billed for a workload. */
export const tenantLabel = 'faasbilling.dev/tenant';
/**
 * Label naming the one source that meters a workload: `scrape` or `agent` (that cluster source
 * only), or `middleware` (a function that reports its own usage: neither cluster source). Unset, or
 * a value that is none of these (a typo must not stop billing silently): the cluster source that is
 * deployed meters it, and counts the unknown value.
 */
export const meteringLabel = 'faasbilling.dev/metered-by';
export const meteringSources = ['scrape', 'agent', 'middleware'] as const;

/**
 * Whether `source` meters a workload (see meteringLabel): `yes`, `no` (labelled for another
 * source), or `unknown-label` (metered, but its label names no source).
 */
export function meteredBy(workload: { meteredBy: string | undefined }, source: 'scrape' | 'agent'): 'yes' | 'no' | 'unknown-label' {
  const label = workload.meteredBy;
  if (label === undefined || label === source) return 'yes';
  return (meteringSources as readonly string[]).includes(label) ? 'no' : 'unknown-label';
}
const revisionLabel = 'serving.knative.dev/revision';
const serviceLabel = 'serving.knative.dev/service';
const configurationLabel = 'serving.knative.dev/configuration';
/** Knative's name for the workload container of a revision pod. */
export const userContainer = 'user-container';

/** A pod of a Knative revision. */
export interface RevisionPod {
  namespace: string;
  name: string;
  uid: string;
  ip: string | undefined;
  nodeName: string | undefined;
  /** When the kubelet started the pod. */
  startTime: Date | undefined;
  revision: string;
  service: string;
  tenant: string | undefined;
  /** Its faasbilling.dev/metered-by label. */
  meteredBy: string | undefined;
  /** Memory limit of the user container, in MB. */
  memoryLimitMb: number | undefined;
  /** Container runtime id of the user container (without the runtime:// prefix). */
  userContainerId: string | undefined;
}

/** A Knative Revision, as billing needs it. */
export interface RevisionInfo {
  namespace: string;
  name: string;
  service: string;
  tenant: string | undefined;
  /** Its faasbilling.dev/metered-by label. */
  meteredBy: string | undefined;
  memoryLimitMb: number | undefined;
}

const suffixes: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
  m: 1e-3,
};

/** A Kubernetes memory quantity ("512Mi", "1G", "268435456", "1e9") in MB (MiB); undefined when not one. */
export function quantityToMb(quantity: string | undefined): number | undefined {
  if (!quantity) return undefined;
  const match = /^([0-9.]+(?:e[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$/.exec(quantity.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * (suffixes[match[2] ?? ''] ?? NaN);
  return Number.isFinite(bytes) && bytes > 0 ? Math.round((bytes / 1024 ** 2) * 1000) / 1000 : undefined;
}

const revisionList = z.object({
  items: z.array(
    z.object({
      metadata: z.object({ name: z.string(), namespace: z.string(), labels: z.record(z.string(), z.string()).optional() }),
      spec: z
        .object({
          containers: z.array(z.object({ name: z.string().optional(), resources: z.object({ limits: z.record(z.string(), z.string()).optional() }).optional() })).optional(),
        })
        .optional(),
    }),
  ),
});

function podToRevisionPod(pod: V1Pod): RevisionPod | undefined {
  const labels = pod.metadata?.labels ?? {};
  const revision = labels[revisionLabel];
  if (!revision || !pod.metadata?.name || !pod.metadata.namespace || !pod.metadata.uid) return undefined;
  const container = pod.spec?.containers.find((c) => c.name === userContainer) ?? pod.spec?.containers[0];
  const status = pod.status?.containerStatuses?.find((c) => c.name === (container?.name ?? userContainer));
  return {
    namespace: pod.metadata.namespace,
    name: pod.metadata.name,
    uid: pod.metadata.uid,
    ip: pod.status?.podIP,
    nodeName: pod.spec?.nodeName,
    startTime: pod.status?.startTime ? new Date(pod.status.startTime) : undefined,
    revision,
    service: labels[serviceLabel] ?? labels[configurationLabel] ?? revision,
    tenant: labels[tenantLabel],
    meteredBy: labels[meteringLabel],
    memoryLimitMb: quantityToMb(container?.resources?.limits?.memory),
    userContainerId: status?.containerID?.replace(/^[a-z0-9-]+:\/\//, ''),
  };
}

/** Read-only access to the cluster's Knative workloads. */
export interface KnativeCluster {
  /** Pods of Knative revisions, on one node when `nodeName` is given. */
  listRevisionPods(options?: { nodeName?: string }): Promise<RevisionPod[]>;
  /** Every Knative Revision. */
  listRevisions(): Promise<RevisionInfo[]>;
}

/**
 * Connects to the Kubernetes API: `apiUrl` (no credentials, e.g. `kubectl proxy`) when given,
 * otherwise the in-cluster service account or the local kubeconfig.
 */
export function connectKubernetes(apiUrl?: string): KnativeCluster {
  const kc = new KubeConfig();
  if (apiUrl) {
    kc.loadFromOptions({
      // The client refuses plain http unless TLS verification is off; there is no TLS to verify then.
      clusters: [{ name: 'api', server: apiUrl, skipTLSVerify: apiUrl.startsWith('http:') }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'api', cluster: 'api', user: 'anonymous' }],
      currentContext: 'api',
    });
  } else {
    kc.loadFromDefault();
  }
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    async listRevisionPods(options = {}) {
      const list = await core.listPodForAllNamespaces({
        labelSelector: revisionLabel,
        ...(options.nodeName ? { fieldSelector: `spec.nodeName=${options.nodeName}` } : {}),
      });
      return list.items.map(podToRevisionPod).filter((p): p is RevisionPod => p !== undefined);
    },
    async listRevisions() {
      const raw: unknown = await custom.listClusterCustomObject({ group: 'serving.knative.dev', version: 'v1', plural: 'revisions' });
      const list = revisionList.parse(raw);
      return list.items.map((r) => {
        const labels = r.metadata.labels ?? {};
        const container = r.spec?.containers?.find((c) => c.name === userContainer) ?? r.spec?.containers?.[0];
        return {
          namespace: r.metadata.namespace,
          name: r.metadata.name,
          service: labels[serviceLabel] ?? labels[configurationLabel] ?? r.metadata.name,
          tenant: labels[tenantLabel],
          meteredBy: labels[meteringLabel],
          memoryLimitMb: quantityToMb(container?.resources?.limits?.memory),
        };
      });
    },
  };
}
