/**
 * Writes usage records to usage_raw: resolves tenants, auto-registers services and revisions of
 * known tenants, sends records of unknown tenants to dead_letters, and inserts the rest
 * idempotently (ON CONFLICT DO NOTHING on the CloudEvent key) — all in one transaction.
 *
 * On PostgreSQL rows arrive by COPY, which parses and inserts rows far cheaper than an INSERT
 * over bound array parameters (`npm run bench` measures it): straight into usage_raw when the batch
 * holds no key already stored (the usual case), else into a session-local staging table and then
 * INSERT … SELECT … ON CONFLICT DO NOTHING. The embedded database (PGlite behind its socket
 * server) does not speak the COPY sub-protocol, so there the same INSERT reads the rows from
 * unnest() over array parameters.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { EventType } from '../contract/events.js';
import type { UsageRecord } from '../contract/usage.js';
import { recordDeadLetters, type DeadLetter } from './dead-letters.js';
import type { Db } from './postgres.js';

const usageDeadLetter = (r: UsageRecord, reason: string, detail: string): DeadLetter => ({
  stage: 'save',
  reason,
  detail,
  source: r.source,
  eventId: r.id,
  eventType: EventType.usage,
  tenantKey: r.tenant_id,
  payload: r,
});

export interface StoreResult {
  inserted: number;
  duplicates: number;
  deadLettered: number;
  minTime: string | null;
  maxTime: string | null;
  /** Tenant ids (uuid) that received rows. */
  tenants: string[];
}

/** Services and revisions a transaction registered, cached once it commits. */
interface Registered {
  services: Map<string, string>;
  revisions: Map<string, string>;
}

/** The database ids a usage record resolves to. */
export interface RowIds {
  tenantId: string;
  serviceId: string;
  revisionId: string;
}

interface ResolvedRow {
  r: UsageRecord;
  ids: RowIds;
}

/** The usage_raw columns save writes, in the order of `usageRawCopyLine`. */
export const usageRawColumns =
  'time, tenant_id, service_id, revision_id, source, event_id, invocations, duration_ms, memory_mb, cpu_ms, cold_start, error, labels';

/** Escapes a value for COPY's text format, where backslash, tab and line breaks are syntax. */
const copyEscapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const copyText = (value: string): string => value.replace(/[\\\t\n\r]/g, (c) => copyEscapes[c] ?? c);

/** One usage_raw row in COPY text format (no trailing newline). */
export function usageRawCopyLine(r: UsageRecord, ids: RowIds): string {
  return [
    r.time,
    ids.tenantId,
    ids.serviceId,
    ids.revisionId,
    copyText(r.source),
    copyText(r.id),
    r.invocations,
    r.duration_ms,
    r.memory_mb,
    r.cpu_ms ?? '\\N',
    r.cold_start,
    r.error,
    copyText(JSON.stringify(r.labels)),
  ].join('\t');
}

/** Lines per chunk handed to the COPY stream: large enough to be cheap, small enough to stream. */
const copyChunkLines = 1000;

function* copyChunks(rows: ResolvedRow[]): Generator<string> {
  for (let start = 0; start < rows.length; start += copyChunkLines) {
    const lines = rows.slice(start, start + copyChunkLines).map(({ r, ids }) => usageRawCopyLine(r, ids));
    yield `${lines.join('\n')}\n`;
  }
}

// Session-local and emptied at every commit, so concurrent saves never see each other's rows.
const createStaging = `CREATE TEMP TABLE IF NOT EXISTS usage_raw_staging (
  time timestamptz NOT NULL, tenant_id uuid NOT NULL, service_id uuid NOT NULL, revision_id uuid NOT NULL,
  source text NOT NULL, event_id text NOT NULL, invocations integer NOT NULL, duration_ms numeric NOT NULL,
  memory_mb numeric NOT NULL, cpu_ms numeric, cold_start boolean NOT NULL, error boolean NOT NULL, labels jsonb NOT NULL
) ON COMMIT DELETE ROWS`;

/** The insert both paths share: `rowsSql` yields the rows in `usageRawColumns` order. */
const insertFrom = (rowsSql: string): string => `WITH ins AS (
   INSERT INTO usage_raw (${usageRawColumns})
   ${rowsSql}
   ON CONFLICT (tenant_id, source, event_id, time) DO NOTHING
   RETURNING time, tenant_id)
 SELECT count(*)::int AS inserted, min(time) AS min_time, max(time) AS max_time,
        coalesce(array_agg(DISTINCT tenant_id::text), '{}') AS tenants FROM ins`;

type InsertSummary = Omit<StoreResult, 'duplicates' | 'deadLettered'>;
interface InsertSummaryRow {
  inserted: number;
  min_time: Date | null;
  max_time: Date | null;
  tenants: string[];
}

const uniqueViolation = '23505';

/** The pg connection of a transaction: inside one, knex hands out the transaction's own. */
const connectionOf = async (trx: Knex.Transaction): Promise<pg.ClientBase> => (await (trx.client as Knex.Client).acquireConnection()) as pg.ClientBase;

/** Streams rows into `table` with COPY FROM STDIN on `connection`. */
async function copyRows(connection: pg.ClientBase, table: string, rows: ResolvedRow[]): Promise<void> {
  await pipeline(Readable.from(copyChunks(rows)), connection.query(copyFrom(`COPY ${table} (${usageRawColumns}) FROM STDIN`)));
}

/** The summary the shared INSERT … RETURNING query computed. */
function summaryOfReturned(result: { rows: InsertSummaryRow[] }): InsertSummary {
  const row = result.rows[0];
  return {
    inserted: row?.inserted ?? 0,
    minTime: row?.min_time ? row.min_time.toISOString() : null,
    maxTime: row?.max_time ? row.max_time.toISOString() : null,
    tenants: row?.tenants ?? [],
  };
}

/** The same summary, computed here for rows that were all inserted. */
function summaryOf(rows: ResolvedRow[]): InsertSummary {
  let min = Infinity;
  let max = -Infinity;
  const tenants = new Set<string>();
  for (const { r, ids } of rows) {
    const at = Date.parse(r.time);
    if (at < min) min = at;
    if (at > max) max = at;
    tenants.add(ids.tenantId);
  }
  return {
    inserted: rows.length,
    minTime: rows.length ? new Date(min).toISOString() : null,
    maxTime: rows.length ? new Date(max).toISOString() : null,
    tenants: [...tenants].sort(),
  };
}

const monthStart = (iso: string): string => `${iso.slice(0, 7)}-01`;
const nextMonth = (month: string): string => {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, '0')}-01`;
};

/** Postgres errors that mean "someone else created this partition first" or "default has rows". */
const partitionRaceCodes = new Set(['42P07', '23505', '23514']);

export class UsageStore {
  // Ids never change once created, so they are cached for the life of the process.
  private readonly tenantIds = new Map<string, string>();
  private readonly serviceIds = new Map<string, string>();
  private readonly revisionIds = new Map<string, string>();
  private readonly partitions = new Set<string>();
  private copyCheck: Promise<boolean> | undefined;
  // Connections whose session has the staging table (created once per session, not per batch).
  private stagedConnections = new WeakSet<object>();

  constructor(private readonly db: Db) {}

  /** Makes sure a month partition exists for every month the records fall in. */
  async ensurePartitions(records: UsageRecord[]): Promise<void> {
    const months = new Set(records.map((r) => monthStart(r.time)));
    for (const month of months) {
      if (this.partitions.has(month)) continue;
      const table = `usage_raw_p${month.slice(0, 4)}${month.slice(5, 7)}`;
      try {
        await this.db.raw(
          `CREATE TABLE IF NOT EXISTS ${table} PARTITION OF usage_raw FOR VALUES FROM ('${month} 00:00:00+00') TO ('${nextMonth(month)} 00:00:00+00')`,
        );
      } catch (err) {
        // A concurrent save created it, or old rows already sit in the default partition (they
        // stay there; queries see them the same). Either way the insert below is safe.
        const code = (err as { code?: string }).code;
        if (!code || !partitionRaceCodes.has(code)) throw err;
      }
      this.partitions.add(month);
    }
  }

  private async resolveTenants(trx: Knex.Transaction, keys: string[]): Promise<void> {
    const missing = keys.filter((k) => !this.tenantIds.has(k));
    if (missing.length === 0) return;
    const rows = await trx('tenants')
      .select<{ id: string; slug: string }[]>('id', 'slug')
      .whereRaw('slug = ANY(?) OR id::text = ANY(?)', [missing, missing]);
    for (const row of rows) {
      this.tenantIds.set(row.slug, row.id);
      this.tenantIds.set(row.id, row.id);
    }
  }

  /**
   * Finds or creates (auto_registered) the named children of parents — services of tenants or
   * revisions of services — and notes their ids under "<parent id>/<name>" in `fresh`. They reach
   * the shared cache only after the transaction commits: until then another save running
   * concurrently must not use an id that may still be rolled back.
   */
  private async register(
    trx: Knex.Transaction,
    kind: 'services' | 'revisions',
    pairs: [parentId: string, name: string][],
    fresh: Map<string, string>,
  ): Promise<void> {
    const cache = kind === 'services' ? this.serviceIds : this.revisionIds;
    const parentColumn = kind === 'services' ? 'tenant_id' : 'service_id';
    const missing = pairs.filter(([parent, name]) => !cache.has(`${parent}/${name}`) && !fresh.has(`${parent}/${name}`));
    if (missing.length === 0) return;
    const parents = missing.map(([parent]) => parent);
    const names = missing.map(([, name]) => name);
    await trx.raw(
      `INSERT INTO ${kind} (${parentColumn}, name, auto_registered)
       SELECT p, n, true FROM unnest(?::uuid[], ?::text[]) AS x(p, n) ON CONFLICT (${parentColumn}, name) DO NOTHING`,
      [parents, names],
    );
    const rows = await trx.raw<{ rows: { id: string; parent: string; name: string }[] }>(
      `SELECT c.id, c.${parentColumn} AS parent, c.name FROM ${kind} c JOIN unnest(?::uuid[], ?::text[]) AS x(p, n)
         ON c.${parentColumn} = x.p AND c.name = x.n`,
      [parents, names],
    );
    for (const row of rows.rows) fresh.set(`${row.parent}/${row.name}`, row.id);
  }

  /** Resolves each record to ids; records of unknown tenants map to undefined. */
  private async resolve(trx: Knex.Transaction, records: UsageRecord[], fresh: Registered): Promise<(RowIds | undefined)[]> {
    const serviceIdOf = (key: string): string => (this.serviceIds.get(key) ?? fresh.services.get(key)) as string;
    const revisionIdOf = (key: string): string => (this.revisionIds.get(key) ?? fresh.revisions.get(key)) as string;
    await this.resolveTenants(trx, [...new Set(records.map((r) => r.tenant_id))]);
    const known = records.filter((r) => this.tenantIds.has(r.tenant_id));
    const servicePairs = new Map<string, [string, string]>();
    for (const r of known) {
      const tenantId = this.tenantIds.get(r.tenant_id) as string;
      servicePairs.set(`${tenantId}/${r.service}`, [tenantId, r.service]);
    }
    await this.register(trx, 'services', [...servicePairs.values()], fresh.services);
    const revisionPairs = new Map<string, [string, string]>();
    for (const r of known) {
      const serviceId = serviceIdOf(`${this.tenantIds.get(r.tenant_id)}/${r.service}`);
      revisionPairs.set(`${serviceId}/${r.revision}`, [serviceId, r.revision]);
    }
    await this.register(trx, 'revisions', [...revisionPairs.values()], fresh.revisions);
    return records.map((r) => {
      const tenantId = this.tenantIds.get(r.tenant_id);
      if (!tenantId) return undefined;
      const serviceId = serviceIdOf(`${tenantId}/${r.service}`);
      return { tenantId, serviceId, revisionId: revisionIdOf(`${serviceId}/${r.revision}`) };
    });
  }

  /** Whether the server takes COPY FROM STDIN (any real PostgreSQL; not the embedded PGlite). */
  private copySupported(trx: Knex.Transaction): Promise<boolean> {
    this.copyCheck ??= trx
      .raw<{ rows: { version: string }[] }>('SELECT version() AS version')
      .then(({ rows }) => !(rows[0]?.version ?? '').includes('PGlite'))
      .catch((err: unknown) => {
        this.copyCheck = undefined;
        throw err;
      });
    return this.copyCheck;
  }

  private async insertRows(trx: Knex.Transaction, rows: ResolvedRow[]): Promise<InsertSummary> {
    if (!(await this.copySupported(trx))) return summaryOfReturned(await this.insertByUnnest(trx, rows));
    return (await this.copyUnlessDuplicate(trx, rows)) ?? summaryOfReturned(await this.insertByStaging(trx, rows));
  }

  /**
   * COPYs the rows straight into usage_raw, inside a savepoint. A key already stored (a
   * redelivered entry) makes the COPY fail with a unique violation: then the savepoint is rolled
   * back and this resolves undefined, so the caller drops exactly the duplicates another way.
   */
  private async copyUnlessDuplicate(trx: Knex.Transaction, rows: ResolvedRow[]): Promise<InsertSummary | undefined> {
    await trx.raw('SAVEPOINT usage_copy');
    try {
      await copyRows(await connectionOf(trx), 'usage_raw', rows);
    } catch (err) {
      if ((err as { code?: string }).code !== uniqueViolation) throw err;
      await trx.raw('ROLLBACK TO SAVEPOINT usage_copy');
      return undefined;
    }
    await trx.raw('RELEASE SAVEPOINT usage_copy');
    return summaryOf(rows);
  }

  /** COPY into the staging table on the transaction's own connection, then INSERT … SELECT … ON CONFLICT. */
  private async insertByStaging(trx: Knex.Transaction, rows: ResolvedRow[]): Promise<{ rows: InsertSummaryRow[] }> {
    const connection = await connectionOf(trx);
    if (!this.stagedConnections.has(connection)) {
      await trx.raw(createStaging);
      this.stagedConnections.add(connection);
    }
    await copyRows(connection, 'usage_raw_staging', rows);
    return trx.raw<{ rows: InsertSummaryRow[] }>(insertFrom(`SELECT ${usageRawColumns} FROM usage_raw_staging`));
  }

  private insertByUnnest(trx: Knex.Transaction, rows: ResolvedRow[]): Promise<{ rows: InsertSummaryRow[] }> {
    const column = <T>(pick: (row: ResolvedRow) => T): T[] => rows.map(pick);
    return trx.raw<{ rows: InsertSummaryRow[] }>(
      insertFrom(`SELECT * FROM unnest(?::timestamptz[], ?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::int[],
                              ?::numeric[], ?::numeric[], ?::numeric[], ?::bool[], ?::bool[], ?::jsonb[])`),
      [
        column(({ r }) => r.time),
        column(({ ids }) => ids.tenantId),
        column(({ ids }) => ids.serviceId),
        column(({ ids }) => ids.revisionId),
        column(({ r }) => r.source),
        column(({ r }) => r.id),
        column(({ r }) => r.invocations),
        column(({ r }) => r.duration_ms),
        column(({ r }) => r.memory_mb),
        column(({ r }) => r.cpu_ms),
        column(({ r }) => r.cold_start),
        column(({ r }) => r.error),
        column(({ r }) => JSON.stringify(r.labels)),
      ] as Knex.Value[],
    );
  }

  /** Dead-letters records that cannot be stored at all (e.g. an insert that fails alone). */
  async deadLetterRecords(records: UsageRecord[], reason: string, detail: string): Promise<number> {
    return recordDeadLetters(this.db, records.map((r) => usageDeadLetter(r, reason, detail)));
  }

  /** Throws when the database cannot answer. */
  async ping(): Promise<void> {
    await this.db.raw('select 1');
  }

  /** Stores records in one transaction; resolves once it has committed. */
  async store(records: UsageRecord[]): Promise<StoreResult> {
    await this.ensurePartitions(records);
    try {
      return await this.storeInTransaction(records);
    } catch (err) {
      // A staging table created in a rolled-back transaction is gone too. (Ids registered in it
      // never reached the cache.)
      this.stagedConnections = new WeakSet();
      throw err;
    }
  }

  private async storeInTransaction(records: UsageRecord[]): Promise<StoreResult> {
    const fresh: Registered = { services: new Map(), revisions: new Map() };
    const result = await this.db.transaction(async (trx) => {
      const ids = await this.resolve(trx, records, fresh);
      const rows: ResolvedRow[] = [];
      const unknown: UsageRecord[] = [];
      records.forEach((r, i) => {
        const resolved = ids[i];
        if (resolved) rows.push({ r, ids: resolved });
        else unknown.push(r);
      });
      const written = rows.length ? await this.insertRows(trx, rows) : { inserted: 0, minTime: null, maxTime: null, tenants: [] };
      const deadLettered = await recordDeadLetters(
        trx,
        unknown.map((r) => usageDeadLetter(r, 'unknown_tenant', `tenant "${r.tenant_id}" does not exist; create it, then replay this dead letter`)),
      );
      return { ...written, duplicates: rows.length - written.inserted, deadLettered };
    });
    // Committed: the ids exist for every connection now.
    for (const [key, id] of fresh.services) this.serviceIds.set(key, id);
    for (const [key, id] of fresh.revisions) this.revisionIds.set(key, id);
    return result;
  }
}
