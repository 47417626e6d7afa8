/**
 * Events the API causes (real HTTP, PostgreSQL): a bill finalized or marked paid through the API
 * reaches the Broker (K_SINK, here a real local HTTP receiver) as a binary-mode
 * faasbilling.bill.generated.v1, once per state change; a Broker that stays down fails nothing
 * and is counted in faasbilling_api_events_failed_total.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { draftBill, startTestApi, type TestApi } from './support/api.js';

interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('events the API sends to the Broker', function () {
  this.timeout(60_000);
  let api: TestApi;
  let receiver: Server;
  const received: Received[] = [];
  /** Answer 503 to this many more requests. */
  let failures = 0;

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (failures > 0) {
          failures -= 1;
          res.writeHead(503).end();
          return;
        }
        received.push({ headers: req.headers, body });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    const sink = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
    api = await startTestApi({ env: { K_SINK: sink }, now: () => new Date('2025-11-20T12:00:00Z') });
  });
  after(async () => {
    await api?.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  const draft = async (slug: string): Promise<string> => (await draftBill(api, slug)).billId;

  it('announces a bill finalized, then paid, once each, as bill.generated in binary mode', async () => {
    const billId = await draft('events-a');
    assert.equal(received.length, 0, 'a draft is not announced');
    assert.equal((await api.call('POST', `/bills/${billId}/finalize`)).status, 200);
    assert.equal((await api.call('POST', `/bills/${billId}/finalize`)).status, 200, 'finalizing again is a no-op');
    assert.equal(received.length, 1);
    const [final] = received;
    assert.equal(final?.headers['ce-type'], 'faasbilling.bill.generated.v1');
    assert.equal(final?.headers['ce-source'], '/faasbilling/api');
    assert.equal(final?.headers['ce-id'], `bill-${billId}-final`);
    assert.equal(final?.headers['ce-specversion'], '1.0');
    const data = JSON.parse(final?.body ?? '{}') as { bill_id: string; status: string; total: string; currency: string };
    assert.deepEqual([data.bill_id, data.status, data.total, data.currency], [billId, 'final', '0.20', 'USD']);

    assert.equal((await api.call('POST', `/bills/${billId}/mark-paid`, { body: {} })).status, 200);
    assert.equal(received.length, 2);
    assert.equal(received[1]?.headers['ce-id'], `bill-${billId}-paid`);
  });

  it('retries a Broker that fails, and a Broker that stays down fails nothing but is counted', async () => {
    const flaky = await draft('events-b');
    failures = 1;
    const before = received.length;
    assert.equal((await api.call('POST', `/bills/${flaky}/finalize`)).status, 200);
    assert.equal(received.length, before + 1, 'delivered on the second try');

    const down = await draft('events-c');
    failures = 3;
    const res = await api.call<{ status: string }>('POST', `/bills/${down}/finalize`);
    assert.equal(res.status, 200, 'the bill is final whatever the Broker says');
    assert.equal(res.body.status, 'final');
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(metrics, /faasbilling_api_events_failed_total\{type="faasbilling\.bill\.generated\.v1"\} 1/);
    assert.match(metrics, /faasbilling_api_events_sent_total\{type="faasbilling\.bill\.generated\.v1"\} 3/);
  });
});
