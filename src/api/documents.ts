/**
 * Bill documents: a stored bill rendered as CSV (`billCsv`) or as an A4 PDF (`billPdf`), for the
 * REST API to send as downloads. Pure rendering: no database, no clock, no environment.
 *
 * Choices:
 * - Both documents come from one view of the bill (`documentView`), so they always carry the same
 *   data: tenant (name, slug, id, billing email), bill id, status, the period in the tenant's
 *   timezone (luxon; an unknown zone falls back to UTC and says so) and as ISO UTC, currency code,
 *   one row per line item and the stored `bill.total` (not re-added here).
 * - Money never becomes a JS number: amounts are decimal.js (`Dec`) values formatted with exactly
 *   the currency's minor-unit digits (`minorUnitDigits`, half-up as in pricing — stored amounts are
 *   already at the minor unit, so this only pads). Quantities and unit prices are shown as stored
 *   (checked to be plain decimals; exponent forms are expanded).
 * - The bill must belong to the tenant (`bill.tenantId === tenant.id`); a mismatch throws rather
 *   than printing one tenant's name on another's bill.
 * - CSV is RFC 4180 (CRLF, fields with `,` `"` CR LF quoted, quotes doubled), UTF-8 without BOM:
 *   `key,value` header rows, an empty record, the line table with its header row, a total row.
 *   Text cells starting with `=` `+` `-` `@` TAB or CR get a leading `'` (spreadsheet formula
 *   injection); numeric cells (quantities, prices, amounts) are never prefixed, so a negative
 *   adjustment stays a number.
 * - PDF: pdfkit with the built-in Helvetica (no font files), hence WinAnsi text only: other
 *   characters are normalised (NFC/NFKD without marks), Cyrillic is transliterated, a few
 *   currency signs become codes (₽ → RUB), and anything else becomes `?`. The table is laid out by
 *   hand (measured rows, header repeated after each page break, a row taller than a page is
 *   clipped with an ellipsis); pages are numbered in the footer. The document is deterministic:
 *   `CreationDate` comes from the bill (finalizedAt, else usageAsOf, else the period end), so
 *   the same bill renders to the same bytes. `compress: false` (tests) keeps content streams
 *   readable.
 */
import { DateTime, IANAZone } from 'luxon';
import PDFDocument from 'pdfkit';
import type { PricedLine } from '../billing/compose.js';
import type { StoredBill } from '../billing/store.js';
import { Dec, minorUnitDigits, plain, roundHalfUp } from '../core/pricing/index.js';

/** The tenant a bill document is addressed to. */
export interface BillDocumentTenant {
  id: string;
  slug: string;
  name: string;
  billing_email: string | null;
  currency: string;
  timezone: string;
  /** What the tax is called on the tenant's invoices ("VAT", "MWST"); "Tax" when absent. */
  tax_label?: string;
}

/** A stored bill with its tenant: everything a bill document shows. */
export interface BillDocument {
  bill: StoredBill;
  tenant: BillDocumentTenant;
}

/** PDF rendering options. */
export interface BillPdfOptions {
  /** Compress content streams (pdfkit's default, true); false leaves the text readable in the file. */
  compress?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The shared view

interface Instant {
  /** ISO 8601 UTC, e.g. 2025-01-01T00:00:00.000Z. */
  utc: string;
  /** ISO 8601 with the zone's offset, e.g. 2025-01-01T03:00:00+03:00. */
  local: string;
  /** Human form in the zone, e.g. 2025-01-01 03:00 (UTC+03:00). */
  display: string;
}

interface LineView {
  no: number;
  serviceId: string;
  service: string;
  meter: string;
  description: string;
  quantity: string;
  freeQuantity: string;
  billableQuantity: string;
  unit: string;
  unitPrice: string;
  amount: string;
  isAdjustment: boolean;
  adjustsBillId: string;
}

interface DocumentView {
  title: string;
  billId: string;
  status: StoredBill['status'];
  tenant: BillDocumentTenant;
  currency: string;
  /** The zone the period is shown in, and a note when the tenant's zone was not usable. */
  zone: string;
  zoneNote: string;
  periodStart: Instant;
  periodEnd: Instant;
  finalizedAt: string;
  paidAt: string;
  usageAsOf: string;
  creationDate: Date;
  lines: LineView[];
  /** Invoice number ('' for a draft). */
  number: string;
  subtotal: string;
  /** Tax rate as a percentage text ("20" for 0.2). */
  taxPercent: string;
  taxAmount: string;
  total: string;
}

const plainDecimal = /^-?\d+(\.\d+)?$/;

/** A stored decimal string as plain decimal text (as given when it already is). */
function decimalText(value: string, what: string): string {
  if (plainDecimal.test(value)) return value;
  let d: Dec;
  try {
    d = new Dec(value);
  } catch {
    throw new RangeError(`${what} is not a decimal number (got ${JSON.stringify(value)})`);
  }
  if (!d.isFinite()) throw new RangeError(`${what} is not a finite decimal number (got ${JSON.stringify(value)})`);
  return plain(d);
}

/** An amount with exactly the currency's minor-unit digits. */
function money(value: string, currency: string, what: string): string {
  const d = new Dec(decimalText(value, what));
  const rounded = roundHalfUp(d, currency);
  return (rounded.isZero() ? new Dec(0) : rounded).toFixed(minorUnitDigits(currency));
}

function parseInstant(value: string, what: string): DateTime {
  const dt = DateTime.fromISO(value, { zone: 'utc' });
  if (!dt.isValid) throw new RangeError(`${what} is not an ISO 8601 instant (got ${JSON.stringify(value)})`);
  return dt;
}

function instant(value: string, zone: string, what: string): Instant {
  const dt = parseInstant(value, what);
  const local = dt.setZone(zone);
  return {
    utc: dt.toUTC().toISO() ?? value,
    local: local.toISO({ suppressMilliseconds: true }) ?? value,
    display: `${local.toFormat('yyyy-MM-dd HH:mm')} (UTC${local.toFormat('ZZ')})`,
  };
}

const optionalUtc = (value: string | null, what: string): string => (value === null ? '' : (parseInstant(value, what).toUTC().toISO() ?? value));

function lineView(line: PricedLine, index: number, currency: string): LineView {
  const at = `line ${index + 1}`;
  return {
    no: index + 1,
    serviceId: line.serviceId ?? '',
    service: line.service,
    meter: line.meter,
    description: line.description,
    quantity: decimalText(line.quantity, `${at} quantity`),
    freeQuantity: decimalText(line.freeQuantity, `${at} free quantity`),
    billableQuantity: decimalText(line.billableQuantity, `${at} billable quantity`),
    unit: line.unit,
    unitPrice: decimalText(line.unitPrice, `${at} unit price`),
    amount: money(line.amount, currency, `${at} amount`),
    isAdjustment: line.isAdjustment,
    adjustsBillId: line.adjustsBillId ?? '',
  };
}

function documentView({ bill, tenant }: BillDocument): DocumentView {
  if (bill.tenantId !== tenant.id) {
    throw new RangeError(`bill ${bill.id} belongs to tenant ${bill.tenantId}, not to ${tenant.id}`);
  }
  const currency = bill.currency.trim();
  minorUnitDigits(currency); // throws on a code that is not ISO 4217
  const known = IANAZone.isValidZone(tenant.timezone);
  const zone = known ? tenant.timezone : 'UTC';
  const creation = bill.finalizedAt ?? bill.usageAsOf ?? bill.periodEnd;
  return {
    title: bill.status === 'draft' ? 'Draft invoice' : 'Invoice',
    billId: bill.id,
    status: bill.status,
    tenant,
    currency,
    zone,
    zoneNote: known ? '' : `tenant timezone ${JSON.stringify(tenant.timezone)} is unknown; shown in UTC`,
    periodStart: instant(bill.periodStart, zone, 'bill.periodStart'),
    periodEnd: instant(bill.periodEnd, zone, 'bill.periodEnd'),
    finalizedAt: optionalUtc(bill.finalizedAt, 'bill.finalizedAt'),
    paidAt: optionalUtc(bill.paidAt, 'bill.paidAt'),
    usageAsOf: optionalUtc(bill.usageAsOf, 'bill.usageAsOf'),
    creationDate: parseInstant(creation, 'bill creation date').toJSDate(),
    lines: bill.lines.map((l, i) => lineView(l, i, currency)),
    number: bill.number ?? '',
    subtotal: money(bill.subtotal, currency, 'bill.subtotal'),
    taxPercent: new Dec(decimalText(bill.taxRate, 'bill.taxRate')).times(100).toFixed(),
    taxAmount: money(bill.taxAmount, currency, 'bill.taxAmount'),
    total: money(bill.total, currency, 'bill.total'),
  };
}

// ---------------------------------------------------------------------------------------------
// CSV

const formulaStart = /^[=+\-@\t\r]/;

/** A free-text cell, neutralised against spreadsheet formula injection. */
const text = (value: string): string => (formulaStart.test(value) ? `'${value}` : value);

/** One RFC 4180 field. */
const field = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value);

const record = (cells: readonly string[]): string => cells.map(field).join(',');

/** Column headers of the CSV line table. */
export const csvLineColumns = [
  'line',
  'service_id',
  'service',
  'meter',
  'description',
  'quantity',
  'free_quantity',
  'billable_quantity',
  'unit',
  'unit_price',
  'amount',
  'is_adjustment',
  'adjusts_bill_id',
] as const;

/** The bill as CSV (RFC 4180, CRLF): `key,value` rows, an empty record, the line table, a total row. */
export function billCsv(doc: BillDocument): string {
  const v = documentView(doc);
  const header: [string, string][] = [
    ['document', text(v.title)],
    ['invoice_number', text(v.number)],
    ['bill_id', text(v.billId)],
    ['status', v.status],
    ['tenant_name', text(v.tenant.name)],
    ['tenant_slug', text(v.tenant.slug)],
    ['tenant_id', text(v.tenant.id)],
    ['billing_email', text(v.tenant.billing_email ?? '')],
    ['currency', text(v.currency)],
    ['timezone', text(v.zone)],
    ...(v.zoneNote ? [['timezone_note', text(v.zoneNote)] as [string, string]] : []),
    ['period_start_local', v.periodStart.local],
    ['period_end_local', v.periodEnd.local],
    ['period_start_utc', v.periodStart.utc],
    ['period_end_utc', v.periodEnd.utc],
    ['finalized_at', v.finalizedAt],
    ['paid_at', v.paidAt],
    ['usage_as_of', v.usageAsOf],
    ['line_count', String(v.lines.length)],
    ['subtotal', v.subtotal],
    ['tax_label', text(v.tenant.tax_label ?? 'Tax')],
    ['tax_rate_percent', v.taxPercent],
    ['tax_amount', v.taxAmount],
    ['total', v.total],
  ];
  const rows: string[][] = [['key', 'value'], ...header, [], [...csvLineColumns]];
  for (const l of v.lines) {
    rows.push([
      String(l.no),
      text(l.serviceId),
      text(l.service),
      text(l.meter),
      text(l.description),
      l.quantity,
      l.freeQuantity,
      l.billableQuantity,
      text(l.unit),
      l.unitPrice,
      l.amount,
      l.isAdjustment ? 'true' : 'false',
      text(l.adjustsBillId),
    ]);
  }
  const summaryRow = (label: string, amount: string): string[] => csvLineColumns.map((c): string => (c === 'line' ? label : c === 'amount' ? amount : ''));
  rows.push(summaryRow('subtotal', v.subtotal), summaryRow(`tax ${v.taxPercent}%`, v.taxAmount), summaryRow('total', v.total));
  return rows.map(record).join('\r\n') + '\r\n';
}

// ---------------------------------------------------------------------------------------------
// PDF text: WinAnsi only

/** Unicode characters outside Latin-1 that WinAnsiEncoding (and so Helvetica) has. */
const winAnsiExtra = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');

const inWinAnsi = (ch: string): boolean => {
  const c = ch.codePointAt(0) ?? 0;
  return (c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xff) || winAnsiExtra.has(ch);
};

const cyrillic: Record<string, string> = {
  а: 'a', б: 'b', в: 'v', г: 'g', д: 'd', е: 'e', ё: 'e', ж: 'zh', з: 'z', и: 'i', й: 'y', к: 'k', л: 'l', м: 'm',
  н: 'n', о: 'o', п: 'p', р: 'r', с: 's', т: 't', у: 'u', ф: 'f', х: 'kh', ц: 'ts', ч: 'ch', ш: 'sh', щ: 'shch',
  ъ: '', ы: 'y', ь: '', э: 'e', ю: 'yu', я: 'ya', і: 'i', ї: 'yi', є: 'ye', ґ: 'g', ў: 'u',
};

const symbols: Record<string, string> = {
  '₽': 'RUB', '₴': 'UAH', '₸': 'KZT', '₹': 'INR', '₩': 'KRW', '₺': 'TRY', '₪': 'ILS', '₫': 'VND', '₱': 'PHP',
  '№': 'No.', '−': '-', '→': '->', '←': '<-', '≤': '<=', '≥': '>=', '≠': '!=',
};

function transliterate(ch: string): string | undefined {
  const sym = symbols[ch];
  if (sym !== undefined) return sym;
  const lower = ch.toLowerCase();
  const latin = cyrillic[lower];
  if (latin === undefined) return undefined;
  return lower === ch || latin.length === 0 ? latin : latin.charAt(0).toUpperCase() + latin.slice(1);
}

/**
 * Text Helvetica can show: line breaks kept (CR LF and CR become LF), tabs become spaces,
 * invisible format characters and stray combining marks are dropped, Cyrillic is transliterated,
 * anything else outside WinAnsi is decomposed to its base letters or replaced with `?`.
 */
export function toWinAnsi(value: string): string {
  let out = '';
  for (const ch of value.replace(/\r\n?/g, '\n').normalize('NFC')) {
    if (ch === '\n') out += '\n';
    else if (ch === '\t') out += ' ';
    else if (inWinAnsi(ch)) out += ch;
    else if (/^[\p{M}\p{Cf}]$/u.test(ch)) continue;
    else {
      const mapped = transliterate(ch);
      if (mapped !== undefined) {
        out += mapped;
        continue;
      }
      const base = ch.normalize('NFKD').replace(/\p{M}/gu, '');
      out += base.length > 0 && [...base].every(inWinAnsi) ? base : '?';
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// PDF layout

type Align = 'left' | 'right' | 'center';

interface Column {
  title: string;
  width: number;
  align: Align;
  cell(l: LineView): string;
}

const MARGIN = { top: 40, bottom: 56, left: 40, right: 40 };
const FONT = 'Helvetica';
const BOLD = 'Helvetica-Bold';
const TABLE_SIZE = 7;
const PAD_X = 2;
const PAD_Y = 3;

/** The line table, 515 pt wide (A4 width less the margins). */
const columns: readonly Column[] = [
  { title: '#', width: 18, align: 'right', cell: (l) => String(l.no) },
  { title: 'Service', width: 80, align: 'left', cell: (l) => [l.service, l.serviceId].filter((s) => s.length > 0).join('\n') },
  { title: 'Meter', width: 46, align: 'left', cell: (l) => l.meter },
  {
    title: 'Description',
    width: 105,
    align: 'left',
    cell: (l) => (l.isAdjustment && l.adjustsBillId ? `${l.description}\nAdjusts bill ${l.adjustsBillId}` : l.description),
  },
  { title: 'Quantity', width: 68, align: 'right', cell: (l) => l.quantity },
  { title: 'Unit', width: 40, align: 'left', cell: (l) => l.unit },
  { title: 'Unit price', width: 64, align: 'right', cell: (l) => l.unitPrice },
  { title: 'Amount', width: 62, align: 'right', cell: (l) => l.amount },
  { title: 'Adj.', width: 32, align: 'center', cell: (l) => (l.isAdjustment ? 'yes' : '') },
];

class PdfWriter {
  y: number;

  constructor(readonly pdf: PDFKit.PDFDocument) {
    this.y = MARGIN.top;
  }

  get bottom(): number {
    return this.pdf.page.height - MARGIN.bottom;
  }

  get width(): number {
    return this.pdf.page.width - MARGIN.left - MARGIN.right;
  }

  newPage(): void {
    this.pdf.addPage();
    this.y = MARGIN.top;
  }

  /** Height of `value` in the current font at `width` (padding excluded). */
  measure(value: string, width: number): number {
    return value.length === 0 ? 0 : this.pdf.heightOfString(value, { width });
  }

  /**
   * Writes text in a box without ever letting pdfkit add a page (the height caps it). `clipped`
   * marks text known not to fit: its last line ends in an ellipsis.
   */
  box(value: string, x: number, y: number, width: number, height: number, align: Align, clipped = false): void {
    if (value.length === 0) return;
    this.pdf.text(value, x, y, { width, height: height + 0.5, align, lineBreak: true, ...(clipped ? { ellipsis: true } : {}) });
  }

  /** Ensures `height` fits on the page, starting a new one (and calling `onNewPage`) if not. */
  ensure(height: number, onNewPage?: () => void): void {
    if (this.y + height <= this.bottom) return;
    this.newPage();
    onNewPage?.();
  }

  heading(title: string): void {
    this.pdf.font(BOLD).fontSize(20).fillColor('black');
    this.box(title, MARGIN.left, this.y, this.width, 30, 'left');
    this.y += 32;
  }

  /** Label/value rows of the document header. */
  details(rows: readonly [string, string][]): void {
    const labelWidth = 120;
    const valueWidth = this.width - labelWidth;
    this.pdf.fontSize(9);
    for (const [label, rawValue] of rows) {
      const value = toWinAnsi(rawValue);
      this.pdf.font(FONT);
      const h = Math.max(this.measure(value, valueWidth), this.pdf.currentLineHeight(true)) + 2;
      this.ensure(h);
      this.pdf.font(BOLD).fillColor('#333333');
      this.box(label, MARGIN.left, this.y, labelWidth - 6, h, 'left');
      this.pdf.font(FONT).fillColor('black');
      this.box(value, MARGIN.left + labelWidth, this.y, valueWidth, h, 'left');
      this.y += h;
    }
  }

  /** One table row (advances `y`); `header` rows are bold on a grey band. */
  row(cells: readonly string[], opts: { header?: boolean; onNewPage?: () => void; bold?: boolean } = {}): void {
    this.pdf.font(opts.header || opts.bold ? BOLD : FONT).fontSize(TABLE_SIZE);
    const texts = cells.map(toWinAnsi);
    let content = 0;
    texts.forEach((t, i) => {
      content = Math.max(content, this.measure(t, (columns[i]?.width ?? 0) - 2 * PAD_X));
    });
    const fullPage = this.bottom - MARGIN.top - 40; // a fresh page minus the repeated table header
    const clipped = content > fullPage;
    const height = Math.min(Math.max(content, this.pdf.currentLineHeight(true)), fullPage) + 2 * PAD_Y;
    this.ensure(height, opts.onNewPage);
    this.pdf.font(opts.header || opts.bold ? BOLD : FONT).fontSize(TABLE_SIZE);
    if (opts.header) {
      this.pdf.rect(MARGIN.left, this.y, this.width, height).fill('#e6e6e6');
    }
    this.pdf.fillColor('black');
    let x = MARGIN.left;
    texts.forEach((t, i) => {
      const col = columns[i];
      if (!col) return;
      this.box(t, x + PAD_X, this.y + PAD_Y, col.width - 2 * PAD_X, height - 2 * PAD_Y, col.align, clipped);
      x += col.width;
    });
    this.y += height;
    this.pdf
      .moveTo(MARGIN.left, this.y)
      .lineTo(MARGIN.left + this.width, this.y)
      .lineWidth(opts.header ? 0.8 : 0.3)
      .strokeColor('#999999')
      .stroke();
  }

  /** "Bill … · Page i of n" on every buffered page. */
  footers(billId: string): void {
    const range = this.pdf.bufferedPageRange();
    for (let i = 0; i < range.count; i++) {
      this.pdf.switchToPage(range.start + i);
      const page = this.pdf.page;
      const saved = page.margins.bottom;
      page.margins.bottom = 0; // writing below the bottom margin must not add a page
      this.pdf.font(FONT).fontSize(7).fillColor('#666666');
      this.box(toWinAnsi(`Bill ${billId} · Page ${i + 1} of ${range.count}`), MARGIN.left, page.height - MARGIN.bottom + 20, this.width, 10, 'center');
      page.margins.bottom = saved;
    }
  }
}

function renderPdf(pdf: PDFKit.PDFDocument, v: DocumentView): void {
  const w = new PdfWriter(pdf);
  w.heading(v.title);
  const details: [string, string][] = [
    ['Bill', v.billId],
    ['Status', v.status],
    ['Tenant', v.tenant.name],
    ['Tenant slug', v.tenant.slug],
    ['Tenant id', v.tenant.id],
    ['Billing email', v.tenant.billing_email ?? '-'],
    ['Currency', v.currency],
    [`Period (${v.zone})`, `${v.periodStart.display} – ${v.periodEnd.display}`],
    ['Period (UTC)', `${v.periodStart.utc} – ${v.periodEnd.utc}`],
    ...(v.zoneNote ? [['Timezone', v.zoneNote] as [string, string]] : []),
    ...(v.finalizedAt ? [['Finalized at (UTC)', v.finalizedAt] as [string, string]] : []),
    ...(v.paidAt ? [['Paid at (UTC)', v.paidAt] as [string, string]] : []),
    ...(v.status === 'draft' && v.usageAsOf ? [['Usage as of (UTC)', v.usageAsOf] as [string, string]] : []),
  ];
  w.details(details);
  if (v.status === 'draft') {
    pdf.font(FONT).fontSize(8).fillColor('#aa0000');
    w.box('Draft: amounts may change until the bill is finalized.', MARGIN.left, w.y + 4, w.width, 12, 'left');
    w.y += 16;
  }
  w.y += 12;

  const tableHeader = (): void => w.row(columns.map((c) => c.title), { header: true });
  w.ensure(60);
  tableHeader();
  if (v.lines.length === 0) {
    w.row(['', '', '', 'No line items.'], { onNewPage: tableHeader });
  }
  for (const l of v.lines) {
    w.row(
      columns.map((c) => c.cell(l)),
      { onNewPage: tableHeader },
    );
  }
  const summary = (label: string, amount: string): string[] => columns.map((c) => (c.title === 'Description' ? label : c.title === 'Amount' ? amount : ''));
  w.row(summary(`Subtotal (${v.currency})`, v.subtotal), { onNewPage: tableHeader });
  w.row(summary(`${v.tenant.tax_label ?? 'Tax'} ${v.taxPercent}% (${v.currency})`, v.taxAmount), { onNewPage: tableHeader });
  w.row(summary(`Total (${v.currency})`, v.total), { bold: true, onNewPage: tableHeader });
  w.footers(v.billId);
}

/** The bill as an A4 PDF (Helvetica, WinAnsi text; see the module comment). */
export function billPdf(doc: BillDocument, options: BillPdfOptions = {}): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const v = documentView(doc);
    const pdf = new PDFDocument({
      size: 'A4',
      margins: MARGIN,
      compress: options.compress ?? true,
      bufferPages: true,
      info: {
        Title: `${v.title} ${v.billId}`,
        Author: v.tenant.name,
        Subject: `${v.tenant.slug} ${v.periodStart.utc} – ${v.periodEnd.utc}`,
        Creator: 'faas-billing',
        CreationDate: v.creationDate,
        ModDate: v.creationDate,
      },
    });
    const chunks: Buffer[] = [];
    pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
    renderPdf(pdf, v);
    pdf.end();
  });
}
