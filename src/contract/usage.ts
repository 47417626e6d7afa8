/**
 * `faasbilling.usage.v1`: one usage report of a function (one invocation, or `invocations` of them),
 * its validation limits, and the seed's JSON shape accepted as a compatibility input.
 * Everything normalises to one form, `UsageRecord`, which is what the buffer and usage_raw hold.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** Limits that make a usage report absurd rather than merely large. */
export const usageLimits = {
  /** Longest billable invocation (AWS Lambda's and Knative's usual ceiling). */
  maxDurationMsPerInvocation: 15 * 60 * 1000,
  maxMemoryMb: 64 * 1024,
  maxInvocationsPerEvent: 1_000_000,
  /** Oldest event time accepted without the backfill flag. */
  maxAgeMs: 35 * 24 * 3600 * 1000,
  /** Clock skew tolerated for event times in the future. */
  maxFutureMs: 5 * 60 * 1000,
  maxLabels: 32,
  maxLabelKeyLength: 63,
  maxLabelValueLength: 256,
  maxNameLength: 253,
} as const;

const name = z.string().trim().min(1).max(usageLimits.maxNameLength);
const finiteNonNegative = z.number().finite().nonnegative();
/**
 * Free-form labels of a usage event. Two have a meaning for pricing (plan price_variants,
 * src/core/pricing/plan.ts): `architecture` (the CPU architecture the invocation ran on, e.g.
 * "arm64", "x86_64") and `priority` ("spot" marks low-priority invocations billed at a discount).
 */
const labels = z
  .record(z.string().min(1).max(usageLimits.maxLabelKeyLength), z.string().max(usageLimits.maxLabelValueLength))
  .refine((l) => Object.keys(l).length <= usageLimits.maxLabels, `at most ${usageLimits.maxLabels} labels`);

/** `data` of a `faasbilling.usage.v1` CloudEvent. */
export const usageData = z
  .object({
    tenant_id: name,
    service: name,
    revision: name.optional(),
    invocations: z.number().int().min(1).max(usageLimits.maxInvocationsPerEvent).default(1),
    /** Total wall time of the `invocations` reported, in ms. */
    duration_ms: finiteNonNegative,
    memory_mb: z.number().finite().positive().max(usageLimits.maxMemoryMb),
    cpu_ms: finiteNonNegative.optional(),
    cold_start: z.boolean().default(false),
    error: z.boolean().default(false),
    labels: labels.default({}),
  })
  .strict()
  .refine((d) => d.duration_ms <= d.invocations * usageLimits.maxDurationMsPerInvocation, {
    message: `duration_ms exceeds ${usageLimits.maxDurationMsPerInvocation} ms per invocation`,
    path: ['duration_ms'],
  });
export type UsageData = z.infer<typeof usageData>;

/** The seed's JSON event (queue-proxy format), accepted as-is and normalised. */
export const seedUsageEvent = z
  .object({
    timestamp: z.iso.datetime({ offset: true }).optional(),
    tenant_id: name,
    service_name: name,
    revision: name.optional(),
    invocations: z.number().int().min(1).max(usageLimits.maxInvocationsPerEvent).default(1),
    duration_seconds: finiteNonNegative,
    memory_mb: z.number().finite().positive().max(usageLimits.maxMemoryMb),
    cpu_seconds: finiteNonNegative.optional(),
    cold_start: z.boolean().default(false),
    error: z.boolean().default(false),
    labels: labels.default({}),
    request_id: z.string().min(1).max(255).optional(),
    backfill: z.boolean().optional(),
  })
  .strict();
export type SeedUsageEvent = z.infer<typeof seedUsageEvent>;

/**
 * One usage report, normalised: what the buffer carries and usage_raw stores. The buffer is a
 * boundary too (entries outlive the code that wrote them), so save checks each record against
 * this schema when it reads it.
 */
export const usageRecordSchema = z.object({
  source: z.string().min(1),
  id: z.string().min(1),
  /** When the invocation ran, ISO 8601 UTC. */
  time: z.iso.datetime({ offset: true }),
  tenant_id: name,
  service: name,
  revision: name,
  invocations: z.number().int().min(1).max(usageLimits.maxInvocationsPerEvent),
  duration_ms: finiteNonNegative,
  memory_mb: z.number().finite().positive().max(usageLimits.maxMemoryMb),
  /** Absent in records written before cpu_ms existed: read as unknown (null). */
  cpu_ms: finiteNonNegative.nullish().transform((v) => v ?? null),
  cold_start: z.boolean(),
  error: z.boolean(),
  labels: z.record(z.string(), z.string()),
});
export type UsageRecord = z.output<typeof usageRecordSchema>;

/** Why a usage report was rejected; `reason` is a stable metric label. */
export interface UsageRejection {
  reason: 'invalid_data' | 'invalid_time' | 'too_old' | 'in_future' | 'missing_attribute';
  detail: string;
}

export type UsageResult = { ok: true; record: UsageRecord } | { ok: false; rejection: UsageRejection };

/** The CloudEvent attributes normalisation needs (any SDK's event fits). */
export interface UsageEnvelope {
  id?: string | undefined;
  source?: string | undefined;
  time?: string | undefined;
  /** Extension attribute `backfill`: "true" lets an old event in. */
  backfill?: unknown;
  data?: unknown;
}

/** Source given to seed-shaped events that arrive without a CloudEvent envelope. */
export const seedSource = '/faasbilling/compat/seed';
/** Revision recorded when a report names none. */
export const unknownRevision = 'unknown';

function describeZodError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Checks an event time against the accepted window; `now` is passed in (no clock here). */
export function checkEventTime(time: string, now: Date, backfill: boolean): UsageRejection | undefined {
  const at = Date.parse(time);
  if (!Number.isFinite(at)) return { reason: 'invalid_time', detail: `time "${time}" is not a valid timestamp` };
  if (at - now.getTime() > usageLimits.maxFutureMs) {
    return { reason: 'in_future', detail: `time ${time} is more than 5 minutes in the future` };
  }
  if (!backfill && now.getTime() - at > usageLimits.maxAgeMs) {
    return { reason: 'too_old', detail: `time ${time} is more than 35 days old; set the backfill extension to load history` };
  }
  return undefined;
}

function finish(
  envelope: { source: string; id: string; time: string; backfill: boolean },
  body: Omit<UsageRecord, 'source' | 'id' | 'time'>,
  now: Date,
): UsageResult {
  const timeProblem = checkEventTime(envelope.time, now, envelope.backfill);
  if (timeProblem) return { ok: false, rejection: timeProblem };
  const time = new Date(envelope.time).toISOString();
  return { ok: true, record: { source: envelope.source, id: envelope.id, time, ...body } };
}

const isTrue = (v: unknown): boolean => v === true || v === 'true';

/** Validates and normalises the envelope and data of a `faasbilling.usage.v1` CloudEvent. */
export function normaliseUsageEvent(event: UsageEnvelope, now: Date): UsageResult {
  if (!event.id || !event.source) {
    return { ok: false, rejection: { reason: 'missing_attribute', detail: 'a CloudEvent needs id and source' } };
  }
  const parsed = usageData.safeParse(event.data);
  if (!parsed.success) return { ok: false, rejection: { reason: 'invalid_data', detail: describeZodError(parsed.error) } };
  const d = parsed.data;
  return finish(
    { source: event.source, id: event.id, time: event.time ?? now.toISOString(), backfill: isTrue(event.backfill) },
    {
      tenant_id: d.tenant_id,
      service: d.service,
      revision: d.revision ?? unknownRevision,
      invocations: d.invocations,
      duration_ms: d.duration_ms,
      memory_mb: d.memory_mb,
      cpu_ms: d.cpu_ms ?? null,
      cold_start: d.cold_start,
      error: d.error,
      labels: d.labels,
    },
    now,
  );
}

/**
 * Validates and normalises a seed-shaped JSON event. Its dedup id is `request_id` when given,
 * otherwise a hash of its content, so the same JSON posted twice is stored once.
 */
export function normaliseSeedEvent(input: unknown, now: Date): UsageResult {
  const parsed = seedUsageEvent.safeParse(input);
  if (!parsed.success) return { ok: false, rejection: { reason: 'invalid_data', detail: describeZodError(parsed.error) } };
  const s = parsed.data;
  const id = s.request_id ?? createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 32);
  return finish(
    { source: seedSource, id, time: s.timestamp ?? now.toISOString(), backfill: s.backfill === true },
    {
      tenant_id: s.tenant_id,
      service: s.service_name,
      revision: s.revision ?? unknownRevision,
      invocations: s.invocations,
      // Seconds to ms, kept to the microsecond the column stores.
      duration_ms: Math.round(s.duration_seconds * 1_000_000) / 1000,
      memory_mb: s.memory_mb,
      cpu_ms: s.cpu_seconds === undefined ? null : Math.round(s.cpu_seconds * 1_000_000) / 1000,
      cold_start: s.cold_start,
      error: s.error,
      labels: s.labels,
    },
    now,
  );
}

/** Tells a seed-shaped JSON object from a CloudEvent in structured mode. */
export function looksLikeSeedEvent(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'service_name' in value && !('specversion' in value);
}
