/**
 * Metering bench: what the middleware costs a function. The same hello function served by
 * faas-js-runtime three ways — bare, metered into a sink that answers, metered into a sink that
 * never answers (a broker outage) — under the same load (autocannon, in this process for all three,
 * so the ratios compare like with like). The sink is another process, as a broker would be.
 * Targets: metering adds at most 100 µs per request (CPU of measuring, queueing and sending in
 * batches), and a broker outage keeps ≥ 80% of the bare throughput with the queue at its bound.
 * `npx tsx bench/metering.ts` runs it alone; BENCH_METER_SECONDS sets the seconds per case.
 */
import autocannon from 'autocannon';
import faas from 'faas-js-runtime';
import type { Server } from 'node:http';
import { greet } from '../functions/hello/index.js';
import { loadMeteringConfig } from '../src/metering/config.js';
import { Meter } from '../src/metering/meter.js';
import { spawn } from 'node:child_process';
import { freePort } from '../test/support/net.js';
import { envInt } from './support/env.js';
import { check, formatRate, verdict } from './support/report.js';

interface Case {
  requestsPerSecond: number;
  p99Ms: number;
  non2xx: number;
}

async function serve(handle: Parameters<typeof faas.start>[0]): Promise<{ url: string; server: Server }> {
  const port = await freePort();
  const server = await faas.start(handle, { port, logLevel: 'silent' } as unknown as Parameters<typeof faas.start>[1]);
  return { url: `http://127.0.0.1:${port}/`, server };
}

async function load(url: string, seconds: number): Promise<Case> {
  await autocannon({ url, connections: 10, duration: 1 });
  const result = await autocannon({ url, connections: 10, duration: seconds });
  return { requestsPerSecond: result.requests.average, p99Ms: result.latency.p99, non2xx: result.non2xx + result.errors };
}

// A sink in its own process: answers 202 to each batch and counts its events ("ok"), or never answers ("hang").
const sinkScript = `
const mode = process.argv[1];
let events = 0;
const server = require('node:http').createServer((req, res) => {
  if (req.method === 'GET') return res.end(String(events));
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => { if (mode === 'hang') return; events += JSON.parse(body).length; res.writeHead(202).end(); });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

async function startSinkProcess(mode: 'ok' | 'hang'): Promise<{ url: string; events(): Promise<number>; stop(): void }> {
  const child = spawn(process.execPath, ['-e', sinkScript, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
  const url = `http://127.0.0.1:${port}/`;
  return { url, events: async () => Number(await (await fetch(url)).text()), stop: () => void child.kill() };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Runs the section, logging figures and verdicts with `log`. */
export async function run(log: (line: string) => void): Promise<void> {
  const seconds = envInt('BENCH_METER_SECONDS', 5);
  log(`hello under 10 connections, ${seconds} s per case after a 1 s warm-up`);

  const bare = await serve({ handle: greet });
  const bareCase = await load(bare.url, seconds);
  await close(bare.server);

  const cases: Record<string, Case> = {};
  const maxQueue = 1000;
  for (const sinkMode of ['ok', 'hang'] as const) {
    const sink = await startSinkProcess(sinkMode);
    const meter = new Meter({
      config: loadMeteringConfig({ K_SINK: sink.url, K_SERVICE: 'hello', METERING_SINK_MODE: 'batch', METERING_MAX_QUEUE: String(maxQueue), METERING_TIMEOUT_MS: '600000' }),
    });
    const metered = await serve({ handle: meter.wrap(greet) });
    cases[sinkMode] = await load(metered.url, seconds);
    const queued = meter.emitter.queued;
    await close(metered.server);
    if (sinkMode === 'hang') {
      sink.stop();
      await meter.close(1000);
      log(`  outage: ${queued} reports queued at the end (bound ${maxQueue}); the rest were dropped and counted`);
    } else {
      await meter.close(5000);
      log(`  sink answering: ${(await sink.events()).toLocaleString('en-US')} reports received`);
      sink.stop();
    }
  }
  const ok = cases.ok!;
  const hang = cases.hang!;
  for (const [name, c] of [['bare', bareCase], ['metered', ok], ['metered, broker down', hang]] as const) {
    log(`  ${name.padEnd(22)} ${formatRate(c.requestsPerSecond).padStart(10)}  p99 ${c.p99Ms} ms  non-2xx ${c.non2xx}`);
  }
  // An empty function makes the middleware's share look large; what it adds per request is the figure that carries over.
  const costUs = (1e6 / ok.requestsPerSecond - 1e6 / bareCase.requestsPerSecond);
  log(`  metered / bare throughput: ${(ok.requestsPerSecond / bareCase.requestsPerSecond).toFixed(2)}× (an empty function: ${(1e6 / bareCase.requestsPerSecond).toFixed(0)} µs per request bare)`);
  log(check('metering cost per request (measure, queue, send in batches)', costUs <= 100, `${costUs.toFixed(0)} µs (target ≤ 100 µs)`));
  log(verdict('metered with the broker down / bare throughput', hang.requestsPerSecond / bareCase.requestsPerSecond, 0.8));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run(console.log);
  process.exit(0);
}
