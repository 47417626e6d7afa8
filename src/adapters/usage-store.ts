/**
 * Writes usage records to usage_raw: resolves tenants, auto-registers services and revisions of
 * known tenants, sends records of unknown tenants to dead_letters, and inserts the rest
 * idempotently (ON CONFLICT DO NOTHING on the CloudEvent key) — all in one transaction.
 */
import type { Knex } from 'knex';
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

interface Ids {
  tenantId: string;
  serviceId: string;
  revisionId: string;
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
   * revisions of services — and caches their ids under "<parent id>/<name>".
   */
  private async register(trx: Knex.Transaction, kind: 'services' | 'revisions', pairs: [parentId: string, name: string][]): Promise<void> {
    const cache = kind === 'services' ? this.serviceIds : this.revisionIds;
    const parentColumn = kind === 'services' ? 'tenant_id' : 'service_id';
    const missing = pairs.filter(([parent, name]) => !cache.has(`${parent}/${name}`));
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
    for (const row of rows.rows) cache.set(`${row.parent}/${row.name}`, row.id);
  }

  /** Resolves each record to ids; records of unknown tenants map to undefined. */
  private async resolve(trx: Knex.Transaction, records: UsageRecord[]): Promise<(Ids | undefined)[]> {
    await this.resolveTenants(trx, [...new Set(records.map((r) => r.tenant_id))]);
    const known = records.filter((r) => this.tenantIds.has(r.tenant_id));
    const servicePairs = new Map<string, [string, string]>();
    for (const r of known) {
      const tenantId = this.tenantIds.get(r.tenant_id) as string;
      servicePairs.set(`${tenantId}/${r.service}`, [tenantId, r.service]);
    }
    await this.register(trx, 'services', [...servicePairs.values()]);
    const revisionPairs = new Map<string, [string, string]>();
    for (const r of known) {
      const serviceId = this.serviceIds.get(`${this.tenantIds.get(r.tenant_id)}/${r.service}`) as string;
      revisionPairs.set(`${serviceId}/${r.revision}`, [serviceId, r.revision]);
    }
    await this.register(trx, 'revisions', [...revisionPairs.values()]);
    return records.map((r) => {
      const tenantId = this.tenantIds.get(r.tenant_id);
      if (!tenantId) return undefined;
      const serviceId = this.serviceIds.get(`${tenantId}/${r.service}`) as string;
      return { tenantId, serviceId, revisionId: this.revisionIds.get(`${serviceId}/${r.revision}`) as string };
    });
  }

  private async insertRows(trx: Knex.Transaction, rows: { r: UsageRecord; ids: Ids }[]): Promise<Omit<StoreResult, 'duplicates' | 'deadLettered'>> {
    const column = <T>(pick: (row: { r: UsageRecord; ids: Ids }) => T): T[] => rows.map(pick);
    const result = await trx.raw<{ rows: { inserted: number; min_time: Date | null; max_time: Date | null; tenants: string[] }[] }>(
      `WITH ins AS (
         INSERT INTO usage_raw (time, tenant_id, service_id, revision_id, source, event_id, invocations,
                                duration_ms, memory_mb, cpu_ms, cold_start, error, labels)
         SELECT * FROM unnest(?::timestamptz[], ?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::int[],
                              ?::numeric[], ?::numeric[], ?::numeric[], ?::bool[], ?::bool[], ?::jsonb[])
         ON CONFLICT (source, event_id, time) DO NOTHING
         RETURNING time, tenant_id)
       SELECT count(*)::int AS inserted, min(time) AS min_time, max(time) AS max_time,
              coalesce(array_agg(DISTINCT tenant_id::text), '{}') AS tenants FROM ins`,
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
    const row = result.rows[0];
    return {
      inserted: row?.inserted ?? 0,
      minTime: row?.min_time ? row.min_time.toISOString() : null,
      maxTime: row?.max_time ? row.max_time.toISOString() : null,
      tenants: row?.tenants ?? [],
    };
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
      // Ids registered inside a rolled-back transaction do not exist: forget them.
      this.serviceIds.clear();
      this.revisionIds.clear();
      throw err;
    }
  }

  private storeInTransaction(records: UsageRecord[]): Promise<StoreResult> {
    return this.db.transaction(async (trx) => {
      const ids = await this.resolve(trx, records);
      const rows: { r: UsageRecord; ids: Ids }[] = [];
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
  }
}
