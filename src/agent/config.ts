/**
 * Configuration of the billing agent (a DaemonSet, one per node), validated at start-up and
 * documented in .env.example.
 */
import { z } from 'zod';

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const agentConfigSchema = z.object({
  /** The node this agent watches (the downward API's spec.nodeName). */
  AGENT_NODE_NAME: z.string().min(1),
  /** Where the host's cgroup v2 hierarchy is mounted in the agent's container. */
  AGENT_CGROUP_ROOT: z.string().min(1).default('/sys/fs/cgroup'),
  /** Seconds between samples; usage is reported per sample interval. */
  AGENT_INTERVAL_SECONDS: int(30),
  /** Metrics URL of a revision pod's queue-proxy; {ip}, {name} and {namespace} are filled in. */
  AGENT_POD_METRICS_URL: z.string().min(1).default('http://{ip}:9091/metrics'),
  /** Tenant billed for pods without a faasbilling.dev/tenant label; unset: such pods are not metered. */
  AGENT_DEFAULT_TENANT: z.string().min(1).optional(),
  /** Port of the agent's /metrics and health endpoints. */
  PORT: int(9095),
  /** Kubernetes API URL without credentials (e.g. kubectl proxy); unset: in-cluster service account or kubeconfig. */
  KUBERNETES_API_URL: z.string().url().optional(),
  /** Where usage events go: the Broker's URL (or collect's). */
  K_SINK: z.string().url().optional(),
  /** "single": one binary CloudEvent per request (a Knative Broker); "batch": one cloudevents batch (collect, the local broker). */
  AGENT_SINK_MODE: z.enum(['single', 'batch']).default('single'),
  /** How long one HTTP call (a pod, the sink) may take, in ms. */
  AGENT_TIMEOUT_MS: int(5000),
  /** Most reports held while the sink is down; more are dropped and counted. */
  AGENT_MAX_QUEUE: int(10_000),
});
export type AgentConfig = z.infer<typeof agentConfigSchema>;
