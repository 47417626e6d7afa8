/**
 * Configuration, validated once at start-up (zod over process.env) with defaults that work on a
 * laptop. Every variable is documented in .env.example; keep the two in sync.
 */
import { hostname } from 'node:os';
import { z } from 'zod';

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const configSchema = z.object({
  /** PostgreSQL connection string; unset means the embedded database started by `npm start`. */
  DATABASE_URL: z.string().url().optional(),
  /** Redis connection string; unset means the embedded buffer (a queue table in PostgreSQL). */
  REDIS_URL: z.string().url().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Port a function listens on (Knative sets it). */
  PORT: int(8080),
  /** Redis stream holding buffered usage; the consumer group is always "save". */
  BUFFER_STREAM: z.string().min(1).default('faasbilling:usage'),
  /** Largest request body collect reads, in bytes. */
  COLLECT_MAX_BODY_BYTES: int(8 * 1024 * 1024),
  /** Most events in one cloudevents batch. */
  COLLECT_MAX_BATCH_EVENTS: int(1000),
  /** Events one collect instance buffers before it asks save to run now (a flush reply). */
  COLLECT_FLUSH_EVERY_EVENTS: int(5000),
  /** (source, id) pairs collect remembers to drop repeats before they reach the buffer. */
  COLLECT_DEDUP_CAPACITY: int(200_000),
  /** Buffer entries save reads per call to the buffer. */
  SAVE_BATCH_ENTRIES: int(50),
  /** Records save aims to write per transaction (it reads entries until it has them, or the buffer is empty). */
  SAVE_BATCH_RECORDS: int(5000),
  /** How long one save invocation keeps draining, in ms. */
  SAVE_TIME_BUDGET_MS: int(25_000),
  /** Entries pending longer than this (a crashed consumer's) are claimed by save, in ms. */
  SAVE_CLAIM_IDLE_MS: int(60_000),
  /** Consumer name in the group; one per pod. */
  SAVE_CONSUMER: z.string().min(1).default(`save-${hostname()}-${process.pid}`),
  /** Tenants the price stage bills per query and transaction (monthly close, running cost). */
  PRICE_BATCH_TENANTS: int(500),
  /** Dirty 5-minute buckets the aggregate stage recomputes per transaction. */
  AGGREGATE_BATCH_BUCKETS: int(2000),
  /** How long one aggregate invocation keeps processing dirty buckets, in ms. */
  AGGREGATE_TIME_BUDGET_MS: int(25_000),
  /** Batches one aggregate invocation processes at once, each on its own connection. */
  AGGREGATE_CONCURRENCY: int(2),
  /**
   * Bootstrap admin API key (fbk_<12 hex>_<43 base64url chars>), stored hashed when the API starts.
   * Unset: `npm start` generates one and prints it; in a cluster, put it in the Secret.
   */
  API_ADMIN_KEY: z.string().optional(),
  /** Largest JSON body the API reads, in bytes (ingest uses COLLECT_MAX_BODY_BYTES). */
  API_MAX_BODY_BYTES: int(1024 * 1024),
  /** Requests per minute one API key may send to ingest endpoints. */
  API_RATE_LIMIT_INGEST: int(1200),
  /** Requests per minute one API key may send to expensive endpoints (billing, forecasts, aggregation, uploads). */
  API_RATE_LIMIT_EXPENSIVE: int(60),
  /** Directory (a volume in a cluster) where uploaded service artifacts are kept. */
  ARTIFACTS_DIR: z.string().min(1).default('.local/artifacts'),
  /** Largest artifact upload, in bytes. */
  ARTIFACT_MAX_BYTES: int(50 * 1024 * 1024),
  /** Tries per webhook and event (notifications), with growing pauses between them. */
  WEBHOOK_ATTEMPTS: int(3),
  /** How long one webhook call may take, in ms. */
  WEBHOOK_TIMEOUT_MS: int(5000),
  /** Let webhooks reach private, loopback and link-local addresses (local development only). */
  WEBHOOK_ALLOW_PRIVATE_ADDRESSES: z.stringbool().default(false),
  /**
   * Days usage_raw month partitions are kept after their month ended (the retention function;
   * at least 36, beyond the 35 days collect still accepts late usage for).
   */
  RETENTION_RAW_DAYS: z.coerce.number().int().min(36).default(90),
  /**
   * Where POST /services/:id/deploy places tenants' functions: `off` (answers 503), `in-cluster`
   * (the API's ServiceAccount), or `kubeconfig` (KUBECONFIG, else ~/.kube/config).
   */
  DEPLOY_TARGET: z.enum(['off', 'in-cluster', 'kubeconfig']).default('off'),
  /** Kubeconfig file for DEPLOY_TARGET=kubeconfig. */
  KUBECONFIG: z.string().min(1).optional(),
  /** Namespace of the tenants' Knative Services (the API's Role must allow it). */
  DEPLOY_NAMESPACE: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/).default('faas-billing'),
  /** How long a deploy waits for the new revision to become Ready, in ms. */
  DEPLOY_READY_TIMEOUT_MS: int(120_000),
  /**
   * Where the API sends the events it causes (a bill finalized or paid through the API): the
   * Broker's URL, injected by a SinkBinding in a cluster and set by `npm start` locally; unset: none.
   */
  K_SINK: z.string().url().optional(),
  /** Broker URL given to deployed functions as K_SINK (where they post usage); unset: none. */
  DEPLOY_SINK_URL: z.string().url().optional(),
  /** Pool size of each function's PostgreSQL connections. */
  DATABASE_POOL_MAX: int(4),
});
export type Config = z.infer<typeof configSchema>;

/** Reads and validates the configuration; throws one error naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  return parsed.data;
}

/** The database URL, or an error that says how to provide one. */
export function requireDatabaseUrl(config: Pick<Config, 'DATABASE_URL'>): string {
  if (!config.DATABASE_URL) {
    throw new Error('DATABASE_URL is not set: point it at PostgreSQL, or run everything with `npm start` (embedded database)');
  }
  return config.DATABASE_URL;
}
