/**
 * Tenant isolation of the REST API (src/api/tenancy.ts), probed from the outside: two tenants A and
 * B with a service, a revision, an artifact, a draft bill and keys each, then every endpoint called
 * with A's keys against B's ids and names. A resource of B addressed by id must answer exactly the
 * 404 of a resource that does not exist; a filter or body naming B must answer the 403 of a tenant
 * that does not exist; lists hold A's objects only; role checks come first; nothing that names B
 * (id, slug, name, service, revision, bill, plan, artifact bytes) appears in any answer unless the
 * request itself carried it. Also: authentication failures and the per-key rate limit of expensive
 * calls. Real HTTP, real PostgreSQL (DATABASE_URL) or embedded PGlite.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { startTestApi, type ApiResponse, type TestApi } from './support/api.js';

type Json = Record<string, unknown>;
type Res = ApiResponse<Json>;

interface Side {
  tenant: { id: string; slug: string; name: string };
  service: { id: string; name: string };
  revision: { id: string; name: string };
  bill: { id: string };
  plan: { id: string; name: string };
  artifact: { filename: string; bytes: Uint8Array; marker: string };
  tenantKey: string;
  tenantKeyPrefix: string;
  ingestKey: string;
  ingestKeyPrefix: string;
}

const problemType = 'application/problem+json';
const month = '2026-10';

const asObject = (value: unknown, what: string): Json => {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `${what} — wanted a JSON object, got ${JSON.stringify(value)}`);
  return value as Json;
};
const str = (value: unknown, what: string): string => {
  assert.equal(typeof value, 'string', `${what} — wanted a string, got ${JSON.stringify(value)}`);
  return value as string;
};
const itemsOf = (res: Res, what: string): Json[] => {
  assert.equal(res.status, 200, `${what} — wanted 200, got ${res.status} ${res.text}`);
  const items = res.body.items;
  assert.ok(Array.isArray(items), `${what}: no items array in ${res.text}`);
  return items.map((item, i) => asObject(item, `${what} item ${i}`));
};
const idsOf = (items: Json[]): string[] => items.map((item) => str(item.id, 'item id'));

/** A key of the right shape that was never issued. */
const unknownKey = (): string => `fbk_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;

/** A zip-looking artifact whose bytes carry a marker that must never reach another tenant. */
function artifactBytes(marker: string): Uint8Array {
  return new Uint8Array(Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from(`${marker}\n`), randomBytes(64)]));
}

describe('API tenant isolation: tenant A against every endpoint with tenant B’s ids and names', function () {
  this.timeout(120_000);
  let api: TestApi;
  let a: Side;
  let b: Side;

  /** Everything that identifies B or its objects. */
  const secretsOfB = (): string[] => [
    b.tenant.id,
    b.tenant.slug,
    b.tenant.name,
    b.service.id,
    b.service.name,
    b.revision.id,
    b.revision.name,
    b.bill.id,
    b.plan.id,
    b.plan.name,
    b.artifact.marker,
    b.tenantKeyPrefix,
    b.ingestKeyPrefix,
  ];

  /**
   * Asserts that nothing of B is in the answer (body and headers), except what the request itself
   * carried (a 404 may echo the id it was asked for: that tells the caller nothing new).
   */
  function assertNoLeak(res: Res, sent: string, what: string): void {
    const headers = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
    for (const secret of secretsOfB()) {
      if (sent.includes(secret)) continue;
      assert.ok(!res.text.includes(secret), `${what}: the answer names B (${JSON.stringify(secret)}): ${res.text}`);
      assert.ok(!headers.includes(secret), `${what}: a header names B (${JSON.stringify(secret)}): ${headers}`);
    }
  }

  interface CallOptions {
    body?: unknown;
    key?: string | null;
    headers?: Record<string, string>;
    raw?: string | Uint8Array | FormData;
  }

  /** Calls, asserts a problem+json answer with one of `statuses`, and that nothing of B leaks. */
  async function denied(method: string, path: string, options: CallOptions, statuses: readonly number[]): Promise<Res> {
    const res = await api.call<Json>(method, path, options);
    const what = `${method} ${path}${options.body === undefined ? '' : ` ${JSON.stringify(options.body)}`}`;
    assert.ok(statuses.includes(res.status), `${what} — wanted ${statuses.join(' or ')}, got ${res.status} ${res.text}`);
    assert.ok((res.headers.get('content-type') ?? '').startsWith(problemType), `${what} — wanted ${problemType}, got ${res.headers.get('content-type')}`);
    assert.equal(res.body.status, res.status, `${what}: problem status differs from the HTTP status: ${res.text}`);
    assertNoLeak(res, `${path} ${JSON.stringify(options.body ?? null)}`, what);
    return res;
  }

  /** The problem body with `ref` replaced by a placeholder, to compare two answers. */
  const normalised = (res: Res, ref: string): string => res.text.split(ref).join('<ref>').split(encodeURIComponent(ref)).join('<ref>');

  /**
   * Addressing B's object by `bRef` answers exactly what addressing a missing one (`missingRef`)
   * answers: the same status (404) and the same problem, up to the ref itself.
   */
  async function sameAsMissing(method: string, pathOf: (ref: string) => string, bRef: string, missingRef: string, options: CallOptions = {}): Promise<Res> {
    const forB = await denied(method, pathOf(bRef), options, [404]);
    const missing = await api.call<Json>(method, pathOf(missingRef), options);
    assert.equal(missing.status, 404, `${method} ${pathOf(missingRef)} (missing) answered ${missing.status} ${missing.text}`);
    assert.equal(normalised(forB, bRef), normalised(missing, missingRef), `${method} ${pathOf('…')}: B's object and a missing one answer differently`);
    return forB;
  }

  /** Naming B in a filter or body answers exactly what naming a tenant that does not exist answers: 403. */
  async function sameAsUnknownTenant(method: string, pathOf: (ref: string) => string, bodyOf: ((ref: string) => unknown) | undefined, bRef: string, key: string): Promise<Res> {
    const unknown = `no-such-tenant-${randomBytes(4).toString('hex')}`;
    const forB = await denied(method, pathOf(bRef), { key, ...(bodyOf ? { body: bodyOf(bRef) } : {}) }, [403]);
    const forUnknown = await api.call<Json>(method, pathOf(unknown), { key, ...(bodyOf ? { body: bodyOf(unknown) } : {}) });
    assert.equal(forUnknown.status, 403, `${method} ${pathOf(unknown)} (unknown tenant) answered ${forUnknown.status} ${forUnknown.text}`);
    assert.equal(normalised(forB, bRef), normalised(forUnknown, unknown), `${method} ${pathOf('…')}: naming B and naming an unknown tenant answer differently`);
    return forB;
  }

  async function created(method: string, path: string, body: unknown, what: string): Promise<Json> {
    const res = await api.call<Json>(method, path, { body });
    assert.equal(res.status, 201, `setup: ${what} — wanted 201, got ${res.status} ${res.text}`);
    return res.body;
  }

  async function upload(serviceId: string, filename: string, bytes: Uint8Array, key: string | null = api.adminKey): Promise<Res> {
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'application/zip' }), filename);
    return api.call<Json>('POST', `/services/${serviceId}/upload`, { raw: form, key });
  }

  async function makeSide(label: string): Promise<Side> {
    const tenant = await created('POST', '/tenants', { slug: `iso-${label}-corp`, name: `${label.toUpperCase()} Confidential Holdings`, billing_email: `billing@${label}.example` }, `tenant ${label}`);
    const tenantId = str(tenant.id, 'tenant id');
    const service = await created('POST', '/services', { tenant_id: tenantId, name: `${label}-secret-fn`, runtime: 'node20', memory_limit_mb: 256 }, `service ${label}`);
    const serviceId = str(service.id, 'service id');
    const revision = await created('POST', `/services/${serviceId}/revisions`, { name: `${label}-secret-fn-00001`, image: `registry.example/${label}/fn:1` }, `revision ${label}`);
    const tenantKey = await created('POST', '/api-keys', { name: `${label} tenant key`, role: 'tenant', tenant_id: tenantId }, `tenant key ${label}`);
    const ingestKey = await created('POST', '/api-keys', { name: `${label} ingest key`, role: 'ingest', tenant_id: tenantId }, `ingest key ${label}`);
    const bill = await created('POST', '/billing/generate', { tenant_id: tenantId, month }, `bill ${label}`);
    assert.equal(bill.status, 'draft');
    const plan = await created(
      'POST',
      '/pricing/plans',
      { name: `${label}-private-plan`, currency: 'USD', price_per_invocation: '0.0000003', price_per_gb_s: '0.00002', tenant_id: tenantId },
      `private plan ${label}`,
    );
    assert.equal(plan.tenant_id, tenantId);
    const marker = `${label.toUpperCase()}-ARTIFACT-${randomBytes(8).toString('hex')}`;
    const bytes = artifactBytes(marker);
    const uploaded = await upload(serviceId, 'fn.zip', bytes);
    assert.equal(uploaded.status, 201, `setup: upload ${label}: ${uploaded.status} ${uploaded.text}`);
    return {
      tenant: { id: tenantId, slug: str(tenant.slug, 'slug'), name: str(tenant.name, 'name') },
      service: { id: serviceId, name: str(service.name, 'service name') },
      revision: { id: str(revision.id, 'revision id'), name: str(revision.name, 'revision name') },
      bill: { id: str(bill.id, 'bill id') },
      plan: { id: str(plan.id, 'plan id'), name: str(plan.name, 'plan name') },
      artifact: { filename: 'fn.zip', bytes, marker },
      tenantKey: str(tenantKey.key, 'tenant key'),
      tenantKeyPrefix: str(tenantKey.prefix, 'tenant key prefix'),
      ingestKey: str(ingestKey.key, 'ingest key'),
      ingestKeyPrefix: str(ingestKey.prefix, 'ingest key prefix'),
    };
  }

  before(async () => {
    api = await startTestApi();
    a = await makeSide('alpha');
    b = await makeSide('bravo');
  });

  after(async () => {
    await api?.close();
  });

  describe('setup sanity (so that every denial below means something)', () => {
    it('A’s tenant key reads A’s own objects by id', async () => {
      const key = a.tenantKey;
      const paths = [
        `/tenants/${a.tenant.id}`,
        `/tenants/${a.tenant.slug}`,
        `/tenants/${a.tenant.id}/pricing-plan`,
        `/services/${a.service.id}`,
        `/services/${a.service.id}/revisions`,
        `/services/${a.service.id}/artifacts`,
        `/usage/dashboard/${a.tenant.id}`,
        `/bills/${a.bill.id}`,
        `/bills/${a.bill.id}.csv`,
        `/bills/${a.bill.id}.pdf`,
        `/billing/reports/${a.tenant.id}`,
        `/pricing/plans/${a.plan.id}`,
      ];
      for (const path of paths) {
        const res = await api.call<Json>('GET', path, { key });
        assert.equal(res.status, 200, `GET ${path} with A's key: ${res.status} ${res.text}`);
        assertNoLeak(res, path, `GET ${path}`);
      }
    });

    it('A’s tenant key downloads A’s own artifact, byte for byte', async () => {
      const res = await fetch(`${api.url}/api/v1/artifacts/${a.service.id}/${a.artifact.filename}`, { headers: { authorization: `Bearer ${a.tenantKey}` } });
      assert.equal(res.status, 200);
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), a.artifact.bytes);
    });

    it('the admin sees both tenants (the objects of B exist)', async () => {
      const tenants = idsOf(itemsOf(await api.call<Json>('GET', '/tenants'), 'GET /tenants as admin'));
      assert.ok(tenants.includes(a.tenant.id) && tenants.includes(b.tenant.id));
      assert.equal((await api.call('GET', `/bills/${b.bill.id}`)).status, 200);
      assert.equal((await api.call('GET', `/services/${b.service.id}`)).status, 200);
      assert.equal((await api.call('GET', `/pricing/plans/${b.plan.id}`)).status, 200);
    });
  });

  describe('tenants', () => {
    it('GET /tenants lists only A', async () => {
      const res = await api.call<Json>('GET', '/tenants', { key: a.tenantKey });
      assert.deepEqual(idsOf(itemsOf(res, 'GET /tenants')), [a.tenant.id]);
      assert.equal(res.body.next_cursor, null);
      assertNoLeak(res, '', 'GET /tenants');
    });

    it('GET /tenants with a cursor or a large limit still lists only A (or nothing)', async () => {
      for (const query of ['?limit=500', '?cursor=', `?cursor=${encodeURIComponent('0')}`, `?cursor=${a.tenant.slug}`, `?cursor=${b.tenant.slug}`]) {
        const res = await api.call<Json>('GET', `/tenants${query}`, { key: a.tenantKey });
        const ids = idsOf(itemsOf(res, `GET /tenants${query}`));
        assert.ok(ids.every((id) => id === a.tenant.id), `GET /tenants${query} lists ${ids.join(', ')}`);
        assertNoLeak(res, query, `GET /tenants${query}`);
      }
    });

    it('GET /tenants/:id of B, by id or by slug, is the 404 of a missing tenant', async () => {
      await sameAsMissing('GET', (ref) => `/tenants/${ref}`, b.tenant.id, randomUUID(), { key: a.tenantKey });
      await sameAsMissing('GET', (ref) => `/tenants/${ref}`, b.tenant.slug, 'iso-nobody-corp', { key: a.tenantKey });
    });

    it('PATCH and PUT /tenants/:id of B are refused (admin only) and change nothing', async () => {
      for (const method of ['PATCH', 'PUT']) {
        for (const ref of [b.tenant.id, b.tenant.slug]) {
          await denied(method, `/tenants/${ref}`, { key: a.tenantKey, body: { name: 'Owned by A' } }, [403, 404]);
        }
      }
      const after = await api.call<Json>('GET', `/tenants/${b.tenant.id}`);
      assert.equal(after.body.name, b.tenant.name);
    });

    it('GET /tenants/:id/pricing-plan of B is a 404; PUT is refused', async () => {
      await sameAsMissing('GET', (ref) => `/tenants/${ref}/pricing-plan`, b.tenant.id, randomUUID(), { key: a.tenantKey });
      await sameAsMissing('GET', (ref) => `/tenants/${ref}/pricing-plan`, b.tenant.slug, 'iso-nobody-corp', { key: a.tenantKey });
      await denied('PUT', `/tenants/${b.tenant.id}/pricing-plan`, { key: a.tenantKey, body: { pricing_plan_id: a.plan.id } }, [403, 404]);
      await denied('PUT', `/tenants/${b.tenant.id}/pricing-plan`, { key: a.tenantKey, body: { pricing_plan_id: b.plan.id } }, [403, 404]);
      const plan = await api.call<Json>('GET', `/tenants/${b.tenant.id}/pricing-plan`);
      assert.equal(plan.status, 200);
      assert.equal(plan.body.source, 'currency_default', 'B’s plan was changed by A’s key');
    });
  });

  describe('services, revisions and artifacts', () => {
    it('GET /services?tenant_id=B is the 403 of an unknown tenant (by id and by slug)', async () => {
      await sameAsUnknownTenant('GET', (ref) => `/services?tenant_id=${encodeURIComponent(ref)}`, undefined, b.tenant.id, a.tenantKey);
      await sameAsUnknownTenant('GET', (ref) => `/services?tenant_id=${encodeURIComponent(ref)}`, undefined, b.tenant.slug, a.tenantKey);
    });

    it('GET /services lists only A’s services, whatever the cursor', async () => {
      for (const query of ['', '?limit=500', '?cursor=00000000-0000-0000-0000-000000000000', `?tenant_id=${a.tenant.slug}`, `?tenant_id=${a.tenant.id}`]) {
        const res = await api.call<Json>('GET', `/services${query}`, { key: a.tenantKey });
        const items = itemsOf(res, `GET /services${query}`);
        assert.deepEqual(idsOf(items), [a.service.id], `GET /services${query}`);
        assert.ok(items.every((s) => s.tenant_id === a.tenant.id));
        assertNoLeak(res, query, `GET /services${query}`);
      }
    });

    it('POST /services naming B is the 403 of an unknown tenant, and creates nothing', async () => {
      await sameAsUnknownTenant('POST', () => '/services', (ref) => ({ tenant_id: ref, name: 'planted-by-a' }), b.tenant.id, a.tenantKey);
      await sameAsUnknownTenant('POST', () => '/services', (ref) => ({ tenant_id: ref, name: 'planted-by-a' }), b.tenant.slug, a.tenantKey);
      const all = itemsOf(await api.call<Json>('GET', `/services?tenant_id=${b.tenant.id}`), 'GET /services as admin');
      assert.deepEqual(idsOf(all), [b.service.id]);
    });

    it('GET /services/:id, /revisions and /artifacts of B’s service are the 404 of a missing service', async () => {
      const key = a.tenantKey;
      await sameAsMissing('GET', (ref) => `/services/${ref}`, b.service.id, randomUUID(), { key });
      await sameAsMissing('GET', (ref) => `/services/${ref}/revisions`, b.service.id, randomUUID(), { key });
      await sameAsMissing('GET', (ref) => `/services/${ref}/artifacts`, b.service.id, randomUUID(), { key });
      // By name (the service's K_SERVICE) is not an id either.
      await denied('GET', `/services/${b.service.name}`, { key }, [404]);
    });

    it('POST /services/:id/revisions on B’s service is a 404 and registers nothing', async () => {
      await sameAsMissing('POST', (ref) => `/services/${ref}/revisions`, b.service.id, randomUUID(), { key: a.tenantKey, body: { name: 'planted-by-a-00001' } });
      const revisions = itemsOf(await api.call<Json>('GET', `/services/${b.service.id}/revisions`), 'B revisions as admin');
      assert.deepEqual(idsOf(revisions), [b.revision.id]);
    });

    it('POST /services/:id/upload to B’s service is a 404 and stores nothing', async () => {
      const bytes = artifactBytes('PLANTED-BY-A');
      const forB = await upload(b.service.id, 'planted.zip', bytes, a.tenantKey);
      assert.equal(forB.status, 404, `upload to B's service: ${forB.status} ${forB.text}`);
      assertNoLeak(forB, b.service.id, 'upload to B');
      const overwrite = await upload(b.service.id, b.artifact.filename, bytes, a.tenantKey);
      assert.equal(overwrite.status, 404, `overwrite B's artifact: ${overwrite.status} ${overwrite.text}`);
      const missing = await upload(randomUUID(), 'planted.zip', bytes, a.tenantKey);
      assert.equal(missing.status, 404);
      const artifacts = itemsOf(await api.call<Json>('GET', `/services/${b.service.id}/artifacts`), 'B artifacts as admin');
      assert.deepEqual(
        artifacts.map((x) => x.filename),
        [b.artifact.filename],
      );
      const original = await fetch(`${api.url}/api/v1/artifacts/${b.service.id}/${b.artifact.filename}`, { headers: { authorization: `Bearer ${api.adminKey}` } });
      assert.deepEqual(new Uint8Array(await original.arrayBuffer()), b.artifact.bytes, 'B’s artifact was overwritten by A');
    });

    it('GET /artifacts/:B-service/fn.zip is the 404 of a missing service', async () => {
      await sameAsMissing('GET', (ref) => `/artifacts/${ref}/${b.artifact.filename}`, b.service.id, randomUUID(), { key: a.tenantKey });
      await denied('GET', `/artifacts/${b.service.id.toUpperCase()}/${b.artifact.filename}`, { key: a.tenantKey }, [404]);
    });

    it('path traversal through A’s service never reaches B’s artifact (any 4xx, never B’s bytes)', async () => {
      const B = b.service.id;
      const A = a.service.id;
      const attempts = [
        `/artifacts/${A}/..%2F${B}%2Ffn.zip`,
        `/artifacts/${A}/%2E%2E%2F${B}%2Ffn.zip`,
        `/artifacts/${A}/..%5C${B}%5Cfn.zip`,
        `/artifacts/${A}/..%252F${B}%252Ffn.zip`,
        `/artifacts/${A}/..%2F..%2F${B}%2Ffn.zip`,
        `/artifacts/${A}%2F..%2F${B}/fn.zip`,
        `/artifacts/${A}%2F..%2F..%2F${B}/fn.zip`,
        `/artifacts/..%2F${B}/fn.zip`,
        `/artifacts/${A}/fn.zip%00..%2F${B}%2Ffn.zip`,
        `/artifacts/${A}/..%2F${B}%2F.meta%2Ffn.zip.meta.json`,
      ];
      for (const path of attempts) {
        const res = await api.call<Json>('GET', path, { key: a.tenantKey });
        assert.ok(res.status >= 400 && res.status < 500, `GET ${path} — wanted a 4xx, got ${res.status} ${res.text}`);
        assert.ok(!res.text.includes(b.artifact.marker), `GET ${path}: the answer holds B's artifact bytes`);
        assertNoLeak(res, path, `GET ${path}`);
      }
    });
  });

  describe('malformed paths', () => {
    it('a malformed percent-encoding in a path parameter is a 4xx problem, not a 500 (with or without a key)', async () => {
      const paths = [`/artifacts/${a.service.id}/%E0%A4%A`, `/artifacts/${a.service.id}/fn%ZZ.zip`, '/tenants/%E0%A4%A', `/bills/%ZZ.csv`];
      const wrong: string[] = [];
      for (const key of [a.tenantKey, null]) {
        for (const path of paths) {
          const res = await api.call<Json>('GET', path, { key });
          const what = `GET ${path} ${key ? 'with A’s key' : 'without a key'}`;
          if (res.status < 400 || res.status >= 500) wrong.push(`${what} answered ${res.status} ${res.text}`);
          else assert.ok((res.headers.get('content-type') ?? '').startsWith(problemType), what);
          assertNoLeak(res, path, what);
        }
      }
      assert.ok(wrong.length === 0, `wanted a 4xx (400) problem for each of:\n${wrong.join('\n')}`);
    });
  });

  describe('usage', () => {
    it('GET /usage-aggregates?tenant_id=B is the 403 of an unknown tenant', async () => {
      await sameAsUnknownTenant('GET', (ref) => `/usage-aggregates?tenant_id=${encodeURIComponent(ref)}`, undefined, b.tenant.id, a.tenantKey);
      await sameAsUnknownTenant('GET', (ref) => `/usage-aggregates?tenant_id=${encodeURIComponent(ref)}`, undefined, b.tenant.slug, a.tenantKey);
    });

    it('GET /usage-aggregates filtered by B’s service or revision returns nothing (or is denied)', async () => {
      for (const query of [`?service_id=${b.service.id}`, `?revision_id=${b.revision.id}`, `?service_id=${b.service.id}&tenant_id=${a.tenant.id}`]) {
        const res = await api.call<Json>('GET', `/usage-aggregates${query}`, { key: a.tenantKey });
        if (res.status === 200) assert.deepEqual(res.body.items, [], `GET /usage-aggregates${query}: ${res.text}`);
        else assert.ok([403, 404].includes(res.status), `GET /usage-aggregates${query}: ${res.status} ${res.text}`);
        assertNoLeak(res, query, `GET /usage-aggregates${query}`);
      }
    });

    it('GET /usage/dashboard/:B is the 404 of a missing tenant (by id and by slug)', async () => {
      await sameAsMissing('GET', (ref) => `/usage/dashboard/${ref}`, b.tenant.id, randomUUID(), { key: a.tenantKey });
      await sameAsMissing('GET', (ref) => `/usage/dashboard/${ref}`, b.tenant.slug, 'iso-nobody-corp', { key: a.tenantKey });
    });
  });

  describe('billing', () => {
    it('POST /billing/calculate for B is the 403 of an unknown tenant', async () => {
      await sameAsUnknownTenant('POST', () => '/billing/calculate', (ref) => ({ tenant_id: ref, month }), b.tenant.id, a.tenantKey);
      await sameAsUnknownTenant('POST', () => '/billing/calculate', (ref) => ({ tenant_id: ref }), b.tenant.slug, a.tenantKey);
    });

    it('POST /billing/generate is refused to a tenant key (for B, and even for A)', async () => {
      await denied('POST', '/billing/generate', { key: a.tenantKey, body: { tenant_id: b.tenant.id, month: '2026-09' } }, [403]);
      await denied('POST', '/billing/generate', { key: a.tenantKey, body: { tenant_id: a.tenant.id, month: '2026-09' } }, [403]);
      const bills = itemsOf(await api.call<Json>('GET', '/bills'), 'GET /bills as admin');
      assert.equal(bills.length, 2, 'a bill was generated with a tenant key');
    });

    it('GET /bills lists only A’s bills; ?tenant_id=B is the 403 of an unknown tenant', async () => {
      for (const query of ['', '?status=draft', '?limit=500', `?tenant_id=${a.tenant.slug}`]) {
        const res = await api.call<Json>('GET', `/bills${query}`, { key: a.tenantKey });
        const items = itemsOf(res, `GET /bills${query}`);
        assert.deepEqual(idsOf(items), [a.bill.id], `GET /bills${query}`);
        assertNoLeak(res, query, `GET /bills${query}`);
      }
      await sameAsUnknownTenant('GET', (ref) => `/bills?tenant_id=${encodeURIComponent(ref)}`, undefined, b.tenant.id, a.tenantKey);
      await sameAsUnknownTenant('GET', (ref) => `/bills?tenant_id=${encodeURIComponent(ref)}`, undefined, b.tenant.slug, a.tenantKey);
    });

    it('a cursor pointing past B’s bill does not reveal it', async () => {
      const cursor = Buffer.from(`9999-01-01T00:00:00.000Z|${randomUUID()}`).toString('base64url');
      const res = await api.call<Json>('GET', `/bills?cursor=${cursor}`, { key: a.tenantKey });
      assert.deepEqual(idsOf(itemsOf(res, 'GET /bills?cursor')), [a.bill.id]);
      assertNoLeak(res, cursor, 'GET /bills?cursor');
    });

    it('GET /bills/:id, .csv and .pdf of B’s bill are the 404 of a missing bill', async () => {
      const key = a.tenantKey;
      await sameAsMissing('GET', (ref) => `/bills/${ref}`, b.bill.id, randomUUID(), { key });
      await sameAsMissing('GET', (ref) => `/bills/${ref}.csv`, b.bill.id, randomUUID(), { key });
      await sameAsMissing('GET', (ref) => `/bills/${ref}.pdf`, b.bill.id, randomUUID(), { key });
    });

    it('finalize and mark-paid of B’s bill are refused (admin only), and B’s bill stays a draft', async () => {
      const key = a.tenantKey;
      await denied('POST', `/bills/${b.bill.id}/finalize`, { key }, [403, 404]);
      await denied('POST', '/billing/finalize', { key, body: { bill_id: b.bill.id } }, [403, 404]);
      await denied('POST', `/bills/${b.bill.id}/mark-paid`, { key, body: {} }, [403, 404]);
      await denied('POST', '/billing/mark-paid', { key, body: { bill_id: b.bill.id } }, [403, 404]);
      const bill = await api.call<Json>('GET', `/bills/${b.bill.id}`);
      assert.equal(bill.body.status, 'draft');
    });

    it('GET /billing/reports/:B is the 404 of a missing tenant (by id and by slug)', async () => {
      await sameAsMissing('GET', (ref) => `/billing/reports/${ref}`, b.tenant.id, randomUUID(), { key: a.tenantKey });
      await sameAsMissing('GET', (ref) => `/billing/reports/${ref}`, b.tenant.slug, 'iso-nobody-corp', { key: a.tenantKey });
    });

    it('A’s own report names only A’s bills', async () => {
      const res = await api.call<Json>('GET', `/billing/reports/${a.tenant.id}`, { key: a.tenantKey });
      assert.equal(res.status, 200);
      const bills = res.body.bills;
      assert.ok(Array.isArray(bills));
      assert.deepEqual(
        bills.map((x) => asObject(x, 'report bill').id),
        [a.bill.id],
      );
      assertNoLeak(res, '', 'GET report of A');
    });
  });

  describe('forecast', () => {
    it('POST /forecast/cost for B is the 403 of an unknown tenant', async () => {
      await sameAsUnknownTenant('POST', () => '/forecast/cost', (ref) => ({ tenant_id: ref, period: '1d' }), b.tenant.id, a.tenantKey);
      await sameAsUnknownTenant('POST', () => '/forecast/cost', (ref) => ({ tenant_id: ref, period: '1d' }), b.tenant.slug, a.tenantKey);
    });
  });

  describe('pricing plans', () => {
    it('GET /pricing/plans (and the seed path /pricing-plans) lists the public plans and A’s private one, never B’s', async () => {
      const all = itemsOf(await api.call<Json>('GET', '/pricing/plans?include_inactive=true'), 'plans as admin');
      const expected = all.filter((p) => p.tenant_id === null || p.tenant_id === a.tenant.id).map((p) => str(p.id, 'plan id'));
      assert.ok(expected.includes(a.plan.id));
      for (const path of ['/pricing/plans', '/pricing/plans?include_inactive=true', '/pricing/plans?currency=USD', '/pricing-plans']) {
        const res = await api.call<Json>('GET', path, { key: a.tenantKey });
        const ids = idsOf(itemsOf(res, `GET ${path}`));
        assert.ok(!ids.includes(b.plan.id), `GET ${path} lists B's private plan`);
        assert.ok(ids.includes(a.plan.id), `GET ${path} does not list A's private plan`);
        assert.ok(
          ids.every((id) => expected.includes(id)),
          `GET ${path} lists plans that are neither public nor A's`,
        );
        assertNoLeak(res, path, `GET ${path}`);
      }
    });

    it('GET /pricing/plans/:id of B’s private plan is the 404 of a missing plan', async () => {
      await sameAsMissing('GET', (ref) => `/pricing/plans/${ref}`, b.plan.id, randomUUID(), { key: a.tenantKey });
    });

    it('changing or deleting B’s private plan, or creating one for B, is refused', async () => {
      const key = a.tenantKey;
      await denied('PUT', `/pricing/plans/${b.plan.id}`, { key, body: { name: b.plan.name, currency: 'USD', price_per_invocation: '0' } }, [403, 404]);
      await denied('DELETE', `/pricing/plans/${b.plan.id}`, { key }, [403, 404]);
      await denied('POST', '/pricing/plans', { key, body: { name: 'planted-by-a', currency: 'USD', price_per_invocation: '0', tenant_id: b.tenant.id } }, [403]);
      const plan = await api.call<Json>('GET', `/pricing/plans/${b.plan.id}`);
      assert.equal(plan.status, 200);
      assert.equal(plan.body.price_per_invocation, '0.0000003');
    });

    it('even an admin cannot assign B’s private plan to A', async () => {
      const res = await api.call<Json>('PUT', `/tenants/${a.tenant.id}/pricing-plan`, { body: { pricing_plan_id: b.plan.id } });
      assert.equal(res.status, 422, res.text);
      const current = await api.call<Json>('GET', `/tenants/${a.tenant.id}/pricing-plan`, { key: a.tenantKey });
      assert.equal(current.status, 200, current.text);
      assert.notEqual(asObject(current.body.plan, 'plan').id, b.plan.id);
      assertNoLeak(current, '', 'A’s current plan');
    });
  });

  describe('ingest', () => {
    const event = (tenant: string, service: string) => ({ tenant_id: tenant, service_name: service, duration_seconds: 0.25, memory_mb: 128, timestamp: new Date().toISOString() });

    it('an event for B (by slug or by id) sent with A’s ingest key is rejected as tenant_forbidden', async () => {
      for (const ref of [b.tenant.slug, b.tenant.id]) {
        const body = event(ref, b.service.name);
        const res = await api.call<Json>('POST', '/metrics/ingest', { key: a.ingestKey, body });
        assert.equal(res.status, 422, `ingest for B (${ref}): ${res.status} ${res.text}`);
        assert.ok((res.headers.get('content-type') ?? '').startsWith(problemType));
        const errors = res.body.errors;
        assert.ok(Array.isArray(errors) && errors.length === 1, res.text);
        assert.equal(asObject(errors[0], 'error').reason, 'tenant_forbidden');
        assert.equal(res.body.accepted, 0);
        assertNoLeak(res, JSON.stringify(body), `ingest for B (${ref})`);
      }
    });

    it('mixed with a valid event of A in one array: A’s is accepted, B’s rejected by index', async () => {
      const body = [event(a.tenant.slug, a.service.name), event(b.tenant.slug, b.service.name)];
      const res = await api.call<Json>('POST', '/metrics/ingest', { key: a.ingestKey, body });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.accepted, 1, res.text);
      assert.equal(res.body.rejected, 1, res.text);
      const errors = res.body.errors;
      assert.ok(Array.isArray(errors) && errors.length === 1, res.text);
      const error = asObject(errors[0], 'error');
      assert.equal(error.reason, 'tenant_forbidden');
      assert.equal(error.index, 1);
      assertNoLeak(res, JSON.stringify(body), 'mixed ingest');
    });

    it('A’s ingest key alone is accepted for A (the key works)', async () => {
      const res = await api.call<Json>('POST', '/metrics/ingest', { key: a.ingestKey, body: event(a.tenant.id, a.service.name) });
      assert.equal(res.status, 202, res.text);
      assert.equal(res.body.accepted, 1);
    });

    it('an event id B has used does not make A’s event a duplicate (no cross-tenant dedup, no oracle on B’s events)', async () => {
      const timestamp = new Date().toISOString();
      const requestId = `req-${randomUUID()}`;
      const seedOf = (side: Side) => ({ ...event(side.tenant.slug, side.service.name), timestamp, request_id: requestId });
      const cloudEventOf = (side: Side) => ({
        specversion: '1.0',
        type: 'faasbilling.usage.v1',
        source: '/shared/producer',
        id: `evt-${requestId}`,
        time: timestamp,
        datacontenttype: 'application/json',
        data: { tenant_id: side.tenant.id, service: side.service.name, duration_ms: 120, memory_mb: 128 },
      });
      const cases: [string, (side: Side) => unknown, Record<string, string>][] = [
        ['seed JSON with the same request_id', seedOf, {}],
        ['a CloudEvent with the same source and id', cloudEventOf, { 'content-type': 'application/cloudevents+json' }],
      ];
      const wrong: string[] = [];
      for (const [what, bodyOf, headers] of cases) {
        const first = await api.call<Json>('POST', '/metrics/ingest', { key: b.ingestKey, body: bodyOf(b), headers });
        assert.equal(first.status, 202, `B: ${what}: ${first.status} ${first.text}`);
        assert.equal(first.body.accepted, 1, `B: ${what}: ${first.text}`);
        const second = await api.call<Json>('POST', '/metrics/ingest', { key: a.ingestKey, body: bodyOf(a), headers });
        if (second.status !== 202 || second.body.accepted !== 1 || second.body.duplicates !== 0) wrong.push(`A after B, ${what}: ${second.status} ${second.text}`);
      }
      assert.ok(wrong.length === 0, `A’s own event was taken for B’s (wanted 202 {"accepted":1,"duplicates":0,"rejected":0}):\n${wrong.join('\n')}`);
    });

    it('a tenant key cannot ingest at all (ingest or admin only)', async () => {
      await denied('POST', '/metrics/ingest', { key: a.tenantKey, body: event(a.tenant.slug, a.service.name) }, [403]);
      await denied('POST', '/metrics/aggregate', { key: a.tenantKey }, [403]);
    });
  });

  describe('admin-only endpoints with a tenant key', () => {
    it('POST /api-keys is refused, also for B, and creates no key', async () => {
      const before = itemsOf(await api.call<Json>('GET', '/api-keys'), 'keys as admin').length;
      await denied('POST', '/api-keys', { key: a.tenantKey, body: { name: 'escalate', role: 'admin' } }, [403]);
      await denied('POST', '/api-keys', { key: a.tenantKey, body: { name: 'escalate', role: 'tenant', tenant_id: b.tenant.id } }, [403]);
      await denied('POST', '/api-keys', { key: a.tenantKey, body: { name: 'escalate', role: 'tenant', tenant_id: a.tenant.id } }, [403]);
      const after = itemsOf(await api.call<Json>('GET', '/api-keys'), 'keys as admin').length;
      assert.equal(after, before);
    });

    it('GET /api-keys, DELETE /api-keys/:id and GET /audit-log are refused', async () => {
      const keys = itemsOf(await api.call<Json>('GET', `/api-keys?tenant_id=${b.tenant.id}`), 'B keys as admin');
      const bKeyId = str(keys[0]?.id, 'B key id');
      await denied('GET', '/api-keys', { key: a.tenantKey }, [403]);
      await denied('GET', `/api-keys?tenant_id=${b.tenant.id}`, { key: a.tenantKey }, [403]);
      await denied('DELETE', `/api-keys/${bKeyId}`, { key: a.tenantKey }, [403]);
      await denied('GET', '/audit-log', { key: a.tenantKey }, [403]);
      await denied('GET', `/audit-log?tenant_id=${b.tenant.id}`, { key: a.tenantKey }, [403]);
      await denied('POST', '/tenants', { key: a.tenantKey, body: { slug: 'planted-by-a', name: 'Planted' } }, [403]);
      const still = await api.call<Json>('GET', '/tenants', { key: b.tenantKey });
      assert.equal(still.status, 200, 'B’s key was revoked by A');
    });
  });

  describe('ingest keys on read endpoints', () => {
    it('are refused with 403', async () => {
      const key = a.ingestKey;
      for (const path of ['/tenants', `/tenants/${a.tenant.id}`, '/bills', `/bills/${a.bill.id}`, '/services', '/usage-aggregates', `/usage/dashboard/${a.tenant.id}`, `/billing/reports/${a.tenant.id}`, '/pricing/plans', '/api-keys', '/audit-log']) {
        await denied('GET', path, { key }, [403]);
      }
      await denied('GET', `/bills/${b.bill.id}`, { key }, [403]);
      await denied('POST', '/billing/calculate', { key, body: { month } }, [403]);
      await denied('POST', '/forecast/cost', { key, body: { period: '1d' } }, [403]);
    });
  });

  describe('authentication', () => {
    const assertUnauthorized = (res: Res, what: string): void => {
      assert.equal(res.status, 401, `${what}: ${res.status} ${res.text}`);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/, `${what}: no WWW-Authenticate challenge`);
      assert.ok((res.headers.get('content-type') ?? '').startsWith(problemType), what);
      assert.equal(res.body.status, 401);
      assertNoLeak(res, '', what);
    };

    it('no key: 401 with a WWW-Authenticate challenge', async () => {
      for (const path of ['/tenants', `/bills/${b.bill.id}`, `/services/${b.service.id}`]) {
        assertUnauthorized(await api.call<Json>('GET', path, { key: null }), `GET ${path} without a key`);
      }
      assertUnauthorized(await api.call<Json>('POST', '/metrics/ingest', { key: null, body: [] }), 'ingest without a key');
    });

    it('a malformed key: 401', async () => {
      for (const key of ['nope', 'fbk_', `fbk_${'z'.repeat(12)}_${'a'.repeat(43)}`, `${a.tenantKey}x`, a.tenantKey.slice(0, -1), a.tenantKey.toUpperCase()]) {
        assertUnauthorized(await api.call<Json>('GET', '/tenants', { key }), `key ${JSON.stringify(key)}`);
      }
      const headerSets: Record<string, string>[] = [{ authorization: 'Basic dXNlcjpwYXNz' }, { authorization: 'Bearer' }, { 'x-api-key': 'nope' }];
      for (const headers of headerSets) {
        assertUnauthorized(await api.call<Json>('GET', '/tenants', { key: null, headers }), `headers ${JSON.stringify(headers)}`);
      }
    });

    it('a well-formed key that was never issued: 401 (also by X-API-Key)', async () => {
      assertUnauthorized(await api.call<Json>('GET', '/tenants', { key: unknownKey() }), 'unknown key');
      assertUnauthorized(await api.call<Json>('GET', '/tenants', { key: null, headers: { 'x-api-key': unknownKey() } }), 'unknown X-API-Key');
      // The prefix of a real key with another secret.
      const forged = `fbk_${a.tenantKeyPrefix}_${randomBytes(32).toString('base64url')}`;
      assertUnauthorized(await api.call<Json>('GET', '/tenants', { key: forged }), 'forged secret');
    });

    it('a revoked key: 401', async () => {
      const key = await created('POST', '/api-keys', { name: 'to revoke', role: 'tenant', tenant_id: a.tenant.id }, 'key to revoke');
      const secret = str(key.key, 'key');
      assert.equal((await api.call('GET', '/tenants', { key: secret })).status, 200);
      const revoked = await api.call<Json>('DELETE', `/api-keys/${str(key.id, 'key id')}`);
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal(typeof revoked.body.revoked_at, 'string');
      assertUnauthorized(await api.call<Json>('GET', '/tenants', { key: secret }), 'revoked key');
      assertUnauthorized(await api.call<Json>('GET', '/tenants', { key: null, headers: { 'x-api-key': secret } }), 'revoked X-API-Key');
    });
  });

  describe('counts leak nothing', () => {
    it('every list of A’s key counts exactly A’s own objects', async () => {
      const key = a.tenantKey;
      assert.equal(itemsOf(await api.call<Json>('GET', '/tenants', { key }), 'tenants').length, 1);
      assert.equal(itemsOf(await api.call<Json>('GET', '/services', { key }), 'services').length, 1);
      assert.equal(itemsOf(await api.call<Json>('GET', '/bills', { key }), 'bills').length, 1);
      assert.equal(itemsOf(await api.call<Json>('GET', `/services/${a.service.id}/revisions`, { key }), 'revisions').length, 1);
      assert.equal(itemsOf(await api.call<Json>('GET', `/services/${a.service.id}/artifacts`, { key }), 'artifacts').length, 1);
      assert.equal(itemsOf(await api.call<Json>('GET', '/usage-aggregates', { key }), 'usage aggregates').length, 0);
      const publicPlans = itemsOf(await api.call<Json>('GET', '/pricing/plans'), 'plans as admin').filter((p) => p.tenant_id === null).length;
      assert.equal(itemsOf(await api.call<Json>('GET', '/pricing/plans', { key }), 'plans').length, publicPlans + 1);
      // B's lists, read with B's key, are B's: the same isolation the other way round.
      assert.deepEqual(idsOf(itemsOf(await api.call<Json>('GET', '/services', { key: b.tenantKey }), 'B services')), [b.service.id]);
      assert.deepEqual(idsOf(itemsOf(await api.call<Json>('GET', '/bills', { key: b.tenantKey }), 'B bills')), [b.bill.id]);
    });
  });
});

describe('API rate limit of expensive calls', function () {
  this.timeout(120_000);
  let api: TestApi;

  before(async () => {
    api = await startTestApi({ env: { API_RATE_LIMIT_EXPENSIVE: '3' } });
  });

  after(async () => {
    await api?.close();
  });

  it('the 4th POST /billing/calculate of one key in a minute is a 429 with Retry-After; another key is not limited', async () => {
    const tenant = await api.call<Json>('POST', '/tenants', { body: { slug: 'limited', name: 'Limited' } });
    assert.equal(tenant.status, 201, tenant.text);
    const tenantId = str(tenant.body.id, 'tenant id');
    const created = await api.call<Json>('POST', '/api-keys', { body: { name: 'limited key', role: 'tenant', tenant_id: tenantId } });
    assert.equal(created.status, 201, created.text);
    const key = str(created.body.key, 'key');

    for (let i = 1; i <= 3; i += 1) {
      const res = await api.call<Json>('POST', '/billing/calculate', { key, body: { month } });
      assert.equal(res.status, 200, `call ${i}: ${res.status} ${res.text}`);
    }
    const limited = await api.call<Json>('POST', '/billing/calculate', { key, body: { month } });
    assert.equal(limited.status, 429, `call 4: ${limited.status} ${limited.text}`);
    const retryAfter = limited.headers.get('retry-after') ?? '';
    assert.match(retryAfter, /^\d+$/, `Retry-After is ${JSON.stringify(retryAfter)}`);
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After is ${retryAfter}`);
    assert.ok((limited.headers.get('content-type') ?? '').startsWith(problemType), `content type ${limited.headers.get('content-type')}`);
    assert.equal(limited.body.status, 429);
    assert.equal(limited.body.type, 'urn:faasbilling:problem:rate_limited');
    assert.equal(typeof limited.body.detail, 'string');

    const other = await api.call<Json>('POST', '/billing/calculate', { body: { tenant_id: tenantId, month } });
    assert.equal(other.status, 200, `another key: ${other.status} ${other.text}`);
    // A cheap call of the limited key is not limited.
    assert.equal((await api.call('GET', '/bills', { key })).status, 200);
  });
});
