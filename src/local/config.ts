/** Configuration of local mode (`npm start` only), validated like the rest. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const localConfigSchema = z.object({
  /** Port of the REST API. */
  LOCAL_API_PORT: z.coerce.number().int().min(0).default(8080),
  /** Port of the local broker's ingress. */
  LOCAL_BROKER_PORT: z.coerce.number().int().min(0).default(8081),
  /** First port of the functions; each next function takes the next port. */
  LOCAL_FUNCTIONS_PORT: z.coerce.number().int().positive().default(8082),
  /** Port of the embedded PostgreSQL (only without DATABASE_URL). */
  EMBEDDED_PG_PORT: z.coerce.number().int().positive().default(54329),
  /** Where the embedded PostgreSQL keeps its data; "memory" keeps nothing. */
  LOCAL_DATA_DIR: z.string().default(path.join(root, '.local', 'pgdata')),
  /** Reference workloads started beside the system, metered into it (comma-separated; empty for none). */
  LOCAL_WORKLOADS: z
    .string()
    .default('waiter,hello,echo')
    .transform((text) => text.split(',').map((name) => name.trim()).filter(Boolean)),
  /** Folder of the Knative manifests the broker routes by. */
  EVENTING_DIR: z.string().default(path.join(root, 'eventing')),
});

