/**
 * Serving a metered workload: a faas-js-runtime HTTP function wrapped by the meter, or an express
 * app (waiter). On SIGTERM the meter sends what it holds before the process exits.
 */
import faas, { type Context, type StructuredReturn } from 'faas-js-runtime';
import type { Server } from 'node:http';
import { loadMeteringConfig } from './config.js';
import { Meter } from './meter.js';

/** A running workload. */
export interface RunningWorkload {
  meter: Meter;
  server: Server;
  /** Whether the server itself flushes and exits on SIGTERM (faas-js-runtime does). */
  handlesSignals: boolean;
  /** Stops serving and flushes the meter. */
  close(): Promise<void>;
}

/** A workload the runner can start on a port with an environment. */
export interface Workload {
  name: string;
  serve(port: number, env: NodeJS.ProcessEnv): Promise<RunningWorkload>;
}

/** A faas-js-runtime HTTP function metered by a Meter built from the environment. */
export function meteredWorkload(name: string, handle: (context: Context, body?: unknown) => StructuredReturn | Promise<StructuredReturn>): Workload {
  return {
    name,
    async serve(port, env) {
      const meter = new Meter({ config: loadMeteringConfig({ K_SERVICE: name, ...env }) });
      const module = {
        handle: meter.wrap(handle),
        // faas-js-runtime calls this on SIGTERM/SIGINT, then exits: the queued reports go first.
        shutdown: () => meter.close(),
      };
      const server = await faas.start(module, { port, logLevel: 'warn' } as unknown as Parameters<typeof faas.start>[1]);
      return {
        meter,
        server,
        handlesSignals: true,
        async close() {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
          await meter.close();
        },
      };
    },
  };
}
