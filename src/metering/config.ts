/**
 * Configuration of the metering middleware, read from the environment a Knative workload has:
 * K_SINK (injected by a SinkBinding), K_SERVICE and K_REVISION (set by Knative Serving), and
 * METERING_* for the rest. Documented in .env.example.
 */
import { z } from 'zod';

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Labels as "key=value,key=value". */
const labelList = z
  .string()
  .default('')
  .transform((text, ctx) => {
    const labels: Record<string, string> = {};
    for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
      const at = pair.indexOf('=');
      if (at <= 0) {
        ctx.addIssue({ code: 'custom', message: `label "${pair}" is not key=value` });
        return z.NEVER;
      }
      labels[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
    }
    return labels;
  });

export const meteringConfigSchema = z.object({
  /** Where usage events go: the Broker (or collect), injected by a SinkBinding. Unset: reports are dropped (counted). */
  K_SINK: z.string().url().optional(),
  /** The Knative Service and Revision the events name. */
  K_SERVICE: z.string().min(1).default('local'),
  K_REVISION: z.string().min(1).optional(),
  /** Tenant billed for this workload (from the workload's config or its faasbilling.dev/tenant label via the downward API). */
  METERING_TENANT: z.string().min(1).default('demo'),
  /** Extra event labels, "key=value,key=value" (e.g. architecture=arm64). */
  METERING_LABELS: labelList,
  /** "single": one binary CloudEvent per request (a Knative Broker); "batch": one cloudevents batch per send (collect, the local broker). */
  METERING_SINK_MODE: z.enum(['single', 'batch']).default('single'),
  /** Most reports queued while the sink is slow or down; more are dropped and counted. */
  METERING_MAX_QUEUE: int(10_000),
  /** Most reports per send. */
  METERING_BATCH_SIZE: int(100),
  /** How often queued reports are sent, in ms. */
  METERING_FLUSH_INTERVAL_MS: int(1000),
  /** How long one send may take, in ms. */
  METERING_TIMEOUT_MS: int(5000),
  /** "auto": cgroup v2 memory.current when readable, process RSS otherwise. */
  METERING_MEMORY_SOURCE: z.enum(['auto', 'rss']).default('auto'),
});
export type MeteringConfig = z.infer<typeof meteringConfigSchema>;

/** Reads and validates the metering configuration; throws naming every bad variable. */
export function loadMeteringConfig(env: NodeJS.ProcessEnv = process.env): MeteringConfig {
  const parsed = meteringConfigSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid metering configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
