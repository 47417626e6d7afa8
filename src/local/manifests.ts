/**
 * Reads the Knative eventing manifests (`eventing/`) the local broker routes by: Brokers, Triggers
 * and PingSources, validated with zod so a typo fails at start with the file and field named.
 * The same files are applied to the cluster, so they stay the single source of truth for routing.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { pingSourceSource } from '../contract/routing.js';

/** ISO 8601 duration (`PT0.5S`, `PT1M`, `P1DT2H`) in milliseconds. */
export function parseIsoDuration(text: string): number {
  const match = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) throw new Error(`not an ISO 8601 duration: ${JSON.stringify(text)}`);
  const [days, hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number];
  return Math.round((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000);
}

const isoDuration = z.string().refine(
  (text) => {
    try {
      parseIsoDuration(text);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'an ISO 8601 duration such as PT0.5S' },
);

const reference = z.object({
  apiVersion: z.string().optional(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
});
/** A Knative Destination: a reference to an addressable resource and/or a URI. */
export const destinationSchema = z
  .object({ ref: reference.optional(), uri: z.string().optional() })
  .refine((d) => d.ref !== undefined || d.uri !== undefined, { message: 'a destination needs ref or uri' });
export type Destination = z.infer<typeof destinationSchema>;

export const deliverySchema = z.object({
  retry: z.number().int().nonnegative().optional(),
  backoffPolicy: z.enum(['linear', 'exponential']).optional(),
  backoffDelay: isoDuration.optional(),
  timeout: isoDuration.optional(),
  deadLetterSink: destinationSchema.optional(),
});
export type DeliverySpec = z.infer<typeof deliverySchema>;

/** The expression dialect of `spec.filters` (Knative's new filters). CESQL is not run locally. */
export type FilterExpression =
  | { exact: Record<string, string> }
  | { prefix: Record<string, string> }
  | { suffix: Record<string, string> }
  | { all: FilterExpression[] }
  | { any: FilterExpression[] }
  | { not: FilterExpression };
const attributeMap = z.record(z.string(), z.string());
export const filterExpressionSchema: z.ZodType<FilterExpression> = z.lazy(() =>
  z.union([
    z.object({ exact: attributeMap }).strict(),
    z.object({ prefix: attributeMap }).strict(),
    z.object({ suffix: attributeMap }).strict(),
    z.object({ all: z.array(filterExpressionSchema) }).strict(),
    z.object({ any: z.array(filterExpressionSchema) }).strict(),
    z.object({ not: filterExpressionSchema }).strict(),
  ]),
);

const metadata = z.object({ name: z.string().min(1), namespace: z.string().optional() });

const brokerSchema = z.object({
  apiVersion: z.literal('eventing.knative.dev/v1'),
  kind: z.literal('Broker'),
  metadata,
  spec: z.object({ delivery: deliverySchema.optional() }).default({}),
});
const triggerSchema = z.object({
  apiVersion: z.literal('eventing.knative.dev/v1'),
  kind: z.literal('Trigger'),
  metadata,
  spec: z.object({
    broker: z.string().min(1),
    filter: z.object({ attributes: attributeMap.optional() }).optional(),
    filters: z.array(filterExpressionSchema).optional(),
    subscriber: destinationSchema,
    delivery: deliverySchema.optional(),
  }),
});
const pingSourceSchema = z.object({
  apiVersion: z.enum(['sources.knative.dev/v1', 'sources.knative.dev/v1beta2']),
  kind: z.literal('PingSource'),
  metadata,
  spec: z.object({
    schedule: z.string().min(1),
    timezone: z.string().optional(),
    contentType: z.string().optional(),
    data: z.string().optional(),
    dataBase64: z.string().optional(),
    sink: destinationSchema,
    ceOverrides: z.object({ extensions: z.record(z.string(), z.string()).optional() }).optional(),
  }),
});

export type BrokerManifest = z.infer<typeof brokerSchema> & { namespace: string };
export type TriggerManifest = z.infer<typeof triggerSchema> & { namespace: string };
export type PingSourceManifest = z.infer<typeof pingSourceSchema> & { namespace: string };

export interface Eventing {
  brokers: BrokerManifest[];
  triggers: TriggerManifest[];
  pingSources: PingSourceManifest[];
}

const kustomizationSchema = z.object({ namespace: z.string().optional(), resources: z.array(z.string()).optional() });

function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(document)'}: ${issue.message}`).join('; ');
}

/**
 * Loads every Broker, Trigger and PingSource of `dir`. When the folder has a kustomization.yaml,
 * its `resources` list says which files count and its `namespace` applies; otherwise every
 * `.yaml`/`.yml` file is read. Other kinds are ignored (they are the cluster's business).
 */
export async function loadEventing(dir: string): Promise<Eventing> {
  const entries = await readdir(dir);
  const kustomizationFile = entries.find((name) => name === 'kustomization.yaml' || name === 'kustomization.yml');
  let namespace = 'default';
  let files = entries.filter((name) => /\.ya?ml$/.test(name) && name !== kustomizationFile).sort();
  if (kustomizationFile) {
    const parsed = kustomizationSchema.safeParse(parseAllDocuments(await readFile(path.join(dir, kustomizationFile), 'utf8'))[0]?.toJS());
    if (!parsed.success) throw new Error(`${path.join(dir, kustomizationFile)}: ${describe(parsed.error)}`);
    namespace = parsed.data.namespace ?? namespace;
    if (parsed.data.resources) files = parsed.data.resources.filter((name) => /\.ya?ml$/.test(name));
  }

  const eventing: Eventing = { brokers: [], triggers: [], pingSources: [] };
  for (const file of files) {
    const fullPath = path.join(dir, file);
    const documents = parseAllDocuments(await readFile(fullPath, 'utf8'));
    for (const [index, document] of documents.entries()) {
      if (document.errors.length > 0) throw new Error(`${fullPath} document ${index + 1}: ${document.errors[0]?.message}`);
      const value: unknown = document.toJS();
      if (value === null || value === undefined) continue;
      const kind = typeof value === 'object' && 'kind' in value ? value.kind : undefined;
      const where = `${fullPath} document ${index + 1} (${String(kind)})`;
      const parse = <T extends z.ZodType>(schema: T): z.infer<T> & { namespace: string } => {
        const result = schema.safeParse(value);
        if (!result.success) throw new Error(`${where}: ${describe(result.error)}`);
        const data = result.data as z.infer<T> & { metadata: { namespace?: string } };
        return { ...data, namespace: data.metadata.namespace ?? namespace };
      };
      if (kind === 'Broker') eventing.brokers.push(parse(brokerSchema));
      else if (kind === 'Trigger') eventing.triggers.push(parse(triggerSchema));
      else if (kind === 'PingSource') eventing.pingSources.push(parse(pingSourceSchema));
    }
  }
  for (const trigger of eventing.triggers) {
    if (!eventing.brokers.some((b) => b.metadata.name === trigger.spec.broker && b.namespace === trigger.namespace)) {
      throw new Error(`Trigger ${trigger.metadata.name} names broker ${trigger.spec.broker}, which no manifest defines`);
    }
  }
  return eventing;
}

/**
 * The part of `eventing` a local run can serve: Triggers whose subscriber is a Knative Service not
 * running here (a metering source that reads a cluster, such as scrape) are left out, and so are
 * the PingSources whose ticks only those Triggers took. `skipped` names what was left out.
 */
export function servableEventing(eventing: Eventing, running: ReadonlySet<string>): { eventing: Eventing; skipped: string[] } {
  const remote = (trigger: TriggerManifest): boolean => {
    const ref = trigger.spec.subscriber.ref;
    return !trigger.spec.subscriber.uri && ref?.kind === 'Service' && !running.has(ref.name);
  };
  const triggers = eventing.triggers.filter((t) => !remote(t));
  const dropped = eventing.triggers.filter(remote);
  const sourceOf = (p: PingSourceManifest): string => pingSourceSource(p.namespace, p.metadata.name);
  const onlyForDropped = (p: PingSourceManifest): boolean =>
    dropped.some((t) => t.spec.filter?.attributes?.source === sourceOf(p)) && !triggers.some((t) => t.spec.filter?.attributes?.source === sourceOf(p));
  const pingSources = eventing.pingSources.filter((p) => !onlyForDropped(p));
  return {
    eventing: { ...eventing, triggers, pingSources },
    skipped: [
      ...dropped.map((t) => `Trigger ${t.metadata.name} (to ${t.spec.subscriber.ref?.name ?? '?'})`),
      ...eventing.pingSources.filter(onlyForDropped).map((p) => `PingSource ${p.metadata.name}`),
    ],
  };
}
