/** The usage event contract: validation limits, the seed's compatibility shape, time window. */
import assert from 'node:assert/strict';
import {
  checkEventTime,
  normaliseSeedEvent,
  normaliseUsageEvent,
  seedSource,
  unknownRevision,
  usageLimits,
  type UsageResult,
} from '../src/contract/usage.js';
import { EventType, dataSchemas } from '../src/contract/events.js';
import { RecentKeys } from '../src/stages/recent-keys.js';

const now = new Date('2026-11-25T12:00:00Z');
const data = (overrides: Record<string, unknown> = {}) => ({ tenant_id: 't1', service: 'svc', duration_ms: 10, memory_mb: 128, ...overrides });
const event = (overrides: Record<string, unknown> = {}, dataOverrides: Record<string, unknown> = {}) => ({
  id: 'e1',
  source: '/src',
  time: '2026-11-25T11:59:00Z',
  data: data(dataOverrides),
  ...overrides,
});
const reasonOf = (result: UsageResult) => (result.ok ? 'ok' : result.rejection.reason);

describe('usage event contract', () => {
  it('normalises a minimal usage event with its defaults', () => {
    const result = normaliseUsageEvent(event(), now);
    assert.ok(result.ok);
    assert.deepEqual(result.record, {
      source: '/src',
      id: 'e1',
      time: '2026-11-25T11:59:00.000Z',
      tenant_id: 't1',
      service: 'svc',
      revision: unknownRevision,
      invocations: 1,
      duration_ms: 10,
      memory_mb: 128,
      cpu_ms: null,
      cold_start: false,
      error: false,
      labels: {},
    });
  });

  const rejected: [string, Record<string, unknown>, Record<string, unknown>, string][] = [
    ['a missing tenant', {}, { tenant_id: undefined }, 'invalid_data'],
    ['an empty service', {}, { service: '  ' }, 'invalid_data'],
    ['a negative duration', {}, { duration_ms: -1 }, 'invalid_data'],
    ['a non-finite duration', {}, { duration_ms: Number.POSITIVE_INFINITY }, 'invalid_data'],
    ['a duration over 15 minutes per invocation', {}, { duration_ms: usageLimits.maxDurationMsPerInvocation + 1 }, 'invalid_data'],
    ['memory over 64 GiB', {}, { memory_mb: 65537 }, 'invalid_data'],
    ['zero memory', {}, { memory_mb: 0 }, 'invalid_data'],
    ['zero invocations', {}, { invocations: 0 }, 'invalid_data'],
    ['a fractional invocation count', {}, { invocations: 1.5 }, 'invalid_data'],
    ['an unknown field (typo)', {}, { duration: 5 }, 'invalid_data'],
    ['a label that is not a string', {}, { labels: { a: 1 } }, 'invalid_data'],
    ['too many labels', {}, { labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, 'invalid_data'],
    ['a time more than 35 days old', { time: '2026-10-20T00:00:00Z' }, {}, 'too_old'],
    ['a time 6 minutes in the future', { time: '2026-11-25T12:06:00Z' }, {}, 'in_future'],
    ['an unparsable time', { time: 'yesterday' }, {}, 'invalid_time'],
    ['no id', { id: '' }, {}, 'missing_attribute'],
    ['no source', { source: undefined }, {}, 'missing_attribute'],
  ];
  for (const [name, envelope, fields, reason] of rejected) {
    it(`rejects ${name} (${reason})`, () => {
      assert.equal(reasonOf(normaliseUsageEvent(event(envelope, fields), now)), reason);
    });
  }

  it('accepts several invocations whose total stays under 15 minutes each', () => {
    const result = normaliseUsageEvent(event({}, { invocations: 3, duration_ms: 3 * 14 * 60 * 1000 }), now);
    assert.equal(reasonOf(result), 'ok');
  });

  it('lets an old event in when the backfill extension is "true"', () => {
    assert.equal(reasonOf(normaliseUsageEvent(event({ time: '2026-01-01T00:00:00Z', backfill: 'true' }), now)), 'ok');
    assert.equal(reasonOf(normaliseUsageEvent(event({ time: '2026-01-01T00:00:00Z', backfill: 'yes' }), now)), 'too_old');
  });

  it('still refuses a future event with the backfill flag', () => {
    assert.equal(checkEventTime('2026-11-25T13:00:00Z', now, true)?.reason, 'in_future');
  });

  it('stamps an event without a time with the receive time', () => {
    const result = normaliseUsageEvent(event({ time: undefined }), now);
    assert.ok(result.ok);
    assert.equal(result.record.time, now.toISOString());
  });

  it('normalises the seed shape: seconds to ms, service_name to service, compat source', () => {
    const result = normaliseSeedEvent(
      { timestamp: '2026-11-25T11:00:00Z', tenant_id: 'demo', service_name: 'waiter', duration_seconds: 0.2345678, memory_mb: 64.5, request_id: 'req-1' },
      now,
    );
    assert.ok(result.ok);
    assert.equal(result.record.source, seedSource);
    assert.equal(result.record.id, 'req-1');
    assert.equal(result.record.service, 'waiter');
    assert.equal(result.record.duration_ms, 234.568);
  });

  it('gives the same seed JSON the same dedup id, and different JSON a different one', () => {
    const body = { timestamp: '2026-11-25T11:00:00Z', tenant_id: 'demo', service_name: 'waiter', duration_seconds: 0.1, memory_mb: 64 };
    const a = normaliseSeedEvent(body, now);
    const b = normaliseSeedEvent({ ...body }, now);
    const c = normaliseSeedEvent({ ...body, duration_seconds: 0.2 }, now);
    assert.ok(a.ok && b.ok && c.ok);
    assert.equal(a.record.id, b.record.id);
    assert.notEqual(a.record.id, c.record.id);
  });

  it('rejects a seed event with a negative duration', () => {
    assert.equal(reasonOf(normaliseSeedEvent({ tenant_id: 'demo', service_name: 'w', duration_seconds: -1, memory_mb: 64 }, now)), 'invalid_data');
  });

  it('has a data schema for every event type except usage (which has its own module)', () => {
    const withSchema = new Set(Object.keys(dataSchemas));
    for (const type of Object.values(EventType)) {
      if (type !== EventType.usage) assert.ok(withSchema.has(type), type);
    }
  });
});

describe('recent keys (collect dedup memory)', () => {
  it('remembers keys up to its capacity and forgets the oldest first', () => {
    const keys = new RecentKeys(3);
    for (const k of ['a', 'b', 'c', 'd']) keys.add(k);
    assert.equal(keys.size, 3);
    assert.equal(keys.has('a'), false);
    assert.equal(keys.has('d'), true);
    keys.add('b');
    assert.equal(keys.size, 3, 'adding a known key changes nothing');
  });
});

describe('.env.example', () => {
  it('documents every configuration variable, and nothing else', async () => {
    const { readFile } = await import('node:fs/promises');
    const { configSchema } = await import('../src/runtime/config.js');
    const { localConfigSchema } = await import('../src/local/config.js');
    const { meteringConfigSchema } = await import('../src/metering/config.js');
    const { scrapeConfigSchema } = await import('../src/metering/scrape-config.js');
    const { agentConfigSchema } = await import('../src/agent/config.js');
    const { waiterLimitsSchema } = await import('../functions/waiter/app.js');
    const text = await readFile(new URL('../.env.example', import.meta.url), 'utf8');
    const documented = new Set([...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    const known = new Set(
      [configSchema, localConfigSchema, meteringConfigSchema, scrapeConfigSchema, agentConfigSchema, waiterLimitsSchema].flatMap((schema) => Object.keys(schema.shape)),
    );
    assert.deepEqual([...documented].sort(), [...known].sort());
  });
});
