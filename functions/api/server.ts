/**
 * The API server: opens the database, buffer and stores the routes need, ensures the bootstrap
 * admin key, and listens. Used by the process entry (main.ts, the Knative Service) and by tests.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { ArtifactStore } from '../../src/api/artifacts.js';
import { createEventSender } from '../../src/api/events.js';
import { registerCostGauges } from '../../src/api/cost-metrics.js';
import { KeyStore } from '../../src/api/keys.js';
import { openBuffer } from '../../src/adapters/buffer/index.js';
import { createDb, type Db } from '../../src/adapters/postgres.js';
import { Billing } from '../../src/billing/index.js';
import { requireDatabaseUrl, type Config } from '../../src/runtime/config.js';
import type { Logger } from '../../src/runtime/logger.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Aggregator } from '../../src/stages/aggregate.js';
import { Collector } from '../../src/stages/collect.js';
import { Forecaster } from '../../src/stages/forecast.js';
import { createApiApp, createApiMetrics, trackConnections, type ApiApp } from './app.js';

export interface ApiServer {
  url: string;
  server: Server;
  api: ApiApp;
  db: Db;
  close(): Promise<void>;
}

export interface ApiServerOptions {
  config: Config;
  logger: Logger;
  port?: number;
  host?: string;
  now?: () => Date;
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { config, logger } = options;
  const db = createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX);
  const buffer = openBuffer(config, () => db);
  const keys = new KeyStore(db);
  try {
    if (config.API_ADMIN_KEY !== undefined && !(await keys.ensure(config.API_ADMIN_KEY, 'bootstrap admin (API_ADMIN_KEY)'))) {
      throw new Error('API_ADMIN_KEY does not have the shape of a key (fbk_<12 hex>_<43 base64url chars>); create one with `npm run api-key`');
    }
  } catch (err) {
    await buffer.close();
    await db.destroy();
    throw err;
  }
  const now = options.now ?? (() => new Date());
  const metrics = createApiMetrics();
  const api = createApiApp({
    db,
    config,
    logger,
    keys,
    billing: new Billing({ db, logger, batchTenants: config.PRICE_BATCH_TENANTS, now }),
    aggregator: new Aggregator({ db, logger, batchBuckets: config.AGGREGATE_BATCH_BUCKETS, timeBudgetMs: config.AGGREGATE_TIME_BUDGET_MS, concurrency: config.AGGREGATE_CONCURRENCY }),
    forecaster: new Forecaster({ db, logger, now }),
    collector: new Collector({
      buffer,
      metrics: createStageMetrics('api-ingest', () => buffer.stats()),
      maxBatchEvents: config.COLLECT_MAX_BATCH_EVENTS,
      flushEveryEvents: config.COLLECT_FLUSH_EVERY_EVENTS,
      dedupCapacity: config.COLLECT_DEDUP_CAPACITY,
    }),
    artifacts: new ArtifactStore({ dir: config.ARTIFACTS_DIR, maxBytes: config.ARTIFACT_MAX_BYTES }),
    events: createEventSender({ sink: config.K_SINK, logger, registry: metrics.registry }),
    now,
  }, metrics);
  registerCostGauges(api.metrics.registry, db);
  const server = createServer(api.app);
  trackConnections(server, api.metrics);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? config.PORT, options.host ?? '0.0.0.0', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    api,
    db,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await buffer.close();
      await db.destroy();
    },
  };
}
