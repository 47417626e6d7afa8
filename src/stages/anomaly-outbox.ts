/**
 * The `anomalies` outbox (migration 0014): what forecast runs found, one row per incident, and
 * what notifications has still to announce.
 *
 * **One row per incident, however long it lasts.** A run examines only the last `windowHours`
 * hours, so an incident that began before them is seen from the window's first hour: its first
 * hour moves on with every hourly run, and the detector may also start the same incident an hour
 * earlier or later from one run to the next (an hour just above or below the threshold). A found
 * anomaly that continues a stored one — same tenant, service, metric and direction, overlapping it
 * or at most one ordinary hour away from it (the gap the detector itself bridges inside a run) —
 * therefore updates that row instead of adding one: `until` is extended (never shortened), and the
 * figures (score, expected, observed, cost impact, explanation) become the run's, unless the run
 * saw only the tail of what is stored (the incident's start has left its window), which would
 * describe less of the incident than the row already does. The row keeps its id, its `since` and
 * its notified state, so the incident is announced once.
 *
 * The figures therefore cover the hours the latest describing run examined (at most `windowHours`),
 * while `since`/`until` span the whole incident; when the two differ the explanation says both.
 * A stored incident that keeps growing after it was announced (even tenfold in cost) is not
 * announced again: one alert per incident, by design for now.
 *
 * Runs recording a tenant's anomalies are serialised by a transaction-scoped advisory lock: two
 * runs that both found nothing stored would otherwise insert the same incident twice under
 * different first hours, which the unique key (tenant, service, metric, since) cannot catch.
 */
import { Decimal } from 'decimal.js';
import { CloudEvent } from 'cloudevents';
import type { Knex } from 'knex';
import { lockKeys, type Db } from '../adapters/postgres.js';
import { EventType, anomalyDetectedData, eventSource, type AnomalyAlert } from '../contract/events.js';
import { minorUnitDigits } from '../core/pricing/index.js';
import { HOUR_MS, type ServiceAnomaly } from './anomalies.js';

/** The most anomalies one event carries; the rest wait for the next run (they stay unhandled). */
export const MAX_ANOMALIES_PER_EVENT = 500;

/** Two abnormal runs at most this far apart are one incident (one ordinary hour between them). */
const CONTINUITY_GAP_MS = HOUR_MS;

/** A stored anomaly as the continuity rule sees it: its identity and span. */
export interface StoredIncident {
  id: string;
  tenant_id: string;
  service: string;
  metric: string;
  direction: 'spike' | 'drop';
  since: Date;
  until: Date;
}

interface AnomalyRow extends StoredIncident {
  score: number;
  expected: number;
  observed: number;
  cost_impact: string;
  currency: string;
  explanation: string;
}

/**
 * The stored incident a found anomaly continues: same tenant, service, metric and direction, and
 * overlapping it or at most CONTINUITY_GAP_MS before or after it; the latest-ending one when
 * several qualify. Undefined when the anomaly is a new incident.
 */
export function continuedIncident(found: ServiceAnomaly, stored: readonly StoredIncident[]): StoredIncident | undefined {
  const since = Date.parse(found.since);
  const until = Date.parse(found.until);
  let continued: StoredIncident | undefined;
  for (const s of stored) {
    if (s.tenant_id !== found.tenant_id || s.service !== found.service || s.metric !== found.metric || s.direction !== found.direction) continue;
    if (since > s.until.getTime() + CONTINUITY_GAP_MS || until + CONTINUITY_GAP_MS < s.since.getTime()) continue;
    if (!continued || s.until > continued.until) continued = s;
  }
  return continued;
}

/** The run's figures of an anomaly, as stored. */
function figuresOf(a: ServiceAnomaly, explanation = a.explanation): Pick<AnomalyRow, 'score' | 'expected' | 'observed' | 'cost_impact' | 'currency' | 'explanation'> {
  return { score: a.score, expected: a.expected, observed: a.observed, cost_impact: a.cost_impact, currency: a.currency, explanation };
}

/** Updates the stored incident `found` continues (see the module comment), in memory too. */
async function extendIncident(trx: Knex.Transaction, incident: StoredIncident, found: ServiceAnomaly): Promise<void> {
  const [since, foundUntil] = [Date.parse(found.since), Date.parse(found.until)];
  const until = new Date(Math.max(incident.until.getTime(), foundUntil));
  const tailOnly = since > incident.since.getTime() && foundUntil <= incident.until.getTime();
  const whole = since === incident.since.getTime() && foundUntil === until.getTime();
  const hours = Math.round((until.getTime() - incident.since.getTime()) / HOUR_MS);
  const explanation = whole
    ? found.explanation
    : `${found.explanation}; this continues the incident recorded since ${incident.since.toISOString()}, now until ${until.toISOString()} (${hours} h)`;
  const figures = tailOnly ? {} : figuresOf(found, explanation);
  await trx('anomalies')
    .where({ id: incident.id })
    .update({ until, ...figures, last_seen_at: trx.fn.now() });
  incident.until = until;
}

/** Stores a run's anomalies: each extends the incident it continues, or is a new row. */
async function storeIncidents(trx: Knex.Transaction, anomalies: readonly ServiceAnomaly[]): Promise<void> {
  const tenants = [...new Set(anomalies.map((a) => a.tenant_id))];
  await lockKeys(trx, 'anomalies', tenants);
  const earliest = Math.min(...anomalies.map((a) => Date.parse(a.since)));
  const stored = (await trx('anomalies')
    .select('id', 'tenant_id', 'service', 'metric', 'direction', 'since', 'until')
    .whereRaw('tenant_id = ANY(?::uuid[])', [tenants])
    .where('until', '>=', new Date(earliest - CONTINUITY_GAP_MS))) as StoredIncident[];
  const fresh: ServiceAnomaly[] = [];
  for (const found of [...anomalies].sort((x, y) => Date.parse(x.since) - Date.parse(y.since))) {
    const incident = continuedIncident(found, stored);
    if (incident) await extendIncident(trx, incident, found);
    else fresh.push(found);
  }
  const rows = fresh.map((a) => ({
    tenant_id: a.tenant_id,
    service: a.service,
    metric: a.metric,
    since: a.since,
    until: a.until,
    direction: a.direction,
    ...figuresOf(a),
    last_seen_at: trx.fn.now(),
  }));
  // Within one run, two anomalies of a series are at least two ordinary hours apart (the detector
  // bridges one), so none of these continues another. A row with the same first hour can still
  // exist in the other direction (the key has no direction): it takes the newer details.
  // 500 rows of 13 values stay far below PostgreSQL's 65535 parameters per statement.
  for (let i = 0; i < rows.length; i += 500) {
    await trx('anomalies')
      .insert(rows.slice(i, i + 500))
      .onConflict(['tenant_id', 'service', 'metric', 'since'])
      .merge(['until', 'direction', 'score', 'expected', 'observed', 'cost_impact', 'currency', 'explanation', 'last_seen_at']);
  }
}

/**
 * Stores the anomalies a run found (one row per incident, see the module comment) and returns the
 * anomalies of `tenantIds` that notifications has not handled yet (notified_at NULL), oldest
 * first: the new ones and earlier ones whose announcement was lost. At most
 * MAX_ANOMALIES_PER_EVENT.
 */
export async function recordAnomalies(db: Db, tenantIds: readonly string[], anomalies: readonly ServiceAnomaly[]): Promise<AnomalyAlert[]> {
  if (tenantIds.length === 0) return [];
  if (anomalies.length > 0) await db.transaction((trx) => storeIncidents(trx, anomalies));
  const unhandled = (await db('anomalies')
    .select('id', 'tenant_id', 'service', 'metric', 'since', 'until', 'direction', 'score', 'expected', 'observed', 'cost_impact', 'currency', 'explanation')
    .whereNull('notified_at')
    .whereRaw('tenant_id = ANY(?::uuid[])', [[...tenantIds]])
    .orderBy([{ column: 'detected_at' }, { column: 'id' }])
    .limit(MAX_ANOMALIES_PER_EVENT)) as AnomalyRow[];
  return unhandled.map((r) => {
    const currency = r.currency.trim();
    const digits = minorUnitDigits(currency);
    return {
      anomaly_id: String(r.id),
      tenant_id: r.tenant_id,
      service: r.service,
      metric: r.metric,
      score: Number(r.score),
      expected: Number(r.expected),
      observed: Number(r.observed),
      since: r.since.toISOString(),
      until: r.until.toISOString(),
      direction: r.direction,
      cost_impact: new Decimal(r.cost_impact).toFixed(digits),
      currency,
      explanation: r.explanation,
    };
  });
}

/** The reply of a run with unhandled anomalies: faasbilling.anomaly.detected.v1 listing them all. */
export function anomalyDetectedEvent(anomalies: readonly AnomalyAlert[]): CloudEvent<unknown> {
  return new CloudEvent({ type: EventType.anomalyDetected, source: eventSource('forecast'), data: anomalyDetectedData.parse({ anomalies }) });
}
