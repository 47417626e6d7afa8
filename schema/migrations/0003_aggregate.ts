/**
 * What the aggregate stage needs.
 *
 * - `usage_dirty`: exact dirty-window tracking. One mark per (5-minute UTC bucket, tenant, service,
 *   revision) whose usage_raw rows changed since the aggregator last recomputed it. Statement
 *   triggers on the partitioned usage_raw write the marks from their transition tables, so a mark
 *   commits atomically with its rows: a late row, a row committed while the aggregator runs, a
 *   COPY, an UPDATE or a DELETE all leave a mark, and an INSERT ... ON CONFLICT DO NOTHING marks
 *   only the rows it really inserted (only those reach the transition table).
 *   The trigger upserts with DO UPDATE rather than DO NOTHING on purpose: that row-locks an
 *   existing mark until the inserting transaction commits, so an aggregator claiming marks with
 *   FOR UPDATE SKIP LOCKED skips it instead of deleting it and recomputing without the
 *   uncommitted rows (which would leave those rows with no mark). Marks are inserted in key
 *   order, so concurrent writers lock them in the same order and cannot deadlock.
 * - usage_aggregate keeps each window's mergeable state, so 1h windows are merged from their 5m
 *   windows and 1d windows from their 1h windows instead of re-reading a whole day of raw rows:
 *   `duration_sketch` (the per-invocation duration sketch, src/core/windows/percentiles.ts) and
 *   `memory_mb_invocations` (Σ memory_mb × invocations, for the exact memory average).
 *   `mb_ms` widens to 6 decimals, the exact scale of Σ duration_ms (3) × memory_mb (3), so a
 *   merged window sums exactly what its parts hold.
 * - Every bucket that already has raw rows is marked dirty, so rows written before this
 *   migration are recomputed with their state by the next aggregator run.
 */
import type { Knex } from 'knex';

/** The 5-minute UTC grid of the marks (the aggregate stage reads raw rows on the same grid). */
const dirtyBucketSql = (column: string): string => `date_bin('5 minutes', ${column}, timestamptz '2000-01-01 00:00:00+00')`;

const markFrom = (rows: string): string => `
  INSERT INTO usage_dirty (bucket_start, tenant_id, service_id, revision_id)
  SELECT DISTINCT ${dirtyBucketSql('time')}, tenant_id, service_id, revision_id FROM ${rows}
   ORDER BY 1, 2, 3, 4
  ON CONFLICT (bucket_start, tenant_id, service_id, revision_id) DO UPDATE SET marked_at = now();`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- Keyed by time first: the aggregator claims in key order, so a batch is a slice of time
    -- across series, whose raw rows lie together on disk (usage arrives roughly in time order).
    CREATE TABLE usage_dirty (
      bucket_start timestamptz NOT NULL,
      tenant_id uuid NOT NULL,
      service_id uuid NOT NULL,
      revision_id uuid NOT NULL,
      marked_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (bucket_start, tenant_id, service_id, revision_id)
    );

    CREATE FUNCTION usage_raw_mark_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${markFrom('changed_rows')}
      RETURN NULL;
    END $$;

    CREATE FUNCTION usage_raw_mark_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      -- An update may move a row to another bucket (or series): both sides change.
      ${markFrom('(SELECT tenant_id, service_id, revision_id, time FROM old_rows UNION ALL SELECT tenant_id, service_id, revision_id, time FROM new_rows) AS changed_rows')}
      RETURN NULL;
    END $$;

    CREATE TRIGGER usage_raw_dirty_insert AFTER INSERT ON usage_raw
      REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_raw_mark_changed();
    CREATE TRIGGER usage_raw_dirty_delete AFTER DELETE ON usage_raw
      REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_raw_mark_changed();
    CREATE TRIGGER usage_raw_dirty_update AFTER UPDATE ON usage_raw
      REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_raw_mark_updated();

    ALTER TABLE usage_aggregate
      ADD COLUMN duration_sketch jsonb,
      ADD COLUMN memory_mb_invocations numeric(30,3),
      ALTER COLUMN mb_ms TYPE numeric(36,6);

    ${markFrom('usage_raw')}
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER IF EXISTS usage_raw_dirty_insert ON usage_raw;
    DROP TRIGGER IF EXISTS usage_raw_dirty_delete ON usage_raw;
    DROP TRIGGER IF EXISTS usage_raw_dirty_update ON usage_raw;
    DROP FUNCTION IF EXISTS usage_raw_mark_changed();
    DROP FUNCTION IF EXISTS usage_raw_mark_updated();
    DROP TABLE IF EXISTS usage_dirty;
    ALTER TABLE usage_aggregate
      DROP COLUMN IF EXISTS duration_sketch,
      DROP COLUMN IF EXISTS memory_mb_invocations,
      ALTER COLUMN mb_ms TYPE numeric(30,3);
  `);
}
