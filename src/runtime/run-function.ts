/**
 * Entry point of one function process (the image's command, and each child of `npm start`):
 * `run-function <name>` or FUNCTION=<name>. Serves it under faas-js-runtime on PORT.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { functions } from '../../functions/index.js';
import { loadConfig } from './config.js';
import { serveFunction } from './host.js';

const name = process.argv[2] ?? process.env.FUNCTION;
const module = name ? functions[name] : undefined;
if (!name || !module) {
  console.error(`usage: run-function <${Object.keys(functions).join('|')}> (or set FUNCTION)`);
  process.exit(2);
}
const config = loadConfig();
const functionDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../functions', name);
await serveFunction(module, { port: config.PORT, functionDir, bodyLimitBytes: config.COLLECT_MAX_BODY_BYTES, logLevel: config.LOG_LEVEL });
module.logger.info({ port: config.PORT }, `${name} listening`);
