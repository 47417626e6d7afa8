/**
 * API keys: random, shown once, stored hashed. A key reads `fbk_<prefix>_<secret>`: the prefix (12
 * hex chars) finds the row, the SHA-256 of the whole key is compared in constant time. SHA-256 is
 * enough here (unlike passwords, a key is 32 random bytes, so there is nothing to brute-force);
 * the hash keeps a leaked table from being usable as keys.
 *
 * Roles: `admin` (everything), `tenant` (its own tenant: read usage, bills, forecasts; manage its
 * services), `ingest` (post usage for its tenant only).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';

export const roles = ['admin', 'tenant', 'ingest'] as const;
export type Role = (typeof roles)[number];

/** Who is calling: the key's id, name, role and (unless admin) tenant. */
export interface Principal {
  keyId: string;
  name: string;
  role: Role;
  tenantId: string | null;
}

export const apiKeySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string(),
  role: z.enum(roles),
  tenant_id: z.uuid().nullable(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type ApiKeyInfo = z.infer<typeof apiKeySchema>;

const keyPattern = /^fbk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

const hashOf = (key: string): string => createHash('sha256').update(key).digest('hex');

/** A new random key (not stored). */
export function generateKey(): { key: string; prefix: string } {
  const prefix = randomBytes(6).toString('hex');
  return { key: `fbk_${prefix}_${randomBytes(32).toString('base64url')}`, prefix };
}

/** Whether a string has the shape of a key (checked before any lookup). */
export const isKeyShaped = (key: string): boolean => keyPattern.test(key);

interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  key_hash: string;
  role: Role;
  tenant_id: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const infoOf = (row: KeyRow): ApiKeyInfo => ({
  id: row.id,
  name: row.name,
  prefix: row.prefix,
  role: row.role,
  tenant_id: row.tenant_id,
  created_at: row.created_at.toISOString(),
  last_used_at: row.last_used_at?.toISOString() ?? null,
  revoked_at: row.revoked_at?.toISOString() ?? null,
});

export class KeyStore {
  /** last_used_at is written at most once a minute per key. */
  private readonly touched = new Map<string, number>();

  constructor(private readonly db: Knex) {}

  /** Creates a key; the returned `key` is the only time it is ever shown. */
  async create(input: { name: string; role: Role; tenantId: string | null }): Promise<ApiKeyInfo & { key: string }> {
    if ((input.role === 'admin') !== (input.tenantId === null)) {
      throw new Error(input.role === 'admin' ? 'an admin key has no tenant' : `a ${input.role} key needs a tenant`);
    }
    const { key, prefix } = generateKey();
    const [row] = (await this.db('api_keys')
      .insert({ name: input.name, prefix, key_hash: hashOf(key), role: input.role, tenant_id: input.tenantId })
      .returning('*')) as KeyRow[];
    if (!row) throw new Error('api key insert returned no row');
    return { ...infoOf(row), key };
  }

  /**
   * Stores a key given from outside (the bootstrap admin key of the configuration) if it is not
   * stored yet. Returns false when the key has the wrong shape.
   */
  async ensure(key: string, name: string): Promise<boolean> {
    const match = keyPattern.exec(key);
    if (!match) return false;
    await this.db('api_keys')
      .insert({ name, prefix: match[1], key_hash: hashOf(key), role: 'admin', tenant_id: null })
      .onConflict('prefix')
      .ignore();
    return true;
  }

  /** The principal of a key, or undefined for an unknown, wrong or revoked key. */
  async verify(key: string): Promise<Principal | undefined> {
    const match = keyPattern.exec(key);
    if (!match) return undefined;
    const row = (await this.db('api_keys').where({ prefix: match[1] }).first()) as KeyRow | undefined;
    if (!row || row.revoked_at) return undefined;
    const expected = Buffer.from(row.key_hash, 'hex');
    const actual = Buffer.from(hashOf(key), 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
    const last = this.touched.get(row.id) ?? 0;
    if (Date.now() - last > 60_000) {
      this.touched.set(row.id, Date.now());
      await this.db('api_keys').where({ id: row.id }).update({ last_used_at: this.db.fn.now() });
    }
    return { keyId: row.id, name: row.name, role: row.role, tenantId: row.tenant_id };
  }

  async list(tenantId?: string): Promise<ApiKeyInfo[]> {
    const q = this.db('api_keys').orderBy('created_at');
    if (tenantId) void q.where({ tenant_id: tenantId });
    return ((await q) as KeyRow[]).map(infoOf);
  }

  async get(id: string): Promise<ApiKeyInfo | undefined> {
    const row = (await this.db('api_keys').where({ id }).first()) as KeyRow | undefined;
    return row ? infoOf(row) : undefined;
  }

  /** Revokes a key (kept for the audit trail); revoking twice keeps the first time. */
  async revoke(id: string): Promise<ApiKeyInfo | undefined> {
    await this.db('api_keys').where({ id }).whereNull('revoked_at').update({ revoked_at: this.db.fn.now() });
    return this.get(id);
  }
}
