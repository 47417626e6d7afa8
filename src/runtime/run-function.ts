/**
 * Entry point of one function process (the image's command, and each child of `npm start`):
 * `run-function <name>` or FUNCTION=<name>. Serves it under faas-js-runtime on PORT. `api` is the
 * REST API, an express app rather than a faas-js-runtime function: same image, its own entry.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { functions } from '../../functions/index.js';
import { sources } from '../../functions/sources.js';
import { workloads } from '../../functions/workloads.js';
import { loadConfig } from './config.js';
import { serveFunction } from './host.js';

async function serveOne(name: string | undefined): Promise<void> {
  const module = name ? (functions[name] ?? sources[name]) : undefined;
  if (!name || !module) {
    console.error(`usage: run-function <${[...Object.keys(functions), ...Object.keys(sources), 'api', ...Object.keys(workloads)].join('|')}> (or set FUNCTION)`);
    process.exit(2);
  }
  const config = loadConfig();
  const functionDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../functions', name);
  await serveFunction(module, { port: config.PORT, functionDir, bodyLimitBytes: config.COLLECT_MAX_BODY_BYTES, logLevel: config.LOG_LEVEL });
  module.logger.info({ port: config.PORT }, `${name} listening`);
}

/** Serves a reference workload (waiter, hello, echo); on SIGTERM its meter sends what it holds, then it exits. */
async function serveWorkload(name: string): Promise<void> {
  const workload = workloads[name];
  if (!workload) throw new Error(`no workload named ${name}`);
  const running = await workload.serve(loadConfig().PORT, process.env);
  if (!running.handlesSignals) {
    const stop = (): void => void running.close().finally(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  }
  console.log(`${name} listening on ${loadConfig().PORT} (memory from ${running.meter.memorySource})`);
}

const name = process.argv[2] ?? process.env.FUNCTION;
if (name === 'api') await import('../../functions/api/main.js');
else if (name && Object.hasOwn(workloads, name)) await serveWorkload(name);
else await serveOne(name);
