/**
 * The REST API over real HTTP (functions/api): every endpoint of functions/api/routes with its
 * happy path and its errors, against a fresh migrated database (PostgreSQL on DATABASE_URL, else
 * the embedded PGlite). Usage for billing is written into usage_raw (as save would store it) and
 * aggregated through POST /metrics/aggregate; bill figures are checked against a computation by
 * hand from the plan's prices. A second API with small limits covers the 413 answers.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Dec } from '../src/core/pricing/index.js';
import { insertRawEvent } from '../src/billing/testing.js';
import { startTestApi, type ApiResponse, type TestApi } from './support/api.js';

// ---------------------------------------------------------------------------------------------
// Shapes of the answers the tests read

interface InvalidField {
  name: string;
  reason: string;
}
interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  invalid_fields?: InvalidField[];
  errors?: { index: number; reason: string; detail: string }[];
  accepted?: number;
  duplicates?: number;
  rejected?: number;
}
interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
interface Tenant {
  id: string;
  slug: string;
  name: string;
  billing_email: string | null;
  currency: string;
  timezone: string;
  created_at: string;
  updated_at: string;
}
interface Plan {
  id: string;
  name: string;
  version: number;
  previous_version_id: string | null;
  tenant_id: string | null;
  currency: string;
  price_per_invocation: string;
  price_per_mb_ms: string;
  price_per_gb_s: string;
  price_per_cold_start: string;
  price_per_cpu_ms: string;
  free_tier_invocations: string;
  free_tier_mb_ms: string;
  free_tier_gb_s: string;
  rules: { duration_granularity_ms: number; min_billed_duration_ms: number; memory_step_mb: number; billed_memory: string };
  active: boolean;
  default_for_currency: boolean;
}
interface Assignment {
  id: string;
  plan_id: string;
  plan_name: string;
  plan_version: number;
  effective_from: string;
  effective_to: string | null;
}
interface CurrentPlan {
  tenant_id: string;
  plan: Plan;
  source: 'assignment' | 'currency_default';
  assignment: Assignment | null;
  history: Assignment[];
}
interface Service {
  id: string;
  tenant_id: string;
  name: string;
  namespace: string;
  memory_limit_mb: number | null;
}
interface Revision {
  id: string;
  service_id: string;
  name: string;
  image: string | null;
}
interface Artifact {
  service_id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  sha256: string;
  uploaded_at: string;
}
interface Accepted {
  accepted: number;
  duplicates: number;
  rejected: number;
}
interface Aggregated {
  buckets: number;
  windows: { '5m': number; '1h': number; '1d': number };
  rows_changed: number;
  tenants: string[];
  from: string | null;
  to: string | null;
  more: boolean;
}
interface BillLine {
  service: string;
  service_id: string | null;
  meter: string;
  description: string;
  quantity: string;
  free_quantity: string;
  billable_quantity: string;
  unit: string;
  unit_price: string;
  amount_unrounded: string;
  amount: string;
  is_adjustment: boolean;
  plan_id: string;
}
interface Bill {
  id: string | null;
  tenant_id: string;
  status: 'preview' | 'draft' | 'final' | 'paid';
  currency: string;
  period_start: string;
  period_end: string;
  plan_id: string | null;
  total: string;
  total_unrounded: string;
  line_items: BillLine[];
  finalized_at: string | null;
  paid_at: string | null;
}
interface BillSummary {
  id: string;
  tenant_id: string;
  status: string;
  currency: string;
  period_start: string;
  period_end: string;
  total: string;
}
interface Report {
  tenant: { id: string; slug: string };
  bills: { id: string; month: string; status: string; total: string }[];
  by_month: { month: string; total: string; status: string }[];
  by_service: { service_id: string | null; service: string; total: string }[];
  totals: { billed: string; paid: string; outstanding: string; draft: string; credited: string };
}
interface Band {
  expected: string;
  lower_80: string;
  upper_80: string;
  lower_95: string;
  upper_95: string;
}
interface Forecast {
  tenant_id: string;
  horizon: string;
  horizon_hours: number;
  currency: string;
  forecasted_cost: string;
  interval_80: { lower: string; upper: string };
  interval_95: { lower: string; upper: string };
  components: Record<'invocations' | 'compute' | 'cold_starts' | 'cpu', { unit: string; quantity: Band; cost: Band; model: string }>;
}
interface AggregateRow {
  id: string;
  tenant_id: string;
  service_id: string;
  service_name: string;
  window_size: string;
  window_start: string;
  window_end: string;
  invocations: number;
  cold_starts: number;
  billed_mb_ms: string;
}
interface DailyPoint {
  date: string;
  invocations: number;
  gb_s: string;
  cold_starts: number;
}
interface Dashboard {
  tenant: { id: string; slug: string };
  window: { days: number; first_date: string; last_date: string };
  daily: { service_id: string; service_name: string; points: DailyPoint[] }[];
  daily_totals: DailyPoint[];
  top_services: { service_id: string; service_name: string; invocations: number; gb_s: string; cold_starts: number }[];
  totals: { invocations: number; gb_s: string; cold_starts: number };
}
interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  role: string;
  tenant_id: string | null;
  revoked_at: string | null;
  key?: string;
}
interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string | null;
  tenant_id: string | null;
  details: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const uuidPattern = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** Asserts a problem+json answer with this status (and code, when given); returns the problem. */
function problem(res: ApiResponse<unknown>, status: number, code?: string): Problem {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, `not a problem document: ${res.headers.get('content-type') ?? ''} ${res.text}`);
  const body = res.body as Problem;
  assert.equal(body.status, status);
  assert.equal(typeof body.detail, 'string');
  assert.match(body.type, /^urn:faasbilling:problem:[a-z_]+$/);
  if (code) assert.equal(body.type, `urn:faasbilling:problem:${code}`);
  return body;
}

/** Asserts a 422 whose invalid_fields name `field`. */
function invalidField(res: ApiResponse<unknown>, field: string): Problem {
  const p = problem(res, 422, 'validation_failed');
  const names = (p.invalid_fields ?? []).map((f) => f.name);
  assert.ok(names.includes(field), `invalid_fields should name ${field}: ${JSON.stringify(p.invalid_fields)}`);
  return p;
}

function ok<T>(res: ApiResponse<T>, status = 200): T {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  return res.body;
}

const decEq = (actual: string, expected: string, what: string): void => assert.ok(new Dec(actual).eq(expected), `${what}: expected ${expected}, got ${actual}`);

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/** RFC 4180 records (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell.replace(/\r$/, ''));
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) rows.push([...row, cell]);
  return rows;
}

function form(name: string, bytes: Uint8Array, type: string): FormData {
  const data = new FormData();
  data.append('file', new Blob([bytes], { type }), name);
  return data;
}

/** A converted express path (`:id` → `{id}`), as the OpenAPI document should name it. */
const openapiPath = (route: { path: string; openapiPath?: string | undefined }): string => route.openapiPath ?? route.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');

// ---------------------------------------------------------------------------------------------

describe('REST API over HTTP', function () {
  this.timeout(120_000);
  let api: TestApi;
  /** Validator of a route's documented JSON answer (set by the OpenAPI test). */
  let documentedAnswer: ((method: string, openapiPath: string, status: number) => ValidateFunction) | undefined;

  before(async () => {
    // Generous rate limits: this suite calls the expensive routes more than 60 times a minute.
    api = await startTestApi({ env: { API_RATE_LIMIT_EXPENSIVE: '100000', API_RATE_LIMIT_INGEST: '100000' } });
  });
  after(async () => api?.close());

  const createTenant = async (slug: string, extra: Record<string, unknown> = {}): Promise<Tenant> =>
    ok(await api.call<Tenant>('POST', '/tenants', { body: { slug, name: `Tenant ${slug}`, ...extra } }), 201);
  const createService = async (tenantId: string, name: string): Promise<Service> =>
    ok(await api.call<Service>('POST', '/services', { body: { tenant_id: tenantId, name } }), 201);
  const createRevision = async (serviceId: string, name: string): Promise<Revision> =>
    ok(await api.call<Revision>('POST', `/services/${serviceId}/revisions`, { body: { name } }), 201);
  const aggregate = async (): Promise<Aggregated> => ok(await api.call<Aggregated>('POST', '/metrics/aggregate'));

  // -------------------------------------------------------------------------------------------
  describe('system: health, OpenAPI, docs, routing errors', () => {
    it('GET /health answers 200 without a key', async () => {
      const res = await api.call<{ status: string; database: string; time: string }>('GET', '/health', { key: null });
      const body = ok(res);
      assert.equal(body.status, 'ok');
      assert.equal(body.database, 'ok');
      assert.ok(!Number.isNaN(Date.parse(body.time)));
    });

    it('a protected route answers 401 without a key or with an unknown one', async () => {
      const none = await api.call('GET', '/tenants', { key: null });
      problem(none, 401, 'unauthorized');
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      problem(await api.call('GET', '/tenants', { key: `fbk_${'0'.repeat(12)}_${'A'.repeat(43)}` }), 401, 'unauthorized');
      problem(await api.call('GET', '/tenants', { key: 'not-a-key' }), 401, 'unauthorized');
      // X-API-Key works as well as Bearer.
      ok(await api.call('GET', '/tenants', { key: null, headers: { 'x-api-key': api.adminKey } }));
    });

    it('GET /openapi.json is an OpenAPI 3.1 document whose paths are exactly the routes served', async () => {
      const doc = ok(await api.call<Record<string, unknown>>('GET', '/openapi.json', { key: null }));
      const methods = ['get', 'put', 'post', 'delete', 'patch'];
      const structure = {
        type: 'object',
        required: ['openapi', 'info', 'paths', 'components'],
        properties: {
          openapi: { const: '3.1.0' },
          info: { type: 'object', required: ['title', 'version'], properties: { title: { type: 'string', minLength: 1 }, version: { type: 'string', minLength: 1 } } },
          servers: { type: 'array', items: { type: 'object', required: ['url'] } },
          paths: {
            type: 'object',
            minProperties: 1,
            propertyNames: { pattern: '^/' },
            additionalProperties: {
              type: 'object',
              minProperties: 1,
              propertyNames: { enum: methods },
              additionalProperties: {
                type: 'object',
                required: ['responses', 'operationId', 'summary'],
                properties: {
                  operationId: { type: 'string', minLength: 1 },
                  summary: { type: 'string' },
                  parameters: {
                    type: 'array',
                    items: { type: 'object', required: ['name', 'in', 'schema'], properties: { name: { type: 'string' }, in: { enum: ['path', 'query', 'header', 'cookie'] } } },
                  },
                  responses: {
                    type: 'object',
                    minProperties: 1,
                    propertyNames: { pattern: '^([1-5][0-9]{2}|default)$' },
                    additionalProperties: { type: 'object', required: ['description'], properties: { description: { type: 'string' } } },
                  },
                },
              },
            },
          },
          components: { type: 'object' },
        },
      };
      const validate = new Ajv({ allErrors: true, strict: false }).compile(structure);
      assert.ok(validate(doc), JSON.stringify(validate.errors, null, 2));

      type Operation = { operationId: string; parameters?: { name: string; in: string; required?: boolean }[] };
      const paths = doc.paths as Record<string, Record<string, Operation>>;
      const documented = new Set(Object.entries(paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));

      // Every declared route, and every route express really registered under /api/v1.
      const declared = new Set(api.server.api.routes.map((r) => `${r.method.toUpperCase()} ${openapiPath(r)}`));
      assert.equal(declared.size, api.server.api.routes.length, 'two routes share a method and path');
      const stack = (api.server.api.app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router.stack;
      const served = new Set<string>();
      for (const layer of stack) {
        if (!layer.route || !layer.route.path.startsWith('/api/v1/')) continue;
        const p = layer.route.path.slice('/api/v1'.length);
        if (p === '/openapi.json' || p === '/docs') continue; // the documentation itself
        const route = api.server.api.routes.find((r) => r.path === p);
        for (const [m, on] of Object.entries(layer.route.methods)) if (on) served.add(`${m.toUpperCase()} ${route ? openapiPath(route) : openapiPath({ path: p })}`);
      }
      assert.deepEqual([...served].sort(), [...declared].sort(), 'express serves exactly the declared routes');
      assert.deepEqual([...documented].sort(), [...declared].sort(), 'the document lists exactly the served routes');

      // Every {param} of a path is a required path parameter of each of its operations; operationIds are unique.
      const ids = new Set<string>();
      for (const [p, ops] of Object.entries(paths)) {
        const names = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        for (const [m, op] of Object.entries(ops)) {
          assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} is used twice`);
          ids.add(op.operationId);
          for (const name of names) {
            assert.ok(
              (op.parameters ?? []).some((x) => x.name === name && x.in === 'path' && x.required === true),
              `${m.toUpperCase()} ${p} does not declare its path parameter ${String(name)}`,
            );
          }
        }
      }
    });

    it('every schema in the document is valid JSON Schema 2020-12, and real answers match their documented schemas', async () => {
      const doc = ok(await api.call<Record<string, unknown>>('GET', '/openapi.json', { key: null }));
      const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
      ajv.addSchema(doc, 'openapi.json');
      const pointer = (...parts: string[]): string => `openapi.json#/${parts.map((x) => x.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
      type Op = { requestBody?: { content: Record<string, { schema?: unknown }> }; responses: Record<string, { content?: Record<string, { schema?: unknown }> }>; parameters?: unknown[] };
      let compiled = 0;
      for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, Op>>)) {
        for (const [m, op] of Object.entries(ops)) {
          const refs = [
            ...Object.keys(op.requestBody?.content ?? {}).map((ct) => pointer('paths', p, m, 'requestBody', 'content', ct, 'schema')),
            ...Object.entries(op.responses).flatMap(([status, r]) =>
              Object.entries(r.content ?? {})
                .filter(([, c]) => c.schema !== undefined)
                .map(([ct]) => pointer('paths', p, m, 'responses', status, 'content', ct, 'schema')),
            ),
            ...(op.parameters ?? []).map((_x, i) => pointer('paths', p, m, 'parameters', String(i), 'schema')),
          ];
          for (const $ref of refs) {
            assert.doesNotThrow(() => ajv.compile({ $ref }), `${$ref} is not a valid schema`);
            compiled++;
          }
        }
      }
      assert.ok(compiled > api.server.api.routes.length);
      documentedAnswer = (method, p, status) => ajv.compile({ $ref: pointer('paths', p, method, 'responses', String(status), 'content', 'application/json', 'schema') });
      const health = documentedAnswer('get', '/health', 200);
      assert.ok(health(ok(await api.call('GET', '/health', { key: null }))), JSON.stringify(health.errors));
      assert.equal(health({ status: 'fine' }), false, 'the documented schema does reject a wrong answer');
    });

    it('GET /docs is an HTML page listing every path', async () => {
      const res = await api.call('GET', '/docs', { key: null });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(res.text, /^<!doctype html>/i);
      for (const route of api.server.api.routes) assert.ok(res.text.includes(`/api/v1${openapiPath(route)}`), `docs lack ${openapiPath(route)}`);
    });

    it('an unknown path is a 404 problem, inside and outside /api/v1', async () => {
      problem(await api.call('GET', '/no-such-thing'), 404, 'not_found');
      const outside = await fetch(`${api.url}/no-such-thing`);
      assert.equal(outside.status, 404);
      assert.match(outside.headers.get('content-type') ?? '', /^application\/problem\+json/);
    });

    it('a known path with another method is a 405 with Allow', async () => {
      const res = await api.call('DELETE', '/tenants');
      problem(res, 405, 'method_not_allowed');
      assert.deepEqual((res.headers.get('allow') ?? '').split(/,\s*/).sort(), ['GET', 'POST']);
      const health = await api.call('PATCH', '/health', { key: null });
      problem(health, 405, 'method_not_allowed');
      assert.equal(health.headers.get('allow'), 'GET');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('tenants', () => {
    let acme: Tenant;

    it('POST /tenants creates a tenant: 201 with Location', async () => {
      const res = await api.call<Tenant>('POST', '/tenants', {
        body: { slug: 'acme', name: 'Acme Corp', billing_email: 'billing@acme.test', currency: 'EUR', timezone: 'Europe/Berlin' },
      });
      acme = ok(res, 201);
      assert.match(acme.id, uuidPattern);
      assert.equal(res.headers.get('location'), `/api/v1/tenants/${acme.id}`);
      assert.deepEqual(
        { slug: acme.slug, name: acme.name, billing_email: acme.billing_email, currency: acme.currency, timezone: acme.timezone },
        { slug: 'acme', name: 'Acme Corp', billing_email: 'billing@acme.test', currency: 'EUR', timezone: 'Europe/Berlin' },
      );
      const defaults = await createTenant('beta');
      assert.equal(defaults.currency, 'USD');
      assert.equal(defaults.timezone, 'UTC');
    });

    it('a duplicate slug is a 409', async () => {
      problem(await api.call('POST', '/tenants', { body: { slug: 'acme', name: 'Again' } }), 409, 'conflict');
    });

    it('an invalid time zone, currency or slug is a 422 naming the field', async () => {
      invalidField(await api.call('POST', '/tenants', { body: { slug: 'tz-bad', name: 'x', timezone: 'Mars/Olympus' } }), 'body.timezone');
      invalidField(await api.call('POST', '/tenants', { body: { slug: 'cur-bad', name: 'x', currency: 'usd' } }), 'body.currency');
      invalidField(await api.call('POST', '/tenants', { body: { slug: 'cur-bad2', name: 'x', currency: 'XYZ1' } }), 'body.currency');
      invalidField(await api.call('POST', '/tenants', { body: { slug: '-bad slug', name: 'x' } }), 'body.slug');
      invalidField(await api.call('POST', '/tenants', { body: { slug: 'no-name' } }), 'body.name');
    });

    it('unknown fields are a 422', async () => {
      const p = problem(await api.call('POST', '/tenants', { body: { slug: 'extra', name: 'x', plan: 'gold' } }), 422, 'validation_failed');
      assert.ok(JSON.stringify(p.invalid_fields).includes('plan'), JSON.stringify(p));
      problem(await api.call('GET', '/tenants/extra'), 404, 'not_found');
    });

    it('a body that is not JSON is a 415; malformed JSON is a 400', async () => {
      problem(await api.call('POST', '/tenants', { raw: 'slug=x&name=y', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
      problem(await api.call('POST', '/tenants', { raw: '{"slug": "x", "name": ', headers: { 'content-type': 'application/json' } }), 400, 'malformed_json');
    });

    it('GET /tenants pages by slug (limit=1, then the cursor)', async () => {
      const first = ok(await api.call<Page<Tenant>>('GET', '/tenants?limit=1'));
      assert.equal(first.items.length, 1);
      assert.ok(first.next_cursor, 'a next page');
      const all: string[] = [...first.items.map((t) => t.slug)];
      let cursor: string | null = first.next_cursor;
      while (cursor) {
        const page: Page<Tenant> = ok(await api.call<Page<Tenant>>('GET', `/tenants?limit=1&cursor=${encodeURIComponent(cursor)}`));
        assert.ok(page.items.length <= 1);
        all.push(...page.items.map((t) => t.slug));
        cursor = page.next_cursor;
      }
      assert.deepEqual(all, [...all].sort(), 'ordered by slug');
      assert.equal(new Set(all).size, all.length, 'no tenant twice');
      assert.ok(all.includes('acme') && all.includes('beta'));
      const whole = ok(await api.call<Page<Tenant>>('GET', '/tenants?limit=500'));
      assert.deepEqual(whole.items.map((t) => t.slug), all);
      assert.equal(whole.next_cursor, null);
      invalidField(await api.call('GET', '/tenants?limit=0'), 'query.limit');
    });

    it('GET /tenants/:id finds a tenant by id and by slug; an unknown one is a 404', async () => {
      assert.deepEqual(ok(await api.call<Tenant>('GET', `/tenants/${acme.id}`)), acme);
      assert.deepEqual(ok(await api.call<Tenant>('GET', '/tenants/acme')), acme);
      problem(await api.call('GET', `/tenants/${randomUUID()}`), 404, 'not_found');
      problem(await api.call('GET', '/tenants/nobody'), 404, 'not_found');
    });

    it('PATCH and PUT /tenants/:id update fields (currency too, while it has no bill)', async () => {
      const patched = ok(await api.call<Tenant>('PATCH', `/tenants/${acme.id}`, { body: { name: 'Acme GmbH', timezone: 'UTC', currency: 'USD' } }));
      assert.equal(patched.name, 'Acme GmbH');
      assert.equal(patched.timezone, 'UTC');
      assert.equal(patched.currency, 'USD');
      assert.equal(patched.slug, 'acme');
      const put = ok(await api.call<Tenant>('PUT', '/tenants/acme', { body: { billing_email: null } }));
      assert.equal(put.billing_email, null);
      assert.equal(put.name, 'Acme GmbH');
      assert.deepEqual(ok(await api.call<Tenant>('GET', `/tenants/${acme.id}`)), put);
      invalidField(await api.call('PATCH', `/tenants/${acme.id}`, { body: { timezone: 'Nowhere/Land' } }), 'body.timezone');
      problem(await api.call('PATCH', `/tenants/${randomUUID()}`, { body: { name: 'x' } }), 404, 'not_found');
      // Currency change after a bill: see the billing suite.
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('pricing plans and assignments', () => {
    let usd: Plan;
    let rub: Plan;
    let versioned: Plan;
    let tenant: Tenant;
    let gbp: { v1: Plan; v2: Plan; tenant: Tenant } | undefined;

    before(async () => {
      tenant = await createTenant('plan-tenant');
    });

    it('the seeded plans are listed; /pricing/plans and /pricing-plans answer the same', async () => {
      const a = ok(await api.call<{ items: Plan[] }>('GET', '/pricing/plans'));
      const b = ok(await api.call<{ items: Plan[] }>('GET', '/pricing-plans'));
      assert.deepEqual(a, b);
      const found = (name: string): Plan => {
        const plan = a.items.find((p) => p.name === name);
        assert.ok(plan, `${name} listed`);
        return plan;
      };
      usd = found('standard-usd');
      rub = found('standard-rub');
      assert.equal(usd.currency, 'USD');
      assert.equal(usd.default_for_currency, true);
      assert.equal(usd.price_per_invocation, '0.0000002');
      const onlyRub = ok(await api.call<{ items: Plan[] }>('GET', '/pricing/plans?currency=RUB'));
      assert.ok(onlyRub.items.length >= 1);
      assert.ok(onlyRub.items.every((p) => p.currency === 'RUB'));
    });

    it('POST /pricing/plans creates version 1 from decimal strings (price per MB·ms or per GB-s)', async () => {
      const res = await api.call<Plan>('POST', '/pricing/plans', {
        body: { name: 'per-mbms', currency: 'USD', price_per_invocation: '0.0000002', price_per_mb_ms: '0.00000000001627607421875', free_tier_invocations: 1000 },
      });
      const perMbMs = ok(res, 201);
      assert.equal(res.headers.get('location'), `/api/v1/pricing/plans/${perMbMs.id}`);
      assert.equal(perMbMs.version, 1);
      assert.equal(perMbMs.active, true);
      assert.equal(perMbMs.previous_version_id, null);
      decEq(perMbMs.price_per_gb_s, '0.0000166667', 'price_per_gb_s from price_per_mb_ms');
      decEq(perMbMs.free_tier_invocations, '1000', 'free_tier_invocations');

      const perGbS = ok(await api.call<Plan>('POST', '/pricing/plans', { body: { name: 'per-gbs', currency: 'USD', price_per_gb_s: '0.0000166667', price_per_cold_start: '0.001' } }), 201);
      decEq(perGbS.price_per_mb_ms, '0.00000000001627607421875', 'price_per_mb_ms = price_per_gb_s / 1 024 000');
      decEq(perGbS.price_per_cold_start, '0.001', 'price_per_cold_start');
      assert.deepEqual(ok(await api.call<Plan>('GET', `/pricing/plans/${perGbS.id}`)), perGbS);
    });

    it('invalid prices and plans are 422s naming the field; a taken name is a 409', async () => {
      invalidField(await api.call('POST', '/pricing/plans', { body: { name: 'neg', currency: 'USD', price_per_invocation: '-0.1' } }), 'body.price_per_invocation');
      invalidField(await api.call('POST', '/pricing/plans', { body: { name: 'num', currency: 'USD', price_per_invocation: 0.1 } }), 'body.price_per_invocation');
      invalidField(await api.call('POST', '/pricing/plans', { body: { name: 'txt', currency: 'USD', price_per_gb_s: 'cheap' } }), 'body.price_per_gb_s');
      invalidField(await api.call('POST', '/pricing/plans', { body: { name: 'cur', currency: 'dollars', price_per_invocation: '1' } }), 'body.currency');
      // Both compute prices given and disagreeing.
      problem(await api.call('POST', '/pricing/plans', { body: { name: 'both', currency: 'USD', price_per_mb_ms: '1', price_per_gb_s: '1' } }), 422, 'validation_failed');
      problem(await api.call('POST', '/pricing/plans', { body: { name: 'extra', currency: 'USD', discount: '10%' } }), 422, 'validation_failed');
      problem(await api.call('POST', '/pricing/plans', { body: { name: 'standard-usd', currency: 'USD', price_per_invocation: '1' } }), 409, 'conflict');
      const names = ok(await api.call<{ items: Plan[] }>('GET', '/pricing/plans?include_inactive=true')).items.map((p) => p.name);
      for (const refused of ['neg', 'num', 'txt', 'cur', 'both', 'extra']) assert.ok(!names.includes(refused), `${refused} was stored`);
    });

    it('GET /pricing/plans/:id of an unknown plan is a 404', async () => {
      problem(await api.call('GET', `/pricing/plans/${randomUUID()}`), 404, 'not_found');
      problem(await api.call('GET', '/pricing/plans/standard-usd'), 404, 'not_found');
    });

    it('PUT on a plan nothing refers to edits it in place (200, same id, same version)', async () => {
      const plan = ok(await api.call<Plan>('POST', '/pricing/plans', { body: { name: 'draft-plan', currency: 'USD', price_per_invocation: '0.001' } }), 201);
      const res = await api.call<Plan>('PUT', `/pricing/plans/${plan.id}`, { body: { name: 'draft-plan', currency: 'USD', price_per_invocation: '0.002', price_per_gb_s: '0.00002' } });
      const edited = ok(res, 200);
      assert.equal(edited.id, plan.id);
      assert.equal(edited.version, 1);
      assert.equal(edited.price_per_invocation, '0.002');
      decEq(edited.price_per_gb_s, '0.00002', 'price_per_gb_s');
      assert.deepEqual(ok(await api.call<Plan>('GET', `/pricing/plans/${plan.id}`)), edited);
      const all = ok(await api.call<{ items: Plan[] }>('GET', '/pricing/plans?include_inactive=true')).items.filter((p) => p.name === 'draft-plan');
      assert.equal(all.length, 1, 'no second version');
      // A plan keeps its currency.
      invalidField(await api.call('PUT', `/pricing/plans/${plan.id}`, { body: { name: 'draft-plan', currency: 'RUB', price_per_invocation: '1' } }), 'body.currency');
      problem(await api.call('PUT', `/pricing/plans/${randomUUID()}`, { body: { name: 'x', currency: 'USD' } }), 404, 'not_found');
    });

    it('PUT /tenants/:id/pricing-plan assigns a plan from effective_from; GET shows it with its history', async () => {
      versioned = ok(await api.call<Plan>('POST', '/pricing/plans', { body: { name: 'versioned', currency: 'USD', price_per_invocation: '0.01', price_per_gb_s: '1' } }), 201);
      const before = ok(await api.call<CurrentPlan>('GET', `/tenants/${tenant.id}/pricing-plan`));
      assert.equal(before.source, 'currency_default');
      assert.equal(before.plan.id, usd.id);
      assert.deepEqual(before.history, []);

      const assigned = ok(await api.call<CurrentPlan>('PUT', `/tenants/${tenant.id}/pricing-plan`, { body: { pricing_plan_id: versioned.id, effective_from: '2020-01-01T00:00:00Z' } }));
      assert.equal(assigned.source, 'assignment');
      assert.equal(assigned.plan.id, versioned.id);
      const got = ok(await api.call<CurrentPlan>('GET', `/tenants/${tenant.slug}/pricing-plan`));
      assert.equal(got.plan.id, versioned.id);
      assert.equal(got.history.length, 1);
      assert.equal(got.history[0]?.plan_id, versioned.id);
      assert.equal(got.history[0]?.effective_from, '2020-01-01T00:00:00.000Z');
      assert.equal(got.history[0]?.effective_to, null);
      // Before the assignment, the currency default applied.
      const earlier = ok(await api.call<CurrentPlan>('GET', `/tenants/${tenant.id}/pricing-plan?at=2019-06-01T00:00:00Z`));
      assert.equal(earlier.source, 'currency_default');
      assert.equal(earlier.plan.id, usd.id);
    });

    it('an assignment in another currency, of an unknown plan, or rewriting history is refused', async () => {
      invalidField(await api.call('PUT', `/tenants/${tenant.id}/pricing-plan`, { body: { pricing_plan_id: rub.id } }), 'body.pricing_plan_id');
      invalidField(await api.call('PUT', `/tenants/${tenant.id}/pricing-plan`, { body: { pricing_plan_id: randomUUID() } }), 'body.pricing_plan_id');
      invalidField(await api.call('PUT', `/tenants/${tenant.id}/pricing-plan`, { body: { pricing_plan_id: 'standard-usd' } }), 'body.pricing_plan_id');
      problem(await api.call('PUT', `/tenants/${tenant.id}/pricing-plan`, { body: { pricing_plan_id: usd.id, effective_from: '2019-01-01T00:00:00Z' } }), 409, 'conflict');
      problem(await api.call('PUT', `/tenants/${randomUUID()}/pricing-plan`, { body: { pricing_plan_id: usd.id } }), 404, 'not_found');
      const after = ok(await api.call<CurrentPlan>('GET', `/tenants/${tenant.id}/pricing-plan`));
      assert.equal(after.history.length, 1, 'nothing was assigned');
    });

    it('PUT on a plan in use creates version 2 (201) and moves its tenants to it', async () => {
      const res = await api.call<Plan>('PUT', `/pricing/plans/${versioned.id}`, { body: { name: 'versioned', currency: 'USD', price_per_invocation: '0.02', price_per_gb_s: '1' } });
      const v2 = ok(res, 201);
      assert.notEqual(v2.id, versioned.id);
      assert.equal(v2.version, 2);
      assert.equal(v2.previous_version_id, versioned.id);
      assert.equal(v2.active, true);
      assert.equal(v2.price_per_invocation, '0.02');
      assert.equal(res.headers.get('location'), `/api/v1/pricing/plans/${v2.id}`);

      const v1 = ok(await api.call<Plan>('GET', `/pricing/plans/${versioned.id}`));
      assert.equal(v1.active, false);
      assert.equal(v1.price_per_invocation, '0.01', 'the old version is unchanged');
      const listed = ok(await api.call<{ items: Plan[] }>('GET', '/pricing/plans')).items.map((p) => p.id);
      assert.ok(listed.includes(v2.id) && !listed.includes(versioned.id), 'only active versions are listed by default');

      const current = ok(await api.call<CurrentPlan>('GET', `/tenants/${tenant.id}/pricing-plan`));
      assert.equal(current.plan.id, v2.id);
      assert.equal(current.plan.version, 2);
      assert.deepEqual(current.history.map((h) => h.plan_id), [versioned.id, v2.id]);
      assert.equal(current.history[0]?.effective_to, current.history[1]?.effective_from);

      // The old version has a newer one: changing it again is a conflict; a retired plan cannot be assigned.
      problem(await api.call('PUT', `/pricing/plans/${versioned.id}`, { body: { name: 'versioned', currency: 'USD', price_per_invocation: '0.03' } }), 409, 'conflict');
      invalidField(await api.call('PUT', `/tenants/${tenant.id}/pricing-plan`, { body: { pricing_plan_id: versioned.id } }), 'body.pricing_plan_id');
      versioned = v2;
    });

    it('PUT renaming a plan to a name that is taken is a 409, not a 500', async () => {
      const plan = ok(await api.call<Plan>('POST', '/pricing/plans', { body: { name: 'to-rename', currency: 'USD', price_per_invocation: '1' } }), 201);
      problem(await api.call('PUT', `/pricing/plans/${plan.id}`, { body: { name: 'standard-usd', currency: 'USD', price_per_invocation: '1' } }), 409, 'conflict');
      assert.equal(ok(await api.call<Plan>('GET', `/pricing/plans/${plan.id}`)).name, 'to-rename');
      const renamed = ok(await api.call<Plan>('PUT', `/pricing/plans/${plan.id}`, { body: { name: 'renamed', currency: 'USD', price_per_invocation: '1' } }));
      assert.equal(renamed.name, 'renamed');
      assert.equal(renamed.id, plan.id);
    });

    it('PUT on a currency-default plan versions it: the default moves to v2 from effective_from, earlier usage keeps v1 prices', async () => {
      const v1 = ok(await api.call<Plan>('POST', '/pricing/plans', { body: { name: 'gbp-default', currency: 'GBP', price_per_invocation: '1', default_for_currency: true } }), 201);
      assert.equal(v1.default_for_currency, true);
      const uk = await createTenant('uk-tenant', { currency: 'GBP' });
      const fn = await createService(uk.id, 'fn');
      const rev = await createRevision(fn.id, 'fn-00001');
      await insertRawEvent(api.database.db, { tenantId: uk.id, serviceId: fn.id, revisionId: rev.id, time: '2025-10-05T10:00:00Z', invocations: 3, durationMs: '10', memoryMb: '128' });
      await aggregate();
      const before = ok(await api.call<Bill>('POST', '/billing/calculate', { body: { tenant_id: uk.id, month: '2025-10' } }));
      assert.equal(before.total, '3.00'); // 3 invocations × 1 GBP
      assert.equal(before.plan_id, v1.id);

      const v2 = ok(await api.call<Plan>('PUT', `/pricing/plans/${v1.id}`, { body: { name: 'gbp-default', currency: 'GBP', price_per_invocation: '2' } }), 201);
      assert.equal(v2.version, 2);
      assert.equal(v2.default_for_currency, true);
      const old = ok(await api.call<Plan>('GET', `/pricing/plans/${v1.id}`));
      assert.equal(old.default_for_currency, false);
      assert.equal(old.active, false);
      const now = ok(await api.call<CurrentPlan>('GET', `/tenants/${uk.id}/pricing-plan`));
      assert.equal(now.source, 'currency_default');
      assert.equal(now.plan.id, v2.id);

      gbp = { v1, v2, tenant: uk };
    });

    it('… and usage before effective_from keeps version 1’s prices (the default moves only from then)', async () => {
      assert.ok(gbp, 'the previous test ran');
      const after = ok(await api.call<Bill>('POST', '/billing/calculate', { body: { tenant_id: gbp.tenant.id, month: '2025-10' } }));
      const then = ok(await api.call<CurrentPlan>('GET', `/tenants/${gbp.tenant.id}/pricing-plan?at=2025-10-15T00:00:00Z`));
      assert.deepEqual(
        { total: after.total, plan_id: after.plan_id, in_force_2025_10: then.plan.id },
        { total: '3.00', plan_id: gbp.v1.id, in_force_2025_10: gbp.v1.id },
        'October 2025 is priced (and reported) at version 1, not repriced at version 2',
      );
    });

    it('DELETE removes an unused plan, retires one with history, and refuses one in use (409)', async () => {
      const unused = ok(await api.call<Plan>('POST', '/pricing/plans', { body: { name: 'short-lived', currency: 'USD', price_per_invocation: '1' } }), 201);
      assert.deepEqual(ok(await api.call('DELETE', `/pricing/plans/${unused.id}`)), { id: unused.id, deleted: true, retired: false });
      problem(await api.call('GET', `/pricing/plans/${unused.id}`), 404, 'not_found');

      // Version 1 of "versioned" has a closed assignment: kept for history, retired.
      const v1Id = versioned.previous_version_id ?? '';
      assert.deepEqual(ok(await api.call('DELETE', `/pricing/plans/${v1Id}`)), { id: v1Id, deleted: false, retired: true });
      assert.equal(ok(await api.call<Plan>('GET', `/pricing/plans/${v1Id}`)).active, false);

      // Version 2 has an open assignment; standard-usd is its currency's default.
      problem(await api.call('DELETE', `/pricing/plans/${versioned.id}`), 409, 'plan_in_use');
      problem(await api.call('DELETE', `/pricing/plans/${usd.id}`), 409, 'plan_in_use');
      assert.equal(ok(await api.call<Plan>('GET', `/pricing/plans/${versioned.id}`)).active, true);
      problem(await api.call('DELETE', `/pricing/plans/${randomUUID()}`), 404, 'not_found');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('services, revisions and artifacts', () => {
    let tenant: Tenant;
    let service: Service;
    const bytes = new Uint8Array(randomBytes(4096));

    before(async () => {
      tenant = await createTenant('svc-tenant');
    });

    it('POST /services registers a service (201, Location); a duplicate is a 409', async () => {
      const res = await api.call<Service>('POST', '/services', { body: { tenant_id: tenant.slug, name: 'checkout', memory_limit_mb: 256 } });
      service = ok(res, 201);
      assert.equal(res.headers.get('location'), `/api/v1/services/${service.id}`);
      assert.equal(service.tenant_id, tenant.id);
      assert.equal(service.namespace, 'default');
      assert.equal(service.memory_limit_mb, 256);
      problem(await api.call('POST', '/services', { body: { tenant_id: tenant.id, name: 'checkout' } }), 409, 'conflict');
    });

    it('invalid services are 422s', async () => {
      invalidField(await api.call('POST', '/services', { body: { tenant_id: tenant.id, name: 'Not_A_K8s_Name' } }), 'body.name');
      problem(await api.call('POST', '/services', { body: { name: 'no-tenant' } }), 422, 'validation_failed');
      problem(await api.call('POST', '/services', { body: { tenant_id: 'nobody', name: 'x' } }), 404, 'not_found');
    });

    it('GET /services lists a tenant’s services with pagination; GET /services/:id reads one', async () => {
      const second = await createService(tenant.id, 'inventory');
      const first = ok(await api.call<Page<Service>>('GET', `/services?tenant_id=${tenant.id}&limit=1`));
      assert.equal(first.items.length, 1);
      assert.ok(first.next_cursor);
      const rest = ok(await api.call<Page<Service>>('GET', `/services?tenant_id=${tenant.id}&limit=1&cursor=${first.next_cursor}`));
      assert.equal(rest.items.length, 1);
      assert.equal(rest.next_cursor, null);
      assert.deepEqual([...first.items, ...rest.items].map((s) => s.id).sort(), [service.id, second.id].sort());
      assert.deepEqual(ok(await api.call<Service>('GET', `/services/${service.id}`)), service);
      problem(await api.call('GET', `/services/${randomUUID()}`), 404, 'not_found');
      problem(await api.call('GET', '/services/not-a-uuid'), 404, 'not_found');
    });

    it('revisions: POST creates (201, 409 on a repeat), GET lists', async () => {
      const rev = ok(await api.call<Revision>('POST', `/services/${service.id}/revisions`, { body: { name: 'checkout-00001', image: 'registry.test/checkout:1' } }), 201);
      assert.equal(rev.service_id, service.id);
      assert.equal(rev.image, 'registry.test/checkout:1');
      problem(await api.call('POST', `/services/${service.id}/revisions`, { body: { name: 'checkout-00001' } }), 409, 'conflict');
      invalidField(await api.call('POST', `/services/${service.id}/revisions`, { body: { name: 'Bad Name' } }), 'body.name');
      await createRevision(service.id, 'checkout-00002');
      const list = ok(await api.call<{ items: Revision[] }>('GET', `/services/${service.id}/revisions`));
      assert.deepEqual(list.items.map((r) => r.name), ['checkout-00001', 'checkout-00002']);
      problem(await api.call('GET', `/services/${randomUUID()}/revisions`), 404, 'not_found');
    });

    it('an artifact uploads as multipart (201, sha256) and downloads byte for byte with its ETag', async () => {
      const res = await api.call<Artifact>('POST', `/services/${service.id}/upload`, { raw: form('bundle.zip', bytes, 'application/zip') });
      const info = ok(res, 201);
      assert.equal(info.filename, 'bundle.zip');
      assert.equal(info.size_bytes, bytes.length);
      assert.equal(info.sha256, sha256(bytes));
      assert.equal(info.content_type, 'application/zip');
      assert.equal(res.headers.get('location'), `/api/v1/artifacts/${service.id}/bundle.zip`);

      const download = await fetch(`${api.url}/api/v1/artifacts/${service.id}/bundle.zip`, { headers: { authorization: `Bearer ${api.adminKey}` } });
      assert.equal(download.status, 200);
      assert.equal(download.headers.get('etag'), `"${sha256(bytes)}"`);
      assert.match(download.headers.get('content-type') ?? '', /^application\/zip/);
      const got = new Uint8Array(await download.arrayBuffer());
      assert.ok(Buffer.from(got).equals(Buffer.from(bytes)), 'identical bytes');

      const listed = ok(await api.call<{ items: Artifact[] }>('GET', `/services/${service.id}/artifacts`));
      assert.deepEqual(listed.items.map((a) => [a.filename, a.sha256]), [['bundle.zip', sha256(bytes)]]);
      problem(await api.call('GET', `/artifacts/${service.id}/missing.zip`), 404, 'not_found');
      problem(await api.call('GET', `/artifacts/${randomUUID()}/bundle.zip`), 404, 'not_found');
    });

    const badNames = ['../evil', '../../evil', 'x/../../evil', '..\\evil', '.env', 'a b', '..'];
    const badAnswers = new Map<string, ApiResponse<unknown>>();

    it('whatever the name, an upload writes nothing outside artifactsDir/<serviceId>/', async () => {
      const parentEvil = path.join(path.dirname(api.artifactsDir), 'evil');
      const existedBefore = existsSync(parentEvil);
      for (const name of badNames) {
        badAnswers.set(name, await api.call('POST', `/services/${service.id}/upload`, { raw: form(name, new Uint8Array([1, 2, 3]), 'text/plain') }));
      }
      const serviceDir = path.join(api.artifactsDir, service.id) + path.sep;
      const files = await filesUnder(api.artifactsDir);
      assert.ok(files.length > 0);
      for (const file of files) assert.ok(file.startsWith(serviceDir), `${file} is outside ${serviceDir}`);
      assert.equal(existsSync(parentEvil), existedBefore, 'nothing written next to the artifacts directory');
      assert.equal(existsSync(path.join(api.artifactsDir, 'evil')), false);
    });

    it('bad artifact names are refused with a 4xx and nothing is stored under them', async () => {
      assert.equal(badAnswers.size, badNames.length);
      const accepted = [...badAnswers].filter(([, res]) => res.status < 400 || res.status >= 500).map(([name, res]) => `${JSON.stringify(name)} → ${res.status} ${res.text}`);
      assert.deepEqual(accepted, [], 'every bad name is refused with a 4xx');
      for (const [, res] of badAnswers) problem(res, res.status);
      for (const name of ['.env', 'a b']) invalidField(badAnswers.get(name) as ApiResponse<unknown>, 'filename');
      const names = ok(await api.call<{ items: Artifact[] }>('GET', `/services/${service.id}/artifacts`)).items.map((a) => a.filename);
      assert.deepEqual(names, ['bundle.zip'], 'no artifact stored under a bad (or silently rewritten) name');
    });

    it('an unsupported content type is a 415; a missing file is a 422', async () => {
      problem(await api.call('POST', `/services/${service.id}/upload`, { raw: form('page.html', new Uint8Array([60, 104, 62]), 'text/html') }), 415, 'unsupported_media_type');
      const noFile = new FormData();
      noFile.append('note', 'no file here');
      invalidField(await api.call('POST', `/services/${service.id}/upload`, { raw: noFile }), 'file');
      problem(await api.call('POST', `/services/${randomUUID()}/upload`, { raw: form('x.zip', bytes, 'application/zip') }), 404, 'not_found');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('metrics: ingest and aggregate', () => {
    const recent = (): string => new Date(Date.now() - 60_000).toISOString();
    const seed = (overrides: Record<string, unknown> = {}) => ({
      timestamp: recent(),
      tenant_id: 'ingest-tenant',
      service_name: 'waiter',
      revision: 'waiter-00001',
      invocations: 1,
      duration_seconds: 0.234,
      memory_mb: 128,
      cold_start: false,
      labels: { method: 'GET' },
      request_id: randomUUID(),
      ...overrides,
    });

    it('POST /metrics/ingest takes a seed JSON object and an array (202 {accepted})', async () => {
      const one = await api.call<Accepted>('POST', '/metrics/ingest', { body: seed() });
      assert.deepEqual(ok(one, 202), { accepted: 1, duplicates: 0, rejected: 0 });
      const many = await api.call<Accepted>('POST', '/metrics/ingest', { body: [seed(), seed({ cold_start: true }), seed({ invocations: 3, duration_seconds: 0.9 })] });
      assert.deepEqual(ok(many, 202), { accepted: 3, duplicates: 0, rejected: 0 });
    });

    it('the same event again is counted as a duplicate', async () => {
      const event = seed();
      assert.deepEqual(ok(await api.call<Accepted>('POST', '/metrics/ingest', { body: event }), 202), { accepted: 1, duplicates: 0, rejected: 0 });
      assert.deepEqual(ok(await api.call<Accepted>('POST', '/metrics/ingest', { body: event }), 202), { accepted: 0, duplicates: 1, rejected: 0 });
    });

    it('a CloudEvent in binary and in structured mode is accepted (202)', async () => {
      const data = { tenant_id: 'ingest-tenant', service: 'waiter', revision: 'waiter-00001', invocations: 2, duration_ms: 40, memory_mb: 256, cold_start: true };
      const binary = await api.call<Accepted>('POST', '/metrics/ingest', {
        raw: JSON.stringify(data),
        headers: {
          'content-type': 'application/json',
          'ce-specversion': '1.0',
          'ce-type': 'faasbilling.usage.v1',
          'ce-source': '/test/api',
          'ce-id': randomUUID(),
          'ce-time': recent(),
        },
      });
      assert.deepEqual(ok(binary, 202), { accepted: 1, duplicates: 0, rejected: 0 });
      const structured = { specversion: '1.0', type: 'faasbilling.usage.v1', source: '/test/api', id: randomUUID(), time: recent(), datacontenttype: 'application/json', data };
      const res = await api.call<Accepted>('POST', '/metrics/ingest', { raw: JSON.stringify(structured), headers: { 'content-type': 'application/cloudevents+json' } });
      assert.deepEqual(ok(res, 202), { accepted: 1, duplicates: 0, rejected: 0 });
      // The same structured event again is a duplicate.
      const again = await api.call<Accepted>('POST', '/metrics/ingest', { raw: JSON.stringify(structured), headers: { 'content-type': 'application/cloudevents+json' } });
      assert.deepEqual(ok(again, 202), { accepted: 0, duplicates: 1, rejected: 0 });
    });

    it('a bad event among good ones is a 422 naming its index, and the others are accepted', async () => {
      const res = await api.call<Problem>('POST', '/metrics/ingest', { body: [seed(), seed({ memory_mb: -5 }), seed()] });
      const p = problem(res, 422);
      assert.deepEqual((p.errors ?? []).map((e) => e.index), [1]);
      assert.equal(p.accepted, 2);
      assert.equal(p.rejected, 1);
      // A bad binary CloudEvent (data invalid) is rejected too.
      const bad = await api.call<Problem>('POST', '/metrics/ingest', {
        raw: JSON.stringify({ tenant_id: 'ingest-tenant', service: 'waiter', duration_ms: -1, memory_mb: 128 }),
        headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-type': 'faasbilling.usage.v1', 'ce-source': '/test/api', 'ce-id': randomUUID() },
      });
      problem(bad, 422);
    });

    it('a wrong content type is a 415; malformed JSON a 400', async () => {
      problem(await api.call('POST', '/metrics/ingest', { raw: 'tenant=demo', headers: { 'content-type': 'text/plain' } }), 415);
      problem(await api.call('POST', '/metrics/ingest', { raw: '[{"tenant_id":', headers: { 'content-type': 'application/json' } }), 400);
    });

    it('POST /metrics/aggregate recomputes the windows of new usage_raw rows (200 with counts)', async () => {
      const tenant = await createTenant('agg-tenant');
      const svc = await createService(tenant.id, 'fn');
      const rev = await createRevision(svc.id, 'fn-00001');
      for (const time of ['2025-09-03T10:01:00Z', '2025-09-03T10:07:00Z', '2025-09-03T11:02:00Z']) {
        await insertRawEvent(api.database.db, { tenantId: tenant.id, serviceId: svc.id, revisionId: rev.id, time, durationMs: '100', memoryMb: '128' });
      }
      const r = await aggregate();
      assert.ok(r.buckets >= 3, JSON.stringify(r));
      assert.ok(r.windows['5m'] >= 3 && r.windows['1h'] >= 2 && r.windows['1d'] >= 1, JSON.stringify(r));
      assert.ok(r.rows_changed > 0);
      assert.ok(r.tenants.includes(tenant.id));
      assert.equal(r.more, false);
      const again = await aggregate();
      assert.equal(again.buckets, 0, 'nothing dirty left');
      assert.ok(!again.tenants.includes(tenant.id));
      const hours = ok(await api.call<Page<AggregateRow>>('GET', `/usage-aggregates?tenant_id=${tenant.id}&window_size=1h`));
      assert.deepEqual(hours.items.map((h) => [h.window_start, h.invocations]), [
        ['2025-09-03T10:00:00.000Z', 2],
        ['2025-09-03T11:00:00.000Z', 1],
      ]);
    });
  });

  // -------------------------------------------------------------------------------------------
  /**
   * One USD tenant in UTC on its own plan since 2025-01-01, two services, usage in October 2025:
   *
   *   plan: 0.01 per invocation, 0.5 per GB-s (= 0.00000048828125 per MB·ms), 0.1 per cold start,
   *         0.0001 per CPU-ms, 31 free invocations a month; duration up to 100 ms (at least 100),
   *         memory up to 128 MB steps, observed memory.
   *
   *   10-10 10:05 api     10 inv, 1500 ms total (150 → 200 ms each), 100 MB → 128: 256 000 MB·ms, cpu 400, cold
   *   10-10 10:40 api      5 inv,  250 ms total ( 50 → 100 ms each), 256 MB → 256: 128 000 MB·ms, cpu 100
   *   10-10 11:15 worker  20 inv, 20 000 ms total (1000 ms each),    512 MB → 512: 10 240 000 MB·ms, cold
   *   10-20 09:00 api     30 inv, 3000 ms total (100 ms each),       128 MB → 128: 384 000 MB·ms, cpu 600
   *   10-20 23:30 worker   1 inv,   50 ms (→ 100 ms),                  64 MB → 128: 12 800 MB·ms, cpu 10, cold
   *
   * October (free 31 invocations, walked in time order: api 10:00 takes 15, worker 11:00 the last 16):
   *   api     invocations 45, free 15, 30 × 0.01                 = 0.30
   *   api     compute 768 000 MB·ms × 0.00000048828125 = 0.375   → 0.38
   *   api     cold starts 1 × 0.1                                = 0.10
   *   api     cpu 1100 × 0.0001                                  = 0.11
   *   worker  invocations 21, free 16, 5 × 0.01                  = 0.05
   *   worker  compute 10 252 800 × 0.00000048828125 = 5.00625    → 5.01
   *   worker  cold starts 2 × 0.1                                = 0.20
   *   worker  cpu 10 × 0.0001 = 0.001                            → 0.00
   *   total = sum of rounded lines = 6.15 (unrounded 6.14225)
   *
   * 10 October alone (free: 31 × 1/31 of the month = 1 invocation):
   *   api     invocations 15, free 1, 14 × 0.01 = 0.14; compute 384 000 → 0.1875 → 0.19; cold 0.10; cpu 500 → 0.05
   *   worker  invocations 20, free 0, 0.20; compute 10 240 000 → 5.00; cold 0.10   (no CPU: no cpu line)
   *   total = 5.78
   */
  describe('billing', () => {
    let tenant: Tenant;
    let plan: Plan;
    let api_: Service;
    let worker: Service;
    let billId: string;
    let finalBill: Bill;

    const expectedMonth: [string, string, string, string, string][] = [
      // service, meter, quantity, free quantity, amount
      ['api', 'invocations', '45', '15', '0.30'],
      ['api', 'compute', '768000', '0', '0.38'],
      ['api', 'cold_starts', '1', '0', '0.10'],
      ['api', 'cpu', '1100', '0', '0.11'],
      ['worker', 'invocations', '21', '16', '0.05'],
      ['worker', 'compute', '10252800', '0', '5.01'],
      ['worker', 'cold_starts', '2', '0', '0.20'],
      ['worker', 'cpu', '10', '0', '0.00'],
    ];
    const expectedDay: [string, string, string, string, string][] = [
      ['api', 'invocations', '15', '1', '0.14'],
      ['api', 'compute', '384000', '0', '0.19'],
      ['api', 'cold_starts', '1', '0', '0.10'],
      ['api', 'cpu', '500', '0', '0.05'],
      ['worker', 'invocations', '20', '0', '0.20'],
      ['worker', 'compute', '10240000', '0', '5.00'],
      ['worker', 'cold_starts', '1', '0', '0.10'],
    ];
    function checkLines(bill: Bill, expected: [string, string, string, string, string][]): void {
      assert.deepEqual(
        bill.line_items.map((l) => [l.service, l.meter, l.amount]),
        expected.map(([s, m, , , a]) => [s, m, a]),
        'lines (service, meter, rounded amount)',
      );
      bill.line_items.forEach((l, i) => {
        const [, , quantity, free] = expected[i] ?? [];
        decEq(l.quantity, quantity ?? '', `${l.service} ${l.meter} quantity`);
        decEq(l.free_quantity, free ?? '', `${l.service} ${l.meter} free quantity`);
        decEq(l.billable_quantity, new Dec(quantity ?? '0').minus(free ?? '0').toFixed(), `${l.service} ${l.meter} billable quantity`);
        decEq(l.amount_unrounded, new Dec(l.billable_quantity).times(l.unit_price).toFixed(), `${l.service} ${l.meter} unrounded amount`);
        assert.equal(l.is_adjustment, false);
        assert.equal(l.plan_id, plan.id);
      });
      const sum = bill.line_items.reduce((a, l) => a.plus(l.amount), new Dec(0));
      assert.equal(bill.total, sum.toFixed(2), 'total = sum of the rounded lines');
    }

    before(async () => {
      tenant = await createTenant('billed');
      plan = ok(
        await api.call<Plan>('POST', '/pricing/plans', {
          body: {
            name: 'billed-plan',
            currency: 'USD',
            price_per_invocation: '0.01',
            price_per_gb_s: '0.5',
            price_per_cold_start: '0.1',
            price_per_cpu_ms: '0.0001',
            free_tier_invocations: '31',
            rules: { duration_granularity_ms: 100, min_billed_duration_ms: 100, memory_step_mb: 128, billed_memory: 'observed' },
          },
        }),
        201,
      );
      decEq(plan.price_per_mb_ms, '0.00000048828125', 'price per MB·ms');
      ok(await api.call('PUT', `/tenants/${tenant.id}/pricing-plan`, { body: { pricing_plan_id: plan.id, effective_from: '2025-01-01T00:00:00Z' } }));
      api_ = await createService(tenant.id, 'api');
      worker = await createService(tenant.id, 'worker');
      const apiRev = await createRevision(api_.id, 'api-00001');
      const workerRev = await createRevision(worker.id, 'worker-00001');
      const db = api.database.db;
      const onApi = { tenantId: tenant.id, serviceId: api_.id, revisionId: apiRev.id };
      const onWorker = { tenantId: tenant.id, serviceId: worker.id, revisionId: workerRev.id };
      await insertRawEvent(db, { ...onApi, time: '2025-10-10T10:05:00Z', invocations: 10, durationMs: '1500', memoryMb: '100', cpuMs: '400', coldStart: true });
      await insertRawEvent(db, { ...onApi, time: '2025-10-10T10:40:00Z', invocations: 5, durationMs: '250', memoryMb: '256', cpuMs: '100' });
      await insertRawEvent(db, { ...onWorker, time: '2025-10-10T11:15:00Z', invocations: 20, durationMs: '20000', memoryMb: '512', cpuMs: '0', coldStart: true });
      await insertRawEvent(db, { ...onApi, time: '2025-10-20T09:00:00Z', invocations: 30, durationMs: '3000', memoryMb: '128', cpuMs: '600' });
      await insertRawEvent(db, { ...onWorker, time: '2025-10-20T23:30:00Z', invocations: 1, durationMs: '50', memoryMb: '64', cpuMs: '10', coldStart: true });
      const r = await aggregate();
      assert.ok(r.tenants.includes(tenant.id), JSON.stringify(r));
    });

    it('POST /billing/calculate for a month previews the bill computed by hand', async () => {
      const bill = ok(await api.call<Bill>('POST', '/billing/calculate', { body: { tenant_id: tenant.id, month: '2025-10' } }));
      assert.equal(bill.id, null);
      assert.equal(bill.status, 'preview');
      assert.equal(bill.currency, 'USD');
      assert.equal(bill.period_start, '2025-10-01T00:00:00.000Z');
      assert.equal(bill.period_end, '2025-11-01T00:00:00.000Z');
      assert.equal(bill.plan_id, plan.id);
      checkLines(bill, expectedMonth);
      assert.equal(bill.total, '6.15');
      decEq(bill.total_unrounded, '6.14225', 'total_unrounded');
      // The same month given by its bounds (end written as its last second) prices the same.
      const byBounds = ok(await api.call<Bill>('POST', '/billing/calculate', { body: { tenant_id: tenant.slug, period_start: '2025-10-01T00:00:00Z', period_end: '2025-10-31T23:59:59Z' } }));
      assert.equal(byBounds.total, '6.15');
      assert.equal(byBounds.period_end, '2025-11-01T00:00:00.000Z');
      // No usage in September: a zero bill.
      const empty = ok(await api.call<Bill>('POST', '/billing/calculate', { body: { tenant_id: tenant.id, month: '2025-09' } }));
      assert.equal(empty.total, '0.00');
      assert.deepEqual(empty.line_items, []);
    });

    it('POST /billing/calculate for a day range prices it with the prorated free tier', async () => {
      const bill = ok(await api.call<Bill>('POST', '/billing/calculate', { body: { tenant_id: tenant.id, period_start: '2025-10-10T00:00:00Z', period_end: '2025-10-10T23:59:59Z' } }));
      assert.equal(bill.status, 'preview');
      assert.equal(bill.period_start, '2025-10-10T00:00:00.000Z');
      assert.equal(bill.period_end, '2025-10-11T00:00:00.000Z');
      checkLines(bill, expectedDay);
      assert.equal(bill.total, '5.78');
    });

    it('calculate refuses bad periods and unknown tenants', async () => {
      invalidField(await api.call('POST', '/billing/calculate', { body: { tenant_id: tenant.id, month: '2025-13' } }), 'body.month');
      problem(await api.call('POST', '/billing/calculate', { body: { tenant_id: tenant.id, month: '2025-10', period_start: '2025-10-01T00:00:00Z' } }), 422, 'validation_failed');
      problem(await api.call('POST', '/billing/calculate', { body: { tenant_id: tenant.id, period_start: '2025-10-10T00:00:00Z', period_end: '2025-11-10T00:00:00Z' } }), 422, 'validation_failed');
      problem(await api.call('POST', '/billing/calculate', { body: { tenant_id: tenant.id, period_start: '2025-10-10T00:00:00Z', period_end: '2025-10-09T00:00:00Z' } }), 422, 'validation_failed');
      invalidField(await api.call('POST', '/billing/calculate', { body: { tenant_id: tenant.id, period_start: 'yesterday' } }), 'body.period_start');
      problem(await api.call('POST', '/billing/calculate', { body: { month: '2025-10' } }), 422, 'validation_failed');
      problem(await api.call('POST', '/billing/calculate', { body: { tenant_id: 'nobody', month: '2025-10' } }), 404, 'not_found');
    });

    it('calculate without a period previews the open month; a tenant without any plan is a 409', async () => {
      const monthStart = (d: Date): string => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)).toISOString();
      const before = monthStart(new Date());
      const open = ok(await api.call<Bill>('POST', '/billing/calculate', { body: { tenant_id: tenant.id } }));
      const after = monthStart(new Date());
      assert.ok([before, after].includes(open.period_start), `the open month (UTC) starts at ${before}, got ${open.period_start}`);
      assert.equal(open.total, '0.00');
      const euro = await createTenant('euro-no-plan', { currency: 'EUR' });
      problem(await api.call('POST', '/billing/calculate', { body: { tenant_id: euro.id, month: '2025-10' } }), 409, 'conflict');
      problem(await api.call('GET', `/tenants/${euro.id}/pricing-plan`), 404, 'not_found');
      problem(await api.call('POST', '/forecast/cost', { body: { tenant_id: euro.id, period: '1d' } }), 409, 'conflict');
    });

    it('POST /billing/generate stores a draft (201); generating again replaces it (same id)', async () => {
      const res = await api.call<Bill>('POST', '/billing/generate', { body: { tenant_id: tenant.id, month: '2025-10' } });
      const draft = ok(res, 201);
      assert.ok(draft.id);
      billId = draft.id;
      assert.equal(res.headers.get('location'), `/api/v1/bills/${billId}`);
      assert.equal(draft.status, 'draft');
      assert.equal(draft.finalized_at, null);
      checkLines(draft, expectedMonth);
      assert.equal(draft.total, '6.15');
      const again = ok(await api.call<Bill>('POST', '/billing/generate', { body: { tenant_id: tenant.id, month: '2025-10' } }), 201);
      assert.equal(again.id, billId);
      assert.equal(again.total, '6.15');
      assert.equal(again.line_items.length, expectedMonth.length);
      invalidField(await api.call('POST', '/billing/generate', { body: { tenant_id: tenant.id } }), 'body.month');
      // A bill covers a whole calendar month, never a day.
      problem(await api.call('POST', '/billing/generate', { body: { tenant_id: tenant.id, period_start: '2025-10-10T00:00:00Z', period_end: '2025-10-10T23:59:59Z' } }), 422, 'validation_failed');
      const byBounds = ok(await api.call<Bill>('POST', '/billing/generate', { body: { tenant_id: tenant.id, period_start: '2025-10-01T00:00:00Z', period_end: '2025-10-31T23:59:59Z' } }), 201);
      assert.equal(byBounds.id, billId, 'the month by its bounds is the same bill');
    });

    it('a tenant’s currency cannot change once it has a bill (409)', async () => {
      problem(await api.call('PATCH', `/tenants/${tenant.id}`, { body: { currency: 'EUR' } }), 409, 'conflict');
      assert.equal(ok(await api.call<Tenant>('GET', `/tenants/${tenant.id}`)).currency, 'USD');
      // Other fields still change.
      assert.equal(ok(await api.call<Tenant>('PATCH', `/tenants/${tenant.id}`, { body: { name: 'Billed Inc' } })).name, 'Billed Inc');
    });

    it('mark-paid on a draft is a 409', async () => {
      problem(await api.call('POST', '/billing/mark-paid', { body: { bill_id: billId } }), 409, 'bill_not_final');
    });

    it('POST /billing/finalize makes it final; generating that month again is a 409; finalizing again changes nothing', async () => {
      finalBill = ok(await api.call<Bill>('POST', '/billing/finalize', { body: { bill_id: billId } }));
      assert.equal(finalBill.id, billId);
      assert.equal(finalBill.status, 'final');
      assert.ok(finalBill.finalized_at);
      assert.equal(finalBill.total, '6.15');
      checkLines(finalBill, expectedMonth);

      problem(await api.call('POST', '/billing/generate', { body: { tenant_id: tenant.id, month: '2025-10' } }), 409, 'bill_final');
      assert.deepEqual(ok(await api.call<Bill>('POST', '/billing/finalize', { body: { bill_id: billId } })), finalBill);
      assert.deepEqual(ok(await api.call<Bill>('POST', `/bills/${billId}/finalize`)), finalBill);
      problem(await api.call('POST', '/billing/finalize', { body: { bill_id: randomUUID() } }), 404, 'not_found');
      problem(await api.call('POST', '/billing/finalize', { body: { bill_id: 'nope' } }), 404, 'not_found');
    });

    it('a plan assignment inside a finalized period is a 409', async () => {
      problem(await api.call('PUT', `/tenants/${tenant.id}/pricing-plan`, { body: { pricing_plan_id: plan.id, effective_from: '2025-10-15T00:00:00Z' } }), 409);
      const current = ok(await api.call<CurrentPlan>('GET', `/tenants/${tenant.id}/pricing-plan`));
      assert.equal(current.history.length, 1, 'history unchanged');
    });

    it('POST /billing/mark-paid marks it paid; paying again changes nothing', async () => {
      const paid = ok(await api.call<Bill>('POST', '/billing/mark-paid', { body: { bill_id: billId, paid_at: '2025-11-05T12:00:00Z' } }));
      assert.equal(paid.status, 'paid');
      assert.equal(paid.paid_at, '2025-11-05T12:00:00.000Z');
      assert.equal(paid.total, '6.15');
      assert.equal(paid.finalized_at, finalBill.finalized_at);
      assert.deepEqual(ok(await api.call<Bill>('POST', `/bills/${billId}/mark-paid`, { body: { paid_at: '2026-01-01T00:00:00Z' } })), paid);
      assert.deepEqual(ok(await api.call<Bill>('POST', '/billing/mark-paid', { body: { bill_id: billId } })), paid);
    });

    it('PATCH, PUT and DELETE on /bills/:id are 405s', async () => {
      for (const method of ['PATCH', 'PUT', 'DELETE']) {
        const res = await api.call(method, `/bills/${billId}`, method === 'DELETE' ? {} : { body: { total: '0.01' } });
        problem(res, 405, 'method_not_allowed');
        assert.equal(res.headers.get('allow'), 'GET');
      }
      assert.equal(ok(await api.call<Bill>('GET', `/bills/${billId}`)).total, '6.15');
    });

    it('the database itself refuses changes to the paid bill', async () => {
      const db = api.database.db;
      await assert.rejects(db('bills').where({ id: billId }).update({ total_amount: '0.01' }), /immutable/);
      await assert.rejects(db('bills').where({ id: billId }).delete(), /immutable/);
      await assert.rejects(db('bill_line_items').where({ bill_id: billId }).update({ amount: '0' }), /immutable/);
      assert.equal(ok(await api.call<Bill>('GET', `/bills/${billId}`)).total, '6.15');
    });

    it('GET /bills lists bills newest period first with a cursor; GET /bills/:id reads one', async () => {
      const november = ok(await api.call<Bill>('POST', '/billing/generate', { body: { tenant_id: tenant.id, month: '2025-11' } }), 201);
      assert.equal(november.total, '0.00');
      const first = ok(await api.call<Page<BillSummary>>('GET', `/bills?tenant_id=${tenant.id}&limit=1`));
      assert.deepEqual(first.items.map((b) => [b.id, b.status, b.total]), [[november.id, 'draft', '0.00']]);
      assert.ok(first.next_cursor);
      const second = ok(await api.call<Page<BillSummary>>('GET', `/bills?tenant_id=${tenant.id}&limit=1&cursor=${first.next_cursor}`));
      assert.deepEqual(second.items.map((b) => [b.id, b.status, b.total, b.currency, b.period_start]), [[billId, 'paid', '6.15', 'USD', '2025-10-01T00:00:00.000Z']]);
      assert.equal(second.next_cursor, null);
      const paid = ok(await api.call<Page<BillSummary>>('GET', `/bills?tenant_id=${tenant.slug}&status=paid`));
      assert.deepEqual(paid.items.map((b) => b.id), [billId]);
      invalidField(await api.call('GET', '/bills?cursor=garbage'), 'query.cursor');
      invalidField(await api.call('GET', '/bills?status=lost'), 'query.status');

      const bill = ok(await api.call<Bill>('GET', `/bills/${billId}`));
      assert.equal(bill.status, 'paid');
      checkLines(bill, expectedMonth);
      problem(await api.call('GET', `/bills/${randomUUID()}`), 404, 'not_found');
    });

    it('GET /bills/:id.csv is a CSV with every line and the total; .pdf is a PDF', async () => {
      const csv = await api.call('GET', `/bills/${billId}.csv`);
      assert.equal(csv.status, 200, csv.text);
      assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
      assert.match(csv.headers.get('content-disposition') ?? '', /attachment; filename="bill-billed-2025-10-.*\.csv"/);
      const rows = parseCsv(csv.text);
      assert.ok(rows.some((r) => r[0] === 'total' && r[1] === '6.15'), 'a header row total,6.15');
      const header = rows.find((r) => r[0] === 'line');
      assert.ok(header, 'a line table');
      const col = (name: string): number => header.indexOf(name);
      const lineRows = rows.filter((r) => /^\d+$/.test(r[0] ?? ''));
      assert.deepEqual(
        lineRows.map((r) => [r[col('service')], r[col('meter')], r[col('amount')]]),
        expectedMonth.map(([s, m, , , a]) => [s, m, a]),
        'one CSV row per line',
      );
      assert.ok(rows.some((r) => r[col('line')] === 'total' && r[col('amount')] === '6.15'), 'a total row under the lines');
      const pdf = await fetch(`${api.url}/api/v1/bills/${billId}.pdf`, { headers: { authorization: `Bearer ${api.adminKey}` } });
      assert.equal(pdf.status, 200);
      assert.equal(pdf.headers.get('content-type'), 'application/pdf');
      const bytes = Buffer.from(await pdf.arrayBuffer());
      assert.equal(bytes.subarray(0, 5).toString('latin1'), '%PDF-');
      problem(await api.call('GET', `/bills/${randomUUID()}.csv`), 404, 'not_found');
    });

    it('GET /billing/reports/:tenant totals by month and by service, consistent with the bills', async () => {
      const report = ok(await api.call<Report>('GET', `/billing/reports/${tenant.slug}`));
      assert.equal(report.tenant.id, tenant.id);
      assert.deepEqual(report.by_month, [
        { month: '2025-10', total: '6.15', status: 'paid' },
        { month: '2025-11', total: '0.00', status: 'draft' },
      ]);
      const byService = Object.fromEntries(report.by_service.map((s) => [s.service, s.total]));
      assert.deepEqual(byService, { worker: '5.26', api: '0.89' }); // 0.05+5.01+0.20+0.00; 0.30+0.38+0.10+0.11
      assert.deepEqual(
        Object.fromEntries(report.by_service.map((s) => [s.service, s.service_id])),
        { worker: worker.id, api: api_.id },
      );
      assert.deepEqual(report.totals, { billed: '6.15', paid: '6.15', outstanding: '0.00', draft: '0.00', credited: '0.00' });
      const sumByService = report.by_service.reduce((a, s) => a.plus(s.total), new Dec(0));
      const sumByMonth = report.by_month.reduce((a, m) => a.plus(m.total), new Dec(0));
      assert.ok(sumByService.eq(sumByMonth), 'by_service and by_month add up to the same');
      const later = ok(await api.call<Report>('GET', `/billing/reports/${tenant.id}?from=2025-11-01T00:00:00Z`));
      assert.deepEqual(later.by_month.map((m) => m.month), ['2025-11']);
      problem(await api.call('GET', `/billing/reports/${randomUUID()}`), 404, 'not_found');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('usage and forecast', () => {
    let tenant: Tenant;
    let web: Service;
    let batch: Service;
    const now = Date.now();
    const ago = (ms: number): string => new Date(now - ms).toISOString();

    before(async () => {
      tenant = await createTenant('live');
      web = await createService(tenant.id, 'web');
      batch = await createService(tenant.id, 'batch');
      const webRev = await createRevision(web.id, 'web-00001');
      const batchRev = await createRevision(batch.id, 'batch-00001');
      const db = api.database.db;
      const onWeb = { tenantId: tenant.id, serviceId: web.id, revisionId: webRev.id };
      // Recent usage (the dashboard's and the forecast's window), and older usage in 2025-09.
      await insertRawEvent(db, { ...onWeb, time: ago(10 * 60_000), invocations: 4, durationMs: '400', memoryMb: '128', coldStart: true });
      await insertRawEvent(db, { ...onWeb, time: ago(2 * 86_400_000), invocations: 6, durationMs: '600', memoryMb: '128' });
      await insertRawEvent(db, { tenantId: tenant.id, serviceId: batch.id, revisionId: batchRev.id, time: ago(3 * 86_400_000), invocations: 1, durationMs: '60000', memoryMb: '1024' });
      for (const hour of ['01', '02', '03']) {
        await insertRawEvent(db, { ...onWeb, time: `2025-09-15T${hour}:10:00Z`, invocations: 1, durationMs: '10', memoryMb: '128' });
      }
      await aggregate();
    });

    it('GET /usage-aggregates filters by window size, time and service, and pages with a cursor', async () => {
      const base = `/usage-aggregates?tenant_id=${tenant.id}&window_size=1h&start_time=2025-09-15T00:00:00Z&end_time=2025-09-16T00:00:00Z`;
      const all = ok(await api.call<Page<AggregateRow>>('GET', base));
      assert.deepEqual(all.items.map((r) => r.window_start), ['2025-09-15T01:00:00.000Z', '2025-09-15T02:00:00.000Z', '2025-09-15T03:00:00.000Z']);
      assert.ok(all.items.every((r) => r.window_size === '1h' && r.service_id === web.id && r.invocations === 1));
      assert.equal(all.next_cursor, null);

      const seen: string[] = [];
      let page = ok(await api.call<Page<AggregateRow>>('GET', `${base}&limit=2`));
      assert.equal(page.items.length, 2);
      seen.push(...page.items.map((r) => r.id));
      assert.ok(page.next_cursor);
      page = ok(await api.call<Page<AggregateRow>>('GET', `${base}&limit=2&cursor=${encodeURIComponent(page.next_cursor)}`));
      seen.push(...page.items.map((r) => r.id));
      assert.equal(page.next_cursor, null);
      assert.deepEqual(seen, all.items.map((r) => r.id));

      const batchDays = ok(await api.call<Page<AggregateRow>>('GET', `/usage-aggregates?tenant_id=${tenant.id}&service_id=${batch.id}&window_size=1d`));
      assert.equal(batchDays.items.length, 1);
      assert.equal(batchDays.items[0]?.service_name, 'batch');
      assert.equal(batchDays.items[0]?.invocations, 1);
      const fiveMinutes = ok(await api.call<Page<AggregateRow>>('GET', `/usage-aggregates?tenant_id=${tenant.id}&window_size=5m&limit=1000`));
      assert.equal(fiveMinutes.items.length, 6);
    });

    it('a bad cursor or filter is a 422', async () => {
      invalidField(await api.call('GET', `/usage-aggregates?tenant_id=${tenant.id}&cursor=not-a-cursor`), 'query.cursor');
      invalidField(await api.call('GET', '/usage-aggregates?window_size=2h'), 'query.window_size');
      invalidField(await api.call('GET', '/usage-aggregates?start_time=yesterday'), 'query.start_time');
      invalidField(await api.call('GET', '/usage-aggregates?service_id=web'), 'query.service_id');
      invalidField(await api.call('GET', '/usage-aggregates?limit=1001'), 'query.limit');
    });

    it('GET /usage/dashboard/:tenant has the daily series and top services', async () => {
      const dash = ok(await api.call<Dashboard>('GET', `/usage/dashboard/${tenant.slug}`));
      assert.equal(dash.tenant.id, tenant.id);
      assert.equal(dash.window.days, 30);
      assert.equal(dash.daily_totals.length, 30);
      assert.equal(dash.totals.invocations, 11);
      assert.equal(dash.totals.cold_starts, 1);
      assert.equal(dash.daily_totals.reduce((a, p) => a + p.invocations, 0), 11);
      assert.deepEqual(dash.daily.map((d) => d.service_name).sort(), ['batch', 'web']);
      // batch: 60 s × 1024 MB = 60 GB-s; web: 10 × 100 ms × 128 MB = 0.125 GB-s.
      assert.deepEqual(dash.top_services.map((s) => [s.service_name, s.invocations]), [
        ['batch', 1],
        ['web', 10],
      ]);
      decEq(dash.top_services[0]?.gb_s ?? '', '60', 'batch GB-s');
      decEq(dash.top_services[1]?.gb_s ?? '', '0.125', 'web GB-s');
      const week = ok(await api.call<Dashboard>('GET', `/usage/dashboard/${tenant.id}?days=7`));
      assert.equal(week.daily_totals.length, 7);
      problem(await api.call('GET', `/usage/dashboard/${randomUUID()}`), 404, 'not_found');
      invalidField(await api.call('GET', `/usage/dashboard/${tenant.id}?days=0`), 'query.days');
    });

    it('POST /forecast/cost forecasts 1h, 1d and 1w with components', async () => {
      for (const [period, hours] of [['1h', 1], ['1d', 24], ['1w', 168]] as const) {
        const f = ok(await api.call<Forecast>('POST', '/forecast/cost', { body: { tenant_id: tenant.id, period } }));
        assert.equal(f.tenant_id, tenant.id);
        assert.equal(f.horizon, period);
        assert.equal(f.horizon_hours, hours);
        assert.equal(f.currency, 'USD');
        assert.match(f.forecasted_cost, /^\d+(\.\d+)?$/);
        assert.ok(new Dec(f.interval_95.lower).lte(f.forecasted_cost) && new Dec(f.forecasted_cost).lte(f.interval_95.upper), JSON.stringify(f));
        assert.deepEqual(Object.keys(f.components).sort(), ['cold_starts', 'compute', 'cpu', 'invocations']);
        assert.equal(f.components.compute.unit, 'MB-ms');
      }
    });

    it('a bad forecast period is a 422; an unknown tenant a 404', async () => {
      invalidField(await api.call('POST', '/forecast/cost', { body: { tenant_id: tenant.id, period: '2d' } }), 'body.period');
      problem(await api.call('POST', '/forecast/cost', { body: { period: '1d' } }), 422, 'validation_failed');
      problem(await api.call('POST', '/forecast/cost', { body: { tenant_id: randomUUID(), period: '1d' } }), 404, 'not_found');
    });

    it('an admin call without tenant_id names body.tenant_id in invalid_fields (like every other body field)', async () => {
      const missing: [string, string, Record<string, unknown>][] = [
        ['POST', '/services', { name: 'no-tenant' }],
        ['POST', '/billing/calculate', { month: '2025-10' }],
        ['POST', '/billing/generate', { month: '2025-10' }],
        ['POST', '/forecast/cost', { period: '1d' }],
      ];
      for (const [method, url, body] of missing) invalidField(await api.call(method, url, { body }), 'body.tenant_id');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('admin: API keys, audit log, Prometheus metrics', () => {
    let tenant: Tenant;
    let created: ApiKey & { key: string };
    let adminKeyId: string;

    before(async () => {
      tenant = ok(await api.call<Tenant>('GET', '/tenants/billed'));
    });

    it('POST /api-keys shows a new key once (fbk_…); GET /api-keys never shows key material', async () => {
      const res = await api.call<ApiKey & { key: string }>('POST', '/api-keys', { body: { name: 'billed reader', role: 'tenant', tenant_id: tenant.slug } });
      created = ok(res, 201);
      assert.match(created.key, /^fbk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
      assert.ok(created.key.startsWith(`fbk_${created.prefix}_`));
      assert.equal(created.role, 'tenant');
      assert.equal(created.tenant_id, tenant.id);
      assert.equal(res.headers.get('cache-control'), 'no-store');

      const list = await api.call<{ items: ApiKey[] }>('GET', '/api-keys');
      const items = ok(list).items;
      assert.ok(items.some((k) => k.id === created.id));
      for (const k of items) {
        assert.ok(!('key' in k) && !('key_hash' in k), `key material listed: ${JSON.stringify(k)}`);
      }
      assert.ok(!list.text.includes(created.key.split('_')[2] ?? 'x'), 'the secret is not in the listing');
      const admin = items.find((k) => k.role === 'admin' && k.name.startsWith('bootstrap admin'));
      assert.ok(admin);
      adminKeyId = admin.id;
      assert.deepEqual(ok(await api.call<{ items: ApiKey[] }>('GET', `/api-keys?tenant_id=${tenant.id}`)).items.map((k) => k.id), [created.id]);
    });

    it('invalid key requests are 422s', async () => {
      invalidField(await api.call('POST', '/api-keys', { body: { name: 'x', role: 'tenant' } }), 'body.tenant_id');
      invalidField(await api.call('POST', '/api-keys', { body: { name: 'x', role: 'admin', tenant_id: tenant.id } }), 'body.tenant_id');
      invalidField(await api.call('POST', '/api-keys', { body: { name: 'x', role: 'root' } }), 'body.role');
      invalidField(await api.call('POST', '/api-keys', { body: { name: 'x', role: 'ingest', tenant_id: 'nobody' } }), 'body.tenant_id');
    });

    it('a tenant key sees only its tenant and cannot use admin routes', async () => {
      const own = ok(await api.call<Page<Tenant>>('GET', '/tenants', { key: created.key }));
      assert.deepEqual(own.items.map((t) => t.id), [tenant.id]);
      problem(await api.call('GET', '/tenants/acme', { key: created.key }), 404, 'not_found');
      problem(await api.call('POST', '/tenants', { key: created.key, body: { slug: 'x', name: 'x' } }), 403, 'forbidden');
      problem(await api.call('GET', '/bills?tenant_id=acme', { key: created.key }), 403, 'forbidden');
      const bills = ok(await api.call<Page<BillSummary>>('GET', '/bills', { key: created.key }));
      assert.ok(bills.items.length > 0 && bills.items.every((b) => b.tenant_id === tenant.id));
    });

    it('an ingest key may post usage for its own tenant only, and nothing else', async () => {
      const ingest = ok(await api.call<ApiKey & { key: string }>('POST', '/api-keys', { body: { name: 'billed ingest', role: 'ingest', tenant_id: tenant.id } }), 201);
      const event = (tenantRef: string) => ({ timestamp: new Date(Date.now() - 60_000).toISOString(), tenant_id: tenantRef, service_name: 'api', duration_seconds: 0.1, memory_mb: 128, request_id: randomUUID() });
      assert.deepEqual(ok(await api.call<Accepted>('POST', '/metrics/ingest', { key: ingest.key, body: [event('billed'), event(tenant.id)] }), 202), { accepted: 2, duplicates: 0, rejected: 0 });
      const mixed = problem(await api.call('POST', '/metrics/ingest', { key: ingest.key, body: [event('billed'), event('acme')] }), 422);
      assert.deepEqual((mixed.errors ?? []).map((e) => [e.index, e.reason]), [[1, 'tenant_forbidden']]);
      assert.equal(mixed.accepted, 1);
      problem(await api.call('GET', '/tenants', { key: ingest.key }), 403, 'forbidden');
      problem(await api.call('POST', '/metrics/aggregate', { key: ingest.key }), 403, 'forbidden');
    });

    it('DELETE /api-keys/:id revokes a key, which then gets 401; a key cannot revoke itself', async () => {
      const revoked = ok(await api.call<ApiKey>('DELETE', `/api-keys/${created.id}`));
      assert.equal(revoked.id, created.id);
      assert.ok(revoked.revoked_at);
      problem(await api.call('GET', '/tenants', { key: created.key }), 401, 'unauthorized');
      problem(await api.call('DELETE', `/api-keys/${adminKeyId}`), 409, 'conflict');
      problem(await api.call('DELETE', `/api-keys/${randomUUID()}`), 404, 'not_found');
      ok(await api.call('GET', '/tenants'));
    });

    it('GET /audit-log has the mutations made, with their actor, filterable by action and tenant', async () => {
      const actor = `key:${adminKeyId}`;
      const byAction = async (action: string): Promise<AuditEntry[]> => ok(await api.call<Page<AuditEntry>>('GET', `/audit-log?action=${action}&limit=500`)).items;
      const creates = await byAction('tenant.create');
      assert.ok(creates.length >= 5);
      assert.ok(creates.every((e) => e.action === 'tenant.create' && e.entity_type === 'tenant' && e.actor.startsWith(actor)));
      assert.ok(creates.some((e) => e.entity_id === tenant.id));
      const planCreates = await byAction('plan.create');
      assert.ok(planCreates.some((e) => e.details.after !== undefined && (e.details.after as { name?: string }).name === 'billed-plan'));
      const finalized = await byAction('bill.finalize');
      assert.equal(finalized.length, 1, 'finalizing again wrote no entry');
      assert.equal(finalized[0]?.tenant_id, tenant.id);
      assert.equal((await byAction('bill.mark_paid')).length, 1);
      assert.deepEqual((await byAction('plan.version')).map((e) => (e.details.after as { name?: string } | undefined)?.name).sort(), ['gbp-default', 'versioned']);
      assert.equal((await byAction('api_key.revoke'))[0]?.entity_id, created.id);

      const forTenant = ok(await api.call<Page<AuditEntry>>('GET', `/audit-log?tenant_id=${tenant.id}&limit=500`)).items;
      assert.ok(forTenant.length > 0 && forTenant.every((e) => e.tenant_id === tenant.id));
      const actions = new Set(forTenant.map((e) => e.action));
      for (const a of ['tenant.create', 'tenant.update', 'tenant.assign_plan', 'service.create', 'bill.generate', 'bill.finalize', 'bill.mark_paid', 'api_key.create']) {
        assert.ok(actions.has(a), `audit of ${a} for the tenant (has ${[...actions].join(', ')})`);
      }
      // Newest first, pages by cursor.
      const page1 = ok(await api.call<Page<AuditEntry>>('GET', '/audit-log?limit=2'));
      assert.equal(page1.items.length, 2);
      assert.ok(Number(page1.items[0]?.id) > Number(page1.items[1]?.id));
      assert.ok(page1.next_cursor);
      const page2 = ok(await api.call<Page<AuditEntry>>('GET', `/audit-log?limit=2&cursor=${page1.next_cursor}`));
      assert.ok(Number(page2.items[0]?.id) < Number(page1.items[1]?.id));
      invalidField(await api.call('GET', '/audit-log?tenant_id=billed'), 'query.tenant_id');
    });

    it('GET /metrics counts requests by route template, never by raw id', async () => {
      ok(await api.call('GET', `/tenants/${tenant.id}`));
      const res = await fetch(`${api.url}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      const lines = text.split('\n').filter((l) => l.startsWith('faasbilling_api_requests_total{'));
      assert.ok(lines.length > 0, 'faasbilling_api_requests_total is exposed');
      assert.ok(
        lines.some((l) => l.includes('route="/api/v1/tenants/:id"') && l.includes('method="GET"') && l.includes('status="200"')),
        'GET /tenants/:id is counted under its template',
      );
      for (const l of lines) assert.doesNotMatch(l, uuidPattern, `a raw id in a label: ${l}`);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('answers match the OpenAPI document', () => {
    it('JSON answers of every kind validate against the schema documented for their route and status', async () => {
      const validator = documentedAnswer;
      assert.ok(validator, 'the OpenAPI test ran first');
      const billed = ok(await api.call<Tenant>('GET', '/tenants/billed'));
      const bill = ok(await api.call<Page<BillSummary>>('GET', `/bills?tenant_id=${billed.id}&status=paid`)).items[0];
      assert.ok(bill);
      const service = ok(await api.call<Page<Service>>('GET', `/services?tenant_id=${billed.id}`)).items[0];
      assert.ok(service);
      const cases: [string, string, string, number, Record<string, unknown>?][] = [
        ['GET', '/tenants', '/tenants', 200],
        ['GET', `/tenants/${billed.id}`, '/tenants/{id}', 200],
        ['GET', `/tenants/${billed.id}/pricing-plan`, '/tenants/{id}/pricing-plan', 200],
        ['GET', '/pricing/plans', '/pricing/plans', 200],
        ['GET', '/services', '/services', 200],
        ['GET', `/services/${service.id}`, '/services/{id}', 200],
        ['GET', `/services/${service.id}/revisions`, '/services/{id}/revisions', 200],
        ['GET', '/bills', '/bills', 200],
        ['GET', `/bills/${bill.id}`, '/bills/{id}', 200],
        ['GET', `/billing/reports/${billed.id}`, '/billing/reports/{tenant_id}', 200],
        ['POST', '/billing/calculate', '/billing/calculate', 200, { tenant_id: billed.id, month: '2025-10' }],
        ['POST', '/billing/calculate', '/billing/calculate', 200, { tenant_id: billed.id, period_start: '2025-10-10T00:00:00Z', period_end: '2025-10-10T23:59:59Z' }],
        ['GET', `/usage-aggregates?tenant_id=${billed.id}`, '/usage-aggregates', 200],
        ['GET', '/usage/dashboard/live', '/usage/dashboard/{tenant_id}', 200],
        ['POST', '/forecast/cost', '/forecast/cost', 200, { tenant_id: 'live', period: '1w' }],
        ['GET', '/api-keys', '/api-keys', 200],
        ['GET', '/audit-log?limit=50', '/audit-log', 200],
        ['POST', '/metrics/aggregate', '/metrics/aggregate', 200],
      ];
      const mismatches: string[] = [];
      for (const [method, url, template, status, body] of cases) {
        const res = await api.call(method, url, body ? { body } : {});
        assert.equal(res.status, status, `${method} ${url}: ${res.text}`);
        const validate = validator(method.toLowerCase(), template, status);
        if (!validate(res.body)) mismatches.push(`${method} ${url}: ${JSON.stringify(validate.errors)}`);
      }
      assert.deepEqual(mismatches, []);
    });
  });
});

// -----------------------------------------------------------------------------------------------

describe('REST API limits (a second API with small body and artifact limits)', function () {
  this.timeout(120_000);
  let api: TestApi;

  before(async () => {
    api = await startTestApi({ env: { API_MAX_BODY_BYTES: '1024', ARTIFACT_MAX_BYTES: '1000' } });
  });
  after(async () => api?.close());

  it('a JSON body over API_MAX_BODY_BYTES is a 413', async () => {
    problem(await api.call('POST', '/tenants', { body: { slug: 'big', name: 'x'.repeat(2000) } }), 413, 'payload_too_large');
    problem(await api.call('GET', '/tenants/big'), 404, 'not_found');
    ok(await api.call('POST', '/tenants', { body: { slug: 'small', name: 'x'.repeat(100) } }), 201);
  });

  it('an artifact over ARTIFACT_MAX_BYTES is a 413 and is not stored', async () => {
    const service = ok(await api.call<Service>('POST', '/services', { body: { tenant_id: 'small', name: 'fn' } }), 201);
    problem(await api.call('POST', `/services/${service.id}/upload`, { raw: form('big.bin', new Uint8Array(randomBytes(5000)), 'application/octet-stream') }), 413, 'payload_too_large');
    assert.deepEqual(ok(await api.call<{ items: Artifact[] }>('GET', `/services/${service.id}/artifacts`)).items, []);
    const small = new Uint8Array(randomBytes(1000));
    assert.equal(ok(await api.call<Artifact>('POST', `/services/${service.id}/upload`, { raw: form('small.bin', small, 'application/octet-stream') }), 201).sha256, sha256(small));
  });
});
