/**
 * The bench's synthetic workload: a small catalogue of tenants, services and revisions, and usage
 * events derived from a counter, so every phase stores the same kind of rows (same sizes, same
 * spread over tenants and services) and a run is repeatable.
 */
import type { UsageRecord } from '../../src/contract/usage.js';
import { EventType } from '../../src/contract/events.js';
import type { Db } from '../../src/adapters/postgres.js';
import { usageRawCopyLine, type RowIds } from '../../src/adapters/usage-store.js';

/** How many tenants, services per tenant and revisions per service the catalogue holds. */
export const catalogueShape = { tenants: 4, servicesPerTenant: 5, revisionsPerService: 2 } as const;

const tenantSlug = (t: number): string => `bench-tenant-${t}`;
const serviceName = (s: number): string => `fn-${s}`;
const revisionName = (s: number, r: number): string => `fn-${s}-0000${r + 1}`;

/** The database ids of every (tenant, service, revision) of the catalogue, by "tenant/service/revision". */
export type CatalogueIds = Map<string, RowIds>;

const catalogueKey = (tenant: string, service: string, revision: string): string => `${tenant}/${service}/${revision}`;

/** Creates the catalogue (tenants, services, revisions) and returns its ids. */
export async function seedCatalogue(db: Db): Promise<CatalogueIds> {
  const ids: CatalogueIds = new Map();
  for (let t = 0; t < catalogueShape.tenants; t += 1) {
    const [tenant] = await db('tenants').insert({ slug: tenantSlug(t), name: `Bench tenant ${t}` }).returning<{ id: string }[]>('id');
    if (!tenant) throw new Error('tenant insert returned no id');
    for (let s = 0; s < catalogueShape.servicesPerTenant; s += 1) {
      const [service] = await db('services').insert({ tenant_id: tenant.id, name: serviceName(s) }).returning<{ id: string }[]>('id');
      if (!service) throw new Error('service insert returned no id');
      for (let r = 0; r < catalogueShape.revisionsPerService; r += 1) {
        const [revision] = await db('revisions').insert({ service_id: service.id, name: revisionName(s, r) }).returning<{ id: string }[]>('id');
        if (!revision) throw new Error('revision insert returned no id');
        ids.set(catalogueKey(tenantSlug(t), serviceName(s), revisionName(s, r)), { tenantId: tenant.id, serviceId: service.id, revisionId: revision.id });
      }
    }
  }
  return ids;
}

/** The `data` of usage event number `i` (a faasbilling.usage.v1 payload). */
export function usageDataOf(i: number) {
  const t = i % catalogueShape.tenants;
  const s = Math.floor(i / catalogueShape.tenants) % catalogueShape.servicesPerTenant;
  const r = Math.floor(i / (catalogueShape.tenants * catalogueShape.servicesPerTenant)) % catalogueShape.revisionsPerService;
  return {
    tenant_id: tenantSlug(t),
    service: serviceName(s),
    revision: revisionName(s, r),
    invocations: 1 + (i % 3),
    duration_ms: 5 + ((i * 37) % 2000) + 0.125,
    memory_mb: [128, 256, 512][i % 3] as number,
    cpu_ms: (i * 13) % 900,
    cold_start: i % 50 === 0,
    error: i % 97 === 0,
    labels: { method: i % 2 === 0 ? 'GET' : 'POST' },
  };
}

/** Usage event `i` as the buffer holds it; times spread over ten minutes from `baseMs`. */
export function usageRecordOf(i: number, source: string, baseMs: number): UsageRecord {
  return { source, id: `e${i}`, time: new Date(baseMs + (i % 600_000)).toISOString(), ...usageDataOf(i) };
}

/** Usage event `i` as save's COPY writes it into usage_raw (the raw-COPY baseline's rows). */
export function copyLineOf(record: UsageRecord, ids: CatalogueIds): string {
  const resolved = ids.get(catalogueKey(record.tenant_id, record.service, record.revision));
  if (!resolved) throw new Error(`record ${record.id} names ${record.tenant_id}/${record.service}, which is not in the catalogue`);
  return usageRawCopyLine(record, resolved);
}

/** A structured-mode usage CloudEvent whose id is `id` (autocannon replaces "[<id>]" per request). */
export function usageCloudEventOf(i: number, id: string, source: string, time: string) {
  return { specversion: '1.0', type: EventType.usage, source, id, time, datacontenttype: 'application/json', data: usageDataOf(i) };
}
