/** Services, revisions and artifacts (admin, or a tenant key for its own services). */
import type { Request, Response } from 'express';
import type { Knex } from 'knex';
import multer from 'multer';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { ArtifactError, artifactStatus } from '../../../src/api/artifacts.js';
import { audit } from '../../../src/api/audit.js';
import { ApiError, notFound, type ApiErrorCode } from '../../../src/api/errors.js';
import type { Principal } from '../../../src/api/keys.js';
import { reply, route } from '../../../src/api/route.js';
import { canSee, isUuid, requiredTenant, scopedTenant } from '../../../src/api/tenancy.js';
import { idParams, limitQuery, page, tenantRef } from './common.js';
import type { ApiDeps } from './index.js';

const k8sName = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'a Kubernetes name: lower-case letters, digits, "-" and ".", at most 253');

export const serviceSchema = z.object({
  id: z.uuid(),
  tenant_id: z.uuid(),
  name: z.string(),
  namespace: z.string(),
  runtime: z.string().nullable(),
  memory_limit_mb: z.number().int().nullable(),
  cpu_limit_cores: z.string().nullable(),
  auto_registered: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
const revisionSchema = z.object({
  id: z.uuid(),
  service_id: z.uuid(),
  name: z.string(),
  image: z.string().nullable(),
  memory_limit_mb: z.number().int().nullable(),
  config_env: z.record(z.string(), z.unknown()),
  scaling_config: z.record(z.string(), z.unknown()),
  auto_registered: z.boolean(),
  created_at: z.string(),
});
const artifactSchema = z.object({
  service_id: z.string(),
  filename: z.string(),
  content_type: z.string(),
  size_bytes: z.number(),
  sha256: z.string(),
  uploaded_at: z.string(),
  replaced: z.boolean().optional(),
});

interface ServiceRow {
  id: string;
  tenant_id: string;
  name: string;
  namespace: string;
  runtime: string | null;
  memory_limit_mb: number | null;
  cpu_limit_cores: string | null;
  auto_registered: boolean;
  created_at: Date;
  updated_at: Date;
}
const serviceOut = (r: ServiceRow): z.infer<typeof serviceSchema> => ({ ...r, created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString() });
interface RevisionRow {
  id: string;
  service_id: string;
  name: string;
  image: string | null;
  memory_limit_mb: number | null;
  config_env: Record<string, unknown>;
  scaling_config: Record<string, unknown>;
  auto_registered: boolean;
  created_at: Date;
}
const revisionOut = (r: RevisionRow): z.infer<typeof revisionSchema> => ({ ...r, created_at: r.created_at.toISOString() });

/** A service the caller may see (404 otherwise, the same as a missing one). */
export async function visibleService(db: Knex, principal: Principal, id: string): Promise<ServiceRow> {
  const row = isUuid(id) ? ((await db('services').where({ id }).first()) as ServiceRow | undefined) : undefined;
  if (!row || !canSee(principal, row.tenant_id)) throw notFound('service', id);
  return row;
}

const artifactCodes: Record<number, ApiErrorCode> = { 404: 'not_found', 413: 'payload_too_large', 415: 'unsupported_media_type', 422: 'validation_failed' };
function fromArtifactError(err: unknown): unknown {
  if (!(err instanceof ArtifactError)) return err;
  const code = artifactCodes[artifactStatus(err.code)] ?? 'validation_failed';
  return new ApiError(code, err.message, code === 'validation_failed' ? [{ name: 'filename', reason: err.message }] : undefined);
}

/**
 * Reads the multipart upload (field "file") into memory, bounded by ARTIFACT_MAX_BYTES.
 * preservePath: the name check sees "../x" as sent (and refuses it) instead of multer's basename.
 */
function uploadReader(maxBytes: number) {
  const single = multer({ storage: multer.memoryStorage(), preservePath: true, limits: { fileSize: maxBytes, files: 1, fields: 10 } }).single('file');
  return (req: Request, res: Response): Promise<Express.Multer.File | undefined> =>
    new Promise((resolve, reject) => {
      single(req, res, (err: unknown) => {
        if (!err) return resolve(req.file);
        if (err instanceof multer.MulterError) {
          if (err.code === 'LIMIT_FILE_SIZE') return reject(new ApiError('payload_too_large', `an artifact is at most ${maxBytes} bytes`));
          return reject(new ApiError('validation_failed', `upload: ${err.message}`, [{ name: err.field ?? 'file', reason: err.message }]));
        }
        // busboy: no boundary, a truncated form, a non-multipart body.
        reject(new ApiError('bad_request', `not a readable multipart/form-data body: ${err instanceof Error ? err.message : "unreadable"}`));
      });
    });
}

export const serviceRoutes = (deps: ApiDeps) => {
  const { db } = deps;
  const readUpload = uploadReader(deps.config.ARTIFACT_MAX_BYTES);
  return [
    route({
      method: 'post',
      path: '/services',
      summary: 'Register a service (function) of a tenant',
      tag: 'services',
      auth: ['admin', 'tenant'],
      body: z.strictObject({
        tenant_id: tenantRef.optional().describe('required for an admin key'),
        name: k8sName.describe('the Knative service name (K_SERVICE)'),
        namespace: k8sName.default('default'),
        runtime: z.string().max(50).nullish(),
        memory_limit_mb: z.number().int().positive().max(1_048_576).nullish(),
        cpu_limit_cores: z.number().positive().max(1000).nullish(),
      }),
      responses: { 201: { description: 'Registered', schema: serviceSchema }, 409: { description: 'The tenant already has a service of that name' } },
      handle: async ({ principal, body }) => {
        const tenant = await requiredTenant(db, principal, body.tenant_id);
        return db.transaction(async (trx) => {
          const [row] = (await trx('services')
            .insert({
              tenant_id: tenant.id,
              name: body.name,
              namespace: body.namespace,
              runtime: body.runtime ?? null,
              memory_limit_mb: body.memory_limit_mb ?? null,
              cpu_limit_cores: body.cpu_limit_cores === undefined || body.cpu_limit_cores === null ? null : String(body.cpu_limit_cores),
            })
            .onConflict(['tenant_id', 'name'])
            .ignore()
            .returning('*')) as ServiceRow[];
          if (!row) throw new ApiError('conflict', `tenant ${tenant.slug} already has a service named ${JSON.stringify(body.name)}`);
          await audit(trx, principal, { action: 'service.create', entityType: 'service', entityId: row.id, tenantId: tenant.id, details: { after: serviceOut(row) } });
          return reply(201, serviceOut(row), { Location: `/api/v1/services/${row.id}` });
        });
      },
    }),
    route({
      method: 'get',
      path: '/services',
      summary: 'List services (a tenant key sees its own)',
      tag: 'services',
      auth: ['admin', 'tenant'],
      query: z.strictObject({ tenant_id: tenantRef.optional(), limit: limitQuery, cursor: z.uuid().optional().describe('id of the last service of the previous page') }),
      responses: { 200: { description: 'Services by id', schema: page(serviceSchema) } },
      handle: async ({ principal, query }) => {
        const tenant = await scopedTenant(db, principal, query.tenant_id);
        const q = db('services').orderBy('id').limit(query.limit + 1);
        if (tenant) void q.where({ tenant_id: tenant.id });
        if (query.cursor) void q.where('id', '>', query.cursor);
        const rows = ((await q) as ServiceRow[]).map(serviceOut);
        const items = rows.slice(0, query.limit);
        return { items, next_cursor: rows.length > query.limit ? (items.at(-1)?.id ?? null) : null };
      },
    }),
    route({
      method: 'get',
      path: '/services/:id',
      summary: 'A service',
      tag: 'services',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'The service', schema: serviceSchema } },
      handle: async ({ principal, params }) => serviceOut(await visibleService(db, principal, params.id)),
    }),
    route({
      method: 'get',
      path: '/services/:id/revisions',
      summary: 'Revisions of a service',
      tag: 'services',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'Revisions by creation', schema: z.object({ items: z.array(revisionSchema) }) } },
      handle: async ({ principal, params }) => {
        const service = await visibleService(db, principal, params.id);
        return { items: ((await db('revisions').where({ service_id: service.id }).orderBy('created_at')) as RevisionRow[]).map(revisionOut) };
      },
    }),
    route({
      method: 'post',
      path: '/services/:id/revisions',
      summary: 'Register a revision of a service',
      tag: 'services',
      auth: ['admin', 'tenant'],
      params: idParams,
      body: z.strictObject({
        name: k8sName.describe('the Knative revision name (K_REVISION)'),
        image: z.string().max(500).nullish(),
        memory_limit_mb: z.number().int().positive().max(1_048_576).nullish(),
        config_env: z.record(z.string(), z.string()).default({}),
        scaling_config: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
      }),
      responses: { 201: { description: 'Registered', schema: revisionSchema }, 409: { description: 'The revision exists' } },
      handle: async ({ principal, params, body }) => {
        const service = await visibleService(db, principal, params.id);
        return db.transaction(async (trx) => {
          const [row] = (await trx('revisions')
            .insert({ service_id: service.id, name: body.name, image: body.image ?? null, memory_limit_mb: body.memory_limit_mb ?? null, config_env: JSON.stringify(body.config_env), scaling_config: JSON.stringify(body.scaling_config) })
            .onConflict(['service_id', 'name'])
            .ignore()
            .returning('*')) as RevisionRow[];
          if (!row) throw new ApiError('conflict', `service ${service.name} already has a revision named ${JSON.stringify(body.name)}`);
          await audit(trx, principal, { action: 'revision.create', entityType: 'revision', entityId: row.id, tenantId: service.tenant_id, details: { service_id: service.id, after: revisionOut(row) } });
          return reply(201, revisionOut(row));
        });
      },
    }),
    route({
      method: 'post',
      path: '/services/:id/upload',
      summary: 'Upload an artifact of a service (multipart/form-data, field "file")',
      description: `Names: 1–200 of [A-Za-z0-9._-], not starting with ".". Content types: archives, wasm, jar, text, JSON, YAML, octet-stream. Size limit: ARTIFACT_MAX_BYTES.`,
      tag: 'services',
      auth: ['admin', 'tenant'],
      limit: 'expensive',
      params: idParams,
      bodyKind: 'multipart',
      responses: { 201: { description: 'Stored (replaced: an artifact of that name existed)', schema: artifactSchema }, 413: { description: 'Too large' }, 415: { description: 'Content type not accepted' } },
      handle: async ({ principal, params, req, res }) => {
        // Ownership first: nothing is read from the body of an upload to a service the key cannot see.
        const service = await visibleService(db, principal, params.id);
        const file = await readUpload(req, res);
        if (!file) throw new ApiError('validation_failed', 'send the artifact as multipart/form-data in a field named "file"', [{ name: 'file', reason: 'missing' }]);
        const info = await deps.artifacts.save(service.id, file.originalname, file.mimetype, file.buffer).catch((err: unknown) => {
          throw fromArtifactError(err);
        });
        await audit(db, principal, { action: 'artifact.upload', entityType: 'artifact', entityId: `${service.id}/${info.filename}`, tenantId: service.tenant_id, details: { sha256: info.sha256, size_bytes: info.size_bytes, replaced: info.replaced ?? false } });
        return reply(201, info, { Location: `/api/v1/artifacts/${service.id}/${encodeURIComponent(info.filename)}` });
      },
    }),
    route({
      method: 'get',
      path: '/services/:id/artifacts',
      summary: 'Artifacts of a service',
      tag: 'services',
      auth: ['admin', 'tenant'],
      params: idParams,
      responses: { 200: { description: 'Artifacts', schema: z.object({ items: z.array(artifactSchema) }) } },
      handle: async ({ principal, params }) => {
        const service = await visibleService(db, principal, params.id);
        return { items: await deps.artifacts.list(service.id) };
      },
    }),
    route({
      method: 'get',
      path: '/artifacts/:service_id/:filename',
      summary: 'Download an artifact (the bytes uploaded; ETag is its SHA-256)',
      tag: 'services',
      auth: ['admin', 'tenant'],
      params: z.strictObject({ service_id: z.string(), filename: z.string() }),
      responses: { 200: { description: 'The artifact', contentType: 'application/octet-stream' } },
      handle: async ({ principal, params, res }) => {
        const service = await visibleService(db, principal, params.service_id);
        const { info, stream } = await deps.artifacts.open(service.id, params.filename).catch((err: unknown) => {
          throw fromArtifactError(err);
        });
        res.status(200);
        res.setHeader('Content-Type', info.content_type);
        res.setHeader('Content-Length', String(info.size_bytes));
        res.setHeader('ETag', `"${info.sha256}"`);
        res.setHeader('Content-Disposition', `attachment; filename="${info.filename}"`);
        res.setHeader('X-Content-Type-Options', 'nosniff');
        // pipeline closes the file when the client goes away mid-download.
        await pipeline(stream, res).catch((err: unknown) => {
          if (!res.headersSent) throw err;
        });
        return undefined;
      },
    }),
  ];
};
