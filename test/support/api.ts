/**
 * A running API for tests: a fresh migrated database (test/support/db.ts), the real express app
 * on a free port, a bootstrap admin key, and a small fetch client. Real HTTP, real PostgreSQL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startApiServer, type ApiServer } from '../../functions/api/server.js';
import { generateKey } from '../../src/api/keys.js';
import { loadConfig } from '../../src/runtime/config.js';
import { createLogger } from '../../src/runtime/logger.js';
import { freshDatabase, type TestDatabase } from './db.js';

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the body is JSON (or problem+json), else the text. */
  body: T;
  text: string;
}

export interface TestApi {
  url: string;
  database: TestDatabase;
  server: ApiServer;
  adminKey: string;
  artifactsDir: string;
  /** Calls /api/v1<path> with `key` (the admin key by default; null for none). */
  call<T = Record<string, unknown>>(method: string, path: string, options?: { body?: unknown; key?: string | null; headers?: Record<string, string>; raw?: string | Uint8Array | FormData }): Promise<ApiResponse<T>>;
  close(): Promise<void>;
}

/** Starts the API; `env` overrides configuration (e.g. rate limits, ARTIFACT_MAX_BYTES); `now` pins the clock. */
export async function startTestApi(options: { env?: NodeJS.ProcessEnv; now?: () => Date } = {}): Promise<TestApi> {
  const database = await freshDatabase();
  const artifactsDir = await mkdtemp(path.join(tmpdir(), 'fb-artifacts-'));
  const adminKey = generateKey().key;
  const config = loadConfig({
    DATABASE_URL: database.url,
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, BUFFER_STREAM: `faasbilling:test:${path.basename(artifactsDir)}` } : {}),
    API_ADMIN_KEY: adminKey,
    ARTIFACTS_DIR: artifactsDir,
    LOG_LEVEL: 'silent',
    ...options.env,
  });
  const server = await startApiServer({ config, logger: createLogger('api-test', 'silent'), port: 0, host: '127.0.0.1', ...(options.now ? { now: options.now } : {}) });
  const call: TestApi['call'] = async (method, p, o = {}) => {
    const key = o.key === undefined ? adminKey : o.key;
    const headers: Record<string, string> = { ...(key ? { authorization: `Bearer ${key}` } : {}), ...o.headers };
    let body: string | Uint8Array | FormData | undefined = o.raw;
    if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${server.url}/api/v1${p}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const parsed: unknown = type.includes('json') && text ? JSON.parse(text) : text;
    return { status: res.status, headers: res.headers, body: parsed as never, text };
  };
  return {
    url: server.url,
    database,
    server,
    adminKey,
    artifactsDir,
    call,
    async close() {
      await server.close();
      await database.drop();
      await rm(artifactsDir, { recursive: true, force: true });
    },
  };
}
