/** Schemas and helpers shared by the API's routes. */
import { z } from 'zod';

export const uuid = (what: string) => z.uuid(`${what} must be a UUID`);
/** A tenant by id or slug. */
export const tenantRef = z.string().trim().min(1).max(128).describe('tenant id (UUID) or slug');
export const idParams = z.strictObject({ id: z.string().min(1).max(128) });
export const instant = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time with an offset, e.g. 2026-10-01T00:00:00Z' });
export const limitQuery = z.coerce.number().int().min(1).max(500).default(100).describe('page size (1–500, default 100)');
export const decimalText = z.string().describe('decimal number as text (exact)');
export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });
export const iso = (d: Date | string | null | undefined): string | null => (d === null || d === undefined ? null : new Date(d).toISOString());
