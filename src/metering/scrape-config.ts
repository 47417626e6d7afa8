/**
 * Configuration of the queue-proxy scraper (functions/scrape), validated at start-up and
 * documented in .env.example.
 */
import { z } from 'zod';

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const scrapeConfigSchema = z.object({
  /** "prometheus": ask a Prometheus server (SCRAPE_PROMETHEUS_URL); "pods": read each revision pod's queue-proxy metrics. */
  SCRAPE_MODE: z.enum(['prometheus', 'pods']).default('pods'),
  /** Base URL of the Prometheus server's HTTP API (SCRAPE_MODE=prometheus). */
  SCRAPE_PROMETHEUS_URL: z.string().url().optional(),
  /** Metrics URL of a revision pod; {ip}, {name} and {namespace} are filled in (queue-proxy serves request metrics on 9091). */
  SCRAPE_POD_METRICS_URL: z.string().min(1).default('http://{ip}:9091/metrics'),
  /** Length of one scrape interval, in seconds: the PingSource's period. Usage is reported per interval. */
  SCRAPE_INTERVAL_SECONDS: int(60),
  /**
   * Tenant billed for revisions without a faasbilling.dev/tenant label. Unset (the default): such
   * revisions — FaaS Billing's own functions among them — are not metered, only counted.
   */
  SCRAPE_DEFAULT_TENANT: z.string().min(1).optional(),
  /** Memory billed for revisions without a memory limit, in MB. */
  SCRAPE_DEFAULT_MEMORY_MB: int(512),
  /** Kubernetes API URL without credentials (e.g. kubectl proxy); unset: in-cluster service account or kubeconfig. */
  KUBERNETES_API_URL: z.string().url().optional(),
  /** Where usage events go (a SinkBinding injects K_SINK): the Broker, or collect. */
  K_SINK: z.string().url().optional(),
  /** "single": one binary CloudEvent per request (a Knative Broker); "batch": one cloudevents batch (collect, the local broker). */
  SCRAPE_SINK_MODE: z.enum(['single', 'batch']).default('single'),
  /** How long one HTTP call (a pod, Prometheus, the sink) may take, in ms. */
  SCRAPE_TIMEOUT_MS: int(5000),
  /** Redis key of the scraper's state (SCRAPE_MODE=pods with REDIS_URL). */
  SCRAPE_STATE_KEY: z.string().min(1).default('faasbilling:scrape:state'),
});
export type ScrapeConfig = z.infer<typeof scrapeConfigSchema>;
