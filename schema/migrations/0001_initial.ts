/**
 * The initial schema: the seed's tables with the corrections of DESIGN §4 (NUMERIC money with
 * enough scale, usage_raw one typed row per event and partitioned by month, dedup on the
 * CloudEvent key, plan assignment history) plus api_keys, audit_log, dead_letters, bill line items
 * and the embedded buffer's queue table.
 */
import type { Knex } from 'knex';

// Unit prices: AWS bills $0.0000166667 per GB-s, about 1.6e-11 per MB-ms, so 20 decimal places
// keep every significant digit of any real provider price.
const UNIT_PRICE = 'numeric(38,20)';
// Amounts before rounding keep the same scale; rounded amounts keep 4 places (covers currencies
// with 3 minor digits) and totals are sums of rounded lines.
const AMOUNT_UNROUNDED = 'numeric(38,20)';
const AMOUNT = 'numeric(20,4)';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE tenants (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      slug text NOT NULL UNIQUE CHECK (slug ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
      name varchar(255) NOT NULL,
      billing_email varchar(255),
      currency char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
      timezone varchar(50) NOT NULL DEFAULT 'UTC',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE services (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
      name varchar(255) NOT NULL,
      namespace varchar(255) NOT NULL DEFAULT 'default',
      runtime varchar(50),
      memory_limit_mb integer CHECK (memory_limit_mb > 0),
      cpu_limit_cores numeric(6,3) CHECK (cpu_limit_cores > 0),
      auto_registered boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (tenant_id, name)
    );

    CREATE TABLE revisions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      service_id uuid NOT NULL REFERENCES services(id) ON DELETE RESTRICT,
      name varchar(255) NOT NULL,
      image varchar(500),
      config_env jsonb NOT NULL DEFAULT '{}',
      scaling_config jsonb NOT NULL DEFAULT '{}',
      memory_limit_mb integer CHECK (memory_limit_mb > 0),
      auto_registered boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (service_id, name)
    );

    -- One row per usage event, typed columns, partitioned by month so retention drops partitions.
    -- A unique index on a partitioned table must contain the partition key, so the dedup key is
    -- (source, event_id, time): a redelivered CloudEvent repeats its time attribute; collect also
    -- drops recent repeats of (source, id) before they reach the buffer.
    CREATE TABLE usage_raw (
      id bigserial NOT NULL,
      time timestamptz NOT NULL,
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      service_id uuid NOT NULL REFERENCES services(id),
      revision_id uuid NOT NULL REFERENCES revisions(id),
      source text NOT NULL,
      event_id text NOT NULL,
      invocations integer NOT NULL DEFAULT 1 CHECK (invocations >= 1),
      duration_ms numeric(14,3) NOT NULL CHECK (duration_ms >= 0),
      memory_mb numeric(10,3) NOT NULL CHECK (memory_mb > 0),
      cpu_ms numeric(14,3) CHECK (cpu_ms >= 0),
      cold_start boolean NOT NULL DEFAULT false,
      error boolean NOT NULL DEFAULT false,
      labels jsonb NOT NULL DEFAULT '{}',
      received_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (id, time),
      UNIQUE (source, event_id, time)
    ) PARTITION BY RANGE (time);
    -- Catches rows whose month partition does not exist yet; save creates month partitions ahead.
    CREATE TABLE usage_raw_default PARTITION OF usage_raw DEFAULT;
    CREATE INDEX usage_raw_tenant_time ON usage_raw (tenant_id, time);
    CREATE INDEX usage_raw_service_time ON usage_raw (service_id, revision_id, time);

    CREATE TABLE usage_aggregate (
      id bigserial PRIMARY KEY,
      window_start timestamptz NOT NULL,
      window_end timestamptz NOT NULL,
      window_size varchar(10) NOT NULL CHECK (window_size IN ('5m', '1h', '1d')),
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      service_id uuid NOT NULL REFERENCES services(id),
      revision_id uuid NOT NULL REFERENCES revisions(id),
      invocations bigint NOT NULL DEFAULT 0,
      total_duration_ms numeric(20,3) NOT NULL DEFAULT 0,
      avg_duration_ms numeric(14,3),
      p50_duration_ms numeric(14,3),
      p95_duration_ms numeric(14,3),
      max_memory_mb numeric(10,3),
      avg_memory_mb numeric(10,3),
      total_cpu_ms numeric(20,3) NOT NULL DEFAULT 0,
      billed_mb_ms numeric(30,3) NOT NULL DEFAULT 0,
      cold_starts integer NOT NULL DEFAULT 0,
      errors integer NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK (window_end > window_start),
      UNIQUE (window_size, tenant_id, service_id, revision_id, window_start)
    );
    CREATE INDEX usage_aggregate_tenant_window ON usage_aggregate (tenant_id, window_size, window_start);

    CREATE TABLE pricing_plans (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name varchar(255) NOT NULL,
      version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
      previous_version_id uuid REFERENCES pricing_plans(id),
      tenant_id uuid REFERENCES tenants(id),
      currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
      price_per_invocation ${UNIT_PRICE} NOT NULL DEFAULT 0 CHECK (price_per_invocation >= 0),
      price_per_mb_ms ${UNIT_PRICE} NOT NULL DEFAULT 0 CHECK (price_per_mb_ms >= 0),
      price_per_cold_start ${UNIT_PRICE} NOT NULL DEFAULT 0 CHECK (price_per_cold_start >= 0),
      price_per_cpu_ms ${UNIT_PRICE} NOT NULL DEFAULT 0 CHECK (price_per_cpu_ms >= 0),
      free_tier_invocations bigint NOT NULL DEFAULT 0 CHECK (free_tier_invocations >= 0),
      free_tier_mb_ms numeric(30,3) NOT NULL DEFAULT 0 CHECK (free_tier_mb_ms >= 0),
      rules jsonb NOT NULL DEFAULT '{}',
      active boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (name, version)
    );

    -- Plan assignment with history: a bill spanning a change is prorated, old bills recomputable.
    CREATE TABLE tenant_plan_assignments (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      plan_id uuid NOT NULL REFERENCES pricing_plans(id),
      effective_from timestamptz NOT NULL,
      effective_to timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      created_by text,
      CHECK (effective_to IS NULL OR effective_to > effective_from)
    );
    CREATE INDEX tenant_plan_assignments_tenant ON tenant_plan_assignments (tenant_id, effective_from);
    -- At most one open-ended assignment per tenant.
    CREATE UNIQUE INDEX tenant_plan_assignments_open ON tenant_plan_assignments (tenant_id) WHERE effective_to IS NULL;

    CREATE TABLE bills (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      plan_id uuid REFERENCES pricing_plans(id),
      period_start timestamptz NOT NULL,
      period_end timestamptz NOT NULL,
      total_amount ${AMOUNT} NOT NULL DEFAULT 0,
      total_unrounded ${AMOUNT_UNROUNDED} NOT NULL DEFAULT 0,
      currency char(3) NOT NULL,
      status varchar(50) NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'final', 'paid')),
      line_items jsonb NOT NULL DEFAULT '[]',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      finalized_at timestamptz,
      paid_at timestamptz,
      CHECK (period_end > period_start)
    );
    CREATE INDEX bills_tenant_period ON bills (tenant_id, period_start);

    CREATE TABLE bill_line_items (
      id bigserial PRIMARY KEY,
      bill_id uuid NOT NULL REFERENCES bills(id) ON DELETE CASCADE,
      service_id uuid REFERENCES services(id),
      meter varchar(50) NOT NULL,
      description text NOT NULL,
      quantity numeric(38,6) NOT NULL,
      unit varchar(20) NOT NULL,
      unit_price ${UNIT_PRICE} NOT NULL,
      amount_unrounded ${AMOUNT_UNROUNDED} NOT NULL,
      amount ${AMOUNT} NOT NULL,
      is_adjustment boolean NOT NULL DEFAULT false
    );
    CREATE INDEX bill_line_items_bill ON bill_line_items (bill_id);

    CREATE TABLE ml_predictions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      service_id uuid REFERENCES services(id),
      prediction_date date NOT NULL,
      horizon_days integer NOT NULL CHECK (horizon_days > 0),
      predicted_invocations bigint,
      predicted_cost ${AMOUNT},
      predicted_cost_lower ${AMOUNT},
      predicted_cost_upper ${AMOUNT},
      confidence numeric(5,4) CHECK (confidence BETWEEN 0 AND 1),
      model_version varchar(50) NOT NULL,
      backtest_error numeric(12,6),
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ml_predictions_tenant_date ON ml_predictions (tenant_id, prediction_date);

    CREATE TABLE api_keys (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid REFERENCES tenants(id),
      name varchar(255) NOT NULL,
      prefix varchar(16) NOT NULL UNIQUE,
      key_hash text NOT NULL,
      role varchar(20) NOT NULL CHECK (role IN ('admin', 'tenant', 'ingest')),
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      revoked_at timestamptz,
      CHECK (role = 'admin' OR tenant_id IS NOT NULL)
    );

    CREATE TABLE audit_log (
      id bigserial PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT now(),
      actor text NOT NULL,
      action varchar(100) NOT NULL,
      entity_type varchar(50) NOT NULL,
      entity_id text,
      tenant_id uuid REFERENCES tenants(id),
      details jsonb NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);

    -- Nothing is dropped silently: events that cannot be stored land here with the reason.
    CREATE TABLE dead_letters (
      id bigserial PRIMARY KEY,
      received_at timestamptz NOT NULL DEFAULT now(),
      stage varchar(50) NOT NULL,
      reason varchar(100) NOT NULL,
      detail text,
      source text,
      event_id text,
      event_type text,
      tenant_key text,
      payload jsonb NOT NULL,
      resolved_at timestamptz,
      UNIQUE (stage, source, event_id)
    );
    CREATE INDEX dead_letters_unresolved ON dead_letters (received_at) WHERE resolved_at IS NULL;

    -- The embedded buffer (used when REDIS_URL is unset): a queue claimed with SKIP LOCKED.
    CREATE TABLE buffer_entries (
      id bigserial PRIMARY KEY,
      payload text NOT NULL,
      enqueued_at timestamptz NOT NULL DEFAULT now(),
      claimed_by text,
      claimed_at timestamptz,
      deliveries integer NOT NULL DEFAULT 0
    );
    CREATE INDEX buffer_entries_unclaimed ON buffer_entries (id) WHERE claimed_at IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE IF EXISTS buffer_entries, dead_letters, audit_log, api_keys, ml_predictions,
      bill_line_items, bills, tenant_plan_assignments, pricing_plans, usage_aggregate, usage_raw,
      revisions, services, tenants CASCADE;
  `);
}
