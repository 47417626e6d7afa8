/**
 * The local broker of `npm start`, driven over real HTTP with real CloudEvents: it routes by the
 * Triggers' filters, retries per the delivery spec, dead-letters after the last retry with
 * Knative's error extensions, feeds replies back in, and fires PingSources.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { functionNames } from '../functions/index.js';
import { deployedFunctionNames } from '../functions/sources.js';
import { EventType } from '../src/contract/events.js';
import { backoffMs, pingEventType, pingSourceUri, startLocalBroker, triggerMatches, type LocalBroker } from '../src/local/broker.js';
import { loadEventing, parseIsoDuration, servableEventing, type Eventing } from '../src/local/manifests.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const silent = pino({ level: 'silent' });

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A subscriber: records what it receives and answers with `answer(n)` for the n-th request. */
class Sink {
  readonly received: Received[] = [];
  private server!: http.Server;
  url = '';
  constructor(private readonly answer: (n: number, req: Received) => { status: number; headers?: Record<string, string>; body?: string } = () => ({ status: 200 })) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const received = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.received.push(received);
        const { status, headers, body } = this.answer(this.received.length, received);
        res.writeHead(status, headers).end(body);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Waits until `count` requests have arrived. */
  async waitFor(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} deliveries, got ${this.received.length}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const manifests = (sinkNames: string[]): string => `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: { name: default }
spec:
  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.05S
    deadLetterSink: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: dls } }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: to-usage }
spec:
  broker: default
  filter: { attributes: { type: ${EventType.usage} } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: ${sinkNames[0]} } }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: to-flush }
spec:
  broker: default
  filter: { attributes: { type: ${EventType.bufferFlush} } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: ${sinkNames[1]} } }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: by-prefix }
spec:
  broker: default
  filters:
    - prefix: { type: acme. }
    - not: { exact: { source: /ignored } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: ${sinkNames[2]} } }
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: { name: tick }
spec:
  schedule: "0 0 1 1 *"
  data: '{"reason":"tick"}'
  sink: { ref: { apiVersion: eventing.knative.dev/v1, kind: Broker, name: default } }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: to-tick }
spec:
  broker: default
  filter: { attributes: { type: ${pingEventType}, source: ${pingSourceUri('test-ns', 'tick')} } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: ${sinkNames[1]} } }
`;

function binaryHeaders(type: string, id: string, source = '/test/broker'): Record<string, string> {
  return { 'ce-specversion': '1.0', 'ce-type': type, 'ce-source': source, 'ce-id': id, 'content-type': 'application/json' };
}

describe('local broker', () => {
  describe('manifest loading', () => {
    it('parses ISO 8601 durations and rejects what is not one', () => {
      assert.equal(parseIsoDuration('PT0.5S'), 500);
      assert.equal(parseIsoDuration('PT1M30S'), 90_000);
      assert.equal(parseIsoDuration('P1DT1H'), 90_000_000);
      assert.throws(() => parseIsoDuration('5s'), /ISO 8601/);
      assert.throws(() => parseIsoDuration('PT'), /ISO 8601/);
    });

    it('computes linear and exponential backoff per retry', () => {
      assert.deepEqual([1, 2, 3].map((n) => backoffMs({ backoffPolicy: 'linear', backoffDelay: 'PT0.5S' }, n)), [500, 1000, 1500]);
      assert.deepEqual([1, 2, 3, 4].map((n) => backoffMs({ backoffPolicy: 'exponential', backoffDelay: 'PT0.5S' }, n)), [500, 1000, 2000, 4000]);
    });

    it('reads the project eventing/ folder with its kustomize namespace and routes our types to our functions', async () => {
      const eventing = await loadEventing(path.join(root, 'eventing'));
      assert.ok(eventing.brokers.some((b) => b.metadata.name === 'default' && b.namespace === 'faas-billing'));
      const subscribersOf = (type: string, source = '/x'): string[] =>
        eventing.triggers
          .filter((t) => triggerMatches(t, { specversion: '1.0', id: '1', type, source }))
          .map((t) => t.spec.subscriber.ref?.name ?? '')
          .sort();
      assert.deepEqual(subscribersOf(EventType.usage), ['collect']);
      assert.deepEqual(subscribersOf(EventType.bufferFlush), ['save']);
      const tick = eventing.pingSources.find((p) => p.metadata.name === 'save-flush-tick');
      assert.ok(tick, 'the save-flush-tick PingSource exists');
      assert.deepEqual(subscribersOf(pingEventType, pingSourceUri(tick.namespace, tick.metadata.name)), ['save']);
      assert.deepEqual(subscribersOf(pingEventType, '/some/other/pingsource'), []);
    });

    it('locally, leaves out the Triggers and PingSources of functions that need a cluster (the scraper), and nothing else', async () => {
      const eventing = await loadEventing(path.join(root, 'eventing'));
      const local = servableEventing(eventing, new Set(functionNames));
      assert.deepEqual(local.skipped, ['Trigger scrape-tick (to scrape)', 'PingSource scrape-tick']);
      assert.ok(local.eventing.triggers.every((t) => t.spec.subscriber.ref && functionNames.includes(t.spec.subscriber.ref.name)));
      assert.equal(local.eventing.triggers.length, eventing.triggers.length - 1);
      assert.deepEqual(
        local.eventing.pingSources.map((p) => p.metadata.name),
        eventing.pingSources.map((p) => p.metadata.name).filter((name) => name !== 'scrape-tick'),
      );
      // with every deployed function running, everything is served
      const everything = servableEventing(eventing, new Set(deployedFunctionNames));
      assert.deepEqual(everything.skipped, []);
      assert.deepEqual(everything.eventing, eventing);
    });

    it('names the file, document and field of an invalid manifest', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'eventing-'));
      try {
        await writeFile(path.join(dir, 'bad.yaml'), 'apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: { name: t }\nspec: { broker: default }\n');
        await assert.rejects(loadEventing(dir), /bad\.yaml document 1 \(Trigger\): spec\.subscriber/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('delivery', function () {
    this.timeout(30_000);
    let dir: string;
    let eventing: Eventing;
    let broker: LocalBroker;
    const sinks: Record<string, Sink> = {};
    let failFirst = 0;

    before(async () => {
      sinks.usage = await new Sink((n) => (n <= failFirst ? { status: 503, body: 'not yet' } : { status: 202 })).start();
      // The flush subscriber replies with an event (as save does): the broker must route it on.
      sinks.flush = await new Sink((_n, req) =>
        req.headers['ce-type'] === pingEventType || req.headers['ce-type'] === EventType.bufferFlush
          ? { status: 200, headers: { ...binaryHeaders('acme.reply', `reply-${String(req.headers['ce-id'])}`) }, body: '{"ok":true}' }
          : { status: 200 },
      ).start();
      sinks.acme = await new Sink((_n, req) => (String(req.headers['ce-type']).endsWith('.fail') ? { status: 500, body: 'boom' } : String(req.headers['ce-type']).endsWith('.reject') ? { status: 400, body: 'no' } : { status: 200 })).start();
      sinks.dls = await new Sink().start();
      dir = await mkdtemp(path.join(os.tmpdir(), 'eventing-'));
      await writeFile(path.join(dir, 'all.yaml'), manifests(['usage-sink', 'flush-sink', 'acme-sink']));
      await writeFile(path.join(dir, 'kustomization.yaml'), 'namespace: test-ns\nresources: [all.yaml]\n');
      eventing = await loadEventing(dir);
      const byName: Record<string, string> = { 'usage-sink': sinks.usage.url, 'flush-sink': sinks.flush.url, 'acme-sink': sinks.acme.url, dls: sinks.dls.url };
      broker = await startLocalBroker({ eventing, port: 0, logger: silent, resolveSink: (d) => d.uri ?? (d.ref ? byName[d.ref.name] : undefined) });
    });

    after(async () => {
      await broker.close(1000);
      await Promise.all(Object.values(sinks).map((s) => s.close()));
      await rm(dir, { recursive: true, force: true });
    });

    it('routes each event by the Triggers filters, in binary mode, from binary, structured and batch input', async () => {
      const before = sinks.usage?.received.length ?? 0;
      let res = await fetch(broker.url, { method: 'POST', headers: binaryHeaders(EventType.usage, 'u-1'), body: '{"tenant_id":"demo"}' });
      assert.equal(res.status, 202);
      res = await fetch(`${broker.url}/test-ns/default`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify({ specversion: '1.0', type: EventType.usage, source: '/test/broker', id: 'u-2', data: { tenant_id: 'demo' } }),
      });
      assert.equal(res.status, 202);
      res = await fetch(broker.url, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents-batch+json' },
        body: JSON.stringify([3, 4].map((i) => ({ specversion: '1.0', type: EventType.usage, source: '/test/broker', id: `u-${i}`, data: { i } }))),
      });
      assert.equal(res.status, 202);
      // An event no Trigger wants goes nowhere.
      await fetch(broker.url, { method: 'POST', headers: binaryHeaders('other.type', 'o-1'), body: '{}' });
      await broker.idle();
      const got = sinks.usage?.received.slice(before) ?? [];
      assert.deepEqual(got.map((r) => r.headers['ce-id']).sort(), ['u-1', 'u-2', 'u-3', 'u-4']);
      for (const r of got) {
        assert.equal(r.headers['ce-type'], EventType.usage, 'delivered in binary mode');
        assert.ok(r.headers['ce-knativearrivaltime'], 'the broker stamps the arrival time');
      }
      assert.equal(sinks.acme?.received.length, 0);
    });

    it('matches the new filters dialect (prefix, not/exact)', async () => {
      await fetch(broker.url, { method: 'POST', headers: binaryHeaders('acme.created', 'a-1'), body: '{}' });
      await fetch(broker.url, { method: 'POST', headers: binaryHeaders('acme.created', 'a-2', '/ignored'), body: '{}' });
      await fetch(broker.url, { method: 'POST', headers: binaryHeaders('other.acme.created', 'a-3'), body: '{}' });
      await broker.idle();
      assert.deepEqual(sinks.acme?.received.map((r) => r.headers['ce-id']), ['a-1']);
    });

    it('retries a failing subscriber per the delivery spec and then delivers', async () => {
      const before = sinks.usage?.received.length ?? 0;
      failFirst = before + 2; // the next two attempts fail with 503, the third succeeds
      await fetch(broker.url, { method: 'POST', headers: binaryHeaders(EventType.usage, 'retry-1'), body: '{}' });
      await broker.idle();
      const attempts = sinks.usage?.received.slice(before).map((r) => r.headers['ce-id']);
      assert.deepEqual(attempts, ['retry-1', 'retry-1', 'retry-1']);
      assert.equal(sinks.dls?.received.length, 0, 'nothing dead-lettered when a retry succeeds');
    });

    it('dead-letters after the last retry with the Knative error extensions', async () => {
      const before = sinks.acme?.received.length ?? 0;
      await fetch(broker.url, { method: 'POST', headers: binaryHeaders('acme.fail', 'dead-1'), body: '{"n":1}' });
      await broker.idle();
      assert.equal((sinks.acme?.received.length ?? 0) - before, 3, 'first attempt + retry: 2');
      const letter = sinks.dls?.received.find((r) => r.headers['ce-id'] === 'dead-1');
      assert.ok(letter, 'the event reached the dead-letter sink');
      assert.equal(letter.headers['ce-type'], 'acme.fail');
      assert.equal(letter.headers['ce-knativeerrorcode'], '500');
      assert.equal(letter.headers['ce-knativeerrordest'], sinks.acme?.url);
      assert.equal(Buffer.from(String(letter.headers['ce-knativeerrordata']), 'base64').toString(), 'boom');
      assert.equal(letter.body, '{"n":1}');
    });

    it('does not retry an answer that retrying cannot fix (400), and dead-letters it at once', async () => {
      const before = sinks.acme?.received.length ?? 0;
      await fetch(broker.url, { method: 'POST', headers: binaryHeaders('acme.reject', 'dead-2'), body: '{}' });
      await broker.idle();
      assert.equal((sinks.acme?.received.length ?? 0) - before, 1);
      assert.equal(sinks.dls?.received.find((r) => r.headers['ce-id'] === 'dead-2')?.headers['ce-knativeerrorcode'], '400');
    });

    it('routes a subscriber reply back through the broker', async () => {
      const before = sinks.acme?.received.length ?? 0;
      await fetch(broker.url, { method: 'POST', headers: binaryHeaders(EventType.bufferFlush, 'flush-1'), body: '{}' });
      await broker.idle();
      assert.deepEqual(sinks.acme?.received.slice(before).map((r) => r.headers['ce-id']), ['reply-flush-1']);
    });

    it('fires a PingSource with its data and Knative source, on demand and over HTTP', async () => {
      const before = sinks.flush?.received.length ?? 0;
      broker.firePingSource('tick');
      const res = await fetch(`${broker.url}/_local/pingsources/tick`, { method: 'POST' });
      assert.equal(res.status, 202);
      await broker.idle();
      const pings = sinks.flush?.received.slice(before) ?? [];
      assert.equal(pings.length, 2);
      for (const ping of pings) {
        assert.equal(ping.headers['ce-type'], pingEventType);
        assert.equal(ping.headers['ce-source'], pingSourceUri('test-ns', 'tick'));
        assert.deepEqual(JSON.parse(ping.body), { reason: 'tick' });
      }
      assert.throws(() => broker.firePingSource('nope'), /no PingSource named nope/);
    });

    it('fires a PingSource on its cron schedule', async () => {
      const everySecond: Eventing = {
        ...eventing,
        pingSources: eventing.pingSources.map((p) => ({ ...p, spec: { ...p.spec, schedule: '* * * * * *' } })),
      };
      const sink = sinks.flush as Sink;
      const before = sink.received.length;
      const scheduled = await startLocalBroker({ eventing: everySecond, port: 0, logger: silent, resolveSink: () => sink.url });
      try {
        await sink.waitFor(before + 1, 5000);
      } finally {
        await scheduled.close(1000);
      }
      assert.equal(sink.received[before]?.headers['ce-type'], pingEventType);
    });

    it('answers bad input with problem+json and keeps the good events of a batch', async () => {
      const problem = async (res: Response, status: number): Promise<Record<string, unknown>> => {
        assert.equal(res.status, status);
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
        return (await res.json()) as Record<string, unknown>;
      };
      await problem(await fetch(broker.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }), 415);
      await problem(await fetch(broker.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: '{not json' }), 400);
      await problem(await fetch(broker.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0","id":"x"}' }), 422);
      await problem(await fetch(broker.url, { method: 'POST', headers: binaryHeaders(EventType.usage, 'big'), body: 'x'.repeat(9 * 1024 * 1024) }), 413);
      const before = sinks.usage?.received.length ?? 0;
      const body = await problem(
        await fetch(broker.url, {
          method: 'POST',
          headers: { 'content-type': 'application/cloudevents-batch+json' },
          body: JSON.stringify([{ specversion: '1.0', type: EventType.usage, source: '/t', id: 'good-1' }, { id: 'bad' }, { specversion: '1.0', type: EventType.usage, source: '/t', id: 'good-2' }]),
        }),
        422,
      );
      assert.equal(body.accepted, 2);
      assert.equal(body.rejected, 1);
      assert.deepEqual((body.errors as { index: number }[]).map((e) => e.index), [1]);
      await broker.idle();
      assert.deepEqual(sinks.usage?.received.slice(before).map((r) => r.headers['ce-id']).sort(), ['good-1', 'good-2']);
      // Still serving after all that.
      assert.equal((await fetch(broker.url, { method: 'POST', headers: binaryHeaders(EventType.usage, 'after'), body: '{}' })).status, 202);
    });
  });
});
