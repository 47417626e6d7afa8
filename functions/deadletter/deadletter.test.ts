/**
 * deadletter over real HTTP, under faas-js-runtime: events a Broker gave up on arrive as real
 * CloudEvents (binary and structured) with Knative's knativeerror* extensions and land, once each,
 * in the real dead_letters table.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { EventType } from '../../src/contract/events.js';
import { freshDatabase, type TestDatabase } from '../../test/support/db.js';
import { startFunction, type RunningFunction } from '../../test/support/function-host.js';
import { createDeadletter } from './index.js';
import { assertProblem, post, postBinary, postStructured } from '../../test/support/http.js';

interface DeadLetterRow {
  stage: string;
  reason: string;
  detail: string;
  source: string;
  event_id: string;
  event_type: string;
  tenant_key: string | null;
  payload: Record<string, unknown>;
}

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

const subscriber = 'http://save.faasbilling.svc.cluster.local';

/** A usage event as the Broker's dead-letter sink receives it after the subscriber kept failing. */
function failedDelivery(extensions: Record<string, string | number> = {}): CloudEvent<unknown> {
  return new CloudEvent({
    specversion: '1.0',
    type: EventType.usage,
    source: '/test/producer',
    id: randomUUID(),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { tenant_id: 'acme', service: 'waiter', duration_ms: 12.5, memory_mb: 256 },
    knativeerrordest: subscriber,
    knativeerrorcode: '503',
    knativeerrordata: base64('{"type":"urn:faasbilling:problem:database_unavailable","detail":"PostgreSQL is not reachable"}'),
    ...extensions,
  });
}

describe('deadletter function', function () {
  let database: TestDatabase;
  let fn: RunningFunction;

  before(async () => {
    database = await freshDatabase();
  });
  after(async () => {
    await database.drop();
  });

  beforeEach(async () => {
    await database.db('dead_letters').delete();
    fn = await startFunction('deadletter', createDeadletter, { DATABASE_URL: database.url });
  });
  afterEach(async () => {
    await fn.close();
  });

  const letters = (): Promise<DeadLetterRow[]> =>
    database.db('dead_letters').orderBy('id').select<DeadLetterRow[]>('stage', 'reason', 'detail', 'source', 'event_id', 'event_type', 'tenant_key', 'payload');

  function assertStored(row: DeadLetterRow | undefined, event: CloudEvent<unknown>): void {
    assert.ok(row, 'the event is in dead_letters');
    assert.equal(row.stage, 'broker');
    assert.equal(row.reason, 'delivery_failed_503');
    assert.equal(row.source, event.source);
    assert.equal(row.event_id, event.id);
    assert.equal(row.event_type, EventType.usage);
    assert.equal(row.tenant_key, 'acme');
    assert.ok(row.detail.includes(subscriber), row.detail);
    assert.match(row.detail, /status 503/);
    // knativeerrordata is decoded from base64: the subscriber's answer is readable.
    assert.match(row.detail, /PostgreSQL is not reachable/);
    assert.equal(row.payload.id, event.id);
    assert.equal(row.payload.knativeerrordest, subscriber);
    assert.deepEqual(row.payload.data, event.data);
  }

  it('stores a dead-lettered CloudEvent delivered in binary mode with its Knative error details', async () => {
    const event = failedDelivery();
    const reply = await postBinary(fn.url, event);
    assert.equal(reply.status, 202, reply.text);
    const rows = await letters();
    assert.equal(rows.length, 1);
    assertStored(rows[0], event);
  });

  it('stores a dead-lettered CloudEvent delivered in structured mode, with a numeric error code', async () => {
    const event = failedDelivery({ knativeerrorcode: 503 });
    const reply = await postStructured(fn.url, event);
    assert.equal(reply.status, 202, reply.text);
    const rows = await letters();
    assert.equal(rows.length, 1);
    assertStored(rows[0], event);
  });

  it('stores the same event delivered twice (binary, then structured) once', async () => {
    const event = failedDelivery();
    assert.equal((await postBinary(fn.url, event)).status, 202);
    assert.equal((await postStructured(fn.url, event)).status, 202);
    assert.equal((await postBinary(fn.url, event)).status, 202);
    const rows = await letters();
    assert.equal(rows.length, 1);
    assertStored(rows[0], event);
    // Another event with the same id from another source is a different event.
    const other = new CloudEvent({ ...failedDelivery(), id: event.id, source: '/test/other-producer' });
    assert.equal((await postBinary(fn.url, other)).status, 202);
    assert.equal((await letters()).length, 2);
  });

  it('keeps an event without the Knative extensions, with an unknown status', async () => {
    const event = new CloudEvent({ type: 'com.example.other', source: '/test/other', datacontenttype: 'text/plain', data: 'not json' });
    assert.equal((await postBinary(fn.url, event)).status, 202);
    const [row] = await letters();
    assert.ok(row);
    assert.equal(row.reason, 'delivery_failed_unknown');
    assert.equal(row.event_type, 'com.example.other');
    assert.equal(row.tenant_key, null);
    assert.equal(row.payload.data, 'not json');
  });

  it('answers bad input with problem+json and keeps serving', async () => {
    const notAnEvent = await post(fn.url, { 'content-type': 'application/json' }, JSON.stringify({ tenant_id: 'acme' }));
    assert.equal(assertProblem(notAnEvent, 422).type, 'urn:faasbilling:problem:invalid_event');
    // A structured event that is not JSON is not a CloudEvent either.
    assert.equal(assertProblem(await post(fn.url, { 'content-type': 'application/cloudevents+json' }, '{"specversion":'), 422).type, 'urn:faasbilling:problem:invalid_event');
    assertProblem(await post(fn.url, { 'content-type': 'text/plain' }, 'hello'), 422);
    const binaryHeaders = { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': '/x', 'ce-type': EventType.usage };
    assertProblem(await post(fn.url, binaryHeaders, '{broken'), 400);
    assert.equal((await letters()).length, 0, 'nothing is stored for bad input');

    const event = failedDelivery();
    assert.equal((await postBinary(fn.url, event)).status, 202);
    assertStored((await letters())[0], event);
    assert.equal((await fetch(`${fn.url}/health/readiness`)).status, 200);

    const metrics = await (await fetch(`${fn.url}/metrics`)).text();
    assert.match(metrics, /faasbilling_http_problems_total\{status="422",function="deadletter"\} 3/);
    assert.match(metrics, /faasbilling_http_problems_total\{status="400",function="deadletter"\} 1/);
    assert.match(metrics, /faasbilling_dead_letters_total\{reason="delivery_failed",function="deadletter"\} 1/);
  });

  it('is ready and alive while PostgreSQL is up', async () => {
    assert.equal((await fetch(`${fn.url}/health/readiness`)).status, 200);
    assert.equal((await fetch(`${fn.url}/health/liveness`)).status, 200);
  });
});
