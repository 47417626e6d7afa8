/** Starting reference workloads for tests: in this process, or as their own process (as a pod runs them). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Registry } from 'prom-client';
import { workloads } from '../../functions/workloads.js';
import type { RunningWorkload } from '../../src/metering/workload.js';
import { eventually } from './eventually.js';
import { freePort } from './net.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Serves workload `name` in this process on a free port; returns it with its URL. */
export async function serveWorkload(name: string, env: Record<string, string>): Promise<RunningWorkload & { url: string }> {
  const workload = workloads[name];
  if (!workload) throw new Error(`no workload ${name}`);
  const port = await freePort();
  const running = await workload.serve(port, env);
  return Object.assign(running, { url: `http://127.0.0.1:${port}` });
}

/** Runs workload `name` as its own process (`run-function <name>`), ready to serve. */
export async function spawnWorkload(name: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/runtime/run-function.ts'), name], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited: ${output}`);
      return fetch(`${url}/health/readiness`).then((r) => r.ok, () => false);
    },
    60_000,
    `${name} to serve`,
  );
  return { url, child, output: () => output };
}

/** The value of a counter or gauge in `registry` for the given labels (0 when never set). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return match?.value ?? 0;
}
