/** The demo workload generator against the project's Azure trace fixture. */
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { DateTime } from 'luxon';
import { normaliseUsageEvent, usageLimits } from '../contract/usage.js';
import { loadAzureTrace, parseAzureTrace, valueAtQuantile, type AzureTrace, type TraceFunction } from './trace.js';
import { generateUsageEvents, loadFactor, planWorkload, simulatedRange, tenantScales, type UsageCloudEvent, type WorkloadOptions } from './workload.js';

const MINUTE_MS = 60_000;
const windowTotal = (fn: TraceFunction): number => fn.invocationsPerMinute.reduce((a, b) => a + b, 0);
const invocationsOf = (e: UsageCloudEvent): number => e.data.invocations ?? 1;
const minuteOf = (e: UsageCloudEvent): number => Math.floor(Date.parse(e.time) / MINUTE_MS);

/** Events grouped by "tenant/service". */
function byService(events: UsageCloudEvent[]): Map<string, UsageCloudEvent[]> {
  const groups = new Map<string, UsageCloudEvent[]>();
  for (const e of events) {
    const key = `${e.data.tenant_id}/${e.data.service}`;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  return groups;
}

/** Invocations per local minute of the day (minutes that occur twice on a 25-hour day add up). */
function invocationsByLocalMinute(events: UsageCloudEvent[], zone: string): Map<number, number> {
  const perMinute = new Map<number, number>();
  for (const e of events) {
    const local = DateTime.fromISO(e.time, { zone });
    const key = local.hour * 60 + local.minute;
    perMinute.set(key, (perMinute.get(key) ?? 0) + invocationsOf(e));
  }
  return perMinute;
}

describe('demo workload', function () {
  let trace: AzureTrace;
  /** Functions of at most 100 invocations per window: a month of them stays a few thousand events. */
  let sparse: AzureTrace;
  /** Functions of at most 20 000 per window, some busy enough to be packed. */
  let moderate: AzureTrace;

  before(async () => {
    trace = await loadAzureTrace();
    sparse = { ...trace, functions: trace.functions.filter((f) => windowTotal(f) <= 100) };
    moderate = { ...trace, functions: trace.functions.filter((f) => windowTotal(f) <= 20_000) };
  });

  describe('trace fixture', function () {
    it('holds 48 functions with 480 minutes from 08:00, covering http, timer and queue triggers', function () {
      assert.equal(trace.functions.length, 48);
      assert.equal(trace.windowStartMinute, 480);
      assert.equal(trace.windowMinutes, 480);
      for (const fn of trace.functions) assert.equal(fn.invocationsPerMinute.length, 480);
      const triggers = new Set(trace.functions.map((f) => f.trigger));
      for (const t of ['http', 'timer', 'queue']) assert.ok(triggers.has(t), t);
    });

    it('draws durations between the percentiles, linearly', function () {
      const points = [
        { q: 0, value: 10 },
        { q: 0.5, value: 20 },
        { q: 1, value: 100 },
      ];
      assert.equal(valueAtQuantile(points, 0), 10);
      assert.equal(valueAtQuantile(points, 0.25), 15);
      assert.equal(valueAtQuantile(points, 0.75), 60);
      assert.ok(Math.abs(valueAtQuantile(points, 0.9) - 84) < 1e-9);
    });

    it('names the file and line of a function missing from memory.csv', function () {
      const hash = 'a'.repeat(64);
      const minutes = Array.from({ length: 3 }, (_, i) => 480 + i).join(',');
      assert.throws(
        () =>
          parseAzureTrace({
            invocations: `HashOwner,HashApp,HashFunction,Trigger,${minutes}\n${hash},${hash},${hash},http,1,0,2\n`,
            durations: `HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\n${hash},${hash},${hash},5,3,1,9,1,1,2,5,7,9,9\n`,
            memory: 'HashFunction,HashOwner,HashApp,SampleCount,AverageAllocatedMb\n',
          }),
        /invocations\.csv line 2\) is missing from memory\.csv/,
      );
    });
  });

  it('the same seed gives the same events, another seed different ones', function () {
    const options: WorkloadOptions = { tenants: [{ id: 'acme', timezone: 'Europe/Berlin' }], end: new Date('2025-03-12T12:00:00Z'), days: 0.5, seed: 7, servicesPerTenant: 4 };
    const first = [...generateUsageEvents(moderate, options)];
    assert.ok(first.length > 100, `${first.length} events`);
    assert.deepEqual([...generateUsageEvents(moderate, options)], first);
    assert.notDeepEqual([...generateUsageEvents(moderate, { ...options, seed: 8 })], first);
  });

  it('every tenant gets http, timer and queue services, each a different trace function', function () {
    const tenants = ['a', 'b', 'c'].map((id) => ({ id, timezone: 'UTC' }));
    const services = planWorkload(trace, { tenants, end: new Date('2025-03-12T12:00:00Z'), days: 7, seed: 1 });
    assert.equal(services.length, 24);
    for (const { id } of tenants) {
      const own = services.filter((s) => s.tenantId === id);
      assert.equal(new Set(own.map((s) => s.name)).size, own.length);
      for (const t of ['http', 'timer', 'queue']) assert.ok(own.some((s) => s.trigger === t), `${id} has a ${t} service`);
    }
    assert.equal(new Set(services.map((s) => s.traceFunction)).size, services.length);
  });

  it('every event is a valid usage CloudEvent; those older than 35 days carry backfill and need it', function () {
    const end = new Date('2025-03-12T12:00:00Z');
    const options: WorkloadOptions = { tenants: [{ id: 'acme', timezone: 'America/New_York' }], end, days: 36, seed: 3, servicesPerTenant: 2 };
    const events = [...generateUsageEvents(sparse, options)];
    assert.ok(events.length > 100, `${events.length} events`);
    let backfilled = 0;
    for (const e of events) {
      new CloudEvent(e).validate();
      const result = normaliseUsageEvent(e, end);
      assert.ok(result.ok, JSON.stringify(result));
      const old = end.getTime() - Date.parse(e.time) > usageLimits.maxAgeMs;
      if (e.backfill) {
        backfilled += 1;
        assert.ok(end.getTime() - Date.parse(e.time) > usageLimits.maxAgeMs - 24 * 3600 * 1000);
      }
      if (old) {
        assert.equal(e.backfill, true);
        const without = normaliseUsageEvent({ ...e, backfill: undefined }, end);
        assert.equal(without.ok ? 'ok' : without.rejection.reason, 'too_old');
      }
    }
    assert.ok(backfilled > 0);
  });

  it('invocations per tenant are the trace scaled, three windows a day, when the profile is flat', function () {
    const end = new Date('2025-03-12T12:00:00Z');
    const options: WorkloadOptions = {
      tenants: [
        { id: 'small', timezone: 'UTC', scale: 0.5 },
        { id: 'double', timezone: 'Asia/Kolkata', scale: 2 },
      ],
      end,
      days: 1,
      seed: 11,
      servicesPerTenant: 3,
      nightDip: 0,
      weekendFactor: 1,
    };
    const functions = new Map(moderate.functions.map((f) => [f.hashFunction, f]));
    const services = planWorkload(moderate, options);
    const events = [...generateUsageEvents(moderate, options)];
    for (const tenant of options.tenants) {
      const own = services.filter((s) => s.tenantId === tenant.id);
      const traceTotal = own.reduce((sum, s) => sum + windowTotal(functions.get(s.traceFunction) as TraceFunction), 0);
      const generated = events.filter((e) => e.data.tenant_id === tenant.id).reduce((sum, e) => sum + invocationsOf(e), 0);
      const expected = 3 * traceTotal * (tenant.scale ?? 1);
      assert.ok(expected > 100, `${tenant.id}: ${expected}`);
      if (Number.isInteger(tenant.scale)) assert.equal(generated, expected, tenant.id);
      // Fractions are carried minute to minute: each service ends at most one invocation short.
      else assert.ok(generated <= expected && generated >= expected - own.length, `${tenant.id}: ${generated} vs ${expected}`);
    }
  });

  it('the trace window plays at 08:00–16:00 local time; at night timers keep their counts and the rest dips', function () {
    // 2025-03-11 is a Tuesday; New York is on daylight time (UTC−4) since 9 March.
    const options: WorkloadOptions = { tenants: [{ id: 'nyc', timezone: 'America/New_York' }], end: new Date('2025-03-12T04:00:00Z'), days: 1, seed: 5, servicesPerTenant: 6 };
    const functions = new Map(moderate.functions.map((f) => [f.hashFunction, f]));
    const events = [...generateUsageEvents(moderate, options)];
    const services = byService(events);
    let loadDriven = 0;
    for (const service of planWorkload(moderate, options)) {
      const fn = functions.get(service.traceFunction) as TraceFunction;
      const perLocalMinute = invocationsByLocalMinute(services.get(`nyc/${service.name}`) ?? [], 'America/New_York');
      fn.invocationsPerMinute.forEach((count, i) => assert.equal(perLocalMinute.get(480 + i) ?? 0, count, `${service.name} at minute ${480 + i}`));
      // 00:00–08:00 replays the same window: equal for timers, less for load-driven triggers.
      let night = 0;
      for (let m = 0; m < 480; m++) night += perLocalMinute.get(m) ?? 0;
      if (fn.trigger === 'timer') assert.equal(night, windowTotal(fn), service.name);
      else if (windowTotal(fn) > 50) {
        loadDriven += 1;
        assert.ok(night < windowTotal(fn), `${service.name}: ${night} at night vs ${windowTotal(fn)} by day`);
      }
    }
    assert.ok(loadDriven > 0, 'at least one load-driven service was checked');
  });

  for (const [zone, end, what] of [
    ['America/New_York', '2025-03-10T04:00:00Z', 'a 23-hour day (2025-03-09, New York)'],
    ['Europe/Berlin', '2025-10-26T23:00:00Z', 'a 25-hour day (2025-10-26, Berlin)'],
  ] as const) {
    it(`the trace window plays at 08:00–16:00 local time on ${what}`, function () {
      const options: WorkloadOptions = { tenants: [{ id: 't', timezone: zone }], end: new Date(end), days: 1, seed: 6, servicesPerTenant: 4, weekendFactor: 1 };
      const functions = new Map(moderate.functions.map((f) => [f.hashFunction, f]));
      const services = byService([...generateUsageEvents(moderate, options)]);
      for (const service of planWorkload(moderate, options)) {
        const fn = functions.get(service.traceFunction) as TraceFunction;
        const perLocalMinute = invocationsByLocalMinute(services.get(`t/${service.name}`) ?? [], zone);
        fn.invocationsPerMinute.forEach((count, i) => assert.equal(perLocalMinute.get(480 + i) ?? 0, count, `${service.name} at minute ${480 + i}`));
      }
    });
  }

  it('invocationsPerDay sets a tenant size whatever trace functions it was dealt', function () {
    const options: WorkloadOptions = {
      tenants: [
        { id: 'acme', timezone: 'Europe/Berlin', invocationsPerDay: 40_000 },
        { id: 'globex', timezone: 'America/Chicago', invocationsPerDay: 10_000 },
      ],
      end: new Date('2025-03-16T12:00:00Z'),
      days: 2,
      seed: 21,
      servicesPerTenant: 4,
    };
    const events = [...generateUsageEvents(moderate, options)];
    for (const [tenant, perDay] of [
      ['acme', 40_000],
      ['globex', 10_000],
    ] as const) {
      const generated = events.filter((e) => e.data.tenant_id === tenant).reduce((sum, e) => sum + invocationsOf(e), 0);
      assert.ok(Math.abs(generated - 2 * perDay) <= 4, `${tenant}: ${generated} vs ${2 * perDay}`);
    }
    const scales = tenantScales(moderate, options);
    assert.ok((scales.get('acme') ?? 0) > 0 && scales.get('acme') !== scales.get('globex'));
    assert.throws(() => tenantScales(moderate, { ...options, tenants: [{ id: 'x', timezone: 'UTC', scale: 2, invocationsPerDay: 5 }] }), /scale or invocationsPerDay, not both/);
  });

  it('the daily profile dips to 1 − nightDip at 02:00 and scales weekends', function () {
    assert.equal(loadFactor(12, 2, 0.7, 0.6), 1);
    assert.equal(loadFactor(8, 2, 0.7, 0.6), 1);
    assert.ok(Math.abs(loadFactor(2, 2, 0.7, 0.6) - 0.3) < 1e-12);
    assert.ok(Math.abs(loadFactor(12, 6, 0.7, 0.6) - 0.6) < 1e-12);
    assert.ok(loadFactor(23, 3, 0.7, 0.6) < loadFactor(21, 3, 0.7, 0.6));
  });

  describe('one busy day', function () {
    const options: WorkloadOptions = {
      tenants: [
        { id: 'acme', timezone: 'Europe/Berlin' },
        { id: 'globex', timezone: 'Asia/Tokyo', scale: 3 },
      ],
      end: new Date('2025-03-12T12:00:00Z'),
      days: 1,
      seed: 42,
      servicesPerTenant: 5,
      keepAliveMinutes: 10,
      reportsPerSlot: 2,
    };
    let events: UsageCloudEvent[];
    before(function () {
      events = [...generateUsageEvents(moderate, options)];
    });

    it('events are in time order inside the simulated range, with unique ids', function () {
      const range = simulatedRange(options);
      assert.equal(range.end, '2025-03-12T12:00:00.000Z');
      assert.equal(range.start, '2025-03-11T12:00:00.000Z');
      assert.ok(events.length > 1000, `${events.length} events`);
      for (let i = 1; i < events.length; i++) assert.ok((events[i - 1] as UsageCloudEvent).time <= (events[i] as UsageCloudEvent).time);
      for (const e of events) assert.ok(e.time >= range.start && e.time < range.end, e.time);
      assert.equal(new Set(events.map((e) => `${e.source} ${e.id}`)).size, events.length);
    });

    it('a cold start comes exactly after an idle gap longer than the keep-alive, alone and first in its minute', function () {
      let coldStarts = 0;
      for (const [service, own] of byService(events)) {
        let previousBusy: number | undefined;
        const minutes = [...new Set(own.map(minuteOf))].sort((a, b) => a - b);
        for (const minute of minutes) {
          const inMinute = own.filter((e) => minuteOf(e) === minute);
          const cold = inMinute.filter((e) => e.data.cold_start === true);
          const expectCold = previousBusy === undefined || minute - previousBusy > 10;
          assert.equal(cold.length, expectCold ? 1 : 0, `${service} at minute ${minute}`);
          if (cold[0]) {
            coldStarts += 1;
            assert.equal(invocationsOf(cold[0]), 1);
            assert.equal(cold[0], inMinute[0], 'the cold start is the minute first report');
          }
          previousBusy = minute;
        }
      }
      assert.ok(coldStarts > 1);
    });

    it('packs a busy minute into at most reportsPerSlot reports plus a cold start and an error report', function () {
      let packed = 0;
      for (const [service, own] of byService(events)) {
        const perMinute = new Map<number, UsageCloudEvent[]>();
        for (const e of own) perMinute.set(minuteOf(e), [...(perMinute.get(minuteOf(e)) ?? []), e]);
        for (const [minute, inMinute] of perMinute) {
          const plain = inMinute.filter((e) => e.data.cold_start !== true && e.data.error !== true);
          assert.ok(plain.length <= 2, `${service} at ${minute}: ${plain.length} plain reports`);
          assert.ok(inMinute.filter((e) => e.data.error === true).length <= 1);
          if (plain.some((e) => invocationsOf(e) > 1)) packed += 1;
        }
      }
      assert.ok(packed > 0, 'some minutes were busy enough to pack');
      assert.ok(events.some((e) => e.data.error === true), 'some invocations failed');
    });

    it('five minutes per report keep every service invocations with fewer events, one cold start per slot at most', function () {
      const coarse = [...generateUsageEvents(moderate, { ...options, minutesPerReport: 5 })];
      assert.ok(coarse.length < events.length * 0.8, `${coarse.length} vs ${events.length} events`);
      const totals = (list: UsageCloudEvent[]): [string, number][] => [...byService(list)].map(([service, own]) => [service, own.reduce((sum, e) => sum + invocationsOf(e), 0)] as [string, number]);
      assert.deepEqual(new Map(totals(coarse)), new Map(totals(events)));
      const perSlot = new Map<string, UsageCloudEvent[]>();
      for (const e of coarse) {
        const key = `${e.data.tenant_id}/${e.data.service}/${Math.floor(minuteOf(e) / 5)}`;
        perSlot.set(key, [...(perSlot.get(key) ?? []), e]);
      }
      for (const [slot, inSlot] of perSlot) {
        assert.ok(inSlot.length <= 4, `${slot}: ${inSlot.length} reports`);
        assert.ok(inSlot.filter((e) => e.data.cold_start === true).length <= 1, slot);
      }
      for (let i = 1; i < coarse.length; i++) assert.ok((coarse[i - 1] as UsageCloudEvent).time <= (coarse[i] as UsageCloudEvent).time);
      assert.throws(() => generateUsageEvents(moderate, { ...options, minutesPerReport: 7 }).next(), /minutesPerReport: a divisor of 60/);
    });

    it('durations and memory stay inside the trace function percentile range, memory under the suggested limit', function () {
      const functions = new Map(moderate.functions.map((f) => [f.hashFunction, f]));
      const services = planWorkload(moderate, options);
      const fnOf = new Map(services.map((s) => [`${s.tenantId}/${s.name}`, functions.get(s.traceFunction) as TraceFunction]));
      const limitOf = new Map(services.map((s) => [`${s.tenantId}/${s.name}`, s.memoryLimitMb]));
      for (const e of events) {
        const limit = limitOf.get(`${e.data.tenant_id}/${e.data.service}`) ?? 0;
        assert.ok(limit % 128 === 0 && e.data.memory_mb <= limit, `${e.data.memory_mb} MB under a ${limit} MB limit`);
        const fn = fnOf.get(`${e.data.tenant_id}/${e.data.service}`) as TraceFunction;
        const perInvocation = e.data.duration_ms / invocationsOf(e);
        const slowest = (fn.durationMs.at(-1)?.value ?? 0) + (e.data.cold_start === true ? 3000 : 0);
        assert.ok(perInvocation >= (fn.durationMs[0]?.value ?? 0) - 0.001 && perInvocation <= slowest + 0.001, `${e.data.service}: ${perInvocation} ms`);
        assert.ok(e.data.memory_mb >= (fn.memoryMb[0]?.value ?? 0) - 0.001 && e.data.memory_mb <= (fn.memoryMb.at(-1)?.value ?? 0) + 0.001);
      }
    });
  });

  it('rejects an unknown time zone with a clear error', function () {
    assert.throws(
      () => generateUsageEvents(trace, { tenants: [{ id: 'x', timezone: 'Mars/Olympus' }], end: new Date(), days: 1, seed: 1 }).next(),
      /tenants\.0\.timezone: an IANA time zone/,
    );
  });
});
