/**
 * `npm run migrate`: applies pending migrations to DATABASE_URL (required here: the embedded
 * database lives only while `npm start` runs, and it migrates itself). `--seed-demo` adds the
 * demo tenants; `--down` rolls everything back.
 */
import { createDb } from '../src/adapters/postgres.js';
import { loadConfig } from '../src/runtime/config.js';
import { migrateDownAll, migrateLatest } from '../schema/migrate.js';
import { seedDemoTenants } from '../schema/seeds/demo.js';

const config = loadConfig();
if (!config.DATABASE_URL) {
  console.error('DATABASE_URL is not set. Set it to your PostgreSQL, e.g. postgres://user@127.0.0.1:5432/faasbilling');
  process.exit(2);
}
const db = createDb(config.DATABASE_URL, 1);
try {
  if (process.argv.includes('--down')) {
    await migrateDownAll(db);
    console.log('rolled back all migrations');
  } else {
    const applied = await migrateLatest(db);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
    if (process.argv.includes('--seed-demo')) {
      await seedDemoTenants(db);
      console.log('demo tenants present');
    }
  }
} finally {
  await db.destroy();
}
