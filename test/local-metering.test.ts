/**
 * End to end on `npm start` (embedded defaults): the reference workload waiter, metered by the
 * middleware into the local broker, reaches usage_raw and the API for its tenant — 100 calls, 100
 * invocations, with durations and memory as measured.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { eventually } from './support/eventually.js';
import { flushUntil } from './support/flush.js';
import { functionNames } from '../functions/index.js';
import { workloadNames } from '../functions/workloads.js';
import { localSystemPorts } from '../src/local/ports.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('npm start: metered reference workloads', function () {
  this.timeout(240_000);
  let runner: ChildProcess;
  let output = '';

  before(async () => {
    const ports = await localSystemPorts(functionNames.length + workloadNames.length);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LOCAL_BROKER_PORT: String(ports.broker),
      LOCAL_API_PORT: String(ports.api),
      LOCAL_FUNCTIONS_PORT: String(ports.functions),
      EMBEDDED_PG_PORT: String(ports.pg),
      LOCAL_DATA_DIR: 'memory',
      LOG_LEVEL: 'warn',
    };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    delete env.METERING_TENANT;
    runner = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/local/start.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    runner.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    runner.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(() => Promise.resolve(output.includes('Press Ctrl-C') || runner.exitCode !== null), 180_000, 'npm start to be ready');
    assert.equal(runner.exitCode, null, output);
  });

  // Ctrl-C stops the runner's children (detached process groups) with it; SIGKILL would orphan them.
  after(async () => {
    if (runner.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => runner.once('exit', () => resolve()));
    runner.kill('SIGINT');
    const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000))]);
    if (!stopped) runner.kill('SIGKILL');
  });

  it('shows 100 invocations of waiter for tenant demo, with plausible durations and memory', async () => {
    const waiterUrl = /waiter\s+(http:\S+)/.exec(output)?.[1];
    const brokerUrl = /broker\s+(http:\S+)/.exec(output)?.[1];
    const pgPort = /database\s+embedded PGlite at (\S+)/.exec(output)?.[1];
    assert.ok(waiterUrl && brokerUrl && pgPort, output);
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${waiterUrl}/invoke?sleep_ms=20&mem_mb=8`);
      assert.equal(res.status, 200, await res.text());
    }
    const client = new pg.Client({ connectionString: pgPort });
    await client.connect();
    try {
      const usage = async () =>
        (
          await client.query<{ rows: number; invocations: number; min_ms: string; max_ms: string; min_mb: string; max_mb: string; cold: number; revisions: string[] }>(
            `SELECT count(*)::int AS rows, coalesce(sum(u.invocations), 0)::int AS invocations, min(u.duration_ms) AS min_ms, max(u.duration_ms) AS max_ms,
                    min(u.memory_mb) AS min_mb, max(u.memory_mb) AS max_mb, count(*) FILTER (WHERE u.cold_start)::int AS cold,
                    array_agg(DISTINCT r.name) AS revisions
               FROM usage_raw u JOIN tenants t ON t.id = u.tenant_id JOIN services s ON s.id = u.service_id JOIN revisions r ON r.id = u.revision_id
              WHERE t.slug = 'demo' AND s.name = 'waiter'`,
          )
        ).rows[0]!;
      await flushUntil(brokerUrl, async () => (await usage()).invocations >= 100, 120_000, '100 waiter invocations in usage_raw');
      const seen = await usage();
      assert.equal(seen.invocations, 100);
      assert.equal(seen.rows, 100);
      assert.equal(seen.cold, 1);
      assert.deepEqual(seen.revisions, ['waiter-00001']);
      // Each call slept 20 ms; none took seconds.
      assert.ok(Number(seen.min_ms) >= 20 && Number(seen.max_ms) < 5000, `durations ${seen.min_ms}..${seen.max_ms} ms`);
      // A Node.js process holding 8 MB more: tens to hundreds of MB resident, not bytes and not gigabytes.
      assert.ok(Number(seen.min_mb) >= 20 && Number(seen.max_mb) < 2048, `memory ${seen.min_mb}..${seen.max_mb} MB`);
    } finally {
      await client.end();
    }
  });
});
