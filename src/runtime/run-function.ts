/**
 * Entry point of one function process (the image's command, and each child of `npm start`):
 * `run-function <name>` or FUNCTION=<name>. Serves it under faas-js-runtime on PORT. `api` is the
 * REST API, an express app rather than a faas-js-runtime function: same image, its own entry.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { functions } from '../../functions/index.js';
import { loadConfig } from './config.js';
import { serveFunction } from './host.js';

async function serveOne(name: string | undefined): Promise<void> {
  const module = name ? functions[name] : undefined;
  if (!name || !module) {
    console.error(`usage: run-function <${[...Object.keys(functions), 'api'].join('|')}> (or set FUNCTION)`);
    process.exit(2);
  }
  const config = loadConfig();
  const functionDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../functions', name);
  await serveFunction(module, { port: config.PORT, functionDir, bodyLimitBytes: config.COLLECT_MAX_BODY_BYTES, logLevel: config.LOG_LEVEL });
  module.logger.info({ port: config.PORT }, `${name} listening`);
}

const name = process.argv[2] ?? process.env.FUNCTION;
if (name === 'api') await import('../../functions/api/main.js');
else await serveOne(name);
