/**
 * `npm start` on embedded defaults (no DATABASE_URL, no REDIS_URL): the real runner, its child
 * function processes, the local broker and the embedded PostgreSQL, driven over HTTP.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { eventually } from './support/eventually.js';
import { flushUntil } from './support/flush.js';
import { functionNames } from '../functions/index.js';
import { workloadNames } from '../functions/workloads.js';
import { localSystemPorts } from '../src/local/ports.js';
import { usageCloudEvent } from './support/usage.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('npm start on embedded defaults', function () {
  this.timeout(180_000);
  let runner: ChildProcess;
  let output = '';
  let brokerUrl: string;
  let collectUrl: string;
  let databaseUrl: string;
  let apiUrl: string;

  before(async () => {
    const ports = await localSystemPorts(functionNames.length + workloadNames.length);
    const [brokerPort, functionsPort, pgPort, apiPort] = [ports.broker, ports.functions, ports.pg, ports.api];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LOCAL_BROKER_PORT: String(brokerPort),
      LOCAL_API_PORT: String(apiPort),
      LOCAL_FUNCTIONS_PORT: String(functionsPort),
      EMBEDDED_PG_PORT: String(pgPort),
      LOCAL_DATA_DIR: 'memory',
      LOG_LEVEL: 'warn',
      // The outbox test's webhook receiver listens on 127.0.0.1.
      WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
    };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    runner = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/local/start.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    runner.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    runner.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(() => Promise.resolve(output.includes('Press Ctrl-C') || runner.exitCode !== null), 120_000, 'npm start to be ready');
    assert.equal(runner.exitCode, null, output);
    brokerUrl = `http://127.0.0.1:${brokerPort}`;
    apiUrl = `http://localhost:${apiPort}`;
    collectUrl = `http://127.0.0.1:${functionsPort}`;
    databaseUrl = `postgres://postgres@127.0.0.1:${pgPort}/postgres?sslmode=disable`;
  });

  after(() => {
    if (runner.exitCode === null) runner.kill('SIGKILL');
  });

  it('prints where the broker, the functions and the database are', () => {
    assert.match(output, new RegExp(`broker\\s+${brokerUrl}`));
    assert.match(output, new RegExp(`collect\\s+${collectUrl}`));
    assert.match(output, /embedded PGlite/);
  });

  it('serves the API with the printed admin key, and the seed’s calculate example answers', async () => {
    const key = /admin key\s+(fbk_\S+)/.exec(output)?.[1];
    assert.ok(key, output);
    assert.match(output, new RegExp(`api\\s+${apiUrl}/api/v1`));
    const denied = await fetch(`${apiUrl}/api/v1/tenants`);
    assert.equal(denied.status, 401);
    // The seed's README example, verbatim apart from the key.
    const res = await fetch(`${apiUrl}/api/v1/billing/calculate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
      body: JSON.stringify({ tenant_id: 'demo', period_start: '2025-10-15T00:00:00Z', period_end: '2025-10-15T23:59:59Z' }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const bill = JSON.parse(text) as { status: string; period_start: string; period_end: string; total: string; currency: string };
    assert.equal(bill.status, 'preview');
    assert.equal(bill.period_start, '2025-10-15T00:00:00.000Z');
    assert.equal(bill.period_end, '2025-10-16T00:00:00.000Z');
    assert.equal(bill.currency, 'USD');
    assert.equal(bill.total, '0.00');
  });

  it('turns 1,000 usage events posted to the broker into 1,000 rows', async () => {
    const events = Array.from({ length: 1000 }, (_, i) => usageCloudEvent({ id: `start-${i}`, source: '/test/npm-start' }));
    for (let i = 0; i < events.length; i += 100) {
      const res = await fetch(brokerUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents-batch+json' },
        body: JSON.stringify(events.slice(i, i + 100)),
      });
      assert.equal(res.status, 202, await res.text());
    }
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const count = async () => (await client.query<{ n: number; d: number }>(`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM usage_raw WHERE source = '/test/npm-start'`)).rows[0];
      await flushUntil(brokerUrl, async () => (await count())?.n === 1000, 90_000, '1,000 rows in usage_raw');
      assert.deepEqual(await count(), { n: 1000, d: 1000 });
    } finally {
      await client.end();
    }
  });

  it('delivers a bill event left in the API outbox to its webhook when the PingSource api-outbox-sweep fires, and marks it sent', async () => {
    const received: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push((JSON.parse(body) as { id: string }).id);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const tenant = (await client.query<{ id: string }>(`SELECT id FROM tenants WHERE slug = 'demo'`)).rows[0];
      assert.ok(tenant);
      await client.query(`INSERT INTO webhooks (tenant_id, url, secret, events, active) VALUES ($1, $2, $3, $4, true)`, [
        tenant.id,
        `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
        's'.repeat(32),
        ['faasbilling.bill.generated.v1'],
      ]);
      // What a finalize leaves behind when the Broker refused the event: an unsent row, here two minutes old.
      const data = { bill_id: 'local-outbox-bill', tenant_id: tenant.id, status: 'final', total: '1.00', currency: 'USD', period_start: '2025-10-01T00:00:00.000Z', period_end: '2025-11-01T00:00:00.000Z' };
      await client.query(
        `INSERT INTO api_event_outbox (event_id, type, source, tenant_id, data, created_at)
         VALUES ('bill-local-outbox-bill-final', 'faasbilling.bill.generated.v1', '/faasbilling/api', $1, $2, now() - interval '2 minutes')`,
        [tenant.id, JSON.stringify(data)],
      );
      const fired = await fetch(`${brokerUrl}/_local/pingsources/api-outbox-sweep`, { method: 'POST' });
      assert.equal(fired.status, 202);
      const sentAt = async () => (await client.query<{ sent_at: Date | null }>(`SELECT sent_at FROM api_event_outbox WHERE event_id = 'bill-local-outbox-bill-final'`)).rows[0]?.sent_at ?? null;
      await eventually(async () => (await sentAt()) !== null, 30_000, 'the outbox row to be marked sent');
      assert.deepEqual(received, ['bill-local-outbox-bill-final']);
    } finally {
      await client.end();
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it('stops cleanly on Ctrl-C (SIGINT)', async () => {
    const exited = new Promise<number | null>((resolve) => runner.once('exit', (code) => resolve(code)));
    runner.kill('SIGINT');
    assert.equal(await exited, 0, output);
  });
});
