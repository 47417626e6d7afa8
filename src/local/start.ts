/**
 * `npm start`: the whole system on one machine (src/local/system.ts), with its URLs printed;
 * Ctrl-C stops it cleanly.
 */
import path from 'node:path';
import { createLogger } from '../runtime/logger.js';
import { startLocalSystem } from './system.js';

const logger = createLogger('local');

async function main(): Promise<void> {
  const system = await startLocalSystem(logger);
  const lines = [
    'FaaS Billing is running (local mode)',
    `  database   ${system.embedded ? `embedded PGlite at ${system.databaseUrl}` : 'DATABASE_URL'}${system.applied.length ? ` (migrated: ${system.applied.join(', ')})` : ''}`,
    `  buffer     ${system.redis ? 'Redis stream (REDIS_URL)' : 'queue table in PostgreSQL (embedded buffer)'}`,
    `  dashboard  ${system.apiUrl}/   (sign in with the admin key)`,
    `  api        ${system.apiUrl}/api/v1   (docs: ${system.apiUrl}/api/v1/docs)`,
    `  admin key  ${system.adminKey}${system.adminKeyFile ? `   (kept in ${path.relative(process.cwd(), system.adminKeyFile)})` : ''}`,
    `             try: curl -H "Authorization: Bearer ${system.adminKey}" ${system.apiUrl}/api/v1/tenants`,
    `  broker     ${system.broker.url}   <- send CloudEvents here`,
    ...system.functionNames.map((name) => `  ${name.padEnd(10)} ${system.urlOf(name)}   (/metrics, /health/readiness)`),
    ...system.workloadNames.map((name) => `  ${name.padEnd(10)} ${system.urlOf(name)}   (workload, metered as tenant ${process.env.METERING_TENANT ?? 'demo'}${name === 'waiter' ? '; try /invoke?sleep_ms=200&mem_mb=50' : ''})`),
    'Press Ctrl-C to stop.',
  ];
  console.log(lines.join('\n'));

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: broker first, then functions, then the database');
    await system.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  logger.fatal({ err }, 'local start failed');
  process.exit(1);
});
