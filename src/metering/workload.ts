/**
 * Serving a metered workload: a faas-js-runtime HTTP function wrapped by the meter, or an express
 * app (waiter). On SIGTERM the meter sends what it holds before the process exits.
 */
import faas, { type Context, type StructuredReturn } from 'faas-js-runtime';
import type { Server } from 'node:http';
import { serveRegistryToo } from '../runtime/host.js';
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

interface ProbeReply {
  code(status: number): ProbeReply;
  header(name: string, value: string): ProbeReply;
  send(body: string): unknown;
}

/**
 * The workload's probes answer OK while it serves HTTP. faas-js-runtime's own probes run
 * overload-protection, which fails with a 503 (and a TypeError on fastify's reply) whenever the
 * event loop is briefly busy, e.g. while a machine starts many processes at once.
 */
const serving = (_request: unknown, reply: ProbeReply): void => void reply.code(200).header('content-type', 'text/plain; charset=utf-8').send('OK');

/** A faas-js-runtime HTTP function metered by a Meter built from the environment. */
export function meteredWorkload(name: string, handle: (context: Context, body?: unknown) => StructuredReturn | Promise<StructuredReturn>): Workload {
  return {
    name,
    async serve(port, env) {
      const meter = new Meter({ config: loadMeteringConfig({ K_SERVICE: name, ...env }) });
      const module = {
        handle: meter.wrap(handle),
        readiness: serving,
        liveness: serving,
        // faas-js-runtime calls this on SIGTERM/SIGINT, then exits: the queued reports go first.
        shutdown: () => meter.close(),
      };
      // The runtime's typings describe probes over Http2ServerResponse; at run time they get fastify's reply.
      const server = await faas.start(module as unknown as Parameters<typeof faas.start>[0], { port, logLevel: 'warn' } as unknown as Parameters<typeof faas.start>[1]);
      // /metrics: the runtime's faas_* and the meter's faasbilling_meter_* (drops, queue, sends).
      serveRegistryToo(server, meter.registry);
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
