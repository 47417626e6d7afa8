/**
 * The REST API as an express 5 app: every route of ./routes (declared once with its schemas, see
 * src/api/route.ts), API-key auth with roles, tenant isolation (src/api/tenancy.ts), per-key rate
 * limits, zod validation of params, query and body, problem+json errors, the OpenAPI document
 * built from the same declarations, and Prometheus metrics.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Server } from 'node:http';
import type { ZodError } from 'zod';
import { ApiError, invalidFieldsOf, type ApiProblem } from '../../src/api/errors.js';
import type { Principal } from '../../src/api/keys.js';
import { buildOpenApi } from '../../src/api/openapi.js';
import { Reply, type AnyRoute } from '../../src/api/route.js';
import { problemContentType } from '../../src/contract/problem.js';
import { docsPage } from './docs.js';
import { dashboardRouter } from './web.js';
import { allRoutes, type ApiDeps } from './routes/index.js';

export const API_BASE = '/api/v1';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export interface ApiMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  seconds: Histogram<'method' | 'route' | 'status'>;
  connections: Gauge;
  problems: Counter<'type'>;
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: 'faasbilling_api_requests_total', help: 'API requests by route template and status', labelNames: ['method', 'route', 'status'] as const, registers }),
    seconds: new Histogram({
      name: 'faasbilling_api_request_duration_seconds',
      help: 'API request latency by route template and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    connections: new Gauge({ name: 'faasbilling_api_active_connections', help: 'Open HTTP connections to the API', registers }),
    problems: new Counter({ name: 'faasbilling_api_problems_total', help: 'Problem answers by type (bad input, auth, limits, failures)', labelNames: ['type'] as const, registers }),
  };
}

/** Counts open connections of a server in the gauge. */
export function trackConnections(server: Server, metrics: ApiMetrics): void {
  server.on('connection', (socket) => {
    metrics.connections.inc();
    socket.once('close', () => metrics.connections.dec());
  });
}

function sendProblem(res: Response, error: ApiError, metrics: ApiMetrics): void {
  const problem: ApiProblem = error.toProblem();
  metrics.problems.inc({ type: error.code });
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.status(error.status).type(problemContentType).send(JSON.stringify(problem));
}

/** Whatever was thrown, as an ApiError (unknown errors are 500s, logged, detail kept generic). */
function asApiError(err: unknown, deps: ApiDeps): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { type?: string; status?: number; code?: string; message?: string; name?: string };
  if (e.type === 'entity.too.large') {
    const limit = (err as { limit?: number }).limit ?? deps.config.API_MAX_BODY_BYTES;
    return new ApiError('payload_too_large', `the body is larger than this endpoint accepts (${limit} bytes)`);
  }
  if (e.type === 'entity.parse.failed') return new ApiError('malformed_json', `the body is not valid JSON: ${e.message ?? ''}`);
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') return new ApiError('unsupported_media_type', e.message ?? 'unsupported encoding');
  // The router's own client errors (a path that does not percent-decode: URIError, status 400).
  if (err instanceof URIError || (typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.status !== 404)) {
    return new ApiError('bad_request', `the request is malformed: ${e.message ?? 'bad request'}`);
  }
  const pgCode = typeof e.code === 'string' ? e.code : '';
  // A race the route's own checks could not see (two creates of one name at once).
  if (pgCode === '23505') return new ApiError('conflict', 'this conflicts with an existing record (a unique name or key is taken)');
  if (['ECONNREFUSED', 'ECONNRESET', '57P01', '57P03', '08006', '08001'].includes(pgCode) || e.name === 'KnexTimeoutError') {
    return new ApiError('database_unavailable', 'PostgreSQL is not reachable; retry later');
  }
  deps.logger.error({ err }, 'API request failed');
  return new ApiError('internal', 'an unexpected error occurred; it has been logged');
}

const bearer = (req: Request): string | undefined => {
  const header = req.get('authorization');
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    return match?.[1] ?? '';
  }
  return req.get('x-api-key');
};

function authenticate(route: AnyRoute, deps: ApiDeps): RequestHandler {
  return (req, _res, next) => {
    if (route.auth === 'public') return next();
    const key = bearer(req);
    const challenge = { 'WWW-Authenticate': 'Bearer realm="faas-billing"' };
    if (!key) return next(new ApiError('unauthorized', 'an API key is required: send "Authorization: Bearer <key>" or "X-API-Key: <key>"', undefined, challenge));
    deps.keys
      .verify(key)
      .then((principal) => {
        if (!principal) return next(new ApiError('unauthorized', 'the API key is not valid (unknown, mistyped or revoked)', undefined, challenge));
        if (!(route.auth as readonly string[]).includes(principal.role)) {
          return next(new ApiError('forbidden', `a ${principal.role} key cannot call ${route.method.toUpperCase()} ${API_BASE}${route.path}; allowed: ${(route.auth as readonly string[]).join(', ')}`));
        }
        req.principal = principal;
        next();
      })
      .catch(next);
  };
}

function limiter(perMinute: number, name: string): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => req.principal?.keyId ?? 'anonymous',
    handler: (req, _res, next) => {
      const reset = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = reset ? Math.max(1, Math.ceil((reset.getTime() - Date.now()) / 1000)) : 60;
      next(new ApiError('rate_limited', `this key sent more than ${perMinute} ${name} requests in a minute; retry in ${seconds} s`, undefined, { 'Retry-After': String(seconds) }));
    },
  });
}

function parse<T>(part: 'params' | 'query' | 'body', schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: ZodError } }, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const fields = invalidFieldsOf(part, parsed.error);
  throw new ApiError('validation_failed', `invalid ${part === 'params' ? 'path parameters' : part}: ${fields.map((f) => `${f.name}: ${f.reason}`).join('; ')}`, fields);
}

function handler(route: AnyRoute): RequestHandler {
  return async (req, res) => {
    if (route.body && route.bodyKind !== 'multipart' && route.bodyKind !== 'raw') {
      const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
      if (hasBody && !req.is(['application/json', 'application/*+json'])) {
        throw new ApiError('unsupported_media_type', `send the body as application/json (got ${req.get('content-type') ?? 'no content type'})`);
      }
    }
    const params = route.params ? parse('params', route.params, req.params) : {};
    const query = route.query ? parse('query', route.query, req.query) : {};
    const body = route.body && route.bodyKind !== 'raw' && route.bodyKind !== 'multipart' ? parse('body', route.body, (req.body as unknown) ?? {}) : (req.body as unknown);
    const principal = req.principal ?? { keyId: 'anonymous', name: 'anonymous', role: 'tenant', tenantId: null };
    const result = await route.handle({ principal, params, query, body, req, res });
    if (res.headersSent) return;
    if (result instanceof Reply) {
      for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
      res.status(result.status);
      if (result.raw) res.type(result.raw.contentType).send(result.raw.data);
      else if (result.body === undefined) res.end();
      else res.json(result.body);
      return;
    }
    res.status(200).json(result);
  };
}

export interface ApiApp {
  app: express.Express;
  routes: AnyRoute[];
  openapi: Record<string, unknown>;
  metrics: ApiMetrics;
}

/** Builds the app (not listening). */
export function createApiApp(deps: ApiDeps, metrics: ApiMetrics = createApiMetrics()): ApiApp {
  const routes = allRoutes(deps);
  const openapi = buildOpenApi(routes, {
    title: 'FaaS Billing API',
    version: '1.0.0',
    description: 'Metering, billing and cost forecasting for serverless functions on Knative. Authenticate with an API key: `Authorization: Bearer fbk_…`.',
    serverUrl: API_BASE,
  });
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('trust proxy', false);

  // Metrics by route template (never the raw URL: ids would explode the label set).
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const template = (res.locals.routeTemplate as string | undefined) ?? 'unmatched';
      const labels = { method: req.method, route: template, status: String(res.statusCode) };
      metrics.requests.inc(labels);
      metrics.seconds.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  });

  // Probes (Knative): liveness says the process serves HTTP; readiness that PostgreSQL answers.
  app.get('/health/liveness', (_req, res) => {
    res.type('text/plain').send('OK');
  });
  app.get('/health/readiness', (_req, res) => {
    deps.db
      .raw('select 1')
      .then(() => res.type('text/plain').send('OK'))
      .catch((err: unknown) => res.status(503).type('text/plain').send(`not ready: ${err instanceof Error ? err.message : String(err)}`));
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get(`${API_BASE}/openapi.json`, (_req, res) => {
    res.locals.routeTemplate = `${API_BASE}/openapi.json`;
    res.json(openapi);
  });
  app.get(`${API_BASE}/docs`, (_req, res) => {
    res.locals.routeTemplate = `${API_BASE}/docs`;
    res.type('html').send(docsPage(openapi));
  });

  const json = express.json({ limit: deps.config.API_MAX_BODY_BYTES, type: ['application/json', 'application/*+json'] });
  const raw = express.raw({ limit: deps.config.COLLECT_MAX_BODY_BYTES, type: () => true });
  const limiters = {
    ingest: limiter(deps.config.API_RATE_LIMIT_INGEST, 'ingest'),
    expensive: limiter(deps.config.API_RATE_LIMIT_EXPENSIVE, 'expensive'),
  };

  for (const route of routes) {
    const template = `${API_BASE}${route.path}`;
    const chain: RequestHandler[] = [
      (_req, res, next) => {
        res.locals.routeTemplate = template;
        next();
      },
      authenticate(route, deps),
    ];
    if (route.limit) chain.push(limiters[route.limit]);
    // Multipart bodies are read by their route, after it has checked the caller may upload there.
    if (route.bodyKind === 'raw') chain.push(raw);
    else if (route.bodyKind === 'multipart') {
      /* read in the handler */
    } else if (route.method !== 'get' && route.method !== 'delete') chain.push(json);
    chain.push(handler(route));
    app[route.method](template, ...chain);
  }

  // The web dashboard (static files) at `/`, outside the API's path.
  app.use(dashboardRouter());

  // A known path with another method is a 405 naming the allowed ones; anything else a 404.
  const methodsByPath = new Map<string, Set<string>>();
  for (const r of routes) {
    const set = methodsByPath.get(r.path) ?? new Set<string>();
    set.add(r.method.toUpperCase());
    methodsByPath.set(r.path, set);
  }
  app.use(API_BASE, (req, _res, next) => {
    for (const [path, methods] of methodsByPath) {
      const pattern = new RegExp(`^${path.replace(/[.]/g, '\\.').replace(/:[A-Za-z_][A-Za-z0-9_]*/g, '[^/]+')}$`);
      if (pattern.test(req.path)) {
        return next(new ApiError('method_not_allowed', `${req.method} is not allowed on ${API_BASE}${path}; use ${[...methods].join(', ')}`, undefined, { Allow: [...methods].join(', ') }));
      }
    }
    next(new ApiError('not_found', `no endpoint ${req.method} ${API_BASE}${req.path}; see ${API_BASE}/openapi.json`));
  });
  app.use((_req, _res, next) => next(new ApiError('not_found', `not found; the API lives under ${API_BASE} (see ${API_BASE}/docs)`)));
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    sendProblem(res, asApiError(err, deps), metrics);
  });
  return { app, routes, openapi, metrics };
}
