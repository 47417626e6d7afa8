/**
 * Business gauges on the API's /metrics, read from PostgreSQL at scrape time: each tenant's
 * month-to-date cost (tenant_running_costs, what price keeps current) and its latest month-end
 * forecast with the 80% interval (ml_predictions). The Grafana dashboard plots them as
 * "month-to-date cost by tenant" and "forecast vs actual". Values are for charts only; invoices
 * never read them.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Db } from '../adapters/postgres.js';

interface CostRow {
  tenant: string;
  currency: string;
  total: string;
}

interface ForecastRow {
  tenant: string;
  currency: string;
  expected: string;
  lower_80: string;
  upper_80: string;
}

/** Registers the cost gauges on `registry`; a failed query leaves them empty for that scrape. */
export function registerCostGauges(registry: Registry, db: Db): void {
  new Gauge({
    name: 'faasbilling_tenant_month_to_date_cost',
    help: 'Month-to-date cost of each tenant in its currency (the running cost of the current period)',
    labelNames: ['tenant', 'currency'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await db
        .raw<{ rows: CostRow[] }>(
          `SELECT DISTINCT ON (c.tenant_id) t.slug AS tenant, c.currency, c.total::text AS total
             FROM tenant_running_costs c JOIN tenants t ON t.id = c.tenant_id
            WHERE c.period_end > now()
            ORDER BY c.tenant_id, c.period_start DESC`,
        )
        .then((r) => r.rows)
        .catch(() => []);
      for (const row of rows) this.set({ tenant: row.tenant, currency: row.currency.trim() }, Number(row.total));
    },
  });
  new Gauge({
    name: 'faasbilling_tenant_forecast_month_end_cost',
    help: 'Latest forecast of each tenant\'s cost for the whole current month, by bound (expected, lower_80, upper_80)',
    labelNames: ['tenant', 'currency', 'bound'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await db
        .raw<{ rows: ForecastRow[] }>(
          `SELECT DISTINCT ON (p.tenant_id) t.slug AS tenant, p.currency,
                  p.predicted_cost::text AS expected,
                  p.predicted_cost_lower_80::text AS lower_80, p.predicted_cost_upper_80::text AS upper_80
             FROM ml_predictions p JOIN tenants t ON t.id = p.tenant_id
            WHERE p.horizon = 'month_end' AND p.service_id IS NULL AND p.period_end > now()
            ORDER BY p.tenant_id, p.as_of DESC`,
        )
        .then((r) => r.rows)
        .catch(() => []);
      for (const row of rows) {
        const currency = row.currency.trim();
        for (const bound of ['expected', 'lower_80', 'upper_80'] as const) {
          if (row[bound] !== null) this.set({ tenant: row.tenant, currency, bound }, Number(row[bound]));
        }
      }
    },
  });
}
