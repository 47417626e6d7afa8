/**
 * API rules found in review, each over real HTTP and PostgreSQL: time zones fixed once billed,
 * default plans moved without repricing the past, assignments ending what is in force, range
 * previews without adjustments, private plans never defaults, paid_at bounds, malformed input as
 * 4xx, ingest audited.
 */
import assert from 'node:assert/strict';
import { insertRawEvent } from '../src/billing/testing.js';
import { startTestApi, type TestApi } from './support/api.js';

type Row = Record<string, unknown> & { id: string };

describe('REST API rules', function () {
  this.timeout(120_000);
  let api: TestApi;
  const env = { API_RATE_LIMIT_EXPENSIVE: '100000', API_RATE_LIMIT_INGEST: '100000', COLLECT_MAX_BODY_BYTES: '4000', API_MAX_BODY_BYTES: '2000' };

  before(async () => {
    api = await startTestApi({ env });
  });
  after(() => api.close());

  const ok = async <T = Row>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await api.call<T>(method, path, body === undefined ? {} : { body });
    assert.ok(res.status >= 200 && res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  };
  const status = async (method: string, path: string, body?: unknown): Promise<{ status: number; type: string; text: string }> => {
    const res = await api.call<{ type?: string }>(method, path, body === undefined ? {} : { body });
    return { status: res.status, type: typeof res.body === 'object' && res.body !== null ? String(res.body.type ?? '') : '', text: res.text };
  };
  let n = 0;
  const tenant = async (extra: Record<string, unknown> = {}): Promise<Row> => ok('POST', '/tenants', { slug: `rules-${++n}`, name: `Rules ${n}`, ...extra });
  const usage = async (tenantId: string, time: string, invocations: number): Promise<void> => {
    const service = await ok('POST', '/services', { tenant_id: tenantId, name: `fn-${++n}` });
    const revision = await ok('POST', `/services/${service.id}/revisions`, { name: `fn-${n}-00001` });
    await insertRawEvent(api.database.db, { tenantId, serviceId: service.id, revisionId: revision.id, time, invocations, durationMs: String(100 * invocations), memoryMb: '128' });
    await ok('POST', '/metrics/aggregate');
  };

  it('refuses a time zone change once the tenant has a bill (months would overlap or leave gaps)', async () => {
    const t = await tenant();
    assert.equal((await ok<Row>('PATCH', `/tenants/${t.id}`, { timezone: 'Asia/Tokyo' })).timezone, 'Asia/Tokyo');
    await ok('POST', '/billing/generate', { tenant_id: t.id, month: '2025-10' });
    const refused = await status('PATCH', `/tenants/${t.id}`, { timezone: 'UTC' });
    assert.equal(refused.status, 409, refused.text);
    assert.equal((await ok<Row>('GET', `/tenants/${t.id}`)).timezone, 'Asia/Tokyo');
  });

  it('a new default plan (POST) leaves earlier periods of default tenants on the old default', async () => {
    const t = await tenant({ currency: 'EUR' });
    const old = await ok('POST', '/pricing/plans', { name: 'eur-old', currency: 'EUR', price_per_invocation: '1', default_for_currency: true });
    await usage(t.id, '2025-10-05T10:00:00Z', 3);
    const before = await ok<{ total: string; plan_id: string }>('POST', '/billing/calculate', { tenant_id: t.id, month: '2025-10' });
    assert.equal(before.total, '3.00');
    await ok('POST', '/pricing/plans', { name: 'eur-new', currency: 'EUR', price_per_invocation: '2', default_for_currency: true });
    const after = await ok<{ total: string; plan_id: string }>('POST', '/billing/calculate', { tenant_id: t.id, month: '2025-10' });
    assert.equal(after.total, '3.00');
    assert.equal(after.plan_id, old.id);
    const current = await ok<{ plan: { name: string } }>('GET', `/tenants/${t.id}/pricing-plan`);
    assert.equal(current.plan.name, 'eur-new');
  });

  it('an assignment ends whatever is in force then, even a span pinned to an old default version', async () => {
    const t = await tenant({ currency: 'GBP' });
    const v1 = await ok('POST', '/pricing/plans', { name: 'gbp-default', currency: 'GBP', price_per_invocation: '1', default_for_currency: true });
    const pro = await ok('POST', '/pricing/plans', { name: 'gbp-pro', currency: 'GBP', price_per_invocation: '5' });
    // The default changes in ten days: the tenant is pinned to v1 until then.
    const later = new Date(Date.now() + 10 * 86_400_000).toISOString();
    await ok('PUT', `/pricing/plans/${v1.id}`, { name: 'gbp-default', currency: 'GBP', price_per_invocation: '2', effective_from: later });
    const assigned = await ok<{ plan: { id: string }; history: { plan_id: string; effective_to: string | null }[] }>('PUT', `/tenants/${t.id}/pricing-plan`, { pricing_plan_id: pro.id });
    assert.equal(assigned.plan.id, pro.id);
    const open = assigned.history.filter((h) => h.effective_to === null || new Date(h.effective_to) > new Date());
    assert.deepEqual(open.map((h) => h.plan_id), [pro.id]);
  });

  it('a range preview prices only its own usage: no adjustment lines for finalized months', async () => {
    const t = await tenant();
    await usage(t.id, '2025-10-05T10:00:00Z', 5);
    const bill = await ok('POST', '/billing/generate', { tenant_id: t.id, month: '2025-10' });
    await ok('POST', `/bills/${bill.id}/finalize`);
    await usage(t.id, '2025-10-06T10:00:00Z', 7); // late usage for the finalized month
    const month = await ok<{ line_items: { is_adjustment: boolean }[] }>('POST', '/billing/calculate', { tenant_id: t.id, month: '2025-11' });
    assert.ok(month.line_items.some((l) => l.is_adjustment), 'the November bill carries the adjustment');
    const day = await ok<{ total: string; line_items: unknown[] }>('POST', '/billing/calculate', { tenant_id: t.id, period_start: '2025-11-15T00:00:00Z', period_end: '2025-11-15T23:59:59Z' });
    assert.equal(day.total, '0.00');
    assert.deepEqual(day.line_items.filter((l) => (l as { is_adjustment: boolean }).is_adjustment), []);
  });

  it('reads an inclusive hh:59:59 end in the tenant’s zone', async () => {
    const t = await tenant({ timezone: 'Asia/Kolkata' });
    const day = await ok<{ period_start: string; period_end: string }>('POST', '/billing/calculate', { tenant_id: t.id, period_start: '2025-11-14T18:30:00Z', period_end: '2025-11-15T18:29:59Z' });
    assert.equal(day.period_end, '2025-11-15T18:30:00.000Z');
  });

  it('rejects period_end without period_start, a private default plan, a bad audit cursor, and paid_at in the future', async () => {
    const t = await tenant();
    assert.equal((await status('POST', '/billing/calculate', { tenant_id: t.id, period_end: '2025-11-16T00:00:00Z' })).status, 422);
    assert.equal((await status('POST', '/pricing/plans', { name: 'private-default', currency: 'USD', tenant_id: t.id, default_for_currency: true })).status, 422);
    assert.equal((await status('GET', '/audit-log?cursor=99999999999999999999')).status, 422);
    const bill = await ok('POST', '/billing/generate', { tenant_id: t.id, month: '2025-10' });
    await ok('POST', `/bills/${bill.id}/finalize`);
    const future = await status('POST', '/billing/mark-paid', { bill_id: bill.id, paid_at: new Date(Date.now() + 86_400_000).toISOString() });
    assert.equal(future.status, 422, future.text);
    assert.equal((await ok<Row>('GET', `/bills/${bill.id}`)).status, 'final');
  });

  it('answers a malformed multipart upload with 400, and an oversize ingest with the ingest limit', async () => {
    const t = await tenant();
    const service = await ok('POST', '/services', { tenant_id: t.id, name: `fn-up-${++n}` });
    const noBoundary = await api.call('POST', `/services/${service.id}/upload`, { raw: 'x', headers: { 'content-type': 'multipart/form-data' } });
    assert.equal(noBoundary.status, 400, noBoundary.text);
    const truncated = await api.call('POST', `/services/${service.id}/upload`, {
      raw: '--b\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\nContent-Type: application/zip\r\n\r\nabc',
      headers: { 'content-type': 'multipart/form-data; boundary=b' },
    });
    assert.equal(truncated.status, 400, truncated.text);
    const big = await api.call('POST', '/metrics/ingest', { raw: JSON.stringify({ pad: 'x'.repeat(5000) }), headers: { 'content-type': 'application/json' } });
    assert.equal(big.status, 413);
    assert.match(big.text, /4000 bytes/);
  });

  it('taxes the rounded subtotal once and numbers final invoices per tenant, gaplessly', async () => {
    // 3 invocations at 1.005 each (plan below): lines 3.015 → 3.02 (half-up); tax 20% of 3.02 = 0.604 → 0.60; total 3.62.
    const t = await tenant({ currency: 'CHF', tax_rate: '0.2', tax_label: 'MWST' });
    assert.equal(t.tax_rate, '0.2');
    const plan = await ok('POST', '/pricing/plans', { name: `chf-${t.id}`, currency: 'CHF', price_per_invocation: '1.005' });
    await ok('PUT', `/tenants/${t.id}/pricing-plan`, { pricing_plan_id: plan.id, effective_from: '2025-01-01T00:00:00Z' });
    await usage(t.id, '2025-10-05T10:00:00Z', 3);
    const draft = await ok<{ id: string; number: string | null; subtotal: string; tax_rate: string; tax_amount: string; total: string }>('POST', '/billing/generate', { tenant_id: t.id, month: '2025-10' });
    assert.deepEqual([draft.number, draft.subtotal, draft.tax_rate, draft.tax_amount, draft.total], [null, '3.02', '0.2', '0.60', '3.62']);
    const first = await ok<{ number: string; total: string }>('POST', `/bills/${draft.id}/finalize`);
    assert.equal(first.number, `INV-${String(t.slug)}-00001`);
    assert.equal(first.total, '3.62');
    const next = await ok<{ id: string }>('POST', '/billing/generate', { tenant_id: t.id, month: '2025-11' });
    const second = await ok<{ number: string }>('POST', `/bills/${next.id}/finalize`);
    assert.equal(second.number, `INV-${String(t.slug)}-00002`);
    const csv = await api.call('GET', `/bills/${draft.id}.csv`);
    assert.match(csv.text, new RegExp(`invoice_number,INV-${String(t.slug)}-00001`));
    assert.match(csv.text, /\r\ntax 20%,(,)*0\.60(,)*\r\ntotal,(,)*3\.62/);
  });

  it('prices a meter by graduated tiers through the API, keeps tier lines apart when read back, and adjusts late usage tier by tier', async () => {
    const t = await tenant();
    const plan = await ok<{ id: string; charge_models: Record<string, unknown> }>('POST', '/pricing/plans', {
      name: `tiered-${t.id}`,
      currency: 'USD',
      charge_models: {
        invocations: {
          model: 'graduated',
          tiers: [
            { from: '0', up_to: '5', unit_price: '1' },
            { from: '5', up_to: null, unit_price: '0.5' },
          ],
        },
      },
    });
    assert.ok(plan.charge_models.invocations);
    await ok('PUT', `/tenants/${t.id}/pricing-plan`, { pricing_plan_id: plan.id, effective_from: '2025-01-01T00:00:00Z' });
    await usage(t.id, '2025-10-05T10:00:00Z', 8); // 5 × 1 + 3 × 0.5 = 6.50
    const draft = await ok<{ id: string; total: string }>('POST', '/billing/generate', { tenant_id: t.id, month: '2025-10' });
    assert.equal(draft.total, '6.50');
    await ok('POST', `/bills/${draft.id}/finalize`);
    const stored = await ok<{ line_items: { service: string; amount: string; service_id: string | null }[] }>('GET', `/bills/${draft.id}`);
    assert.deepEqual(
      stored.line_items.filter((l) => l.service.startsWith('*')).map((l) => [l.service, l.amount, l.service_id]),
      [
        ['*tier-1', '5.00', null],
        ['*tier-2', '1.50', null],
      ],
    );
    await usage(t.id, '2025-10-20T10:00:00Z', 4); // late: 12 in October → 5 + 7 × 0.5 = 8.50, owed 2.00 on tier 2
    const november = await ok<{ line_items: { service: string; amount: string; is_adjustment: boolean }[]; total: string }>('POST', '/billing/calculate', { tenant_id: t.id, month: '2025-11' });
    assert.deepEqual(
      november.line_items.filter((l) => l.is_adjustment && l.service.startsWith('*')).map((l) => [l.service, l.amount]),
      [['*tier-2', '2.00']],
    );
    assert.equal(november.total, '2.00');
    const csv = await api.call('GET', `/bills/${draft.id}.csv`);
    assert.match(csv.text, /\*tier-2/);
  });

  it('a plan split into versions mid-month bills its tiers like the whole month (bounds and fees prorated per segment)', async () => {
    const t = await tenant();
    const body = {
      name: `split-${t.id}`,
      currency: 'USD',
      charge_models: {
        invocations: {
          model: 'volume',
          tiers: [
            { from: '0', up_to: '1000', unit_price: '0.01', flat_fee: '10' },
            { from: '1000', up_to: null, unit_price: '0.005' },
          ],
        },
      },
    };
    const plan = await ok('POST', '/pricing/plans', body);
    await ok('PUT', `/tenants/${t.id}/pricing-plan`, { pricing_plan_id: plan.id, effective_from: '2025-01-01T00:00:00Z' });
    await usage(t.id, '2025-10-05T10:00:00Z', 600);
    await usage(t.id, '2025-10-20T10:00:00Z', 600);
    // 1 200 invocations reach tier 2: 1 200 × 0.005 = 6.00.
    assert.equal((await ok<{ total: string }>('POST', '/billing/calculate', { tenant_id: t.id, month: '2025-10' })).total, '6.00');
    // The same content as a new version from 16 October: two segments, the same bill.
    const v2 = await ok<{ id: string; version: number }>('PUT', `/pricing/plans/${plan.id}`, { ...body, effective_from: '2025-10-16T00:00:00Z' });
    assert.equal(v2.version, 2);
    const split = await ok<{ total: string; segments: unknown[] }>('POST', '/billing/calculate', { tenant_id: t.id, month: '2025-10' });
    assert.equal(split.segments.length, 2);
    assert.equal(split.total, '6.00');
  });

  it('taxes a late-usage adjustment at the rate of the bill it corrects', async () => {
    const t = await tenant({ tax_rate: '0.2' });
    const plan = await ok('POST', '/pricing/plans', { name: `tax-adj-${t.id}`, currency: 'USD', price_per_invocation: '1' });
    await ok('PUT', `/tenants/${t.id}/pricing-plan`, { pricing_plan_id: plan.id, effective_from: '2025-01-01T00:00:00Z' });
    await usage(t.id, '2025-10-05T10:00:00Z', 10);
    const october = await ok<{ id: string; total: string }>('POST', '/billing/generate', { tenant_id: t.id, month: '2025-10' });
    assert.equal(october.total, '12.00'); // 10.00 + 20%
    await ok('POST', `/bills/${october.id}/finalize`);
    await ok('PATCH', `/tenants/${t.id}`, { tax_rate: '0.1' });
    await usage(t.id, '2025-10-20T10:00:00Z', 5); // late for October: +5.00, taxed at October's 20% = 1.00
    await usage(t.id, '2025-11-05T10:00:00Z', 3); // November's own: 3.00, taxed at 10% = 0.30
    const november = await ok<{ subtotal: string; tax_amount: string; total: string }>('POST', '/billing/calculate', { tenant_id: t.id, month: '2025-11' });
    assert.deepEqual([november.subtotal, november.tax_amount, november.total], ['8.00', '1.30', '9.30']);
  });

  it('numbers invoices of tenants whose slugs differ only in case apart', async () => {
    const upper = await tenant({ slug: `Case-${n}` });
    const lower = await tenant({ slug: `case-${n}` });
    const numbers: string[] = [];
    for (const t of [upper, lower]) {
      const bill = await ok<{ id: string }>('POST', '/billing/generate', { tenant_id: t.id, month: '2025-10' });
      numbers.push((await ok<{ number: string }>('POST', `/bills/${bill.id}/finalize`)).number);
    }
    assert.deepEqual(numbers, [`INV-${String(upper.slug)}-00001`, `INV-${String(lower.slug)}-00001`]);
  });

  it('corrects a final bill with credit notes, never beyond its total, numbered per tenant and immutable', async () => {
    const t = await tenant();
    const plan = await ok('POST', '/pricing/plans', { name: `cn-${t.id}`, currency: 'USD', price_per_invocation: '1' });
    await ok('PUT', `/tenants/${t.id}/pricing-plan`, { pricing_plan_id: plan.id, effective_from: '2025-01-01T00:00:00Z' });
    await usage(t.id, '2025-10-05T10:00:00Z', 10); // 10.00
    const draft = await ok<{ id: string }>('POST', '/billing/generate', { tenant_id: t.id, month: '2025-10' });
    const onDraft = await status('POST', `/bills/${draft.id}/credit-notes`, { reason: 'too early' });
    assert.equal(onDraft.status, 409, onDraft.text);
    await ok('POST', `/bills/${draft.id}/finalize`);
    const slug = String(t.slug);
    const first = await ok<{ number: string; amount: string }>('POST', `/bills/${draft.id}/credit-notes`, { amount: '2.5', reason: 'goodwill' });
    assert.deepEqual([first.number, first.amount], [`CN-${slug}-00001`, '2.50']);
    assert.equal((await status('POST', `/bills/${draft.id}/credit-notes`, { amount: '7.51', reason: 'too much' })).status, 422);
    assert.equal((await status('POST', `/bills/${draft.id}/credit-notes`, { amount: '0.001', reason: 'sub-cent' })).status, 422);
    const rest = await ok<{ number: string; amount: string }>('POST', `/bills/${draft.id}/credit-notes`, { reason: 'cancel the rest' });
    assert.deepEqual([rest.number, rest.amount], [`CN-${slug}-00002`, '7.50']);
    assert.equal((await status('POST', `/bills/${draft.id}/credit-notes`, { reason: 'nothing left' })).status, 422);
    const bill = await ok<{ total: string; status: string }>('GET', `/bills/${draft.id}`);
    assert.deepEqual([bill.total, bill.status], ['10.00', 'final'], 'the bill itself is unchanged');
    const report = await ok<{ totals: { billed: string; credited: string } }>('GET', `/billing/reports/${t.id}`);
    assert.deepEqual([report.totals.billed, report.totals.credited], ['10.00', '10.00']);
    await assert.rejects(api.database.db('credit_notes').where({ bill_id: draft.id }).update({ amount: '1' }), /cannot be changed/);
    const key = await ok<{ key: string }>('POST', '/api-keys', { name: 'cn', role: 'tenant', tenant_id: t.id });
    assert.equal((await api.call('POST', `/bills/${draft.id}/credit-notes`, { key: key.key, body: { reason: 'self-service' } })).status, 403);
    const listed = await api.call<{ items: { number: string }[] }>('GET', `/bills/${draft.id}/credit-notes`, { key: key.key });
    assert.deepEqual(listed.body.items.map((c) => c.number), [`CN-${slug}-00001`, `CN-${slug}-00002`]);
  });

  it('writes one audit entry per ingest request with its counts', async () => {
    const t = await tenant();
    const key = await ok<{ key: string }>('POST', '/api-keys', { name: 'ingest', role: 'ingest', tenant_id: t.id });
    const res = await api.call('POST', '/metrics/ingest', { key: key.key, body: [{ tenant_id: t.slug, service_name: 'fn', duration_seconds: 0.1, memory_mb: 128 }] });
    assert.equal(res.status, 202, res.text);
    const entries = await ok<{ items: { action: string; tenant_id: string; details: { accepted: number } }[] }>('GET', `/audit-log?action=usage.ingest&tenant_id=${t.id}`);
    assert.equal(entries.items.length, 1);
    assert.equal(entries.items[0]?.details.accepted, 1);
  });
});
