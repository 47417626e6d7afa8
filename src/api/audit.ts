/**
 * The audit log: every mutating API call writes who (key id and name), what (action, entity),
 * when, for which tenant, and the ids before/after in `details` (ingest: one entry per request
 * with its counts). Where the route owns the transaction (tenants, services, plans, assignments)
 * the entry is written in it, so the change never lands without its entry; a bill finalized or
 * paid gets its entry in the billing service's transaction (a BillChangeHook); key changes commit
 * inside their service first and the entry follows right after (a failure there answers 5xx and
 * is logged).
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Principal } from './keys.js';

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId: string | null;
  tenantId: string | null;
  details?: Record<string, unknown>;
}

export const auditActor = (p: Principal): string => `key:${p.keyId} (${p.name}, ${p.role})`;

export async function audit(db: Knex, principal: Principal, entry: AuditEntry): Promise<void> {
  await db('audit_log').insert({
    actor: auditActor(principal),
    action: entry.action,
    entity_type: entry.entityType,
    entity_id: entry.entityId,
    tenant_id: entry.tenantId,
    details: JSON.stringify(entry.details ?? {}),
  });
}

export const auditRowSchema = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  entity_type: z.string(),
  entity_id: z.string().nullable(),
  tenant_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditRow = z.infer<typeof auditRowSchema>;

export interface AuditFilter {
  tenantId?: string | undefined;
  action?: string | undefined;
  entityType?: string | undefined;
  entityId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** Entries with id below this (newest first paging). */
  before?: string | undefined;
  limit: number;
}

/** Entries newest first, with the cursor of the next page. */
export async function readAudit(db: Knex, f: AuditFilter): Promise<{ items: AuditRow[]; next_cursor: string | null }> {
  const q = db('audit_log').orderBy('id', 'desc').limit(f.limit + 1);
  if (f.tenantId) void q.where({ tenant_id: f.tenantId });
  if (f.action) void q.where({ action: f.action });
  if (f.entityType) void q.where({ entity_type: f.entityType });
  if (f.entityId) void q.where({ entity_id: f.entityId });
  if (f.since) void q.where('at', '>=', f.since);
  if (f.until) void q.where('at', '<', f.until);
  if (f.before) void q.where('id', '<', f.before);
  const rows = (await q) as { id: string; at: Date; actor: string; action: string; entity_type: string; entity_id: string | null; tenant_id: string | null; details: Record<string, unknown> }[];
  const page = rows.slice(0, f.limit);
  return {
    items: page.map((r) => ({ ...r, id: String(r.id), at: r.at.toISOString() })),
    next_cursor: rows.length > f.limit ? String(page.at(-1)?.id ?? '') : null,
  };
}
