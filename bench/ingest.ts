/**
 * Benchmark of the ingest path (collect → Redis → save → usage_raw), each stage against a
 * baseline measured in the same run on the same machine:
 *  1. storage: raw COPY of N rows into usage_raw vs the save stage draining N events from Redis;
 *  2. HTTP: a bare fastify endpoint vs collect (single binary events, batches of 100 and 1000);
 *  3. end to end: collect and save at the same time for a minute, then stored == accepted.
 * Runs on its own database (created, migrated, dropped) and its own Redis streams.
 * Standalone: `npx tsx bench/ingest.ts`; also a section of `npm run bench`.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { migrationNames } from '../schema/migrate.js';
import { RedisStreamBuffer } from '../src/adapters/buffer/redis.js';
import type { Db } from '../src/adapters/postgres.js';
import { UsageStore, usageRawColumns } from '../src/adapters/usage-store.js';
import { forkBench, type Child } from './support/child.js';
import { checkpoint, createBenchDatabase } from './support/database.js';
import { benchEnv, envInt, type BenchEnv } from './support/env.js';
import type { LoadResult, LoadSpec } from './support/load-spec.js';
import { check, formatCount, formatRate, perSecond, verdict } from './support/report.js';
import type { SaveWorkerArgument, SaveWorkerTotals } from './support/save-worker.js';
import { startBareFastify, startCollect, startEmptyFunction, type CollectUnderTest, type ServerUnderTest } from './support/servers.js';
import { copyLineOf, seedCatalogue, usageRecordOf, type CatalogueIds } from './support/workload.js';

type Log = (line: string) => void;

interface Settings {
  events: number;
  httpSeconds: number;
  httpRounds: number;
  e2eSeconds: number;
  /** Where the save worker writes a CPU profile (BENCH_PROFILE_DIR), to see what bounds it. */
  profileDir: string | undefined;
  /** The phases to run (BENCH_INGEST_PHASES, comma-separated; all by default). */
  phases: Set<Phase>;
}

const phases = ['storage', 'http', 'e2e'] as const;
type Phase = (typeof phases)[number];

function phasesOf(value: string | undefined): Set<Phase> {
  if (!value) return new Set(phases);
  const asked = value.split(',').map((p) => p.trim());
  const unknown = asked.filter((p) => !(phases as readonly string[]).includes(p));
  if (unknown.length) throw new Error(`BENCH_INGEST_PHASES: unknown phase ${unknown.join(', ')}; choose from ${phases.join(', ')}`);
  return new Set(asked as Phase[]);
}

interface Context {
  env: BenchEnv;
  settings: Settings;
  databaseUrl: string;
  db: Db;
  ids: CatalogueIds;
  redis: Redis;
  /** The raw COPY rate of phase 1, when it ran: the yardstick for the end-to-end rate. */
  copyRate?: number;
  /** A fresh Redis stream key, deleted at the end of the run. */
  stream(purpose: string): string;
  log: Log;
}

const runId = randomBytes(4).toString('hex');

async function countRows(db: Db, source: string): Promise<number> {
  const [row] = await db('usage_raw').where({ source }).count<{ count: string }[]>({ count: '*' });
  return Number(row?.count ?? 0);
}

// ── 1. storage: raw COPY vs save ────────────────────────────────────────────────────────────

/**
 * Streams `events` rows into usage_raw with one COPY (one backend, one transaction), after a
 * one-row COPY that warms the connection up as save's warm-up drain does.
 */
async function copyRows(ctx: Context, source: string, baseMs: number): Promise<number> {
  const client = new pg.Client({ connectionString: ctx.databaseUrl });
  await client.connect();
  const copy = (lines: Iterable<string>) => pipeline(Readable.from(lines), client.query(copyFrom(`COPY usage_raw (${usageRawColumns}) FROM STDIN`)));
  try {
    await copy([`${copyLineOf(usageRecordOf(0, `${source}/warmup`, baseMs), ctx.ids)}\n`]);
    const linesPerChunk = 1000;
    const { events } = ctx.settings;
    const chunks = function* (): Generator<string> {
      for (let start = 0; start < events; start += linesPerChunk) {
        const lines: string[] = [];
        for (let i = start; i < Math.min(events, start + linesPerChunk); i += 1) lines.push(copyLineOf(usageRecordOf(i, source, baseMs), ctx.ids));
        yield `${lines.join('\n')}\n`;
      }
    };
    const started = performance.now();
    await copy(chunks());
    return performance.now() - started;
  } finally {
    await client.end();
  }
}

/**
 * Runs `use` with a save worker on `stream`, warmed up first: it stores a few records of
 * `warmupSource` (resolving the catalogue's ids, opening its connections) before any clock starts.
 * The worker is killed if `use` fails.
 */
async function withSaveWorker<T>(ctx: Context, stream: string, mode: SaveWorkerArgument['mode'], warmupSource: string, use: (worker: Child) => Promise<T>): Promise<T> {
  const arg: SaveWorkerArgument = { databaseUrl: ctx.databaseUrl, redisUrl: ctx.env.redisUrl, stream, mode };
  const worker = forkBench('support/save-worker.ts', arg, { cpuProfileDir: ctx.settings.profileDir });
  try {
    await worker.next('ready');
    const buffer = RedisStreamBuffer.connect(ctx.env.redisUrl, stream);
    try {
      await buffer.append(Array.from({ length: 100 }, (_, i) => usageRecordOf(i, warmupSource, Date.now() - 60_000)));
    } finally {
      await buffer.close();
    }
    worker.send({ type: 'warmup' });
    await worker.next('warm');
    return await use(worker);
  } finally {
    worker.kill();
  }
}

/** Lets the worker finish ("finish" in mode until-finish) and waits for its totals. */
async function finishSaveWorker(worker: Child): Promise<SaveWorkerTotals> {
  worker.send({ type: 'finish' });
  const totals = await worker.next<SaveWorkerTotals>('done');
  await worker.stop();
  return totals;
}

async function storagePhase(ctx: Context): Promise<void> {
  const { db, log } = ctx;
  const { events } = ctx.settings;
  const baseMs = Date.now() - 15 * 60_000;
  const copySource = `/bench/${runId}/copy`;
  const saveSource = `/bench/${runId}/save`;
  // Both phases write into the same month partition(s); creating them is not part of either.
  await new UsageStore(db).ensurePartitions([usageRecordOf(0, copySource, baseMs), usageRecordOf(Math.min(events, 600_000) - 1, copySource, baseMs)]);

  log(`1. storage: ${formatCount(events)} usage events into usage_raw`);
  await checkpoint(db);
  const copyMs = await copyRows(ctx, copySource, baseMs);
  const copied = await countRows(db, copySource);
  if (copied !== events) throw new Error(`COPY stored ${copied} rows, expected ${events}`);
  const copyRate = perSecond(events, copyMs);
  ctx.copyRate = copyRate;
  log(`   raw COPY (baseline)           ${formatRate(copyRate).padStart(12)}   ${(copyMs / 1000).toFixed(1)} s`);
  // Save starts from the same empty table, so neither pays for the other's rows.
  await db.raw('TRUNCATE usage_raw');

  const stream = ctx.stream('save');
  const { entries, totals } = await withSaveWorker(ctx, stream, 'until-empty', `${saveSource}/warmup`, async (worker) => {
    const buffer = RedisStreamBuffer.connect(ctx.env.redisUrl, stream);
    try {
      const prefillChunk = 5000;
      for (let start = 0; start < events; start += prefillChunk) {
        const records = [];
        for (let i = start; i < Math.min(events, start + prefillChunk); i += 1) records.push(usageRecordOf(i, saveSource, baseMs));
        await buffer.append(records);
      }
      const prefilled = (await buffer.stats()).length;
      await checkpoint(db);
      worker.send({ type: 'go' });
      return { entries: prefilled, totals: await finishSaveWorker(worker) };
    } finally {
      await buffer.close();
    }
  });
  const saved = await countRows(db, saveSource);
  const saveRate = perSecond(totals.inserted, totals.elapsedMs);
  log(
    `   save stage (Redis → usage_raw) ${formatRate(saveRate).padStart(12)}   ${(totals.elapsedMs / 1000).toFixed(1)} s` +
      `   (${formatCount(entries)} stream entries, ${totals.transactions} transactions of ~${formatCount(totals.inserted / Math.max(1, totals.transactions))} rows)`,
  );
  const { readMs, storeMs, ackMs, claimMs } = totals.phases;
  const share = (ms: number): string => `${Math.round((100 * ms) / totals.elapsedMs)}%`;
  log(`   save's time: store transactions ${share(storeMs)}, stream reads + decoding ${share(readMs)}, acks ${share(ackMs)}, claims ${share(claimMs)}`);
  log(check('save stored every event once', saved === events && totals.duplicates === 0, `${formatCount(saved)} rows for ${formatCount(events)} events, ${totals.duplicates} duplicates, ${totals.deadLettered} dead letters`));
  log(verdict('save / raw COPY', saveRate / copyRate, 0.7));
}

// ── 2. HTTP: bare fastify vs collect ────────────────────────────────────────────────────────

/** Runs the load generator against `url`; resolves when it reports the measured run. */
async function runLoad(spec: LoadSpec, onMeasuring?: () => void): Promise<LoadResult> {
  const generator = forkBench('support/load-generator.ts', spec);
  try {
    await generator.next('ready');
    generator.send({ type: 'go' });
    await generator.next('measuring');
    onMeasuring?.();
    return await generator.next<LoadResult>('result');
  } finally {
    await generator.stop();
  }
}

interface HttpCase {
  label: string;
  start: () => Promise<ServerUnderTest>;
  mode: LoadSpec['mode'];
  batchSize: number;
  connections: number;
}

/** Runs one case once: a fresh server, warm-up, the measured run, the server closed. */
async function runCase(c: HttpCase, seconds: number): Promise<LoadResult> {
  const server = await c.start();
  try {
    return await runLoad({
      url: server.url,
      mode: c.mode,
      batchSize: c.batchSize,
      source: `/bench/${runId}/http`,
      connections: c.connections,
      durationSeconds: seconds,
      warmupSeconds: 2,
    });
  } finally {
    await server.close();
  }
}

async function httpPhase(ctx: Context): Promise<void> {
  const { log } = ctx;
  const { httpSeconds, httpRounds } = ctx.settings;
  // collect buffers into a stream of its own, deleted when the case ends (nothing drains it).
  const collectOn = (purpose: string) => async (): Promise<ServerUnderTest> => {
    const stream = ctx.stream(purpose);
    const collect = await startCollect(ctx.env.redisUrl, stream);
    return {
      url: collect.url,
      async close() {
        await collect.close();
        await ctx.redis.del(stream);
      },
    };
  };
  const baselineLabel = 'bare fastify 202 (baseline)';
  const runtimeLabel = 'faas-js-runtime, empty handler';
  const singleLabel = 'collect, single binary event';
  const cases: HttpCase[] = [
    { label: baselineLabel, start: startBareFastify, mode: 'binary', batchSize: 1, connections: 32 },
    { label: runtimeLabel, start: startEmptyFunction, mode: 'binary', batchSize: 1, connections: 32 },
    { label: singleLabel, start: collectOn('http-single'), mode: 'binary', batchSize: 1, connections: 32 },
    { label: 'collect, batches of 100', start: collectOn('http-batch-100'), mode: 'batch', batchSize: 100, connections: 8 },
    { label: 'collect, batches of 1000', start: collectOn('http-batch-1000'), mode: 'batch', batchSize: 1000, connections: 4 },
  ];
  log(`2. HTTP: ${httpSeconds} s per case after a 2 s warm-up, best of ${httpRounds} round${httpRounds === 1 ? '' : 's'}; load from a child process (autocannon)`);
  // Cases take turns round by round, so a burst of load from elsewhere on the machine does not
  // fall on one case only; each case keeps its best round.
  const best = new Map<string, LoadResult>();
  const rateOf = (result: LoadResult | undefined): number => (result ? result.ok / result.durationSeconds : 0);
  let failed = 0;
  for (let round = 0; round < httpRounds; round += 1) {
    for (const c of cases) {
      const result = await runCase(c, httpSeconds);
      failed += result.non2xx + result.errors;
      if (result.non2xx + result.errors > 0) log(`   ${c.label}: ${result.non2xx} non-2xx answers, ${result.errors} errors (${result.timeouts} timeouts)`);
      if (rateOf(result) > rateOf(best.get(c.label))) best.set(c.label, result);
    }
  }
  for (const c of cases) {
    const result = best.get(c.label);
    if (!result) continue;
    log(
      `   ${c.label.padEnd(30)} ${formatRate(rateOf(result)).padStart(9)} req  ${formatRate(rateOf(result) * c.batchSize).padStart(10)} events` +
        `   p50 ${result.latencyP50Ms} ms, p99 ${result.latencyP99Ms} ms, ${c.connections} connections`,
    );
  }
  log(check('every HTTP request answered 2xx', failed === 0, `${failed} failed requests`));
  const baseline = rateOf(best.get(baselineLabel));
  if (baseline > 0) {
    log(`   the runtime alone (faas-js-runtime + our host, empty handler) reaches ${(rateOf(best.get(runtimeLabel)) / baseline).toFixed(2)}× fastify`);
    log(verdict('collect single / bare fastify', rateOf(best.get(singleLabel)) / baseline, 0.6));
  }
}

// ── 3. end to end: collect and save together ────────────────────────────────────────────────

/**
 * Loads collect with batches for `seconds` while the worker saves; resolves when the load has
 * stopped and collect is closed, with the measured run and the database time it stopped at.
 */
async function loadWhileSaving(ctx: Context, collect: CollectUnderTest, worker: Child, spec: LoadSpec) {
  try {
    await checkpoint(ctx.db);
    worker.send({ type: 'go' });
    let loadStarted = 0;
    const result = await runLoad(spec, () => (loadStarted = performance.now()));
    const loadMs = performance.now() - loadStarted;
    // Rows committed by the time the load stopped, by the database's own clock (received_at is
    // the inserting transaction's start, so at most one batch of rows is counted early).
    const { rows } = await ctx.db.raw<{ rows: { at: Date }[] }>('SELECT clock_timestamp() AS at');
    return { result, loadMs, stoppedAt: rows[0]?.at ?? new Date() };
  } finally {
    await collect.close();
  }
}

async function endToEndPhase(ctx: Context): Promise<void> {
  const { db, log } = ctx;
  const { e2eSeconds } = ctx.settings;
  const source = `/bench/${runId}/e2e`;
  const stream = ctx.stream('e2e');
  const batchSize = 1000;
  log(`3. end to end: batches of ${batchSize} → collect → Redis → save → usage_raw, ${e2eSeconds} s, collect and save at once`);
  const collect = await startCollect(ctx.env.redisUrl, stream);
  const spec: LoadSpec = { url: collect.url, mode: 'batch', batchSize, source, connections: 4, durationSeconds: e2eSeconds };
  const run = await withSaveWorker(ctx, stream, 'until-finish', `${source}/warmup`, async (worker) => {
    const load = await loadWhileSaving(ctx, collect, worker, spec);
    const drainStarted = performance.now();
    const totals = await finishSaveWorker(worker);
    return { ...load, totals, tailMs: performance.now() - drainStarted };
  });
  const { result, loadMs, stoppedAt, totals, tailMs } = run;
  const accepted = await collect.accepted();
  const [counts] = await db('usage_raw')
    .where({ source })
    .select<{ stored: string; during_load: string }[]>(db.raw('count(*) AS stored'), db.raw('count(*) FILTER (WHERE received_at <= ?) AS during_load', [stoppedAt]));
  const stored = Number(counts?.stored ?? 0);
  const storedDuringLoad = Number(counts?.during_load ?? 0);
  const acceptedRate = perSecond(accepted, loadMs);
  const storedRate = perSecond(storedDuringLoad, loadMs);
  log(`   accepted by collect   ${formatRate(acceptedRate).padStart(10)}   ${formatCount(accepted)} events (${formatCount(result.ok)} batches answered 202, ${result.non2xx + result.errors} failed)`);
  log(`   stored while loading  ${formatRate(storedRate).padStart(10)}   ${formatCount(storedDuringLoad)} rows; the rest (${formatCount(stored - storedDuringLoad)}) stored in the ${(tailMs / 1000).toFixed(1)} s after it stopped`);
  if (ctx.copyRate) log(`   stored while loading = ${(storedRate / ctx.copyRate).toFixed(2)}× the raw COPY rate of phase 1 (${formatRate(ctx.copyRate)})`);
  log(check('end to end: stored == accepted (no loss, no duplicates)', stored === accepted && totals.duplicates === 0, `${formatCount(stored)} rows, ${formatCount(accepted)} accepted, ${totals.duplicates} duplicates dropped by save`));
  log(verdict('end to end, sustained (min of accepted and stored)', Math.min(acceptedRate, storedRate), 50_000, formatRate));
}

// ── the section ─────────────────────────────────────────────────────────────────────────────

/** Runs the ingest benchmark, writing its report through `log`. */
export async function run(log: Log): Promise<void> {
  const env = benchEnv();
  const settings: Settings = {
    events: envInt('BENCH_EVENTS', 200_000),
    httpSeconds: envInt('BENCH_HTTP_SECONDS', 10),
    httpRounds: envInt('BENCH_HTTP_ROUNDS', 2),
    e2eSeconds: envInt('BENCH_E2E_SECONDS', 60),
    profileDir: process.env.BENCH_PROFILE_DIR || undefined,
    phases: phasesOf(process.env.BENCH_INGEST_PHASES),
  };
  const database = await createBenchDatabase(env.databaseUrl);
  const redis = new Redis(env.redisUrl);
  const streams: string[] = [];
  try {
    log(`database ${database.name} (migrations ${migrationNames.join(', ')}), Redis streams faasbilling:bench:${runId}:*`);
    const ctx: Context = {
      env,
      settings,
      databaseUrl: database.url,
      db: database.db,
      ids: await seedCatalogue(database.db),
      redis,
      stream: (purpose) => {
        const key = `faasbilling:bench:${runId}:${purpose}`;
        streams.push(key);
        return key;
      },
      log,
    };
    if (settings.phases.has('storage')) await storagePhase(ctx);
    if (settings.phases.has('http')) await httpPhase(ctx);
    if (settings.phases.has('e2e')) await endToEndPhase(ctx);
  } finally {
    if (streams.length) await redis.del(...streams);
    await redis.quit();
    await database.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // Explicit exit codes: faas-js-runtime's uncaught-exception handler would otherwise exit with 0.
  run((line) => console.log(line)).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
