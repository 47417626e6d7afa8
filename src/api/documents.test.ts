/** Bill documents: CSV (RFC 4180, formula-injection safe) and PDF (pdfkit, Helvetica) from hand-built stored bills. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PricedLine } from '../billing/compose.js';
import type { StoredBill } from '../billing/store.js';
import { Dec } from '../core/pricing/index.js';
import { billCsv, billPdf, csvLineColumns, toWinAnsi, type BillDocument, type BillDocumentTenant } from './documents.js';

const TENANT_ID = '11111111-1111-4111-8111-111111111111';
const BILL_ID = '22222222-2222-4222-8222-222222222222';
const OLD_BILL_ID = '33333333-3333-4333-8333-333333333333';
const SERVICE_ID = '44444444-4444-4444-8444-444444444444';

const tenant = (t: Partial<BillDocumentTenant> = {}): BillDocumentTenant => ({
  id: TENANT_ID,
  slug: 'acme',
  name: 'Acme Corp',
  billing_email: 'billing@acme.example',
  currency: 'USD',
  timezone: 'America/New_York',
  ...t,
});

const line = (l: Partial<PricedLine> = {}): PricedLine => ({
  service: 'api',
  meter: 'invocations',
  description: 'api: Invocations',
  quantity: '1500000',
  freeQuantity: '1000000',
  billableQuantity: '500000',
  unit: 'invocation',
  unitPrice: '0.0000002',
  amountUnrounded: '0.1',
  amount: '0.10',
  kind: 'usage',
  creditId: null,
  isAdjustment: false,
  planId: 'plan-1',
  segmentStart: '2025-01-01T05:00:00.000Z',
  segmentEnd: '2025-02-01T05:00:00.000Z',
  serviceId: SERVICE_ID,
  adjustsBillId: null,
  ...l,
});

/** A stored bill whose total is the sum of its rounded lines (as the store keeps it). */
const bill = (lines: PricedLine[], b: Partial<StoredBill> = {}): StoredBill => {
  const currency = b.currency ?? 'USD';
  const digits = currency === 'JPY' ? 0 : 2;
  const sum = (pick: (l: PricedLine) => string): Dec => lines.reduce((acc, l) => acc.plus(pick(l)), new Dec(0));
  return {
    id: BILL_ID,
    tenantId: TENANT_ID,
    status: 'final',
    currency,
    periodStart: '2025-01-01T05:00:00.000Z',
    periodEnd: '2025-02-01T05:00:00.000Z',
    planId: 'plan-1',
    number: 'ACME-00001',
    subtotal: sum((l) => l.amount).toFixed(digits),
    taxRate: '0',
    taxAmount: new Dec(0).toFixed(digits),
    total: sum((l) => l.amount).toFixed(digits),
    totalUnrounded: sum((l) => l.amountUnrounded).toFixed(),
    segments: [],
    lines,
    usageAsOf: '2025-02-01T06:00:00.000Z',
    finalizedAt: '2025-02-01T06:00:00.000Z',
    paidAt: null,
    ...b,
  };
};

const usdLines = (): PricedLine[] => [
  line(),
  line({
    meter: 'compute',
    description: 'api: Compute',
    quantity: '123456789.5',
    freeQuantity: '0',
    billableQuantity: '123456789.5',
    unit: 'MB-ms',
    unitPrice: '0.0000000162760417',
    amountUnrounded: '2.0093587198',
    amount: '2.01',
  }),
  line({
    service: 'worker',
    serviceId: null,
    meter: 'cold_starts',
    description: 'worker: Cold starts',
    quantity: '42',
    freeQuantity: '0',
    billableQuantity: '42',
    unit: 'cold-start',
    unitPrice: '0.0001',
    amountUnrounded: '0.0042',
    amount: '0.00',
  }),
  line({
    description: 'Adjustment for 2024-12-01T05:00:00.000Z – 2025-01-01T05:00:00.000Z: api: Invocations',
    quantity: '-250000',
    freeQuantity: '0',
    billableQuantity: '-250000',
    amountUnrounded: '-0.05',
    amount: '-0.05',
    isAdjustment: true,
    adjustsBillId: OLD_BILL_ID,
  }),
];

// ---------------------------------------------------------------------------------------------
// A tiny RFC 4180 reader (strict: CRLF records, quoted fields, doubled quotes)

function parseCsv(text: string): string[][] {
  assert.ok(text.endsWith('\r\n'), 'the CSV ends with CRLF');
  const records: string[][] = [];
  let rec: string[] = [];
  let fieldText = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        fieldText += '"';
        i += 2;
      } else if (ch === '"') {
        quoted = false;
        i++;
        assert.ok(text[i] === ',' || text[i] === '\r', `a closing quote is followed by , or CRLF (offset ${i})`);
      } else {
        fieldText += ch;
        i++;
      }
    } else if (ch === '"') {
      assert.equal(fieldText, '', `a quote only opens a field (offset ${i})`);
      quoted = true;
      i++;
    } else if (ch === ',') {
      rec.push(fieldText);
      fieldText = '';
      i++;
    } else if (ch === '\r') {
      assert.equal(text[i + 1], '\n', `CR outside quotes is part of CRLF (offset ${i})`);
      rec.push(fieldText);
      records.push(rec.length === 1 && rec[0] === '' ? [] : rec);
      rec = [];
      fieldText = '';
      i += 2;
    } else {
      assert.notEqual(ch, '\n', `bare LF outside quotes (offset ${i})`);
      fieldText += ch;
      i++;
    }
  }
  assert.equal(quoted, false, 'no unterminated quoted field');
  return records;
}

interface ParsedCsv {
  header: Map<string, string>;
  columns: string[];
  rows: Record<string, string>[];
  total: Record<string, string>;
}

function readBillCsv(text: string): ParsedCsv {
  const records = parseCsv(text);
  const blank = records.findIndex((r) => r.length === 0);
  assert.ok(blank > 0, 'a blank record separates the header section from the line table');
  const [keyValue, ...pairs] = records.slice(0, blank);
  assert.deepEqual(keyValue, ['key', 'value']);
  for (const p of pairs) assert.equal(p.length, 2, `header rows are key,value: ${JSON.stringify(p)}`);
  const [columns, ...table] = records.slice(blank + 1);
  assert.ok(columns);
  const asObject = (r: string[]): Record<string, string> => {
    assert.equal(r.length, columns.length, `every table row has ${columns.length} fields: ${JSON.stringify(r)}`);
    return Object.fromEntries(columns.map((c, i) => [c, r[i] ?? '']));
  };
  const objects = table.map(asObject);
  const total = objects.pop();
  const tax = objects.pop();
  const subtotal = objects.pop();
  assert.ok(total && tax && subtotal);
  assert.equal(total.line, 'total', 'the last row is the total row');
  assert.match(tax.line ?? '', /^tax \d+(\.\d+)?%$/, 'before it, the tax row');
  assert.equal(subtotal.line, 'subtotal', 'before that, the subtotal row');
  // total = subtotal + tax, in the currency's digits.
  assert.ok(new Dec(subtotal.amount ?? '').plus(tax.amount ?? '').eq(total.amount ?? ''), 'total = subtotal + tax');
  return { header: new Map(pairs.map((p) => [p[0] ?? '', p[1] ?? ''])), columns, rows: objects, total };
}

// ---------------------------------------------------------------------------------------------
// PDF inspection (uncompressed output)

/** A binary PGM (P5, 8-bit) as pdftoppm -gray writes it. */
function readPgm(file: Buffer): { width: number; height: number; pixels: Uint8Array } {
  const header = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(file.subarray(0, 64).toString('latin1'));
  if (!header) throw new Error('not a binary PGM');
  const [whole, w, h, max] = header;
  assert.equal(max, '255');
  const width = Number(w);
  const height = Number(h);
  const pixels = new Uint8Array(file.subarray(whole.length, whole.length + width * height));
  assert.equal(pixels.length, width * height);
  return { width, height, pixels };
}

/** Pages of a PDF: `/Type /Page` objects, not the `/Pages` tree. */
const pageCount = (pdf: Buffer): number => (pdf.toString('latin1').match(/\/Type \/Page(?![a-zA-Z])/g) ?? []).length;

/** The text of every TJ show operation (pdfkit writes Helvetica text as hex strings split by kerning). */
function pdfText(pdf: Buffer): string[] {
  const s = pdf.toString('latin1');
  return [...s.matchAll(/\[((?:<[0-9a-fA-F]*>|\s|-?\d+(?:\.\d+)?)*)\]\s*TJ/g)].map((m) =>
    [...(m[1] ?? '').matchAll(/<([0-9a-fA-F]*)>/g)].map((h) => Buffer.from(h[1] ?? '', 'hex').toString('latin1')).join(''),
  );
}

// ---------------------------------------------------------------------------------------------

describe('bill documents', () => {
  describe('billCsv', () => {
    it('has the tenant and bill details as key,value rows, the period in the tenant zone and in UTC', () => {
      const doc: BillDocument = { bill: bill(usdLines()), tenant: tenant() };
      const csv = readBillCsv(billCsv(doc));
      const h = csv.header;
      assert.equal(h.get('document'), 'Invoice');
      assert.equal(h.get('bill_id'), BILL_ID);
      assert.equal(h.get('status'), 'final');
      assert.equal(h.get('tenant_name'), 'Acme Corp');
      assert.equal(h.get('tenant_slug'), 'acme');
      assert.equal(h.get('tenant_id'), TENANT_ID);
      assert.equal(h.get('billing_email'), 'billing@acme.example');
      assert.equal(h.get('currency'), 'USD');
      assert.equal(h.get('timezone'), 'America/New_York');
      assert.equal(h.get('period_start_local'), '2025-01-01T00:00:00-05:00');
      assert.equal(h.get('period_end_local'), '2025-02-01T00:00:00-05:00');
      assert.equal(h.get('period_start_utc'), '2025-01-01T05:00:00.000Z');
      assert.equal(h.get('period_end_utc'), '2025-02-01T05:00:00.000Z');
      assert.equal(h.get('finalized_at'), '2025-02-01T06:00:00.000Z');
      assert.equal(h.get('paid_at'), '');
      assert.equal(h.get('line_count'), '4');
      assert.equal(h.get('total'), '2.06');
    });

    it('uses CRLF everywhere and no bare LF outside quoted fields', () => {
      const text = billCsv({ bill: bill(usdLines()), tenant: tenant() });
      assert.equal(text.replace(/\r\n/g, '').includes('\n'), false);
      assert.equal(text.replace(/\r\n/g, '').includes('\r'), false);
    });

    it('has one row per line item with every field, and a total row equal to the stored total', () => {
      const lines = usdLines();
      const stored = bill(lines);
      const csv = readBillCsv(billCsv({ bill: stored, tenant: tenant() }));
      assert.deepEqual(csv.columns, [...csvLineColumns]);
      assert.equal(csv.rows.length, lines.length);
      csv.rows.forEach((r, i) => {
        const l = lines[i];
        assert.ok(l);
        assert.equal(r.line, String(i + 1));
        assert.equal(r.service_id, l.serviceId ?? '');
        assert.equal(r.service, l.service);
        assert.equal(r.meter, l.meter);
        assert.equal(r.description, l.description);
        assert.equal(r.quantity, l.quantity);
        assert.equal(r.free_quantity, l.freeQuantity);
        assert.equal(r.billable_quantity, l.billableQuantity);
        assert.equal(r.unit, l.unit);
        assert.equal(r.unit_price, l.unitPrice);
        assert.equal(r.amount, l.amount);
        assert.equal(r.is_adjustment, String(l.isAdjustment));
        assert.equal(r.adjusts_bill_id, l.adjustsBillId ?? '');
      });
      assert.equal(csv.total.amount, stored.total);
      assert.equal(csv.total.amount, '2.06');
      const sum = csv.rows.reduce((acc, r) => acc.plus(r.amount ?? '0'), new Dec(0));
      assert.ok(sum.eq(csv.total.amount ?? ''), `the line amounts add up to the total (${sum.toFixed()})`);
    });

    it('flags adjustment lines and names the bill they adjust; negative amounts stay numbers', () => {
      const csv = readBillCsv(billCsv({ bill: bill(usdLines()), tenant: tenant() }));
      const adjustments = csv.rows.filter((r) => r.is_adjustment === 'true');
      assert.equal(adjustments.length, 1);
      assert.equal(adjustments[0]?.adjusts_bill_id, OLD_BILL_ID);
      assert.equal(adjustments[0]?.amount, '-0.05', 'no formula-injection prefix on a negative amount');
      assert.equal(adjustments[0]?.quantity, '-250000');
      for (const r of csv.rows.filter((x) => x.is_adjustment === 'false')) assert.equal(r.adjusts_bill_id, '');
    });

    it('formats amounts with the currency minor unit: JPY 0 decimals, USD 2', () => {
      const jpy = bill(
        [
          line({ amountUnrounded: '1234.4', amount: '1234' }),
          line({ meter: 'cpu', description: 'api: CPU time', unit: 'CPU-ms', amountUnrounded: '-3', amount: '-3', isAdjustment: true, adjustsBillId: OLD_BILL_ID }),
        ],
        { currency: 'JPY' },
      );
      const csvJpy = readBillCsv(billCsv({ bill: jpy, tenant: tenant({ currency: 'JPY', timezone: 'Asia/Tokyo' }) }));
      assert.deepEqual(
        csvJpy.rows.map((r) => r.amount),
        ['1234', '-3'],
      );
      assert.equal(csvJpy.total.amount, '1231');
      assert.equal(csvJpy.header.get('total'), '1231');
      assert.equal(csvJpy.header.get('period_start_local'), '2025-01-01T14:00:00+09:00');

      // USD amounts stored without trailing zeros are padded to exactly 2 decimals.
      const usd = bill([line({ amount: '3' }), line({ amount: '0.5' })], { total: '3.5' });
      const csvUsd = readBillCsv(billCsv({ bill: usd, tenant: tenant() }));
      assert.deepEqual(
        csvUsd.rows.map((r) => r.amount),
        ['3.00', '0.50'],
      );
      assert.equal(csvUsd.total.amount, '3.50');
      for (const a of [...csvUsd.rows.map((r) => r.amount), csvUsd.total.amount]) assert.match(a ?? '', /^-?\d+\.\d{2}$/);
    });

    it('round-trips a description with commas, quotes, CR LF and LF', () => {
      const description = 'api: "Invocations", batch 1,2,3\r\nsecond line\nthird, "quoted" line';
      const text = billCsv({ bill: bill([line({ description })]), tenant: tenant({ name: 'Acme, "The" Corp' }) });
      assert.ok(text.includes('"api: ""Invocations"", batch 1,2,3\r\nsecond line\nthird, ""quoted"" line"'), 'quoted with doubled quotes');
      const csv = readBillCsv(text);
      assert.equal(csv.rows[0]?.description, description);
      assert.equal(csv.header.get('tenant_name'), 'Acme, "The" Corp');
    });

    it('neutralises formula injection in text cells', () => {
      const evil = ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tTAB', '\rCR'];
      const lines = evil.map((description, i) => line({ description, service: i === 0 ? '=cmd|/c calc' : 'api' }));
      const doc: BillDocument = {
        bill: bill(lines),
        tenant: tenant({ name: '=1+2', slug: '-acme', billing_email: '@evil.example' }),
      };
      const csv = readBillCsv(billCsv(doc));
      assert.deepEqual(
        csv.rows.map((r) => r.description),
        evil.map((e) => `'${e}`),
      );
      assert.equal(csv.rows[0]?.service, "'=cmd|/c calc");
      assert.equal(csv.header.get('tenant_name'), "'=1+2");
      assert.equal(csv.header.get('tenant_slug'), "'-acme");
      assert.equal(csv.header.get('billing_email'), "'@evil.example");
      // Text that merely contains those characters is left alone.
      const plainDoc = readBillCsv(billCsv({ bill: bill([line({ description: 'a = b + c - d @ e' })]), tenant: tenant() }));
      assert.equal(plainDoc.rows[0]?.description, 'a = b + c - d @ e');
    });

    it('keeps Unicode as is (UTF-8), shows a missing billing email as empty, and titles drafts', () => {
      const csv = readBillCsv(
        billCsv({
          bill: bill([line()], { status: 'draft', currency: 'RUB', finalizedAt: null }),
          tenant: tenant({ name: 'ООО «Ромашка» ₽', billing_email: null, currency: 'RUB', timezone: 'Europe/Moscow' }),
        }),
      );
      assert.equal(csv.header.get('tenant_name'), 'ООО «Ромашка» ₽');
      assert.equal(csv.header.get('billing_email'), '');
      assert.equal(csv.header.get('document'), 'Draft invoice');
      assert.equal(csv.header.get('status'), 'draft');
      assert.equal(csv.header.get('currency'), 'RUB');
      assert.equal(csv.header.get('period_start_local'), '2025-01-01T08:00:00+03:00');
    });

    it('shows a paid bill as an invoice with its payment time', async () => {
      const stored = bill([line()], { status: 'paid', paidAt: '2025-02-10T12:00:00.000Z' });
      const csv = readBillCsv(billCsv({ bill: stored, tenant: tenant() }));
      assert.equal(csv.header.get('document'), 'Invoice');
      assert.equal(csv.header.get('status'), 'paid');
      assert.equal(csv.header.get('paid_at'), '2025-02-10T12:00:00.000Z');
      const text = pdfText(await billPdf({ bill: stored, tenant: tenant() }, { compress: false }));
      assert.ok(text.includes('Invoice') && text.includes('paid') && text.includes('2025-02-10T12:00:00.000Z'));
    });

    it('has the header row and a zero total for a bill without lines', () => {
      const csv = readBillCsv(billCsv({ bill: bill([]), tenant: tenant() }));
      assert.equal(csv.rows.length, 0);
      assert.equal(csv.total.amount, '0.00');
      assert.equal(csv.header.get('line_count'), '0');
    });

    it('falls back to UTC for an unknown tenant timezone and says so', () => {
      const csv = readBillCsv(billCsv({ bill: bill([line()]), tenant: tenant({ timezone: 'Mars/Olympus' }) }));
      assert.equal(csv.header.get('timezone'), 'UTC');
      assert.match(csv.header.get('timezone_note') ?? '', /Mars\/Olympus/);
      assert.equal(csv.header.get('period_start_local'), '2025-01-01T05:00:00Z');
    });

    it('refuses a bill of another tenant and amounts that are not decimals', () => {
      assert.throws(() => billCsv({ bill: bill([line()]), tenant: tenant({ id: 'someone-else' }) }), RangeError);
      assert.throws(() => billCsv({ bill: bill([line({ quantity: '=1+1' })]), tenant: tenant() }), RangeError);
      assert.throws(() => billCsv({ bill: bill([line()], { currency: 'XYZ' }), tenant: tenant() }), RangeError);
    });
  });

  describe('billPdf', () => {
    it('is an A4 PDF with the tenant, the bill and the total in it (uncompressed)', async () => {
      const stored = bill(usdLines());
      const pdf = await billPdf({ bill: stored, tenant: tenant() }, { compress: false });
      assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
      assert.ok(pdf.length > 3000, `non-trivial size (${pdf.length} bytes)`);
      assert.ok(pdf.subarray(-16).toString('latin1').includes('%%EOF'));
      assert.match(pdf.toString('latin1'), /\/MediaBox \[0 0 595\.28 841\.89\]/, 'A4');
      assert.equal(pageCount(pdf), 1);
      const text = pdfText(pdf);
      const all = text.join('\n');
      assert.ok(text.includes('Invoice'), 'titled Invoice');
      assert.ok(all.includes('Acme Corp'), 'tenant name');
      assert.ok(all.includes('acme'), 'tenant slug');
      assert.ok(all.includes(TENANT_ID), 'tenant id');
      assert.ok(all.includes('billing@acme.example'), 'billing email');
      assert.ok(all.includes(BILL_ID), 'bill id');
      assert.ok(text.includes('final'), 'status');
      assert.ok(all.includes('2025-01-01 00:00 (UTC-05:00)'), 'period start in the tenant zone');
      assert.ok(all.includes('2025-01-01T05:00:00.000Z'), 'period start in UTC');
      assert.ok(text.includes('Total (USD)'), 'total label with the currency code');
      assert.ok(text.includes(stored.total), `the stored total ${stored.total}`);
      for (const l of stored.lines) assert.ok(text.includes(l.amount), `line amount ${l.amount}`);
      assert.ok(text.includes('-0.05'), 'the adjustment amount');
      assert.ok(text.includes('yes'), 'the adjustment flag');
    });

    it('renders to a page image that is not blank: pdftoppm draws text and rules on a white A4 page', async function () {
      // Debian's poppler-utils (pdftoppm): .ci/run installs it; a laptop without it reports this pending.
      if (spawnSync('pdftoppm', ['-v']).error) {
        if (process.env.CI) assert.fail('pdftoppm (poppler-utils) is not installed');
        this.skip();
      }
      const dir = await mkdtemp(path.join(tmpdir(), 'fb-pdf-'));
      const pdfPath = path.join(dir, 'bill.pdf');
      await writeFile(pdfPath, await billPdf({ bill: bill(usdLines()), tenant: tenant() }));
      // A PNG for a reviewer to look at (test-output/, ignored by git) and a grey map to measure.
      const out = path.resolve('test-output');
      await mkdir(out, { recursive: true });
      const png = spawnSync('pdftoppm', ['-png', '-r', '60', '-f', '1', '-l', '1', '-singlefile', pdfPath, path.join(out, 'invoice-page-1')]);
      assert.equal(png.status, 0, png.stderr.toString());
      const pngBytes = await readFile(path.join(out, 'invoice-page-1.png'));
      assert.equal(pngBytes.subarray(1, 4).toString('latin1'), 'PNG');
      const grey = spawnSync('pdftoppm', ['-gray', '-r', '72', '-f', '1', '-l', '1', '-singlefile', pdfPath, path.join(dir, 'page')]);
      assert.equal(grey.status, 0, grey.stderr.toString());
      const page = readPgm(await readFile(path.join(dir, 'page.pgm')));
      // A4 at 72 dpi: one pixel per point (595.28 × 841.89 pt, rounded up by pdftoppm).
      assert.equal(page.width, 596);
      assert.equal(page.height, 842);
      const ink = (y0: number, y1: number): number => {
        let dark = 0;
        for (let y = y0; y < y1; y++) for (let x = 0; x < page.width; x++) if ((page.pixels[y * page.width + x] ?? 255) < 192) dark++;
        return dark / ((y1 - y0) * page.width);
      };
      const whole = ink(0, page.height);
      assert.ok(whole > 0.01, `some of the page is ink (${(whole * 100).toFixed(2)}%)`);
      assert.ok(whole < 0.3, `most of the page is paper (${(whole * 100).toFixed(2)}% ink)`);
      assert.ok(ink(0, Math.floor(page.height / 3)) > 0.005, 'the header and the first lines are drawn in the top third');
      await rm(dir, { recursive: true, force: true });
    });

    it('compresses by default, so the text is not readable in the file', async () => {
      const pdf = await billPdf({ bill: bill(usdLines()), tenant: tenant() });
      assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
      assert.match(pdf.toString('latin1'), /\/FlateDecode/);
      assert.equal(pdfText(pdf).length, 0);
    });

    it('breaks a 300-line bill over several pages and keeps every line and the total', async () => {
      const lines = Array.from({ length: 300 }, (_, i) =>
        line({ service: `svc-${String(i).padStart(3, '0')}`, description: `svc-${String(i).padStart(3, '0')}: Invocations`, amount: '0.01', amountUnrounded: '0.01' }),
      );
      const stored = bill(lines);
      assert.equal(stored.total, '3.00');
      const pdf = await billPdf({ bill: stored, tenant: tenant() }, { compress: false });
      const pages = pageCount(pdf);
      assert.ok(pages > 1, `more than one page (${pages})`);
      const text = pdfText(pdf);
      for (let i = 0; i < 300; i++) assert.ok(text.includes(`svc-${String(i).padStart(3, '0')}: Invocations`), `line ${i + 1}`);
      assert.ok(text.includes('3.00'), 'total');
      assert.equal(text.filter((t) => t === 'Description').length, pages, 'the table header is repeated on every page');
      assert.ok(text.some((t) => t.endsWith(`Page ${pages} of ${pages}`)), 'numbered pages');
    });

    it('clips a line item taller than a page instead of overflowing', async () => {
      const description = Array.from({ length: 400 }, (_, i) => `row ${i}`).join('\n');
      const pdf = await billPdf({ bill: bill([line({ description }), line({ description: 'after the long one' })]), tenant: tenant() }, { compress: false });
      const text = pdfText(pdf);
      assert.ok(text.includes('after the long one'));
      assert.ok(!text.includes('row 399'), 'the end of the overlong cell is clipped');
      assert.ok(pageCount(pdf) <= 3, `the overlong row takes at most one page (${pageCount(pdf)} pages)`);
    });

    it('titles a draft "Draft invoice" and shows JPY totals without decimals', async () => {
      const stored = bill([line({ amount: '1234', amountUnrounded: '1234.4' })], { status: 'draft', currency: 'JPY', finalizedAt: null });
      const pdf = await billPdf({ bill: stored, tenant: tenant({ currency: 'JPY', timezone: 'Asia/Tokyo' }) }, { compress: false });
      const text = pdfText(pdf);
      assert.ok(text.includes('Draft invoice'));
      assert.ok(text.includes('draft'));
      assert.ok(text.includes('Total (JPY)'));
      assert.ok(text.includes('1234'));
      assert.ok(!text.some((t) => t.includes('1234.')), 'no decimals for JPY');
    });

    it('renders names outside WinAnsi (Cyrillic, ₽, emoji) without throwing', async () => {
      const stored = bill([line({ description: 'Вызовы 😀 ₽' })], { currency: 'RUB' });
      const doc: BillDocument = { bill: stored, tenant: tenant({ name: 'ООО Ромашка', currency: 'RUB', timezone: 'Europe/Moscow' }) };
      const pdf = await billPdf(doc, { compress: false });
      const text = pdfText(pdf);
      assert.ok(text.includes('OOO Romashka'), 'transliterated tenant name');
      assert.ok(text.includes('Vyzovy ? RUB'), 'transliterated description, ? for the emoji, RUB for ₽');
      assert.ok(text.includes('Total (RUB)'));
      for (const t of text) assert.ok([...t].every((c) => c === '\n' || c.charCodeAt(0) >= 0x20), `only printable WinAnsi bytes: ${JSON.stringify(t)}`);
    });

    it('is deterministic: the same bill gives the same bytes, dated from the bill', async () => {
      const doc: BillDocument = { bill: bill(usdLines()), tenant: tenant() };
      const [a, b] = await Promise.all([billPdf(doc, { compress: false }), billPdf(doc, { compress: false })]);
      assert.ok(a.equals(b));
      const raw = a.toString('latin1');
      assert.ok(/\/CreationDate \d+ 0 R/.test(raw), 'a CreationDate in the info dictionary');
      assert.ok(raw.includes('(D:20250201060000Z)'), 'dated from finalizedAt, not now');
    });

    it('rejects (does not throw synchronously) on a bill of another tenant', async () => {
      const p = billPdf({ bill: bill([line()]), tenant: tenant({ id: 'someone-else' }) });
      await assert.rejects(p, RangeError);
    });
  });

  describe('toWinAnsi', () => {
    it('keeps Latin-1 and WinAnsi punctuation, transliterates Cyrillic, replaces the rest with ?', () => {
      assert.equal(toWinAnsi('Café “Zürich” – 5 €'), 'Café “Zürich” – 5 €');
      assert.equal(toWinAnsi('Щука Жук ёж'), 'Shchuka Zhuk ezh');
      assert.equal(toWinAnsi('a\tb\r\nc\rd'), 'a b\nc\nd');
      assert.equal(toWinAnsi('e\u0301'), 'é', 'combining sequences are composed first');
      assert.equal(toWinAnsi('ﬁ Ａ'), 'fi A', 'compatibility forms decompose');
      assert.equal(toWinAnsi('漢字 😀\u200b'), '?? ?');
      assert.equal(toWinAnsi('\u0001\u0085'), '??', 'control characters');
    });
  });
});
