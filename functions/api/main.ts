/** Process entry of the API (the Knative Service's command, and a child of `npm start`). */
import { loadConfig } from '../../src/runtime/config.js';
import { createLogger } from '../../src/runtime/logger.js';
import { startApiServer } from './server.js';

const logger = createLogger('api');
const server = await startApiServer({ config: loadConfig(), logger }).catch((err: unknown) => {
  logger.fatal({ err }, 'the API did not start');
  process.exit(1);
});
logger.info({ url: server.url }, 'API listening');
const stop = (): void => {
  void server.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
