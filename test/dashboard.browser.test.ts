/**
 * The web dashboard in a real browser (Debian chromium driven by playwright-core): `npm run demo
 * -- --serve` as a newcomer runs it (every function, the broker, the API serving the dashboard;
 * the CI PostgreSQL when DATABASE_URL is set, the embedded one otherwise), then every screen is
 * walked with the admin key and with a tenant key. Screenshots of each screen go to
 * test-output/dashboard/ for a reviewer to look at.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { generateKey } from '../src/api/keys.js';
import { localSystemPorts } from '../src/local/ports.js';
import { workloadNames } from '../functions/workloads.js';
import { functionNames } from '../functions/index.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { eventually } from './support/eventually.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const screenshots = path.join(root, 'test-output', 'dashboard');
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The few page globals the evaluate callbacks use (they run in Chromium; the Node types have no DOM). */
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}
interface PageElement {
  dataset: Record<string, string | undefined>;
  outerHTML: string;
  tagName: string;
  textContent: string | null;
  childNodes: ArrayLike<PageNode>;
  parentElement: PageElement | null;
  closest(selector: string): PageElement | null;
  getClientRects(): { length: number };
  labels?: { length: number } | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageCanvas | null;
}
interface PageNode {
  nodeType: number;
  textContent: string | null;
}
interface PageStyle {
  color: string;
  backgroundColor: string;
  fontSize: string;
  fontWeight: string;
  opacity: string;
  visibility: string;
}
declare function getComputedStyle(element: PageElement): PageStyle;
declare const document: {
  querySelectorAll(selector: string): ArrayLike<PageElement>;
  querySelector(selector: string): { textContent: string | null; insertAdjacentHTML(where: 'beforeend', html: string): void } | null;
  documentElement: { scrollWidth: number };
  activeElement: { textContent: string | null; id: string } | null;
};
declare const window: { innerWidth: number; sessionStorage: { getItem(key: string): string | null }; localStorage: { length: number }; location: { href: string } };

/** Pixels of a chart's canvas close to one of its series' colours: drawn lines, not axes or a blank canvas. */
async function seriesPixels(page: Page, chartIndex: number): Promise<{ points: number; pixels: number }> {
  return page.evaluate((index) => {
    const holder = document.querySelectorAll('[data-testid="chart"]')[index];
    const canvas = holder?.querySelector('canvas');
    if (!holder || !canvas) return { points: -1, pixels: 0 };
    const colors = (holder.dataset.colors ?? '').split(' ').map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? new Uint8ClampedArray();
    let pixels = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i] ?? 0, data[i + 1] ?? 0, data[i + 2] ?? 0, data[i + 3] ?? 0];
      if (a > 200 && colors.some(([cr = -1, cg = -1, cb = -1]) => Math.abs(r - cr) < 40 && Math.abs(g - cg) < 40 && Math.abs(b - cb) < 40)) pixels++;
    }
    return { points: Number(holder.dataset.points), pixels };
  }, chartIndex);
}

/** Every chart on the page has data and a drawn series. */
async function assertChartsDrawn(page: Page, expected: number): Promise<void> {
  // The screen has rendered once the expected number of charts have their canvas.
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="chart"] canvas').length === n, expected);
  const count = await page.locator('[data-testid="chart"]').count();
  for (let i = 0; i < count; i++) {
    const { points, pixels } = await seriesPixels(page, i);
    assert.ok(points > 0, `chart ${i} has no data points`);
    assert.ok(pixels > 50, `chart ${i} draws no series line (${pixels} pixels of its colours)`);
  }
}

/** Every form control has an accessible name (a label, aria-label or aria-labelledby). */
async function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('input, select'))
      .filter((el) => (el.labels?.length ?? 0) === 0 && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

/**
 * Text whose colour against its background is below WCAG AA (4.5:1; 3:1 from 18.66 px bold or
 * 24 px): every element with its own text, against the first opaque background behind it.
 * Disabled controls are exempt, as WCAG exempts them.
 */
async function lowContrastTexts(page: Page): Promise<string[]> {
  // No named functions inside: the test runner's transform would wrap them in a helper the page lacks.
  return page.evaluate(() => {
    const offenders: string[] = [];
    for (const el of Array.from(document.querySelectorAll('body *'))) {
      const hasText = Array.from(el.childNodes).some((n) => n.nodeType === 3 && (n.textContent ?? '').trim() !== '');
      if (!hasText || el.closest('[disabled], .u-axis, canvas') || el.getClientRects().length === 0) continue;
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || Number(style.opacity) < 1) continue;
      let background = [255, 255, 255, 1];
      for (let node: PageElement | null = el; node; node = node.parentElement) {
        const color = getComputedStyle(node).backgroundColor;
        const channels = (color.match(/[\d.]+/g) ?? []).map(Number);
        if (!color.startsWith('rgba') || channels[3] === 1) {
          background = channels;
          break;
        }
      }
      // Relative luminance (WCAG 2) of the text and the background colours.
      const [l1, l2] = [(style.color.match(/[\d.]+/g) ?? []).map(Number), background]
        .map((rgb) =>
          [0.2126, 0.7152, 0.0722].reduce((sum, weight, i) => {
            const v = (rgb[i] ?? 0) / 255;
            return sum + weight * (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          }, 0),
        )
        .sort((a, b) => b - a) as [number, number];
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) offenders.push(`${el.tagName.toLowerCase()} "${(el.textContent ?? '').trim().slice(0, 40)}" ${ratio.toFixed(2)}:1`);
    }
    return offenders;
  });
}

/** The fields of GET /ml/insights the Overview test compares with the page. */
interface ApiInsights {
  anomalies: unknown[];
  recommendations: { recommendations: { service: string | null; saving: string | null }[] };
}

/** GET /ml/insights of the tenant with `slug`, straight from the API. */
async function insightsOf(baseUrl: string, key: string, slug: string): Promise<ApiInsights> {
  const headers = { authorization: `Bearer ${key}` };
  const tenants = (await (await fetch(`${baseUrl}/api/v1/tenants`, { headers })).json()) as { items: { id: string; slug: string }[] };
  const tenant = tenants.items.find((t) => t.slug === slug);
  assert.ok(tenant, `tenant ${slug} exists`);
  const res = await fetch(`${baseUrl}/api/v1/ml/insights/${tenant.id}`, { headers });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as ApiInsights;
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
}

async function signIn(context: BrowserContext, baseUrl: string, key: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Screens' }).waitFor();
  return page;
}

describe('web dashboard in Chromium (npm run demo -- --serve)', function () {
  this.timeout(300_000);
  let demo: ChildProcess | undefined;
  let output = '';
  let database: TestDatabase | undefined;
  let browser: Browser | undefined;
  let admin: BrowserContext;
  let page: Page;
  let baseUrl: string;
  let brokerUrl: string;
  const adminKey = generateKey().key;
  let tenantKey = '';

  before(async function () {
    if (!existsSync(chromiumPath)) {
      // CI installs chromium (.ci/run); on a laptop without it the suite is reported pending.
      if (process.env.CI) throw new Error(`no Chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
      this.skip();
    }
    await mkdir(screenshots, { recursive: true });
    await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(root, 'scripts', 'build-web.ts')], { cwd: root });

    const ports = await localSystemPorts(functionNames.length + workloadNames.length);
    const apiPort = ports.api;
    const brokerPort = ports.broker;
    brokerUrl = `http://127.0.0.1:${brokerPort}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      API_ADMIN_KEY: adminKey,
      LOCAL_API_PORT: String(apiPort),
      LOCAL_BROKER_PORT: String(brokerPort),
      EMBEDDED_PG_PORT: String(ports.pg),
      LOCAL_FUNCTIONS_PORT: String(ports.functions),
      LOCAL_DATA_DIR: 'memory',
      LOG_LEVEL: 'warn',
    };
    if (process.env.DATABASE_URL) {
      database = await freshDatabase();
      env.DATABASE_URL = database.url;
    }
    if (process.env.REDIS_URL) env.BUFFER_STREAM = `faasbilling:test:dashboard-${apiPort}`;
    demo = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'scripts', 'demo.ts'), '--serve', '--days', '3'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    demo.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    demo.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(() => Promise.resolve(/dashboard http/.test(output) || demo?.exitCode !== null), 240_000, 'the demo to serve');
    assert.equal(demo.exitCode, null, output);
    const printed = /dashboard (http:\/\/\S+)\//.exec(output)?.[1];
    assert.equal(printed, `http://localhost:${apiPort}`, 'the demo prints the dashboard URL');
    baseUrl = printed;

    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
    admin = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  });

  afterEach(async function () {
    // A failed step leaves a picture of what the page showed.
    if (this.currentTest?.state === 'failed' && page) await shoot(page, `failed-${(this.currentTest.title.split(':')[0] ?? 'step').replace(/\W+/g, '-')}`);
  });

  after(async () => {
    await browser?.close();
    if (demo && demo.exitCode === null) {
      const exited = new Promise((resolve) => demo?.once('exit', resolve));
      demo.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
      if (demo.exitCode === null) demo.kill('SIGKILL');
    }
    await database?.drop();
  });

  it('the login screen refuses a key of the wrong shape, then signs in with the printed admin key', async () => {
    const login = await admin.newPage();
    await login.goto(`${baseUrl}/`);
    await login.getByLabel('API key').fill('not-a-key');
    await login.getByRole('button', { name: 'Sign in' }).click();
    await login.getByRole('alert').filter({ hasText: 'does not look like an API key' }).waitFor();
    await shoot(login, '01-login');
    await login.close();
    // By keyboard: the key field, Enter; the new screen takes the focus to its content. The skip
    // link is the first Tab stop of the page (first in document order of what can take the focus),
    // and Enter on it moves the focus to the content. (Pressing Tab after sign-in raced the
    // overview's data, and after a blur Chromium goes on from where the focus was, not the top.)
    page = await admin.newPage();
    await page.goto(`${baseUrl}/`);
    await page.getByLabel('API key').fill(adminKey);
    await page.getByLabel('API key').press('Enter');
    await page.getByRole('navigation', { name: 'Screens' }).waitFor();
    await page.waitForFunction(() => document.activeElement?.id === 'main');
    const firstStop = await page.evaluate(
      () => document.querySelectorAll('a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea, [tabindex]:not([tabindex="-1"])')[0]?.textContent ?? '',
    );
    assert.equal(firstStop, 'Skip to content');
    await page.getByRole('link', { name: 'Skip to content' }).focus();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent ?? ''), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id ?? ''), 'main');
    assert.match(page.url(), /\/(#\/overview)?$/, 'the skip link does not change the screen');
    assert.equal(await page.getByTestId('role').innerText(), 'admin key');
    // The key is kept for the tab only.
    assert.equal(await page.evaluate(() => window.sessionStorage.getItem('faasbilling.apiKey')), adminKey);
    assert.equal(await page.evaluate(() => window.localStorage.length), 0);
  });

  it('Overview: month to date, the month-end forecast with its band, the budget gauge, cost by service and the insights the API gives for a demo tenant', async () => {
    await page.getByLabel('Tenant').selectOption({ label: 'Acme Corp (USD, America/New_York)' });
    await page.getByTestId('cost-by-service').waitFor();
    const monthToDate = await page.getByTestId('mtd').innerText();
    assert.match(monthToDate, /\$\d[\d,]*\.\d\d/, monthToDate);
    assert.match(await page.getByTestId('forecast').innerText(), /80%: \$[\d,.]+ – \$[\d,.]+/);
    await page.getByTestId('forecast-band').waitFor();
    assert.match(await page.getByTestId('budget').innerText(), /of \$25\.00/);
    assert.ok((await page.getByRole('meter').count()) === 1, 'a budget gauge');
    assert.ok((await page.locator('[data-testid="cost-by-service"] tbody tr').count()) >= 3, 'services with a cost');
    // The insights panel shows what GET /ml/insights answers for the same tenant: every item, and
    // each saving in dollars and cents, largest first.
    const panel = page.getByTestId('insights');
    await panel.getByRole('heading', { name: /^Warnings/ }).waitFor();
    const insights = await insightsOf(baseUrl, adminKey, 'acme');
    const savings = insights.recommendations.recommendations.filter((r) => r.saving !== null);
    assert.ok(savings.length > 0, 'the demo tenant has memory limits well above its use: at least one saving');
    assert.equal(
      await panel.locator('li').count(),
      insights.anomalies.length + insights.recommendations.recommendations.length,
      'one item per anomaly, recommendation and warning',
    );
    assert.equal(await panel.getByTestId('anomaly').count(), insights.anomalies.length);
    if (insights.anomalies.length === 0) assert.match(await panel.getByTestId('no-anomalies').innerText(), /No anomalies in the last 24 h/);
    assert.equal(await panel.getByTestId('warning').count(), insights.recommendations.recommendations.length - savings.length);
    const shown = await panel.getByTestId('saving').allInnerTexts();
    assert.ok(shown.every((text) => /^\$\d[\d,]*\.\d\d$/.test(text)), `savings in dollars and cents: ${shown.join(', ')}`);
    assert.deepEqual(
      shown.map((text) => Number(text.replace(/[$,]/g, ''))),
      savings.map((r) => Number(r.saving)),
    );
    assert.match(await panel.getByTestId('recommendation').first().innerText(), new RegExp(`${savings[0]?.service ?? ''}.*per 30 days`, 's'));
    await assertChartsDrawn(page, 1);
    assert.deepEqual(await unlabelledControls(page), []);
    await shoot(page, '02-overview');
  });

  it('Usage explorer: every metric drawn from real windows, filtered by service, compared with the period before', async () => {
    await page.getByRole('link', { name: 'Usage explorer' }).click();
    await assertChartsDrawn(page, 5);
    await shoot(page, '03-usage');
    const services = await page.getByTestId('service').locator('option').allInnerTexts();
    assert.ok(services.length > 2, `services to filter by: ${services.join(', ')}`);
    const all = Number(await page.locator('[data-testid="chart"]').first().getAttribute('data-points'));
    await page.getByTestId('service').selectOption({ index: 1 });
    await page.waitForURL(/service=/);
    await page.getByTestId('window').selectOption('1d');
    await page.waitForURL(/window=1d/);
    await page.getByTestId('compare').check();
    await page.waitForURL(/compare=1/);
    await page.locator('.u-legend').first().getByText('(period before)').first().waitFor();
    await assertChartsDrawn(page, 5);
    assert.ok(Number(await page.locator('[data-testid="chart"]').first().getAttribute('data-points')) !== all || all > 0);
    assert.deepEqual(await unlabelledControls(page), []);
    await shoot(page, '04-usage-filtered-compared');
  });

  it('Usage explorer, live: usage sent to the broker while it watches appears without a reload', async () => {
    // A fresh load (the session survives in the tab), so the total read below is this view's.
    await page.goto(`${baseUrl}/#/usage?window=5m`);
    await page.reload();
    const total = page.getByTestId('total-invocations').locator('.figure-value');
    await total.waitFor();
    const before = Number((await total.innerText()).replace(/\D/g, ''));
    await page.getByTestId('live').check();
    // A usage event of 4321 invocations of a new service, into the broker as a workload sends it;
    // then save and aggregate ticks (what the PingSources do every minute and five minutes).
    const sent = await fetch(`${brokerUrl}/`, {
      method: 'POST',
      headers: {
        'ce-specversion': '1.0',
        'ce-type': 'faasbilling.usage.v1',
        'ce-source': '/browser/live',
        'ce-id': `live-${Date.now()}`,
        'ce-time': new Date(Date.now() - 60_000).toISOString(),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ tenant_id: 'acme', service: 'live-check', revision: 'live-check-00001', invocations: 4321, duration_ms: 4321 * 20, memory_mb: 128, cold_start: false }),
    });
    assert.equal(sent.status, 202, await sent.text());
    // The broker delivers to collect asynchronously, so a save tick may come before the event is
    // buffered: tick save and aggregate again until the live view (which polls on its own) shows it.
    const shown = (): Promise<boolean> =>
      page.evaluate(
        (expected) => Number(document.querySelector('[data-testid="total-invocations"] .figure-value')?.textContent?.replace(/\D/g, '') ?? 0) >= expected,
        before + 4321,
      );
    let lastTick = 0;
    await eventually(
      async () => {
        if (Date.now() - lastTick < 3000) return shown();
        lastTick = Date.now();
        for (const tick of ['save-flush-tick', 'aggregate-tick']) {
          const fired = await fetch(`${brokerUrl}/_local/pingsources/${tick}`, { method: 'POST' });
          assert.ok(fired.ok, `${tick}: ${fired.status}`);
        }
        return shown();
      },
      90_000,
      'the live usage view shows the usage sent to the broker',
    ).catch(async (err: unknown) => {
      // Say where it stopped: what the view shows for which tenant, and what the API holds for the service.
      const get = async (path: string): Promise<string> => (await (await fetch(`${baseUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${adminKey}` } })).text()).slice(0, 800);
      const services = await get('/services?tenant_id=acme&limit=500');
      const serviceId = /"id":"([^"]+)","[^}]*"name":"live-check"/.exec(services)?.[1];
      const windows = serviceId ? await get(`/usage-aggregates?tenant_id=acme&window_size=5m&service_id=${serviceId}`) : `no service live-check: ${services.slice(0, 200)}`;
      const view = await page.evaluate(() => ({ url: window.location.href, total: document.querySelector('[data-testid="total-invocations"] .figure-value')?.textContent }));
      throw new Error(`${err instanceof Error ? err.message : String(err)} (before ${before}; view ${JSON.stringify(view)}; windows of live-check: ${windows})`);
    });
    await page.getByTestId('live').uncheck();
  });

  it('Invoices: the demo’s draft opens with its line items, downloads as CSV and PDF, is finalized and marked paid', async () => {
    await page.getByRole('link', { name: 'Invoices' }).click();
    await page.getByTestId('bills').locator('tbody a').first().click();
    await page.getByTestId('line-items').waitFor();
    assert.equal(await page.getByTestId('bill-status').innerText(), 'draft');
    const lines = await page.locator('[data-testid="line-items"] tbody tr').count();
    assert.ok(lines > 0);

    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    assert.match(csv.suggestedFilename(), /\.csv$/);
    const csvText = await readFile(await csv.path(), 'utf8');
    assert.match(csvText, /USD/);
    assert.ok(csvText.trim().split('\n').length > lines, 'a CSV row per line item, and more');

    const [pdf] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download PDF' }).click()]);
    assert.match(pdf.suggestedFilename(), /\.pdf$/);
    const pdfBytes = await readFile(await pdf.path());
    assert.equal(pdfBytes.subarray(0, 5).toString('latin1'), '%PDF-');

    await page.getByRole('button', { name: 'Finalize' }).click();
    await page.getByTestId('bill-status').filter({ hasText: 'final' }).waitFor();
    assert.match(await page.getByTestId('bill-detail').innerText(), /INV-acme-\d{5}/);
    await page.getByRole('button', { name: 'Mark paid' }).click();
    await page.getByTestId('bill-status').filter({ hasText: 'paid' }).waitFor();
    await shoot(page, '05-invoice');
  });

  it('Plans: the tier editor names what is wrong, a tiered plan is created and simulated beside the others', async () => {
    await page.getByRole('link', { name: 'Plans' }).click();
    await page.getByTestId('plans').waitFor();
    await page.getByRole('link', { name: 'Create a plan' }).click();
    await page.getByLabel('Name', { exact: true }).fill('browser-tiered');
    await page.getByLabel('Currency (ISO 4217)').fill('USD');
    await page.getByTestId('charge-model').selectOption('graduated');
    await page.getByLabel('Tier 1 up to').fill('1000000');
    await page.getByRole('button', { name: 'Add tier' }).click();
    await page.getByLabel('Tier 2 from').fill('500');
    assert.match(await page.getByTestId('tier-problems').innerText(), /tier 2 must start where tier 1 ends \(1000000\)/);
    assert.equal(await page.getByRole('button', { name: 'Create plan' }).isDisabled(), true);
    await shoot(page, '06-plan-tier-errors');
    await page.getByLabel('Tier 2 from').fill('1000000');
    await page.getByLabel('Tier 1 unit price').fill('0.0000004');
    await page.getByLabel('Tier 2 unit price').fill('0.0000001');
    assert.equal(await page.getByTestId('tier-problems').count(), 0);
    await page.getByRole('button', { name: 'Create plan' }).click();
    // Saved: the plan is listed and its form now edits it (a change would be its version 2).
    await page.getByTestId('plans').getByText('browser-tiered v1').waitFor();
    await page.getByRole('heading', { name: 'Change browser-tiered v1' }).waitFor();
    assert.equal(await page.getByTestId('charge-model').inputValue(), 'graduated');

    await page.getByTestId('sim-tenant').selectOption({ label: 'Acme Corp' });
    await page.getByRole('button', { name: /^Simulate \d+ plans?$/ }).click();
    const simulation = page.getByTestId('simulation');
    await simulation.waitFor();
    const cards = await simulation.locator('article').allInnerTexts();
    assert.ok(cards.length >= 2, `plans side by side: ${cards.length}`);
    assert.ok(cards.some((c) => c.includes('browser-tiered v1')), 'the new plan is simulated');
    assert.ok(cards.every((c) => /\$[\d,]+\.\d\d/.test(c)), 'each plan has a total in dollars');
    await shoot(page, '07-plans-simulator');

    await page.getByTestId('assign-tenant').selectOption({ label: 'Acme Corp (USD)' });
    await page.getByTestId('assign-plan').selectOption({ label: 'browser-tiered v1' });
    // This month's bill was finalized above, so the change starts next month.
    const today = new Date();
    const nextMonth = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + 1, 2)).toISOString().slice(0, 10);
    await page.getByTestId('assign-from').fill(nextMonth);
    await page.getByRole('button', { name: 'Assign', exact: true }).click();
    await page.getByRole('status').filter({ hasText: `Assigned from ${nextMonth} (America/New_York) on` }).waitFor();
    const current = await fetch(`${baseUrl}/api/v1/tenants/acme/pricing-plan`, { headers: { authorization: `Bearer ${adminKey}` } });
    const history = ((await current.json()) as { history: { plan_name: string; effective_from: string }[] }).history;
    assert.ok(
      history.some((h) => h.plan_name === 'browser-tiered' && h.effective_from.startsWith(nextMonth)),
      JSON.stringify(history),
    );
  });

  it('Functions: every revision with its status, linked to its usage', async () => {
    await page.getByRole('link', { name: 'Functions' }).click();
    const rows = page.locator('[data-testid="functions"] tbody tr');
    await rows.first().waitFor();
    assert.ok((await rows.count()) >= 3);
    assert.match(await rows.first().innerText(), /serving|erroring/);
    await shoot(page, '08-functions');
    await rows.first().locator('a').first().click();
    await page.waitForURL(/#\/usage\?service=/);
    await assertChartsDrawn(page, 5);
  });

  it('Operators: tenants, a tenant key created and shown once, the audit log and dead letters', async () => {
    await page.getByRole('link', { name: 'Operators' }).click();
    await page.getByTestId('audit').waitFor();
    await page.locator('[data-testid="dead-letters"], .state.empty:has-text("No dead letters")').waitFor();
    assert.ok((await page.locator('[data-testid="tenants"] tbody tr').count()) >= 3, 'the demo tenants are listed');
    await page.getByTestId('tenant-name').fill('Browser Test GmbH');
    await page.getByTestId('tenant-slug').fill('browser-gmbh');
    await page.getByTestId('tenant-currency').fill('EUR');
    await page.getByTestId('tenant-timezone').fill('Europe/Berlin');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByTestId('tenants').getByText('browser-gmbh').waitFor();
    // The new tenant can be picked at once, and its empty screens say what to do.
    await page.getByLabel('Tenant', { exact: true }).selectOption({ label: 'Browser Test GmbH (EUR, Europe/Berlin)' });
    await page.goto(`${baseUrl}/#/overview`);
    await page.getByText('No usage in the last 30 days').waitFor();
    assert.match(await page.getByTestId('mtd').innerText(), /not priced yet/);
    await shoot(page, '09-empty-tenant-overview');
    await page.getByLabel('Tenant', { exact: true }).selectOption({ label: 'Acme Corp (USD, America/New_York)' });
    await page.goto(`${baseUrl}/#/operators`);
    await page.getByTestId('audit').waitFor();
    await page.getByTestId('key-name').fill('browser tenant key');
    await page.getByTestId('key-tenant').selectOption({ label: 'Acme Corp' });
    await page.getByRole('button', { name: 'Create key' }).click();
    tenantKey = await page.getByTestId('new-key').innerText();
    assert.match(tenantKey, /^fbk_[0-9a-f]{12}_/);
    await page.getByTestId('keys').getByText('browser tenant key').waitFor();
    // The audit log shows what this walk did (the bill paid, the plan created, the key).
    await page.getByTestId('audit').getByText('api_key.create').waitFor();
    const audit = await page.getByTestId('audit').innerText();
    for (const action of ['api_key.create', 'bill.mark_paid', 'bill.finalize', 'plan.create']) assert.ok(audit.includes(action), `${action} in the audit log`);
    await shoot(page, '10-operators');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    assert.equal(await page.getByTestId('new-key').count(), 0, 'the key is not shown again');
  });

  it('a tenant key sees its own tenant and no admin screen; the API refuses it too', async () => {
    assert.ok(tenantKey, 'the previous test created a tenant key');
    assert.ok(browser);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    const tenantPage = await signIn(context, baseUrl, tenantKey);
    assert.equal(await tenantPage.getByTestId('role').innerText(), 'tenant key');
    const nav = await tenantPage.getByRole('navigation', { name: 'Screens' }).innerText();
    assert.doesNotMatch(nav, /Plans|Operators/);
    assert.match(await tenantPage.locator('header').innerText(), /Acme Corp/);
    await tenantPage.getByTestId('mtd').waitFor();
    assert.match(await tenantPage.getByTestId('mtd').innerText(), /\$/);
    // Its invoice: readable and downloadable, but no admin action.
    await tenantPage.getByRole('link', { name: 'Invoices' }).click();
    await tenantPage.getByTestId('bills').locator('tbody a').first().click();
    await tenantPage.getByTestId('line-items').waitFor();
    assert.equal(await tenantPage.getByRole('button', { name: /Finalize|Mark paid|Generate draft/ }).count(), 0);
    const [csv] = await Promise.all([tenantPage.waitForEvent('download'), tenantPage.getByRole('button', { name: 'Download CSV' }).click()]);
    assert.match(await readFile(await csv.path(), 'utf8'), /USD/);
    for (const screen of ['plans', 'operators']) {
      await tenantPage.goto(`${baseUrl}/#/${screen}`);
      await tenantPage.getByRole('alert').filter({ hasText: 'sign in with an admin key' }).waitFor();
      assert.equal(await tenantPage.getByTestId('plans').count() + (await tenantPage.getByTestId('keys').count()), 0);
    }
    await shoot(tenantPage, '11-tenant-key-refused');
    const status = await tenantPage.evaluate(async (key) => (await fetch('/api/v1/api-keys', { headers: { authorization: `Bearer ${key}` } })).status, tenantKey);
    assert.equal(status, 403);

    // Revoked while signed in: the next load says so on the login screen and forgets the key.
    const keys = (await (await fetch(`${baseUrl}/api/v1/api-keys`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { items: { id: string; prefix: string }[] };
    const id = keys.items.find((k) => tenantKey.startsWith(`fbk_${k.prefix}_`))?.id;
    assert.ok(id, 'the tenant key is listed');
    assert.equal((await fetch(`${baseUrl}/api/v1/api-keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminKey}` } })).status, 200);
    await tenantPage.reload();
    await tenantPage.getByRole('alert').filter({ hasText: 'Your saved key no longer works' }).waitFor();
    assert.match(await tenantPage.getByRole('alert').innerText(), /revoked/);
    assert.equal(await tenantPage.evaluate(() => window.sessionStorage.getItem('faasbilling.apiKey')), null);
    await shoot(tenantPage, '12-revoked-key');
    await context.close();
  });

  it('fits a laptop screen (no sideways scrolling at 1024 px); every control labelled, all text at WCAG AA contrast, on every screen', async () => {
    await page.setViewportSize({ width: 1024, height: 768 });
    for (const screen of ['overview', 'usage', 'invoices', 'plans', 'functions', 'operators']) {
      await page.goto(`${baseUrl}/#/${screen}`);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${screen} is ${overflow}px wider than the window`);
      assert.deepEqual(await unlabelledControls(page), [], `${screen}: form controls without a label`);
      assert.deepEqual(await lowContrastTexts(page), [], `${screen}: text below WCAG AA contrast`);
    }
    await shoot(page, '13-laptop-width-operators');
    // The contrast probe itself finds faint text (so the empty lists above mean something).
    await page.evaluate(() => document.querySelector('main')?.insertAdjacentHTML('beforeend', '<p style="color:#bbbbbb">faint</p>'));
    assert.deepEqual(await lowContrastTexts(page), ['p "faint" 1.92:1']);
  });
});
