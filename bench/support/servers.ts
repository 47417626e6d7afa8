/** The HTTP servers under test: a bare fastify baseline, and collect served as its pod serves it. */
import type { Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { createCollect } from '../../functions/collect/index.js';
import { loadConfig } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory, type FunctionModule } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { serveFunction } from '../../src/runtime/host.js';
import { freePort } from '../../test/support/net.js';

// faas-js-runtime adds process signal listeners per server, and the bench starts several.
process.setMaxListeners(50);

const functionsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../functions');

export interface ServerUnderTest {
  url: string;
  close(): Promise<void>;
}

/** The baseline: fastify reading the same JSON body and answering 202, doing nothing else. */
export async function startBareFastify(): Promise<ServerUnderTest> {
  const app = Fastify({ logger: false });
  app.post('/', async (_request, reply) => reply.code(202).send({ accepted: 1 }));
  const port = await freePort();
  await app.listen({ port, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${port}/`, close: () => app.close() };
}

/** Serves `module` the way a function pod does (faas-js-runtime behind our host, with collect's func.yaml). */
async function serveModule(module: FunctionModule, bodyLimitBytes: number): Promise<{ url: string; server: Server }> {
  const port = await freePort();
  const server = await serveFunction(module, { port, functionDir: path.join(functionsDir, 'collect'), bodyLimitBytes, logLevel: 'warn' });
  return { url: `http://127.0.0.1:${port}/`, server };
}

const closeServer = (server: Server): Promise<void> => new Promise<void>((resolve) => server.close(() => resolve()));

/**
 * The runtime's floor: faas-js-runtime and our host around a handler that answers 202 at once,
 * so the gap between fastify and collect splits into what the runtime costs and what collect does.
 */
export async function startEmptyFunction(): Promise<ServerUnderTest> {
  const factory: FunctionFactory = () =>
    Promise.resolve({
      metrics: createStageMetrics('empty'),
      handle: () => Promise.resolve({ statusCode: 202, body: { accepted: 1 } }),
      ready: () => Promise.resolve(),
      close: () => Promise.resolve(),
    });
  const module = defineFunction('empty', factory, { LOG_LEVEL: 'warn' });
  const { url, server } = await serveModule(module, 1024 * 1024);
  return {
    url,
    async close() {
      await closeServer(server);
      await module.shutdown();
    },
  };
}

export interface CollectUnderTest extends ServerUnderTest {
  /** Events collect has accepted into the buffer (its own metric; the final count once closed). */
  accepted(): Promise<number>;
}

/** collect under faas-js-runtime with the Redis buffer on `stream`, configured as in production otherwise. */
export async function startCollect(redisUrl: string, stream: string): Promise<CollectUnderTest> {
  const env = { ...process.env, REDIS_URL: redisUrl, BUFFER_STREAM: stream, LOG_LEVEL: 'warn' };
  const config = loadConfig(env);
  const module = defineFunction('collect', createCollect, env);
  const { url, server } = await serveModule(module, config.COLLECT_MAX_BODY_BYTES);
  const read = async (): Promise<number> => {
    const metrics = module.instance()?.metrics;
    if (!metrics) throw new Error('collect is not running');
    return (await metrics.eventsAccepted.get()).values[0]?.value ?? 0;
  };
  let final: number | undefined;
  return {
    url,
    accepted: async () => final ?? read(),
    async close() {
      // Requests still in flight finish first: their events may already be in the buffer.
      await closeServer(server);
      final = await read();
      await module.shutdown();
    },
  };
}
