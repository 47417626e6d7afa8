/**
 * The whole system on one machine (DESIGN §6): the embedded PostgreSQL unless DATABASE_URL is
 * set, migrations and demo tenants, every function of functions/index.ts in its own child process
 * under faas-js-runtime, and the local broker routing by eventing/ (less the Triggers and
 * PingSources of the metering sources, which need a cluster). `npm start` and `npm run demo`
 * both run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb } from '../adapters/postgres.js';
import { migrateLatest } from '../../schema/migrate.js';
import { seedDemoTenants } from '../../schema/seeds/demo.js';
import { functionNames } from '../../functions/index.js';
import { workloadNames } from '../../functions/workloads.js';
import { generateKey, isKeyShaped } from '../api/keys.js';
import { loadConfig } from '../runtime/config.js';
import type { Logger } from '../runtime/logger.js';
import { startLocalBroker, type LocalBroker } from './broker.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.js';
import { loadEventing, servableEventing } from './manifests.js';
import { localConfigSchema } from './config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface LocalSystem {
  broker: LocalBroker;
  databaseUrl: string;
  /** Embedded PGlite (true) or DATABASE_URL. */
  embedded: boolean;
  /** Redis stream (REDIS_URL) or the queue table in PostgreSQL. */
  redis: boolean;
  /** Migrations applied at start. */
  applied: string[];
  /** The REST API (http://localhost:8080 by default). */
  apiUrl: string;
  /** The bootstrap admin key (API_ADMIN_KEY, or the one local mode generated and keeps). */
  adminKey: string;
  /** Whether local mode generated the key (so `npm start` says where it is kept). */
  adminKeyFile: string | undefined;
  /** URL of a function by name. */
  urlOf(name: string): string;
  functionNames: readonly string[];
  /** Reference workloads running (waiter, hello, echo), metered into the broker as tenant `demo`. */
  workloadNames: readonly string[];
  /** Stops the broker first (nothing accepted is left undelivered), then the functions, then the database. */
  stop(): Promise<void>;
}

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

/**
 * The bootstrap admin key of local mode: API_ADMIN_KEY when set; otherwise one generated once and
 * kept in .local/admin-key beside the embedded data (a fresh one each start with LOCAL_DATA_DIR=memory).
 */
async function localAdminKey(configured: string | undefined, dataDir: string): Promise<{ key: string; file: string | undefined }> {
  if (configured) return { key: configured, file: undefined };
  if (dataDir === 'memory') return { key: generateKey().key, file: undefined };
  const file = path.join(path.dirname(dataDir), 'admin-key');
  const kept = await readFile(file, 'utf8').then((t) => t.trim(), () => '');
  if (isKeyShaped(kept)) return { key: kept, file };
  const { key } = generateKey();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return { key, file };
}

/** Polls the API's health until it answers 200. */
async function waitApi(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/api/v1/health`);
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the API at ${url} did not become ready in ${timeoutMs} ms: ${last}`);
}

/** Starts the system with `env` (process.env by default) as its configuration. */
export async function startLocalSystem(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<LocalSystem> {
  const config = loadConfig(env);
  const local = localConfigSchema.parse(env);
  let stopping = false;
  const children: ChildProcess[] = [];
  let embedded: EmbeddedPostgres | undefined;
  let broker: LocalBroker | undefined;

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await broker?.close();
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
  };

  try {
    let databaseUrl = config.DATABASE_URL;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres({ dataDir: local.LOCAL_DATA_DIR, port: local.EMBEDDED_PG_PORT });
      databaseUrl = embedded.url;
    }
    const db = createDb(databaseUrl, 1);
    const applied = await migrateLatest(db);
    await seedDemoTenants(db);
    await db.destroy();

    const unknownWorkloads = local.LOCAL_WORKLOADS.filter((name) => !workloadNames.includes(name));
    if (unknownWorkloads.length) throw new Error(`LOCAL_WORKLOADS: no workload named ${unknownWorkloads.join(', ')} (known: ${workloadNames.join(', ')})`);
    // Workloads take the ports after the functions'.
    const ports = new Map([...functionNames, ...local.LOCAL_WORKLOADS].map((name, i) => [name, local.LOCAL_FUNCTIONS_PORT + i]));
    const urlOf = (name: string): string => {
      const port = ports.get(name);
      if (port === undefined) throw new Error(`no function named ${name}`);
      return `http://127.0.0.1:${port}`;
    };
    const admin = await localAdminKey(config.API_ADMIN_KEY, local.LOCAL_DATA_DIR);
    const childEnv: NodeJS.ProcessEnv = { ...env, DATABASE_URL: databaseUrl, API_ADMIN_KEY: admin.key };
    for (const name of functionNames) {
      // Own process group: Ctrl-C reaches only the runner, which stops the children in order.
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'runtime', 'run-function.ts'), name], {
        cwd: root,
        env: { ...childEnv, PORT: String(ports.get(name)), FUNCTION: name, K_SERVICE: name },
        stdio: ['ignore', 'inherit', 'inherit'],
        detached: true,
      });
      child.on('exit', (code, signal) => {
        if (!stopping) logger.error({ function: name, code, signal }, 'function process exited');
      });
      children.push(child);
    }

    // The metering sources (functions/sources.ts) read a cluster and do not run locally.
    const { eventing, skipped } = servableEventing(await loadEventing(local.EVENTING_DIR), new Set(functionNames));
    if (skipped.length > 0) logger.info({ skipped }, 'not served locally (they need a Knative cluster)');
    let brokerUrl = '';
    broker = await startLocalBroker({
      eventing,
      port: local.LOCAL_BROKER_PORT,
      logger,
      resolveSink: (dest) => {
        if (dest.uri) return dest.uri;
        if (dest.ref?.kind === 'Broker') return brokerUrl;
        return dest.ref && ports.has(dest.ref.name) ? urlOf(dest.ref.name) : undefined;
      },
    });
    brokerUrl = broker.url;

    const api = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'functions', 'api', 'main.ts')], {
      cwd: root,
      // The API announces bills finalized or paid through it on the broker (K_SINK, as a SinkBinding would set it).
      env: { ...childEnv, PORT: String(local.LOCAL_API_PORT), K_SERVICE: 'api', K_SINK: brokerUrl },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    api.on('exit', (code, signal) => {
      if (!stopping) logger.error({ function: 'api', code, signal }, 'API process exited');
    });
    children.push(api);
    const apiUrl = `http://localhost:${local.LOCAL_API_PORT}`;
    for (const name of local.LOCAL_WORKLOADS) {
      // A tenant's function, metered by the middleware into the local broker (the SinkBinding's part).
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'runtime', 'run-function.ts'), name], {
        cwd: root,
        env: {
          ...env,
          PORT: String(ports.get(name)),
          FUNCTION: name,
          K_SERVICE: name,
          K_REVISION: `${name}-00001`,
          K_SINK: brokerUrl,
          METERING_SINK_MODE: 'batch',
          METERING_TENANT: env.METERING_TENANT ?? 'demo',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
        detached: true,
      });
      child.on('exit', (code, signal) => {
        if (!stopping) logger.error({ workload: name, code, signal }, 'workload process exited');
      });
      children.push(child);
    }
    await Promise.all([...functionNames, ...local.LOCAL_WORKLOADS].map((name) => waitReady(urlOf(name), 60_000)).concat(waitApi(apiUrl, 60_000)));
    return {
      apiUrl,
      adminKey: admin.key,
      adminKeyFile: admin.file,
      broker,
      databaseUrl,
      embedded: embedded !== undefined,
      redis: Boolean(config.REDIS_URL),
      applied,
      urlOf,
      functionNames,
      workloadNames: local.LOCAL_WORKLOADS,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
