/**
 * The dashboard's only way out: the public REST API under /api/v1, with the key the user typed
 * in (Bearer). Errors come back as application/problem+json and become an ApiProblem whose
 * message says what to do.
 */

export const apiBase = '/api/v1';

/** An answer other than 2xx, from the API's problem+json (or a network failure, status 0). */
export class ApiProblem extends Error {
  override readonly name = 'ApiProblem';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail || title);
  }
}

/** A human sentence for a problem: the API's own detail, plus what to do for the common cases. */
export function problemText(err: unknown): string {
  if (!(err instanceof ApiProblem)) return err instanceof Error ? err.message : String(err);
  if (err.status === 0) return `The API did not answer (${err.detail}). Is \`npm start\` still running?`;
  if (err.status === 401) return `${err.detail} — sign in again with a valid key.`;
  if (err.status === 403) return `${err.detail} — this needs an admin key.`;
  return err.detail || err.title;
}

type Query = Record<string, string | number | boolean | undefined | null>;

/** A client bound to one API key. */
export class Api {
  constructor(
    private readonly key: string,
    private readonly base: string = apiBase,
  ) {}

  private url(path: string, query: Query = {}): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
    const text = params.toString();
    return `${this.base}${path}${text ? `?${text}` : ''}`;
  }

  private async send(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.url(path, options.query), {
        method,
        headers: { authorization: `Bearer ${this.key}`, ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
    } catch (err) {
      throw new ApiProblem(0, 'network error', err instanceof Error ? err.message : String(err));
    }
    if (!res.ok) {
      const text = await res.text();
      let title = res.statusText;
      let detail = text;
      try {
        const problem = JSON.parse(text) as { title?: string; detail?: string };
        title = problem.title ?? title;
        detail = problem.detail ?? title;
      } catch {
        /* not JSON: keep the text */
      }
      throw new ApiProblem(res.status, title, detail);
    }
    return res;
  }

  async get<T>(path: string, query?: Query): Promise<T> {
    return (await (await this.send('GET', path, query ? { query } : {})).json()) as T;
  }

  async post<T>(path: string, body: unknown = {}): Promise<T> {
    return (await (await this.send('POST', path, { body })).json()) as T;
  }

  async put<T>(path: string, body: unknown): Promise<T> {
    return (await (await this.send('PUT', path, { body })).json()) as T;
  }

  async delete(path: string): Promise<void> {
    await this.send('DELETE', path);
  }

  /** A document (CSV, PDF) as a Blob, with the file name the API suggests. */
  async download(path: string, fallbackName: string): Promise<{ blob: Blob; filename: string }> {
    const res = await this.send('GET', path);
    const disposition = res.headers.get('content-disposition') ?? '';
    const match = /filename="?([^";]+)"?/.exec(disposition);
    return { blob: await res.blob(), filename: match?.[1] ?? fallbackName };
  }

  /** Every page of a keyset-paginated list (stops after `maxPages`). */
  async all<T>(path: string, query: Query, maxPages = 20): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    for (let pageNo = 0; pageNo < maxPages; pageNo++) {
      const page: { items: T[]; next_cursor: string | null } = await this.get(path, { ...query, ...(cursor ? { cursor } : {}) });
      items.push(...page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return items;
  }
}

/** Saves a Blob as a file through a temporary link (what the browser's download does). */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Shapes of the answers the dashboard reads (see /api/v1/openapi.json).

export interface Tenant {
  id: string;
  slug: string;
  name: string;
  currency: string;
  timezone: string;
}

export interface Service {
  id: string;
  tenant_id: string;
  name: string;
  runtime: string | null;
  memory_limit_mb: number | null;
}

export interface BillSummary {
  id: string;
  tenant_id: string;
  status: string;
  currency: string;
  period_start: string;
  period_end: string;
  total: string;
}

export interface LineItem {
  service: string;
  meter: string;
  description: string;
  quantity: string;
  billable_quantity: string;
  unit: string;
  unit_price: string;
  amount: string;
}

export interface Bill extends BillSummary {
  number: string | null;
  subtotal: string;
  tax_amount: string;
  line_items: LineItem[];
}

export interface Plan {
  id: string;
  name: string;
  version: number;
  currency: string;
  tenant_id: string | null;
  price_per_invocation: string;
  price_per_gb_s: string;
  price_per_cold_start: string;
  price_per_cpu_ms: string;
  free_tier_invocations: string;
  free_tier_gb_s: string;
  charge_models: Record<string, unknown>;
  active: boolean;
  default_for_currency: boolean;
}

export interface StoredForecast {
  horizon: string;
  as_of: string;
  currency: string;
  actual_cost: string | null;
  predicted_cost: string;
  lower_80: string;
  upper_80: string;
  lower_95: string;
  upper_95: string;
  model: string;
}

export interface Budget {
  amount: string;
  currency: string;
  thresholds: number[];
  month_to_date: string | null;
  used_percent: string | null;
  alerts: { threshold: number; at: string }[];
}

export interface DashboardData {
  tenant: Tenant;
  as_of: string;
  month_to_date: { total: string; currency: string; usage_as_of: string; lines: LineItem[] } | null;
  daily_totals: { date: string; invocations: number; gb_s: string }[];
  top_services: { service_id: string; service_name: string; invocations: number; gb_s: string; cold_start_rate: string; error_rate: string }[];
}

/** One anomaly of a service (GET /ml/insights: the last 24 hours), costliest first. */
export interface Anomaly {
  service: string;
  /** invocations, duration_p95_ms, memory_mb, errors or cost. */
  metric: string;
  score: number;
  /** Sums over the anomaly's hours for counts and cost; hourly levels for duration and memory. */
  expected: number;
  observed: number;
  since: string;
  /** End of the last abnormal hour (exclusive). */
  until: string;
  direction: 'spike' | 'drop';
  /** The service's cost over those hours minus its expected cost (an estimate, not a bill). */
  cost_impact: string;
  currency: string;
  explanation: string;
}

export type RecommendationKind = 'plan' | 'memory_limit' | 'min_scale' | 'budget' | 'quota';

/** A savings recommendation, or (saving null) a budget or free-allowance warning. */
export interface Recommendation {
  kind: RecommendationKind;
  service: string | null;
  current: string;
  suggested: string;
  /** What the change would have saved over the report's period; null for a warning. */
  saving: string | null;
  saving_share: string | null;
  explanation: string;
  evidence: Record<string, number | string | null>;
}

export interface RecommendationReport {
  currency: string;
  period_start: string;
  period_end: string;
  cost: string;
  /** Largest saving first, warnings last. */
  recommendations: Recommendation[];
  total_saving: string;
}

/** GET /ml/insights/:tenant_id (the fields the dashboard reads; it also returns forecasts). */
export interface Insights {
  tenant_id: string;
  anomalies: Anomaly[];
  recommendations: RecommendationReport;
}
