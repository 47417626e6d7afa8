/**
 * The container image, built without a container engine: the Dockerfile's stages are replayed in
 * a temporary directory (test/support/dockerfile.ts runs the same RUN commands in the same order),
 * and the final stage's ENTRYPOINT is started from there, with only the production dependencies
 * the runtime stage installed. It must serve a function (FUNCTION=collect, and the API) that
 * answers /health/readiness against the real PostgreSQL and Redis.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { parseDockerfile, replayDockerfile, type ReplayedImage } from './support/dockerfile.js';
import { freePort } from './support/net.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');

async function waitForStatus(url: string, child: ChildProcess, output: () => string, timeoutMs = 30_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the process exited ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return res;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer 200 (${last}):\n${output()}`);
}

describe('the container image (Dockerfile replayed in a temp dir)', function () {
  // Two `npm ci` runs (all dependencies, then production only) and a tsc build.
  this.timeout(600_000);

  describe('the Dockerfile', () => {
    const stages = parseDockerfile(dockerfile);

    it('is multi-stage on Node 22 LTS; the runtime stage installs production dependencies and copies built JavaScript only', () => {
      assert.ok(stages.length >= 2, 'a build stage and a runtime stage');
      for (const stage of stages) assert.match(stage.from, /^node:22[-.]/, `stage ${stage.name} is on Node 22`);
      const runtime = stages.at(-1);
      assert.ok(runtime);
      const runs = runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
      assert.ok(runs.some((r) => /npm ci\b.*--omit=dev/.test(r)), 'npm ci --omit=dev in the runtime stage');
      const copies = runtime.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
      for (const copy of copies) {
        assert.ok(/^--from=\S+ \S*dist\S* /.test(copy) || /^package(\.json)? package-lock\.json /.test(copy), `runtime COPY ${copy}: only package files and the built dist/`);
      }
      const user = runtime.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args;
      assert.ok(user !== undefined && !/^(0|root)(:|$)/.test(user), `runs as a non-root user (USER ${user ?? 'unset'})`);
    });
  });

  describe('built and started', () => {
    let image: ReplayedImage;
    let database: TestDatabase;
    let workDir: string;
    const children: ChildProcess[] = [];

    before(async () => {
      workDir = mkdtempSync(path.join(tmpdir(), 'fb-image-'));
      image = replayDockerfile(parseDockerfile(dockerfile), root, workDir, { ...process.env, NODE_ENV: undefined });
      database = await freshDatabase();
    });

    after(async () => {
      for (const child of children) child.kill('SIGTERM');
      await Promise.all(children.filter((c) => c.exitCode === null).map((c) => new Promise((resolve) => c.once('exit', resolve))));
      await database?.drop();
      if (workDir) rmSync(workDir, { recursive: true, force: true });
    });

    const start = async (fn: string, env: Record<string, string> = {}): Promise<{ url: string; output: () => string; child: ChildProcess }> => {
      const port = await freePort();
      const [command, ...args] = image.entrypoint;
      assert.ok(command, 'ENTRYPOINT');
      const redis = process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, BUFFER_STREAM: `faasbilling:image-test:${path.basename(workDir)}` } : {};
      const child = spawn(command, args, {
        cwd: image.workdir,
        // Only what a pod gets: the image's ENV and the manifests' variables.
        env: { PATH: process.env.PATH, ...image.env, PORT: String(port), FUNCTION: fn, DATABASE_URL: database.url, LOG_LEVEL: 'warn', ...redis, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      return { url: `http://127.0.0.1:${port}`, output: () => output, child };
    };

    it('holds the compiled JavaScript and production dependencies only (no TypeScript sources, no dev tools)', () => {
      assert.ok(existsSync(path.join(image.workdir, 'dist/src/runtime/run-function.js')));
      assert.ok(existsSync(path.join(image.workdir, 'dist/functions/collect/index.js')));
      assert.ok(existsSync(path.join(image.workdir, 'dist/schema/migrate.js')));
      assert.ok(existsSync(path.join(image.workdir, 'node_modules/faas-js-runtime')));
      for (const dev of ['typescript', 'mocha', 'tsx', 'eslint']) assert.ok(!existsSync(path.join(image.workdir, 'node_modules', dev)), `${dev} is a dev dependency`);
      assert.ok(!existsSync(path.join(image.workdir, 'src')), 'no TypeScript sources');
      const tests = readdirSync(path.join(image.workdir, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.js'));
      assert.deepEqual(tests, []);
      assert.deepEqual(image.entrypoint, ['node', 'dist/src/runtime/run-function.js']);
    });

    it('migrates a database with the migrate command the migration Job runs', async () => {
      const fresh = await freshDatabase();
      try {
        await fresh.db.raw('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
        const run = spawn('node', ['dist/scripts/migrate.js'], { cwd: image.workdir, env: { PATH: process.env.PATH, ...image.env, DATABASE_URL: fresh.url }, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        run.stdout.on('data', (c: Buffer) => (output += c.toString()));
        run.stderr.on('data', (c: Buffer) => (output += c.toString()));
        const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
        assert.equal(code, 0, output);
        assert.match(output, /applied: 0001_initial/);
        const tables = await fresh.db.raw<{ rows: { n: string }[] }>("select count(*) as n from information_schema.tables where table_name = 'usage_raw'");
        assert.equal(Number(tables.rows[0]?.n), 1);
      } finally {
        await fresh.drop();
      }
    });

    it('FUNCTION=collect answers /health/readiness, /health/liveness and /metrics', async () => {
      const fn = await start('collect');
      const ready = await waitForStatus(`${fn.url}/health/readiness`, fn.child, fn.output);
      assert.equal(ready.status, 200);
      assert.equal((await fetch(`${fn.url}/health/liveness`)).status, 200);
      const metrics = await (await fetch(`${fn.url}/metrics`)).text();
      assert.match(metrics, /^# TYPE faasbilling_events_accepted_total counter$/m);
    });

    it('FUNCTION=api answers /health/readiness and /api/v1/health, and serves the built dashboard at /', async () => {
      const api = await start('api');
      await waitForStatus(`${api.url}/health/readiness`, api.child, api.output);
      const health = await fetch(`${api.url}/api/v1/health`);
      assert.equal(health.status, 200);
      const page = await fetch(`${api.url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      const html = await page.text();
      assert.match(html, /<title>FaaS Billing<\/title>/);
      const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      assert.ok(script, 'the page loads a built script');
      assert.equal((await fetch(`${api.url}${script}`)).status, 200);
    });

    it('an unknown FUNCTION exits with a usage message instead of serving', async () => {
      const bad = await start('nope');
      const code = await new Promise<number | null>((resolve) => (bad.child.exitCode !== null ? resolve(bad.child.exitCode) : bad.child.once('exit', resolve)));
      assert.equal(code, 2);
      assert.match(bad.output(), /usage: run-function <collect\|/);
    });
  });
});
