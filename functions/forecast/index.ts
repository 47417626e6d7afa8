/**
 * forecast: triggered by faasbilling.forecast.tick.v1 (optional `horizons`), by the daily
 * PingSource, or on demand (a POST of JSON `{tenant_id?, horizons?, as_of?}`). Forecasts every
 * tenant with recent hourly usage (or the one asked for), stores the predictions in ml_predictions,
 * then scans the same tenants' services for anomalies in the last 24 hours (src/stages/anomalies.ts).
 *
 * A tick or ping stores the anomalies it found in the `anomalies` outbox (one row per incident)
 * and, when the scanned tenants have anomalies notifications has not handled yet, replies
 * faasbilling.anomaly.detected.v1 listing all of them (new ones and repeats of lost
 * announcements; notifications delivers each once under its own id). Otherwise, and for an
 * on-demand POST (which stores nothing), it answers 200 with a JSON summary that lists the
 * anomalies found (204 when there was nothing to forecast).
 */
import { Counter } from 'prom-client';
import { z } from 'zod';
import { EventType, forecastTickData, type AnomalyAlert } from '../../src/contract/events.js';
import { BillingError } from '../../src/contract/problem.js';
import { pingEventType } from '../../src/contract/routing.js';
import { createDb, pingDb, type Db } from '../../src/adapters/postgres.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory, type FunctionRequest } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { AnomalyScanner } from '../../src/stages/anomalies.js';
import { anomalyDetectedEvent, recordAnomalies } from '../../src/stages/anomaly-outbox.js';
import { Forecaster, UnknownForecastTenantError, forecastHorizons, type ForecastRequest } from '../../src/stages/forecast.js';

/** The on-demand request body. */
export const forecastRequestSchema = z.strictObject({
  tenant_id: z.uuid('tenant_id must be a tenant id (a UUID)').optional(),
  horizons: z.array(z.enum(forecastHorizons)).min(1).optional(),
  /** Forecast as of this instant (its 1h window); now by default. */
  as_of: z.iso.datetime({ offset: true }).optional(),
});

const issuesOf = (error: z.ZodError): string => error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');

function bodyJson(body: unknown): unknown {
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : undefined;
  if (text === undefined) return body ?? {};
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BillingError('malformed_json', `the body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** What to forecast, from a tick, a ping or an on-demand body; malformed input is a 422. */
export function forecastRequestOf(request: FunctionRequest): ForecastRequest {
  const event = request.cloudevent;
  if (event?.type === pingEventType) return {};
  if (event?.type === EventType.forecastTick) {
    const parsed = forecastTickData.safeParse(event.data ?? {});
    if (!parsed.success) throw new BillingError('invalid_event', `invalid ${EventType.forecastTick} data: ${issuesOf(parsed.error)}`);
    return parsed.data.horizons ? { horizons: parsed.data.horizons } : {};
  }
  if (event) throw new BillingError('invalid_event', `forecast accepts ${EventType.forecastTick} and ${pingEventType} events, not ${event.type}`);
  const parsed = forecastRequestSchema.safeParse(bodyJson(request.body));
  if (!parsed.success) throw new BillingError('invalid_event', `invalid forecast request: ${issuesOf(parsed.error)}`);
  const { tenant_id, horizons, as_of } = parsed.data;
  return { ...(tenant_id ? { tenantId: tenant_id } : {}), ...(horizons ? { horizons } : {}), ...(as_of ? { at: new Date(as_of) } : {}) };
}

/** A failure of the run as the caller should see it: their mistake (422) or a database outage (503). */
async function asBillingError(err: unknown, db: Db): Promise<Error> {
  if (err instanceof BillingError) return err;
  if (err instanceof UnknownForecastTenantError) return new BillingError('invalid_event', `${err.message}: tenant_id must be the id of an existing tenant`);
  if (err instanceof Error && err.name === 'NoPlanError') return new BillingError('invalid_event', `${err.message}: assign the tenant a plan, or mark a default plan for its currency`);
  try {
    await pingDb(db);
  } catch {
    return new BillingError('database_unavailable', 'PostgreSQL is not reachable; the forecast was not stored and can be retried', true, undefined, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Creates the forecast function from its configuration. */
export const createForecast: FunctionFactory = (config, logger) => {
  const db = createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX);
  const metrics = createStageMetrics('forecast');
  const registers = [metrics.registry];
  const predictions = new Counter({ name: 'faasbilling_forecast_predictions_total', help: 'Predictions stored, by horizon', labelNames: ['horizon'] as const, registers });
  const tenantFailures = new Counter({ name: 'faasbilling_forecast_tenant_failures_total', help: 'Tenants a run could not forecast (no plan, bad time zone)', registers });
  const anomaliesFound = new Counter({ name: 'faasbilling_anomalies_detected_total', help: 'Anomalies found by forecast runs (an incident seen by two runs counts twice)', labelNames: ['metric'] as const, registers });
  const forecaster = new Forecaster({ db, logger });
  const scanner = new AnomalyScanner(db);
  return Promise.resolve({
    metrics,
    handle: async (request) => {
      const input = forecastRequestOf(request);
      let summary;
      let scan;
      let unhandled: AnomalyAlert[] = [];
      try {
        summary = await forecaster.run(input);
        const at = input.at ?? new Date();
        const tenantIds = input.tenantId ? [input.tenantId] : await scanner.activeTenants(at);
        scan = await scanner.scanTenants(tenantIds, { at });
        if (request.cloudevent) unhandled = await recordAnomalies(db, tenantIds, scan.anomalies);
      } catch (err) {
        throw await asBillingError(err, db);
      }
      for (const a of scan.anomalies) anomaliesFound.inc({ metric: a.metric });
      for (const f of summary.forecasts ?? []) predictions.inc({ horizon: f.horizon });
      if (!summary.forecasts) for (const h of summary.horizons) predictions.inc({ horizon: h }, summary.tenants);
      tenantFailures.inc(summary.failed.length);
      if (unhandled.length > 0) return anomalyDetectedEvent(unhandled);
      if (summary.predictions === 0 && summary.failed.length === 0 && scan.anomalies.length === 0 && !input.tenantId) return { statusCode: 204 };
      return { statusCode: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: { ...summary, anomalies: scan.anomalies } };
    },
    ready: () => pingDb(db),
    close: () => db.destroy(),
  });
};

const forecast = defineFunction('forecast', createForecast);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = forecast;
export default forecast;
