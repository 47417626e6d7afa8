/** Demo data for local mode: the tenants the seed's examples post usage for. */
import type { Knex } from 'knex';

/** Tenants `demo` and `demo-tenant` (the seed's curl examples use both); a no-op when present. */
export async function seedDemoTenants(db: Knex): Promise<void> {
  await db('tenants')
    .insert([
      { slug: 'demo', name: 'Demo tenant', currency: 'USD', timezone: 'UTC', billing_email: 'billing@example.com' },
      { slug: 'demo-tenant', name: 'Demo tenant (seed examples)', currency: 'RUB', timezone: 'Europe/Moscow' },
    ])
    .onConflict('slug')
    .ignore();
}
