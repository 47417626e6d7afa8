/**
 * A running API for tests: a fresh migrated database (test/support/db.ts), the real express app
 * on a free port, a bootstrap admin key, and a small fetch client. Real HTTP, real PostgreSQL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startApiServer, type ApiServer } from '../../functions/api/server.js';
import { generateKey } from '../../src/api/keys.js';
import { insertRawEvent } from '../../src/billing/testing.js';
import { loadConfig } from '../../src/runtime/config.js';
import { createLogger } from '../../src/runtime/logger.js';
import { Aggregator } from '../../src/stages/aggregate.js';
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

/**
 * A new tenant (`slug`, USD, default plan) with 2,000,000 invocations on 2025-10-05, aggregated,
 * and its draft bill for 2025-10 (total 0.20 USD): returns the tenant's and the bill's ids.
 */
export async function draftBill(api: TestApi, slug: string): Promise<{ tenantId: string; billId: string }> {
  const tenant = await api.call<{ id: string }>('POST', '/tenants', { body: { slug, name: slug, currency: 'USD' } });
  const service = await api.call<{ id: string }>('POST', '/services', { body: { tenant_id: tenant.body.id, name: 'fn' } });
  const revision = await api.call<{ id: string }>('POST', `/services/${service.body.id}/revisions`, { body: { name: 'fn-00001' } });
  await insertRawEvent(api.database.db, { tenantId: tenant.body.id, serviceId: service.body.id, revisionId: revision.body.id, time: '2025-10-05T10:00:00Z', invocations: 2_000_000, durationMs: '0', memoryMb: '128' });
  await new Aggregator({ db: api.database.db, logger: createLogger('test', 'silent'), batchBuckets: 1000, timeBudgetMs: 30_000 }).run();
  const draft = await api.call<{ id: string }>('POST', '/billing/generate', { body: { tenant_id: tenant.body.id, month: '2025-10' } });
  assert.equal(draft.status, 201, draft.text);
  return { tenantId: tenant.body.id, billId: draft.body.id };
}
