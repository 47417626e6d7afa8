/**
 * The embedded database of local mode: PGlite (PostgreSQL compiled to WASM) behind its socket
 * server, so knex/pg connect to it exactly as to a real server. Several clients share its one
 * session through our protocol-aware queue (pglite-queue.ts), which keeps each client's message
 * group and transaction together.
 */
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { ProtocolGroupQueue } from './pglite-queue.js';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/** Starts PGlite on `port`; `dataDir` "memory" keeps nothing on disk. */
export async function startEmbeddedPostgres(options: { dataDir: string; port: number; host?: string }): Promise<EmbeddedPostgres> {
  const inMemory = options.dataDir === 'memory';
  if (!inMemory) mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create(inMemory ? 'memory://' : options.dataDir);
  const host = options.host ?? '127.0.0.1';
  // Each function keeps a small pool; 64 leaves room for several processes plus psql.
  const server = new PGLiteSocketServer({ db, port: options.port, host, maxConnections: 64 });
  // The server hands its queue to every connection it accepts; ours must be in place before start.
  (server as unknown as { queryQueue: ProtocolGroupQueue }).queryQueue = new ProtocolGroupQueue(db);
  await server.start();
  return {
    url: `postgres://postgres@${host}:${options.port}/postgres?sslmode=disable`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
