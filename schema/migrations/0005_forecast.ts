/**
 * ml_predictions for the forecast stage (src/stages/forecast.ts):
 *
 * - `horizon` ('1h', '1d', '1w', '30d', 'month_end') and `horizon_hours` (the 1h windows the
 *   forecast covers after `as_of`); `horizon_days` stays, the days the horizon reaches into
 *   (rounded up).
 * - `as_of`: the data cut-off, the start of the tenant's current 1h window (history is the windows
 *   before it). `period_start`/`period_end`: the target's span — `[as_of, as_of + horizon)`, or the
 *   whole calendar month for 'month_end', whose cost is month-to-date actual (`actual_cost`) plus the
 *   forecast of the rest.
 * - Cost with 80% and 95% bounds, all NUMERIC rounded to the currency's minor unit (the existing
 *   lower/upper columns become the 80% ones), `currency`; a CHECK keeps the bounds ordered.
 * - `components` (jsonb): per meter (invocations, compute, cold_starts, cpu) the quantity and cost
 *   bands, the model and its backtest MASE.
 * - `model_name` beside `model_version`; `backtest_error` is renamed `backtest_mase`.
 * - Idempotency: one row per (tenant, service — NULL for the tenant's total —, horizon, as_of);
 *   re-running a forecast replaces its row (NULLS NOT DISTINCT, so the tenant-wide rows collide too).
 *
 * Rows written before this migration are dropped: nothing wrote this table before the forecast
 * stage, and predictions are derived data that the next run recomputes.
 */
import type { Knex } from 'knex';

const AMOUNT = 'numeric(20,4)';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    DELETE FROM ml_predictions;
    ALTER TABLE ml_predictions RENAME COLUMN predicted_cost_lower TO predicted_cost_lower_80;
    ALTER TABLE ml_predictions RENAME COLUMN predicted_cost_upper TO predicted_cost_upper_80;
    ALTER TABLE ml_predictions RENAME COLUMN backtest_error TO backtest_mase;
    ALTER TABLE ml_predictions
      ADD COLUMN horizon varchar(16) NOT NULL CHECK (horizon IN ('1h', '1d', '1w', '30d', 'month_end')),
      ADD COLUMN horizon_hours integer NOT NULL CHECK (horizon_hours > 0),
      ADD COLUMN as_of timestamptz NOT NULL,
      ADD COLUMN period_start timestamptz NOT NULL,
      ADD COLUMN period_end timestamptz NOT NULL,
      ADD COLUMN currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
      ADD COLUMN actual_cost ${AMOUNT},
      ADD COLUMN predicted_cost_lower_95 ${AMOUNT},
      ADD COLUMN predicted_cost_upper_95 ${AMOUNT},
      ADD COLUMN components jsonb NOT NULL DEFAULT '{}',
      ADD COLUMN model_name varchar(50) NOT NULL,
      ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
      ADD CONSTRAINT ml_predictions_period CHECK (period_end > period_start AND as_of >= period_start AND as_of < period_end),
      ADD CONSTRAINT ml_predictions_bounds_ordered CHECK (
        predicted_cost_lower_95 <= predicted_cost_lower_80 AND predicted_cost_lower_80 <= predicted_cost
        AND predicted_cost <= predicted_cost_upper_80 AND predicted_cost_upper_80 <= predicted_cost_upper_95);
    CREATE UNIQUE INDEX ml_predictions_forecast_key ON ml_predictions (tenant_id, service_id, horizon, as_of) NULLS NOT DISTINCT;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX IF EXISTS ml_predictions_forecast_key;
    ALTER TABLE ml_predictions
      DROP CONSTRAINT IF EXISTS ml_predictions_bounds_ordered,
      DROP CONSTRAINT IF EXISTS ml_predictions_period,
      DROP COLUMN IF EXISTS horizon,
      DROP COLUMN IF EXISTS horizon_hours,
      DROP COLUMN IF EXISTS as_of,
      DROP COLUMN IF EXISTS period_start,
      DROP COLUMN IF EXISTS period_end,
      DROP COLUMN IF EXISTS currency,
      DROP COLUMN IF EXISTS actual_cost,
      DROP COLUMN IF EXISTS predicted_cost_lower_95,
      DROP COLUMN IF EXISTS predicted_cost_upper_95,
      DROP COLUMN IF EXISTS components,
      DROP COLUMN IF EXISTS model_name,
      DROP COLUMN IF EXISTS updated_at;
    ALTER TABLE ml_predictions RENAME COLUMN backtest_mase TO backtest_error;
    ALTER TABLE ml_predictions RENAME COLUMN predicted_cost_upper_80 TO predicted_cost_upper;
    ALTER TABLE ml_predictions RENAME COLUMN predicted_cost_lower_80 TO predicted_cost_lower;
  `);
}
