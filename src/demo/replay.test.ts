/**
 * Replay over real HTTP: against a small receiver started here (to script 503/429/422 answers), and
 * against the real collect function with its PostgreSQL buffer.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PostgresQueueBuffer } from '../adapters/buffer/postgres-queue.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { createCollect } from '../../functions/collect/index.js';
import { loadAzureTrace, type AzureTrace } from './trace.js';
import { generateUsageEvents, type UsageCloudEvent, type WorkloadOptions } from './workload.js';
import { ReplayError, replayEvents, type ReplayProgress } from './replay.js';

interface Received {
  contentType: string | undefined;
  ids: string[];
}

interface Scripted {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** A receiver that answers request n with `answer(n, ids)` (202 when undefined) and records what it took. */
async function startReceiver(answer: (request: number, ids: string[]) => Scripted | undefined) {
  const accepted: Received[] = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const batch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string }[];
      const ids = batch.map((e) => e.id);
      const scripted = answer(requests++, ids);
      if (!scripted || scripted.status < 300) accepted.push({ contentType: req.headers['content-type'], ids });
      res.writeHead(scripted?.status ?? 202, scripted?.headers ?? {});
      res.end(scripted?.body === undefined ? '' : JSON.stringify(scripted.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    accepted,
    requests: () => requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const fakeEvents = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `e-${i}`, source: '/test', type: 'faasbilling.usage.v1', specversion: '1.0' }));

describe('demo replay', function () {
  it('delivers every event exactly once, retrying a 503 and a 429 with Retry-After', async function () {
    const receiver = await startReceiver((request): Scripted | undefined =>
      request === 0
        ? { status: 503, headers: { 'content-type': 'application/problem+json' }, body: { title: 'buffer unavailable', status: 503, detail: 'retry later' } }
        : request === 1
          ? { status: 429, headers: { 'retry-after': '0' } }
          : undefined,
    );
    try {
      const events = fakeEvents(2345);
      const progress: ReplayProgress[] = [];
      const totals = await replayEvents(events, {
        url: receiver.url,
        batchSize: 500,
        concurrency: 3,
        initialBackoffMs: 1,
        total: events.length,
        onProgress: (p) => progress.push(p),
      });
      const delivered = receiver.accepted.flatMap((r) => r.ids);
      assert.equal(delivered.length, events.length);
      assert.deepEqual(new Set(delivered), new Set(events.map((e) => e.id)));
      for (const r of receiver.accepted) {
        assert.equal(r.contentType, 'application/cloudevents-batch+json');
        assert.ok(r.ids.length <= 500);
      }
      assert.equal(totals.events, 2345);
      assert.equal(totals.accepted, 2345);
      assert.equal(totals.rejected, 0);
      assert.equal(totals.retries, 2);
      assert.equal(totals.requests, 5 + 2);
      assert.equal(receiver.requests(), 7);
      assert.deepEqual(progress.at(-1), { done: 2345, total: 2345, accepted: 2345, rejected: 0, retries: 2 });
    } finally {
      await receiver.close();
    }
  });

  it('counts the events a 422 lists as rejected, the rest as accepted, and does not resend them', async function () {
    const receiver = await startReceiver((_request, ids) =>
      ids.includes('e-3')
        ? {
            status: 422,
            headers: { 'content-type': 'application/problem+json' },
            body: {
              title: 'invalid events',
              status: 422,
              detail: '2 of 10 events were rejected',
              accepted: 8,
              rejected: 2,
              errors: [
                { index: 3, reason: 'too_old', detail: 'time is more than 35 days old' },
                { index: 7, reason: 'invalid_data', detail: 'memory_mb: too big' },
              ],
            },
          }
        : { status: 202, body: { accepted: ids.length, duplicates: 1, rejected: 0 } },
    );
    try {
      const totals = await replayEvents(fakeEvents(30), { url: receiver.url, batchSize: 10, concurrency: 2 });
      assert.equal(receiver.requests(), 3);
      assert.equal(totals.rejected, 2);
      assert.equal(totals.accepted, 28);
      assert.equal(totals.duplicates, 2, 'the two 202 summaries each reported one repeat');
      assert.deepEqual(
        totals.rejections.map((r) => [r.id, r.status, r.reason]),
        [
          ['e-3', 422, 'too_old'],
          ['e-7', 422, 'invalid_data'],
        ],
      );
    } finally {
      await receiver.close();
    }
  });

  it('a refused batch (413) is counted as rejected with its reason, and the replay goes on', async function () {
    const receiver = await startReceiver((request) =>
      request === 0 ? { status: 413, headers: { 'content-type': 'application/problem+json' }, body: { title: 'batch too large', detail: 'split it' } } : undefined,
    );
    try {
      const totals = await replayEvents(fakeEvents(20), { url: receiver.url, batchSize: 10, concurrency: 1 });
      assert.equal(totals.rejected, 10);
      assert.equal(totals.accepted, 10);
      assert.deepEqual(totals.rejections, [{ status: 413, reason: 'batch too large', detail: 'split it' }]);
    } finally {
      await receiver.close();
    }
  });

  it('stops with a ReplayError carrying the totals when the receiver stays unavailable', async function () {
    const receiver = await startReceiver((request) => (request === 0 ? undefined : { status: 503 }));
    try {
      await assert.rejects(
        replayEvents(fakeEvents(30), { url: receiver.url, batchSize: 10, concurrency: 1, maxRetries: 2, initialBackoffMs: 1 }),
        (err: unknown) => {
          assert.ok(err instanceof ReplayError);
          assert.match(err.message, /HTTP 503.*after 2 retries/);
          assert.equal(err.totals.accepted, 10);
          assert.equal(err.totals.retries, 2);
          assert.equal(err.totals.requests, 4);
          return true;
        },
      );
      assert.equal(receiver.requests(), 4, 'no batch is sent after the failing one');
    } finally {
      await receiver.close();
    }
  });

  describe('to the real collect function', function () {
    let database: TestDatabase;
    let collect: RunningFunction;
    let trace: AzureTrace;

    before(async function () {
      trace = await loadAzureTrace();
      database = await freshDatabase();
      collect = await startFunction('collect', createCollect, { DATABASE_URL: database.url, COLLECT_FLUSH_EVERY_EVENTS: '100' });
    });
    after(async function () {
      await collect.close();
      await database.drop();
    });

    it('a generated workload is accepted whole; replayed again with more, only the new events are buffered', async function () {
      const quiet = { ...trace, functions: trace.functions.filter((f) => f.invocationsPerMinute.reduce((a, b) => a + b, 0) <= 2000) };
      const options: WorkloadOptions = {
        tenants: [
          { id: 'acme', timezone: 'Europe/Berlin' },
          { id: 'globex', timezone: 'America/New_York' },
        ],
        end: new Date(),
        days: 0.25,
        seed: 9,
        servicesPerTenant: 3,
      };
      const events: UsageCloudEvent[] = [...generateUsageEvents(quiet, options)];
      assert.ok(events.length > 200, `${events.length} events`);

      // Past 100 new events collect answers with a flush request and its summary in a header: both forms are read.
      const half = Math.floor(events.length / 2);
      const first = await replayEvents(events.slice(0, half), { url: collect.url, batchSize: 500, concurrency: 2 });
      assert.deepEqual([first.accepted, first.rejected, first.duplicates], [half, 0, 0], JSON.stringify(first.rejections));
      const again = await replayEvents(events, { url: collect.url, batchSize: 500, concurrency: 2 });
      assert.deepEqual([again.accepted, again.rejected, again.duplicates], [events.length, 0, half]);

      const buffer = new PostgresQueueBuffer(database.db);
      const buffered: string[] = [];
      let invocations = 0;
      for (let batch = await buffer.readNew('replay-test', 100); batch.length; batch = await buffer.readNew('replay-test', 100)) {
        for (const record of batch.flatMap((b) => b.records)) {
          buffered.push(record.id);
          invocations += record.invocations;
        }
      }
      assert.equal(buffered.length, events.length);
      assert.deepEqual(new Set(buffered), new Set(events.map((e) => e.id)));
      assert.equal(invocations, events.reduce((sum, e) => sum + (e.data.invocations ?? 1), 0));
    });
  });
});
