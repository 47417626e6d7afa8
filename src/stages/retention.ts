/**
 * Retention of usage_raw: drops whole month partitions (usage_raw_pYYYYMM, created by save) once
 * they are older than the configured days, and only when nothing still needs their rows:
 *
 * - **aggregated**: no 5-minute bucket of the month is still marked dirty (usage_dirty), so every
 *   row is in usage_aggregate, which bills, forecasts and reports read;
 * - **billed**: for every tenant with rows in the partition, the billing periods holding its first
 *   and its last row there have a final (or paid) bill. A partition spans one UTC month, and a
 *   tenant's month is shifted from it by at most 14 hours, so those are all the periods it touches.
 *
 * A partition that fails either rule is kept and reported with the reason; the next run looks
 * again. The drop itself locks usage_raw, checks the dirty marks once more (a late insert marks
 * its bucket in the same transaction) and detaches and drops the partition in one transaction.
 * The default partition is never dropped. Idempotent: a second run finds nothing more to drop.
 */
import type { Db } from '../adapters/postgres.js';
import type { Logger } from '../runtime/logger.js';

const partitionName = /^usage_raw_p(\d{4})(\d{2})$/;

export interface RetentionPartition {
  name: string;
  /** First instant of the month the partition holds (UTC). */
  start: Date;
  /** First instant after it. */
  end: Date;
}

export type KeepReason = 'within_retention' | 'not_aggregated' | 'period_not_final';

export interface RetentionReport {
  cutoff: string;
  dropped: string[];
  kept: { partition: string; reason: KeepReason }[];
}

export interface RetentionOptions {
  db: Db;
  logger: Logger;
  /** Raw rows are kept at least this many days after their month ended. */
  retentionDays: number;
  now?: () => Date;
}

/** The month partitions of usage_raw, oldest first (the default partition is not one). */
export async function listUsagePartitions(db: Db): Promise<RetentionPartition[]> {
  const rows = await db.raw<{ rows: { name: string }[] }>(
    `SELECT c.relname AS name
       FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = p.relnamespace
      WHERE p.relname = 'usage_raw' AND n.nspname = current_schema()`,
  );
  return rows.rows
    .flatMap(({ name }) => {
      const match = partitionName.exec(name);
      if (!match) return [];
      const year = Number(match[1]);
      const month = Number(match[2]) - 1;
      return [{ name, start: new Date(Date.UTC(year, month, 1)), end: new Date(Date.UTC(year, month + 1, 1)) }];
    })
    .sort((a, b) => a.start.getTime() - b.start.getTime());
}

export class Retention {
  private readonly now: () => Date;

  constructor(private readonly options: RetentionOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** One retention run: drops every partition that may go, reports the others. */
  async run(): Promise<RetentionReport> {
    const { db, logger, retentionDays } = this.options;
    const cutoff = new Date(this.now().getTime() - retentionDays * 86_400_000);
    const report: RetentionReport = { cutoff: cutoff.toISOString(), dropped: [], kept: [] };
    for (const partition of await listUsagePartitions(db)) {
      const reason = partition.end.getTime() > cutoff.getTime() ? 'within_retention' : await this.blocker(partition);
      if (reason) {
        report.kept.push({ partition: partition.name, reason });
        continue;
      }
      if (await this.drop(partition)) report.dropped.push(partition.name);
      else report.kept.push({ partition: partition.name, reason: 'not_aggregated' });
    }
    if (report.dropped.length > 0) logger.info({ dropped: report.dropped, cutoff: report.cutoff }, 'usage_raw partitions dropped');
    return report;
  }

  /** Why `partition` must stay, or undefined when it may be dropped. */
  private async blocker(partition: RetentionPartition): Promise<KeepReason | undefined> {
    const { db } = this.options;
    if (await this.hasDirtyBuckets(db, partition)) return 'not_aggregated';
    // Identifiers cannot be parameters; the name matched partitionName, so it is safe to quote.
    const unbilled = await db.raw<{ rows: unknown[] }>(
      `SELECT 1
         FROM (SELECT tenant_id, min(time) AS first, max(time) AS last FROM "${partition.name}" GROUP BY tenant_id) u
        WHERE NOT EXISTS (SELECT 1 FROM bills b WHERE b.tenant_id = u.tenant_id AND b.status IN ('final', 'paid')
                            AND b.period_start <= u.first AND u.first < b.period_end)
           OR NOT EXISTS (SELECT 1 FROM bills b WHERE b.tenant_id = u.tenant_id AND b.status IN ('final', 'paid')
                            AND b.period_start <= u.last AND u.last < b.period_end)
        LIMIT 1`,
    );
    return unbilled.rows.length > 0 ? 'period_not_final' : undefined;
  }

  private async hasDirtyBuckets(db: Db, partition: RetentionPartition): Promise<boolean> {
    const dirty = await db.raw<{ rows: unknown[] }>('SELECT 1 FROM usage_dirty WHERE bucket_start >= ? AND bucket_start < ? LIMIT 1', [partition.start, partition.end]);
    return dirty.rows.length > 0;
  }

  /** Detaches and drops `partition` unless a row arrived meanwhile; true when it is gone. */
  private async drop(partition: RetentionPartition): Promise<boolean> {
    return this.options.db.transaction(async (trx) => {
      // Writers of usage_raw wait for this transaction; rows committed before it are marked dirty.
      await trx.raw('LOCK TABLE usage_raw IN ACCESS EXCLUSIVE MODE');
      if (await this.hasDirtyBuckets(trx, partition)) return false;
      await trx.raw(`ALTER TABLE usage_raw DETACH PARTITION "${partition.name}"`);
      await trx.raw(`DROP TABLE "${partition.name}"`);
      return true;
    });
  }
}
