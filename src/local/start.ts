/**
 * `npm start`: the whole system on one machine. Uses DATABASE_URL / REDIS_URL when set, else an
 * embedded PostgreSQL (PGlite) and the buffer in it; migrates; starts every function in its own
 * process under faas-js-runtime (as in its own pod) and the local broker, wired by eventing/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb } from '../adapters/postgres.js';
import { migrateLatest } from '../../schema/migrate.js';
import { seedDemoTenants } from '../../schema/seeds/demo.js';
import { functionNames } from '../../functions/index.js';
import { loadConfig } from '../runtime/config.js';
import { createLogger } from '../runtime/logger.js';
import { startLocalBroker } from './broker.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.js';
import { loadEventing } from './manifests.js';
import { localConfigSchema } from './config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const logger = createLogger('local');

/** Polls a function's readiness until it answers 200 (or gives up after `timeoutMs`). */
async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/health/readiness`);
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not become ready in ${timeoutMs} ms: ${last}`);
}

function spawnFunction(name: string, port: number, env: NodeJS.ProcessEnv): ChildProcess {
  const entry = path.join(root, 'src', 'runtime', 'run-function.ts');
  // Own process group: Ctrl-C reaches only this runner, which stops the children in order.
  const child = spawn(process.execPath, ['--import', 'tsx', entry, name], {
    cwd: root,
    env: { ...env, PORT: String(port), FUNCTION: name, K_SERVICE: name },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  child.on('exit', (code, signal) => {
    if (!stopping) logger.error({ function: name, code, signal }, 'function process exited');
  });
  return child;
}

let stopping = false;
const children: ChildProcess[] = [];

async function main(): Promise<void> {
  const config = loadConfig();
  const local = localConfigSchema.parse(process.env);
  let embedded: EmbeddedPostgres | undefined;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: local.LOCAL_DATA_DIR, port: local.EMBEDDED_PG_PORT });
    databaseUrl = embedded.url;
  }
  const db = createDb(databaseUrl, 1);
  const applied = await migrateLatest(db);
  await seedDemoTenants(db);
  await db.destroy();

  const ports = new Map(functionNames.map((name, i) => [name, local.LOCAL_FUNCTIONS_PORT + i]));
  const urlOf = (name: string): string | undefined => (ports.has(name) ? `http://127.0.0.1:${ports.get(name)}` : undefined);
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: databaseUrl };
  children.push(...functionNames.map((name) => spawnFunction(name, ports.get(name) as number, env)));

  const eventing = await loadEventing(local.EVENTING_DIR);
  let brokerUrl = '';
  const broker = await startLocalBroker({
    eventing,
    port: local.LOCAL_BROKER_PORT,
    logger,
    resolveSink: (dest) => {
      if (dest.uri) return dest.uri;
      if (dest.ref?.kind === 'Broker') return brokerUrl;
      return dest.ref ? urlOf(dest.ref.name) : undefined;
    },
  });
  brokerUrl = broker.url;
  await Promise.all(functionNames.map((name) => waitReady(urlOf(name) as string, 60_000)));

  const lines = [
    'FaaS Billing is running (local mode)',
    `  database   ${embedded ? `embedded PGlite at ${databaseUrl}` : 'DATABASE_URL'}${applied.length ? ` (migrated: ${applied.join(', ')})` : ''}`,
    `  buffer     ${config.REDIS_URL ? 'Redis stream (REDIS_URL)' : 'queue table in PostgreSQL (embedded buffer)'}`,
    `  broker     ${broker.url}   <- send CloudEvents here`,
    ...functionNames.map((name) => `  ${name.padEnd(10)} ${urlOf(name)}   (/metrics, /health/readiness)`),
    'Press Ctrl-C to stop.',
  ];
  console.log(lines.join('\n'));

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: broker first, then functions, then the database');
    // Broker first, so no accepted event is left undelivered while its target is going away.
    await broker.close();
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    await embedded?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  logger.fatal({ err }, 'local start failed');
  // The children run in their own process groups: stop them, or they outlive this runner.
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  process.exit(1);
});
