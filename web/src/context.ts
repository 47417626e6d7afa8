/** What every screen gets: the API client, the key's role, and the tenant being looked at. */
import type { Api, Tenant } from './api.ts';

export type Role = 'admin' | 'tenant';

export interface Ctx {
  api: Api;
  role: Role;
  /** Every tenant the key can see (one for a tenant key). */
  tenants: Tenant[];
  /** The tenant whose figures are shown (null: an admin key on a system without tenants). */
  tenant: Tenant | null;
  /** Current instant (screens compute periods from it). */
  now: () => Date;
  /** Reads the tenant list again (after a tenant is created). */
  reloadTenants: () => void;
}

export interface ScreenProps {
  ctx: Ctx;
  params: Record<string, string>;
}
