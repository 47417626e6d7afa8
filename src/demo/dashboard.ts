/**
 * What the demo adds for the web dashboard, through the public API like an operator would: a
 * monthly budget per tenant (so the Overview has a gauge) and the draft bill of the month so far
 * (so Invoices has a bill to open, download, finalize). Drafts are recomputed freely until a
 * month closes, so this changes no figure the pipeline computes.
 */
import { DateTime } from 'luxon';

export interface DemoDashboardTenant {
  slug: string;
  timezone: string;
  /** Monthly budget before tax, in the tenant's currency. */
  budget: string;
}

async function call(apiUrl: string, adminKey: string, method: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${apiUrl}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as unknown;
}

/** Sets each tenant's budget and generates the draft bill of its current month (tenant-local). */
export async function prepareDashboardData(apiUrl: string, adminKey: string, tenants: readonly DemoDashboardTenant[], now: Date): Promise<void> {
  for (const tenant of tenants) {
    await call(apiUrl, adminKey, 'PUT', `/tenants/${tenant.slug}/budget`, { amount: tenant.budget, thresholds: [50, 80, 100] });
    const month = DateTime.fromJSDate(now, { zone: tenant.timezone }).toFormat('yyyy-MM');
    await call(apiUrl, adminKey, 'POST', '/billing/generate', { tenant_id: tenant.slug, month });
  }
}
