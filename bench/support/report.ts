/**
 * How bench sections word their figures. A headline figure compared with its target is a
 * "verdict" line; bench/run.ts copies every verdict line into the summary table.
 */
import { pathToFileURL } from 'node:url';

/** Events (or requests) per second. */
export const perSecond = (count: number, elapsedMs: number): number => (elapsedMs > 0 ? (count * 1000) / elapsedMs : 0);

/** 12345.6 → "12,346". */
export const formatCount = (value: number): string => Math.round(value).toLocaleString('en-US');

/** A rate as "12,346/s". */
export const formatRate = (value: number): string => `${formatCount(value)}/s`;

const verdictMarks = { met: '✓', missed: '✗' } as const;

/**
 * "✓ label: measured (target ≥ target)". `format` renders both numbers (a ratio by default).
 */
export function verdict(label: string, measured: number, target: number, format: (value: number) => string = (v) => `${v.toFixed(2)}×`): string {
  const mark = measured >= target ? verdictMarks.met : verdictMarks.missed;
  return `${mark} ${label}: ${format(measured)} (target ≥ ${format(target)})`;
}

/** Whether a logged line is a verdict, and if so whether its target was met. */
export function readVerdict(line: string): { met: boolean; text: string } | undefined {
  const text = line.trim();
  if (text.startsWith(verdictMarks.met)) return { met: true, text };
  if (text.startsWith(verdictMarks.missed)) return { met: false, text };
  return undefined;
}

/** "✓ label: detail" when `ok`, else "✗ …": a pass/fail check that belongs in the summary. */
export function check(label: string, ok: boolean, detail: string): string {
  return `${ok ? verdictMarks.met : verdictMarks.missed} ${label}: ${detail}`;
}

/** Seconds with two decimals, e.g. "1.25 s". */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** Runs `work` and returns its result with the milliseconds it took. */
export async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work();
  return [result, performance.now() - started];
}

/** Runs a section when its file is the script node was started with (`npx tsx bench/<section>.ts`). */
export function runAsScript(moduleUrl: string, run: (log: (line: string) => void) => Promise<void>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  run((line) => console.log(line)).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
