/**
 * The demo workload (issue 3 part 5): usage CloudEvents (`faasbilling.usage.v1`) for a few tenants
 * over the last `days` days, shaped by the Azure Functions trace (trace.ts). Pure and deterministic:
 * the same trace, options and seed give the same events; no clock (`end` is passed in), no I/O.
 *
 * From an 8-hour trace window to days of usage:
 * - Each tenant gets `servicesPerTenant` services, each playing one trace function. Functions are
 *   dealt round-robin over trigger types, so every tenant gets a mix (http, timer, queue, event…);
 *   a function is reused only when services outnumber functions, then shifted by random minutes.
 * - The clock is the tenant's local time. Window minute i plays at local 08:00 + i (the trace's own
 *   columns are minutes 480–959 of its day), and the same 8 hours repeat 16:00–24:00 and 00:00–08:00.
 * - Load-driven triggers (all but timers) follow a daily profile: full load 08:00–20:00, a smooth
 *   night dip (sin²) down to 1 − nightDip at 02:00, and × weekendFactor on Saturday and Sunday.
 *   Timers fire on schedule whatever the hour, so they keep the trace's counts day and night.
 * - Invocations in a minute = trace count × tenant scale × profile, made whole by carrying the
 *   fraction into the next minute: a service's total follows the scaled trace to within one
 *   invocation, and at full load with an integer scale every minute matches the trace exactly.
 *   A tenant's scale is given, or derived from `invocationsPerDay` (the trace is heavy-tailed: one
 *   function can outweigh all others together, so a target keeps tenant sizes predictable).
 *
 * Reports are made per slot of `minutesPerReport` minutes (1 by default; 5 makes about five times
 * fewer events from busy services, for a quick demo). For a slot with c invocations of a service:
 * - Cold starts (keep-alive model): an instance stays warm `keepAliveMinutes` after its last
 *   invocation; the first invocation after a longer idle gap is cold (a slot is never longer than
 *   the keep-alive, so it holds at most one). It is reported alone
 *   (1 invocation, cold_start, plus a start-up penalty on its duration), because the aggregate
 *   counts a report flagged cold_start as one cold start.
 * - Errors: each service has an error rate; the slot's failed invocations (c × rate, rounded at
 *   random) form one report flagged error. (The aggregate counts error reports, so a busy
 *   service's error count reads as slots with errors.)
 * - The rest is packed into at most `reportsPerSlot` reports so the event count stays bounded
 *   (`invocations` > 1, `duration_ms` their total): with c ≤ that many, one report per invocation;
 *   otherwise durations are sampled (≤ 64 draws), sorted and cut into strata (k=2: at the 90th
 *   percentile; k=3: 50th, 90th; k=4: 50th, 90th, 99th), one report per stratum carrying its share
 *   of invocations at the stratum's mean duration. The slow tail keeps reports of its own, so window
 *   p95s stay near the trace's tail rather than collapsing to the slot's mean.
 * - Durations are drawn from the function's duration percentiles, memory from its allocated-memory
 *   percentiles (trace.ts), per report. cpu_ms is a per-service share of the duration: the trace
 *   has no CPU figures, so that one is synthetic.
 *
 * Every report gets its own instant in its slot, from the slot's first busy minute on (the cold
 * start first); events come out in time order. Ids repeat for
 * the same seed and `end`, so replaying the same workload twice stores it once. Events older than
 * 35 days (less a day's margin for the replay to run) carry the `backfill` extension.
 */
import { IANAZone } from 'luxon';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { z } from 'zod';
import { EventType } from '../contract/events.js';
import { usageLimits, type usageData } from '../contract/usage.js';
import { valueAtQuantile, type AzureTrace, type TraceFunction } from './trace.js';

const tenantSchema = z.object({
  id: z.string().trim().min(1).max(usageLimits.maxNameLength),
  timezone: z.string().refine((zone) => IANAZone.isValidZone(zone), 'an IANA time zone such as Europe/Berlin'),
  /** Multiplies the trace's invocation counts (tenant size). Default 1. */
  scale: z.number().finite().positive().optional(),
  /** Instead of `scale`: the scale that gives this many invocations a day on average over the range. */
  invocationsPerDay: z.number().finite().positive().optional(),
}).refine((t) => t.scale === undefined || t.invocationsPerDay === undefined, 'give a tenant scale or invocationsPerDay, not both');

export const workloadOptionsSchema = z
  .object({
    tenants: z.array(tenantSchema).min(1),
    /** End of the simulated range (usually now), floored to the minute. */
    end: z.date(),
    /** Length of the simulated range, days (fractions allowed). */
    days: z.number().positive().max(400),
    /** Seed of the pseudo-random streams (xoroshiro128+): same seed, same events. */
    seed: z.number().int().min(0).max(0xffff_ffff),
    servicesPerTenant: z.number().int().min(1).max(64).default(8),
    /** Most reports a slot's ordinary invocations are packed into (1–4), besides its cold-start and error reports. */
    reportsPerSlot: z.number().int().min(1).max(4).default(2),
    /** An instance idle longer than this goes cold. */
    keepAliveMinutes: z.number().int().min(1).default(10),
    /** Minutes gathered into one set of reports (a divisor of 60, at most keepAliveMinutes): fewer, bigger events. */
    minutesPerReport: z
      .number()
      .int()
      .min(1)
      .max(60)
      .refine((m) => 60 % m === 0, 'a divisor of 60 (1, 2, 3, 4, 5, 6, 10, 15, 20, 30, 60)')
      .default(1),
    /** Load lost at 02:00 local time (0.7: 30% of daytime load is left). */
    nightDip: z.number().min(0).max(1).default(0.7),
    /** Load on Saturday and Sunday relative to a weekday. */
    weekendFactor: z.number().min(0).max(10).default(0.6),
    /** Each service's error rate is drawn from [errorRateMin, errorRateMax]. */
    errorRateMin: z.number().min(0).max(1).default(0.001),
    errorRateMax: z.number().min(0).max(1).default(0.02),
    /** Start-up time a cold start adds to its invocation, drawn from [min, max] ms. */
    coldStartPenaltyMinMs: z.number().min(0).default(300),
    coldStartPenaltyMaxMs: z.number().min(0).default(3000),
  })
  .refine((o) => new Set(o.tenants.map((t) => t.id)).size === o.tenants.length, 'tenant ids must be distinct')
  .refine((o) => o.minutesPerReport <= o.keepAliveMinutes, 'minutesPerReport must not exceed keepAliveMinutes (one cold start per report slot at most)')
  .refine((o) => o.errorRateMin <= o.errorRateMax, 'errorRateMin must not exceed errorRateMax')
  .refine((o) => o.coldStartPenaltyMinMs <= o.coldStartPenaltyMaxMs, 'coldStartPenaltyMinMs must not exceed coldStartPenaltyMaxMs');
export type WorkloadOptions = z.input<typeof workloadOptionsSchema>;
type Options = z.output<typeof workloadOptionsSchema>;

/** `data` of a generated usage event (the usage contract's input shape). */
export type UsageEventData = z.input<typeof usageData>;

/**
 * A usage CloudEvent in structured form, as a cloudevents batch carries it. A type alias, not an
 * interface, so it fits the SDK's `new CloudEvent(...)` (which takes an index-signature type).
 */
export type UsageCloudEvent = {
  specversion: '1.0';
  type: typeof EventType.usage;
  source: string;
  id: string;
  time: string;
  datacontenttype: 'application/json';
  /** CloudEvent extension that lets an event older than 35 days in (contract/usage.ts). */
  backfill?: boolean;
  data: UsageEventData;
};

export interface DemoRevision {
  name: string;
  /** In force from this instant (ISO 8601); the first revision from the range's start. */
  from: string;
}

export interface DemoService {
  tenantId: string;
  name: string;
  trigger: string;
  /** HashFunction of the trace function this service plays. */
  traceFunction: string;
  /** Minutes the trace is shifted by (0 unless the function is played by more than one service). */
  traceOffsetMinutes: number;
  errorRate: number;
  /** cpu_ms = duration_ms × cpuShare. */
  cpuShare: number;
  /**
   * A memory limit fitting the function (its largest allocated memory rounded up to 128 MB), to
   * register as the service's memory_limit_mb so plans that bill allocated memory can use it.
   */
  memoryLimitMb: number;
  revisions: DemoRevision[];
}

export interface SimulatedRange {
  /** First simulated minute, ISO 8601 UTC. */
  start: string;
  /** End (exclusive), ISO 8601 UTC: `end` floored to the minute. */
  end: string;
}

const MINUTE_MS = 60_000;
/** Events older than this carry `backfill`: the 35-day limit less a day for the replay to run. */
const backfillAfterMs = usageLimits.maxAgeMs - 24 * 3600 * 1000;
const maxDurationSamples = 64;
const strataCuts: Record<number, number[]> = { 1: [], 2: [0.9], 3: [0.5, 0.9], 4: [0.5, 0.9, 0.99] };
const triggerOrder = ['http', 'timer', 'queue', 'event', 'orchestration', 'storage'];
const servicePrefix: Record<string, string> = {
  http: 'api',
  timer: 'cron',
  queue: 'worker',
  event: 'events',
  orchestration: 'flow',
  storage: 'blob',
};
const serviceNouns = [
  'orders', 'users', 'search', 'images', 'reports', 'mail', 'sync', 'audit', 'carts', 'feeds', 'geo', 'ledger',
  'metrics', 'notify', 'payments', 'catalog', 'invoices', 'sessions', 'uploads', 'pricing', 'stock', 'reviews', 'shipping', 'tokens',
];

type Random = () => number;

function randomSource(seed: number): Random {
  const rng = xoroshiro128plus(seed);
  return () => uniformFloat64(rng);
}

function shuffled<T>(items: readonly T[], random: Random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const between = (random: Random, lo: number, hi: number): number => lo + random() * (hi - lo);
const round3 = (value: number): number => Math.round(value * 1000) / 1000;
const mod = (a: number, n: number): number => ((a % n) + n) % n;

function parseOptions(input: WorkloadOptions): Options {
  const parsed = workloadOptionsSchema.safeParse(input);
  if (!parsed.success) {
    throw new RangeError(`invalid workload options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

function minutesOf(options: Options): { startMinute: number; endMinute: number } {
  const endMinute = Math.floor(options.end.getTime() / MINUTE_MS);
  return { startMinute: endMinute - Math.max(1, Math.round(options.days * 1440)), endMinute };
}

/** The simulated range `[start, end)` the options describe. */
export function simulatedRange(input: WorkloadOptions): SimulatedRange {
  const { startMinute, endMinute } = minutesOf(parseOptions(input));
  return { start: new Date(startMinute * MINUTE_MS).toISOString(), end: new Date(endMinute * MINUTE_MS).toISOString() };
}

/** Trace functions by trigger, each group shuffled, in a fixed trigger order (unknown triggers last). */
function functionsByTrigger(trace: AzureTrace, random: Random): TraceFunction[][] {
  const groups = new Map<string, TraceFunction[]>();
  for (const fn of trace.functions) groups.set(fn.trigger, [...(groups.get(fn.trigger) ?? []), fn]);
  const rank = (t: string): number => (triggerOrder.includes(t) ? triggerOrder.indexOf(t) : triggerOrder.length);
  return [...groups.keys()]
    .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map((t) => shuffled(groups.get(t) ?? [], random));
}

function planWith(trace: AzureTrace, options: Options, random: Random): DemoService[] {
  const { startMinute, endMinute } = minutesOf(options);
  const deck = functionsByTrigger(trace, random);
  let queues = deck.map((group) => group.map((fn) => ({ fn, offset: 0 })));
  // Each tenant walks the trigger types from its own starting point, so every tenant gets a mix.
  const cursors = options.tenants.map((_, index) => index);
  const nouns = new Map(options.tenants.map((t) => [t.id, shuffled(serviceNouns, random)]));
  const services: DemoService[] = [];
  for (let round = 0; round < options.servicesPerTenant; round++) {
    options.tenants.forEach((tenant, tenantIndex) => {
      if (queues.every((q) => q.length === 0)) {
        // Every function is in use: deal them again, each shifted so no two services move in step.
        queues = deck.map((group) => group.map((fn) => ({ fn, offset: 1 + Math.floor(random() * (trace.windowMinutes - 1)) })));
      }
      let cursor = cursors[tenantIndex] as number;
      while ((queues[cursor % queues.length] as unknown[]).length === 0) cursor += 1;
      const picked = (queues[cursor % queues.length] as { fn: TraceFunction; offset: number }[]).shift() as { fn: TraceFunction; offset: number };
      cursors[tenantIndex] = cursor + 1;
      const tenantNouns = nouns.get(tenant.id) as string[];
      const noun = tenantNouns[round % tenantNouns.length] as string;
      const suffix = round >= tenantNouns.length ? `-${Math.floor(round / tenantNouns.length) + 1}` : '';
      const name = `${servicePrefix[picked.fn.trigger] ?? 'fn'}-${noun}${suffix}`;
      const revisions: DemoRevision[] = [{ name: `${name}-00001`, from: new Date(startMinute * MINUTE_MS).toISOString() }];
      // Half the services deploy a new revision somewhere in the range.
      if (random() < 0.5) {
        const at = startMinute + 1 + Math.floor(random() * Math.max(1, endMinute - startMinute - 1));
        revisions.push({ name: `${name}-00002`, from: new Date(at * MINUTE_MS).toISOString() });
      }
      services.push({
        tenantId: tenant.id,
        name,
        trigger: picked.fn.trigger,
        traceFunction: picked.fn.hashFunction,
        traceOffsetMinutes: picked.offset,
        errorRate: between(random, options.errorRateMin, options.errorRateMax),
        cpuShare: between(random, 0.2, 0.9),
        memoryLimitMb: Math.max(128, Math.ceil((picked.fn.memoryMb.at(-1)?.value ?? 0) / 128) * 128),
        revisions,
      });
    });
  }
  return services;
}

/** The services each tenant gets, with the trace function each one plays. */
export function planWorkload(trace: AzureTrace, input: WorkloadOptions): DemoService[] {
  const options = parseOptions(input);
  return planWith(trace, options, randomSource(options.seed));
}

/**
 * Load factor of a load-driven trigger at a local time: 1 from 08:00 to 20:00, a sin² dip to
 * 1 − nightDip at 02:00, × weekendFactor on Saturday and Sunday (ISO weekday 6, 7).
 */
export function loadFactor(localHour: number, isoWeekday: number, nightDip: number, weekendFactor: number): number {
  const sinceEvening = mod(localHour - 20, 24);
  const night = sinceEvening < 12 ? Math.sin((Math.PI * sinceEvening) / 12) ** 2 : 0;
  return (1 - nightDip * night) * (isoWeekday >= 6 ? weekendFactor : 1);
}

/**
 * A tenant's local clock: for a UTC minute, the local minute of the day and the profile's load.
 * The zone's offset is looked up once per quarter hour — every zone's offset changes only on a
 * quarter hour — since a lookup per minute was most of the generator's time.
 */
class LocalClock {
  private readonly zone: IANAZone;
  private quarter = Number.NaN;
  private offsetMinutes = 0;

  constructor(
    zone: string,
    private readonly options: Options,
  ) {
    this.zone = IANAZone.create(zone);
  }

  at(minute: number): { minuteOfDay: number; load: number } {
    const quarter = Math.floor(minute / 15);
    if (quarter !== this.quarter) {
      this.quarter = quarter;
      this.offsetMinutes = this.zone.offset(minute * MINUTE_MS);
    }
    const localMinute = minute + this.offsetMinutes;
    const minuteOfDay = mod(localMinute, 1440);
    // 1970-01-01 was a Thursday (ISO weekday 4).
    const isoWeekday = mod(Math.floor(localMinute / 1440) + 3, 7) + 1;
    return { minuteOfDay, load: loadFactor(minuteOfDay / 60, isoWeekday, this.options.nightDip, this.options.weekendFactor) };
  }
}

/** Invocations a service has at scale 1 in a minute (fractional): its trace minute × the profile. */
function unscaledInvocations(trace: AzureTrace, fn: TraceFunction, service: DemoService, clock: { minuteOfDay: number; load: number }): number {
  const traceMinute = mod(clock.minuteOfDay - trace.windowStartMinute + service.traceOffsetMinutes, trace.windowMinutes);
  return (fn.invocationsPerMinute[traceMinute] ?? 0) * (fn.trigger === 'timer' ? 1 : clock.load);
}

function scalesWith(trace: AzureTrace, options: Options, services: DemoService[]): Map<string, number> {
  const functions = new Map(trace.functions.map((fn) => [fn.hashFunction, fn]));
  const { startMinute, endMinute } = minutesOf(options);
  const scales = new Map<string, number>();
  for (const tenant of options.tenants) {
    if (tenant.invocationsPerDay === undefined) {
      scales.set(tenant.id, tenant.scale ?? 1);
      continue;
    }
    const own = services.filter((s) => s.tenantId === tenant.id);
    let total = 0;
    const localClock = new LocalClock(tenant.timezone, options);
    for (let minute = startMinute; minute < endMinute; minute++) {
      const clock = localClock.at(minute);
      for (const s of own) total += unscaledInvocations(trace, functions.get(s.traceFunction) as TraceFunction, s, clock);
    }
    if (total === 0) throw new RangeError(`tenant ${tenant.id}: its services have no invocations in the range, so invocationsPerDay cannot be met`);
    scales.set(tenant.id, (tenant.invocationsPerDay * ((endMinute - startMinute) / 1440)) / total);
  }
  return scales;
}

/** Each tenant's scale: as given, or the one that meets its `invocationsPerDay`. */
export function tenantScales(trace: AzureTrace, input: WorkloadOptions): Map<string, number> {
  const options = parseOptions(input);
  return scalesWith(trace, options, planWith(trace, options, randomSource(options.seed)));
}

interface ServiceState {
  service: DemoService;
  fn: TraceFunction;
  revisionStarts: { name: string; minute: number }[];
  carry: number;
  lastBusyMinute: number | undefined;
  /** Invocations gathered in the current report slot. */
  slotInvocations: number;
  /** First busy minute of the current slot, and whether it started cold. */
  slotFirstBusyMinute: number;
  slotCold: boolean;
}

/** What one report carries before it gets an envelope. */
interface Report {
  invocations: number;
  durationMs: number;
  coldStart: boolean;
  error: boolean;
}

/** The generator's per-run state: the random stream and the draws that use it. */
class Draws {
  constructor(
    private readonly random: Random,
    private readonly options: Options,
  ) {}

  duration(fn: TraceFunction): number {
    return Math.min(valueAtQuantile(fn.durationMs, this.random()), usageLimits.maxDurationMsPerInvocation);
  }

  /** Total duration of n invocations: every draw up to 64, beyond that 64 draws' mean × n. */
  totalDuration(fn: TraceFunction, n: number): number {
    const samples = Math.min(n, maxDurationSamples);
    let sum = 0;
    for (let i = 0; i < samples; i++) sum += this.duration(fn);
    return (sum / samples) * n;
  }

  /** The stratified packing of c invocations into at most k reports (see the module comment). */
  packed(fn: TraceFunction, c: number, k: number): Report[] {
    const plain = (invocations: number, durationMs: number): Report => ({ invocations, durationMs, coldStart: false, error: false });
    if (c <= k) return Array.from({ length: c }, () => plain(1, this.duration(fn)));
    const m = Math.min(c, maxDurationSamples);
    const samples = Array.from({ length: m }, () => this.duration(fn)).sort((a, b) => a - b);
    const cuts = [0, ...(strataCuts[k] ?? []), 1];
    const reports: Report[] = [];
    for (let g = 0; g + 1 < cuts.length; g++) {
      const invocations = Math.round((cuts[g + 1] as number) * c) - Math.round((cuts[g] as number) * c);
      if (invocations === 0) continue;
      const lo = Math.min(Math.round((cuts[g] as number) * m), m - 1);
      const hi = Math.max(lo + 1, Math.round((cuts[g + 1] as number) * m));
      const stratum = samples.slice(lo, hi);
      const mean = stratum.reduce((a, b) => a + b, 0) / stratum.length;
      reports.push(plain(invocations, mean * invocations));
    }
    return reports;
  }

  /** The reports of one slot of a service: c invocations, the first one cold or not. */
  slot(state: ServiceState, c: number, cold: boolean): Report[] {
    const { fn } = state;
    const reports: Report[] = [];
    let rest = c;
    if (cold) {
      const penalty = between(this.random, this.options.coldStartPenaltyMinMs, this.options.coldStartPenaltyMaxMs);
      reports.push({ invocations: 1, durationMs: Math.min(this.duration(fn) + penalty, usageLimits.maxDurationMsPerInvocation), coldStart: true, error: false });
      rest -= 1;
    }
    const failed = Math.min(rest, Math.floor(rest * state.service.errorRate + this.random()));
    if (failed > 0) {
      reports.push({ invocations: failed, durationMs: this.totalDuration(fn, failed), coldStart: false, error: true });
      rest -= failed;
    }
    if (rest > 0) reports.push(...this.packed(fn, rest, this.options.reportsPerSlot));
    return reports;
  }

  memory(fn: TraceFunction): number {
    return Math.max(0.001, round3(valueAtQuantile(fn.memoryMb, this.random())));
  }

  /** Sorted instants (ms) for n reports in `[fromMs, toMs)`. */
  instants(n: number, fromMs: number, toMs: number): number[] {
    return Array.from({ length: n }, () => fromMs + Math.floor(this.random() * (toMs - fromMs))).sort((a, b) => a - b);
  }
}

function revisionAt(state: ServiceState, minute: number): string {
  let name = state.revisionStarts[0]?.name ?? `${state.service.name}-00001`;
  for (const r of state.revisionStarts) if (r.minute <= minute) name = r.name;
  return name;
}

/**
 * Usage CloudEvents of the workload, in time order, lazily (a week of three tenants is ~10⁵ events).
 * Throws a RangeError for invalid options.
 */
export function* generateUsageEvents(trace: AzureTrace, input: WorkloadOptions): Generator<UsageCloudEvent, void, undefined> {
  const options = parseOptions(input);
  const services = planWith(trace, options, randomSource(options.seed));
  // A second stream for the draws, so the plan does not depend on how many draws a minute takes.
  const draws = new Draws(randomSource(options.seed ^ 0x5bd1e995), options);
  const functions = new Map(trace.functions.map((fn) => [fn.hashFunction, fn]));
  const scales = scalesWith(trace, options, services);
  const tenants = options.tenants.map((tenant) => ({
    tenant,
    scale: scales.get(tenant.id) ?? 1,
    localClock: new LocalClock(tenant.timezone, options),
    states: services
      .filter((s) => s.tenantId === tenant.id)
      .map((service): ServiceState => ({
        service,
        fn: functions.get(service.traceFunction) as TraceFunction,
        revisionStarts: service.revisions.map((r) => ({ name: r.name, minute: Math.floor(Date.parse(r.from) / MINUTE_MS) })),
        carry: 0,
        lastBusyMinute: undefined,
        slotInvocations: 0,
        slotFirstBusyMinute: 0,
        slotCold: false,
      })),
  }));
  const { startMinute, endMinute } = minutesOf(options);
  const backfillBefore = endMinute * MINUTE_MS - backfillAfterMs;

  /** The reports of a service's slot, as CloudEvents. */
  const emit = (tenantId: string, state: ServiceState, slotEndMinute: number, events: UsageCloudEvent[]): void => {
    const reports = draws.slot(state, state.slotInvocations, state.slotCold);
    // The cold start is the slot's first report: instants ascend from its first busy minute.
    const instants = draws.instants(reports.length, state.slotFirstBusyMinute * MINUTE_MS, slotEndMinute * MINUTE_MS);
    const revision = revisionAt(state, state.slotFirstBusyMinute);
    reports.forEach((report, index) => {
      const at = instants[index] as number;
      const durationMs = Math.min(round3(report.durationMs), report.invocations * usageLimits.maxDurationMsPerInvocation);
      const event: UsageCloudEvent = {
        specversion: '1.0',
        type: EventType.usage,
        source: `/demo/${tenantId}`,
        id: `s${options.seed}-${state.service.name}-${state.slotFirstBusyMinute}-${index}`,
        time: new Date(at).toISOString(),
        datacontenttype: 'application/json',
        data: {
          tenant_id: tenantId,
          service: state.service.name,
          revision,
          invocations: report.invocations,
          duration_ms: durationMs,
          memory_mb: draws.memory(state.fn),
          cpu_ms: round3(durationMs * state.service.cpuShare),
          cold_start: report.coldStart,
          error: report.error,
          labels: { trigger: state.fn.trigger, trace_function: state.fn.hashFunction.slice(0, 12) },
        },
      };
      if (at < backfillBefore) event.backfill = true;
      events.push(event);
    });
    state.slotInvocations = 0;
  };

  for (let minute = startMinute; minute < endMinute; minute++) {
    for (const { scale, localClock, states } of tenants) {
      const clock = localClock.at(minute);
      for (const state of states) {
        const expected = unscaledInvocations(trace, state.fn, state.service, clock) * scale + state.carry;
        const count = Math.floor(expected);
        state.carry = expected - count;
        if (count === 0) continue;
        if (state.slotInvocations === 0) {
          state.slotFirstBusyMinute = minute;
          state.slotCold = state.lastBusyMinute === undefined || minute - state.lastBusyMinute > options.keepAliveMinutes;
        }
        state.slotInvocations += count;
        state.lastBusyMinute = minute;
      }
    }
    // Slots are aligned to UTC minutes, the same for every tenant, so each slot's events all come
    // before the next slot's and sorting one slot keeps the whole stream in time order.
    const slotEnd = minute + 1;
    if (slotEnd % options.minutesPerReport !== 0 && slotEnd !== endMinute) continue;
    const events: UsageCloudEvent[] = [];
    for (const { tenant, states } of tenants) {
      for (const state of states) if (state.slotInvocations > 0) emit(tenant.id, state, slotEnd, events);
    }
    events.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    yield* events;
  }
}
