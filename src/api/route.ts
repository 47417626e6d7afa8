/**
 * One route of the REST API, declared once: method, path, who may call it, zod schemas for its
 * params, query, body and answers, and the handler. The express app registers these and the
 * OpenAPI document is generated from the same declarations, so the two cannot drift.
 */
import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { Principal, Role } from './keys.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** How the body is read: JSON (default with a body schema), raw bytes (ingest) or multipart (upload). */
export type BodyKind = 'json' | 'raw' | 'multipart';

/** An answer other than "200 with this JSON": a status, headers, or raw bytes (documents). */
export class Reply {
  constructor(
    readonly status: number,
    readonly body?: unknown,
    readonly headers: Record<string, string> = {},
    /** Bytes or text sent as-is with `contentType`; otherwise `body` is sent as JSON. */
    readonly raw?: { data: Buffer | string; contentType: string },
  ) {}
}

export const reply = (status: number, body?: unknown, headers?: Record<string, string>): Reply => new Reply(status, body, headers);

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** Default application/json. */
  contentType?: string;
}

export interface RouteContext<P, Q, B> {
  /** The caller; undefined only on public routes. */
  principal: Principal;
  params: P;
  query: Q;
  body: B;
  req: Request;
  res: Response;
}

type Out<S> = S extends z.ZodType ? z.output<S> : Record<string, never>;

export interface RouteSpec<P extends z.ZodType | undefined, Q extends z.ZodType | undefined, B extends z.ZodType | undefined> {
  method: Method;
  /** Express path below /api/v1, e.g. `/tenants/:id`. */
  path: string;
  /** OpenAPI path when express' syntax differs (`/bills/{id}.csv`). */
  openapiPath?: string;
  summary: string;
  description?: string;
  tag: string;
  /** Roles allowed to call; `public` needs no key. */
  auth: 'public' | readonly Role[];
  params?: P;
  query?: Q;
  body?: B;
  bodyKind?: BodyKind;
  /** Rate-limit bucket for ingest and expensive calls. */
  limit?: 'ingest' | 'expensive';
  responses: Record<number, ResponseSpec>;
  handle(ctx: RouteContext<Out<P>, Out<Q>, Out<B>>): Promise<unknown>;
}

/** A route with its types erased, as the app and the OpenAPI builder see it. */
export interface AnyRoute {
  method: Method;
  path: string;
  openapiPath?: string;
  summary: string;
  description?: string;
  tag: string;
  auth: 'public' | readonly Role[];
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  bodyKind?: BodyKind;
  limit?: 'ingest' | 'expensive';
  responses: Record<number, ResponseSpec>;
  handle(ctx: RouteContext<unknown, unknown, unknown>): Promise<unknown>;
}

/** Declares a route with its handler typed by its schemas. */
export function route<P extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined>(
  spec: RouteSpec<P, Q, B>,
): AnyRoute {
  return spec;
}

