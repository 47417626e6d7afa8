/**
 * The Azure Functions 2019 trace sample the demo workload is shaped by (fixtures/azure-functions-2019/,
 * CC-BY 4.0 — see the README there for the attribution). `parseAzureTrace` is pure; `loadAzureTrace`
 * is the one function here that reads files.
 *
 * The sample has, per function: its trigger, invocations in each minute of one 8-hour window
 * (minutes 480–959 of a day), full-day duration percentiles (ms) and allocated-memory percentiles
 * (MB). Percentiles become inverse-CDF points; drawing from them interpolates linearly between the
 * points, so a draw never leaves the observed minimum–maximum range.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/** One point of an inverse CDF: the value at quantile `q` (0 ≤ q ≤ 1). */
export interface QuantilePoint {
  q: number;
  value: number;
}

export interface TraceFunction {
  hashFunction: string;
  hashApp: string;
  hashOwner: string;
  /** Trigger type as the trace names it: http, timer, queue, event, orchestration, storage, others. */
  trigger: string;
  /** Invocations in each minute of the window, in order. */
  invocationsPerMinute: number[];
  /** Per-invocation duration, ms: points at quantiles 0, .01, .25, .5, .75, .99, 1. */
  durationMs: QuantilePoint[];
  /** Allocated memory, MB: points at quantiles .01, .05, .25, .5, .75, .95, .99, 1 (and 0 = the .01 value). */
  memoryMb: QuantilePoint[];
}

export interface AzureTrace {
  /** Minute of the day of the window's first column (480 = 08:00). */
  windowStartMinute: number;
  /** Length of the window, minutes. */
  windowMinutes: number;
  functions: TraceFunction[];
}

/** The CSV texts of the three trace files. */
export interface AzureTraceFiles {
  invocations: string;
  durations: string;
  memory: string;
}

/** The fixture shipped with the project (relative to this module, so it works from any checkout). */
export const defaultTraceDir = new URL('../../fixtures/azure-functions-2019/', import.meta.url);

const hash = z.string().regex(/^[0-9a-f]{64}$/, 'a 64-hex-digit hash');
const count = z.coerce.number().int().nonnegative();
const measure = z.coerce.number().finite().nonnegative();

const durationColumns = [
  ['percentile_Average_0', 0],
  ['percentile_Average_1', 0.01],
  ['percentile_Average_25', 0.25],
  ['percentile_Average_50', 0.5],
  ['percentile_Average_75', 0.75],
  ['percentile_Average_99', 0.99],
  ['percentile_Average_100', 1],
] as const;

const memoryColumns = [
  ['AverageAllocatedMb_pct1', 0.01],
  ['AverageAllocatedMb_pct5', 0.05],
  ['AverageAllocatedMb_pct25', 0.25],
  ['AverageAllocatedMb_pct50', 0.5],
  ['AverageAllocatedMb_pct75', 0.75],
  ['AverageAllocatedMb_pct95', 0.95],
  ['AverageAllocatedMb_pct99', 0.99],
  ['AverageAllocatedMb_pct100', 1],
] as const;

/** A CSV of plain cells (the trace files quote nothing), as header-keyed rows. */
function readCsv(text: string, file: string): { header: string[]; rows: { line: number; cells: Map<string, string>; values: string[] }[] } {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',');
  const rows = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === '') continue;
    const values = line.split(',');
    if (values.length !== header.length) {
      throw new Error(`${file} line ${i + 1}: ${values.length} cells, the header has ${header.length}`);
    }
    rows.push({ line: i + 1, cells: new Map(header.map((name, k) => [name, values[k] ?? ''])), values });
  }
  return { header, rows };
}

function cell<T>(schema: z.ZodType<T>, row: { line: number; cells: Map<string, string> }, column: string, file: string): T {
  const parsed = schema.safeParse(row.cells.get(column));
  if (!parsed.success) {
    throw new Error(`${file} line ${row.line}, column ${column}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  return parsed.data;
}

function quantilePoints(
  row: { line: number; cells: Map<string, string> },
  columns: readonly (readonly [string, number])[],
  file: string,
): QuantilePoint[] {
  const points = columns.map(([column, q]) => ({ q, value: cell(measure, row, column, file) }));
  for (let i = 1; i < points.length; i++) {
    if ((points[i]?.value ?? 0) < (points[i - 1]?.value ?? 0)) {
      throw new Error(`${file} line ${row.line}: percentiles decrease (${columns[i]?.[0] ?? ''})`);
    }
  }
  const first = points[0];
  // The memory file starts at the 1st percentile: below it, the 1st percentile's value stands.
  if (first && first.q > 0) points.unshift({ q: 0, value: first.value });
  return points;
}

/** Parses the three trace files; every function must appear in all three. */
export function parseAzureTrace(files: AzureTraceFiles): AzureTrace {
  const invocations = readCsv(files.invocations, 'invocations.csv');
  const minuteColumns = invocations.header.slice(4);
  const windowStartMinute = Number(minuteColumns[0]);
  if (!Number.isInteger(windowStartMinute) || minuteColumns.some((c, i) => Number(c) !== windowStartMinute + i)) {
    throw new Error('invocations.csv: columns after HashOwner,HashApp,HashFunction,Trigger must be consecutive minutes of the day');
  }
  const durations = new Map(readCsv(files.durations, 'durations.csv').rows.map((r) => [r.cells.get('HashFunction'), r]));
  const memory = new Map(readCsv(files.memory, 'memory.csv').rows.map((r) => [r.cells.get('HashFunction'), r]));

  const functions = invocations.rows.map((row): TraceFunction => {
    const hashFunction = cell(hash, row, 'HashFunction', 'invocations.csv');
    const durationRow = durations.get(hashFunction);
    const memoryRow = memory.get(hashFunction);
    if (!durationRow || !memoryRow) {
      throw new Error(`function ${hashFunction} (invocations.csv line ${row.line}) is missing from ${durationRow ? 'memory.csv' : 'durations.csv'}`);
    }
    return {
      hashFunction,
      hashApp: cell(hash, row, 'HashApp', 'invocations.csv'),
      hashOwner: cell(hash, row, 'HashOwner', 'invocations.csv'),
      trigger: cell(z.string().min(1), row, 'Trigger', 'invocations.csv'),
      invocationsPerMinute: minuteColumns.map((column) => cell(count, row, column, 'invocations.csv')),
      durationMs: quantilePoints(durationRow, durationColumns, 'durations.csv'),
      memoryMb: quantilePoints(memoryRow, memoryColumns, 'memory.csv'),
    };
  });
  if (functions.length === 0) throw new Error('invocations.csv holds no functions');
  return { windowStartMinute, windowMinutes: minuteColumns.length, functions };
}

/** Reads and parses the trace files in `dir` (by default the project's fixture). */
export async function loadAzureTrace(dir: URL | string = defaultTraceDir): Promise<AzureTrace> {
  const read = (name: string): Promise<string> => readFile(typeof dir === 'string' ? join(dir, name) : new URL(name, dir), 'utf8');
  const [invocations, durations, memory] = await Promise.all([read('invocations.csv'), read('durations.csv'), read('memory.csv')]);
  return parseAzureTrace({ invocations, durations, memory });
}

/** The value at quantile `u` (0 ≤ u < 1), linear between the points; `points` ascend from q = 0 to q = 1. */
export function valueAtQuantile(points: readonly QuantilePoint[], u: number): number {
  for (let i = 1; i < points.length; i++) {
    const hi = points[i] as QuantilePoint;
    if (u <= hi.q || i === points.length - 1) {
      const lo = points[i - 1] as QuantilePoint;
      const span = hi.q - lo.q;
      return span <= 0 ? hi.value : lo.value + ((u - lo.q) / span) * (hi.value - lo.value);
    }
  }
  return points[0]?.value ?? 0;
}
