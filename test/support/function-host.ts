/** Runs one of our functions under faas-js-runtime on a free port, as its pod would. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Server } from 'node:http';
import { defineFunction, type FunctionFactory, type FunctionModule } from '../../src/runtime/function.js';
import { serveFunction } from '../../src/runtime/host.js';
import { freePort } from './net.js';

// faas-js-runtime adds process signal listeners per server; a suite starts many servers.
process.setMaxListeners(100);

const functionsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../functions');

export interface RunningFunction {
  url: string;
  module: FunctionModule;
  close(): Promise<void>;
}

/** Starts `factory` as function `name` with `env` as its whole environment. */
export async function startFunction(name: string, factory: FunctionFactory, env: Record<string, string | undefined>): Promise<RunningFunction> {
  const module = defineFunction(name, factory, { LOG_LEVEL: 'silent', ...env });
  const port = await freePort();
  const server: Server = await serveFunction(module, {
    port,
    functionDir: path.join(functionsDir, name),
    bodyLimitBytes: Number(env.COLLECT_MAX_BODY_BYTES ?? 8 * 1024 * 1024),
    logLevel: 'silent',
  });
  return {
    url: `http://127.0.0.1:${port}`,
    module,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await module.shutdown();
    },
  };
}
