/**
 * `npm run bench`: runs every benchmark section in turn against the real PostgreSQL and Redis
 * (DATABASE_URL, REDIS_URL), then prints a summary table with each section's verdict lines
 * (figures against their targets; see support/report.ts). Missing a target is reported, not
 * failed: the exit code is non-zero only when a section could not run.
 */
import { benchEnv } from './support/env.js';
import { readVerdict } from './support/report.js';
import { run as aggregate } from './aggregate.js';
import { run as billing } from './billing.js';
import { run as ingest } from './ingest.js';
import { run as variants } from './variants.js';
import { run as metering } from './metering.js';

interface Section {
  name: string;
  run: (log: (line: string) => void) => Promise<void>;
}

// The sections, in order. Each module exports `run(log)`; add a section with one import above
// and one line here.
const sections: Section[] = [
  { name: 'ingest', run: ingest },
  { name: 'aggregate', run: aggregate },
  { name: 'billing', run: billing },
  { name: 'price variants', run: variants },
  { name: 'metering', run: metering },
];

interface Outcome {
  name: string;
  seconds: number;
  error: string | undefined;
  verdicts: { met: boolean; text: string }[];
}

let finished = false;
// faas-js-runtime (loaded by sections that serve functions) exits with 0 on an uncaught
// exception or a signal; an exit before the end must not look like success.
process.on('exit', (code) => {
  if (!finished && code === 0) process.exitCode = 1;
});

async function runSection(section: Section): Promise<Outcome> {
  const verdicts: Outcome['verdicts'] = [];
  const log = (line: string): void => {
    console.log(line);
    const read = readVerdict(line);
    if (read) verdicts.push(read);
  };
  console.log(`\n== ${section.name} ${'='.repeat(Math.max(0, 76 - section.name.length))}`);
  const started = performance.now();
  let error: string | undefined;
  try {
    await section.run(log);
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
    console.error(err);
  }
  return { name: section.name, seconds: (performance.now() - started) / 1000, error, verdicts };
}

function printSummary(outcomes: Outcome[]): void {
  console.log(`\n== summary ${'='.repeat(69)}`);
  console.log(`${'section'.padEnd(12)}${'status'.padEnd(10)}time`);
  for (const o of outcomes) {
    console.log(`${o.name.padEnd(12)}${(o.error ? 'FAILED' : 'ok').padEnd(10)}${o.seconds.toFixed(0)} s${o.error ? `  ${o.error}` : ''}`);
    for (const v of o.verdicts) console.log(`    ${v.text}`);
  }
  const all = outcomes.flatMap((o) => o.verdicts);
  console.log(`targets and checks met: ${all.filter((v) => v.met).length} of ${all.length}`);
}

benchEnv(); // exits with 2 and says what to set when DATABASE_URL or REDIS_URL is missing
const outcomes: Outcome[] = [];
for (const section of sections) outcomes.push(await runSection(section));
printSummary(outcomes);
finished = true;
process.exit(outcomes.some((o) => o.error) ? 1 : 0);
