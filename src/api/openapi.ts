/**
 * The OpenAPI 3.1 document of the REST API, generated from the route declarations (route.ts):
 * the same zod schemas that validate requests describe them here (zod's JSON Schema output is
 * draft 2020-12, which is OpenAPI 3.1's dialect).
 */
import { z } from 'zod';
import type { AnyRoute } from './route.js';

type JsonSchema = Record<string, unknown>;

const toSchema = (schema: z.ZodType, io: 'input' | 'output'): JsonSchema => {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  delete json.$schema;
  return json;
};

/** Express `:name` segments as OpenAPI `{name}`. */
export const openapiPathOf = (route: Pick<AnyRoute, 'path' | 'openapiPath'>): string =>
  route.openapiPath ?? route.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');

const problemSchema: JsonSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string', description: 'urn:faasbilling:problem:<code>, stable' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string', description: 'what went wrong, for a human' },
    invalid_fields: {
      type: 'array',
      items: { type: 'object', required: ['name', 'reason'], properties: { name: { type: 'string' }, reason: { type: 'string' } } },
    },
    errors: { type: 'array', items: { type: 'object' } },
  },
};

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const json = toSchema(schema, 'input');
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
    schema: s,
  }));
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
  serverUrl: string;
}

/** Builds the document for the routes (paths relative to `serverUrl`, e.g. /api/v1). */
export function buildOpenApi(routes: readonly AnyRoute[], info: OpenApiInfo): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const operationIds = new Set<string>();
  for (const route of routes) {
    const responses: Record<string, JsonSchema> = {};
    for (const [status, spec] of Object.entries(route.responses)) {
      const type = spec.contentType ?? 'application/json';
      responses[status] = {
        description: spec.description,
        ...(spec.schema ? { content: { [type]: { schema: toSchema(spec.schema, 'output') } } } : spec.contentType ? { content: { [type]: {} } } : {}),
      };
    }
    if (route.auth !== 'public') {
      responses['401'] ??= problemResponse('No API key, or an unknown or revoked one');
      responses['403'] ??= problemResponse('The key’s role or tenant does not allow this');
    }
    if (route.params || route.query || route.body) responses['422'] ??= problemResponse('Invalid parameters or body (see invalid_fields)');
    if (route.limit) responses['429'] ??= problemResponse('Rate limit of the key exceeded (see Retry-After)');
    responses.default ??= problemResponse('Any other error, as a problem document');

    // get /pricing/plans and get /pricing-plans read alike: the second gets a suffix.
    const base = `${route.method}${openapiPathOf(route).replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`;
    let operationId = base;
    for (let n = 2; operationIds.has(operationId); n++) operationId = `${base}${n}`;
    operationIds.add(operationId);
    const operation: JsonSchema = {
      operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.tag],
      parameters: [...parametersOf(route.params, 'path'), ...parametersOf(route.query, 'query')],
      responses,
      security: route.auth === 'public' ? [] : [{ bearer: [] }, { apiKey: [] }],
      ...(route.auth !== 'public' ? { 'x-roles': route.auth } : {}),
    };
    if (route.bodyKind === 'multipart') {
      operation.requestBody = {
        required: true,
        content: { 'multipart/form-data': { schema: { type: 'object', required: ['file'], properties: { file: { type: 'string', format: 'binary' } } } } },
      };
    } else if (route.bodyKind === 'raw') {
      const schema = route.body ? toSchema(route.body, 'input') : {};
      operation.requestBody = {
        required: true,
        content: {
          'application/json': { schema },
          'application/cloudevents+json': { schema: { type: 'object' } },
          'application/cloudevents-batch+json': { schema: { type: 'array', items: { type: 'object' } } },
        },
      };
    } else if (route.body) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: toSchema(route.body, 'input') } } };
    }
    (paths[openapiPathOf(route)] ??= {})[route.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: { title: info.title, version: info.version, description: info.description },
    servers: [{ url: info.serverUrl }],
    security: [{ bearer: [] }, { apiKey: [] }],
    tags: [...new Set(routes.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: { Problem: problemSchema },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer fbk_…' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
  };
}
