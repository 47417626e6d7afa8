/** What the bench asks of the load generator (a child process running autocannon), and its answer. */
import { z } from 'zod';

export const loadSpec = z.object({
  url: z.string().url(),
  /** "binary": one usage CloudEvent per request; "batch": `batchSize` structured events per request. */
  mode: z.enum(['binary', 'batch']),
  batchSize: z.number().int().positive().default(1),
  /** CloudEvent source of every event sent (a phase's rows are counted by it). */
  source: z.string().min(1),
  connections: z.number().int().positive(),
  durationSeconds: z.number().positive(),
  /** An unmeasured run first, so both servers are compared with warm code. */
  warmupSeconds: z.number().nonnegative().default(0),
});
export type LoadSpec = z.input<typeof loadSpec>;

/** The measured run, as the load generator reports it. */
export interface LoadResult {
  type: 'result';
  /** Responses with a 2xx status. */
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSeconds: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}
