/**
 * Serves one function under faas-js-runtime (as its pod would) and mends two gaps of the
 * runtime at the HTTP layer: errors its framework answers itself (malformed JSON, body too large)
 * become problem+json and are counted, and /metrics carries our stage metrics beside the
 * runtime's faas_* metrics.
 */
import faas from 'faas-js-runtime';
import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { problemContentType } from '../contract/problem.js';
import type { FunctionModule } from './function.js';

export interface HostOptions {
  port: number;
  /** Folder holding the function's func.yaml (read by faas-js-runtime). */
  functionDir: string;
  bodyLimitBytes: number;
  logLevel?: string;
}

/** A replacement body, and optionally a replacement status. */
type BodyTransform = (body: Buffer) => Promise<{ body: string; contentType: string; status?: number }>;

/**
 * Lets `decide` replace a response body once the status and headers are known. Only responses
 * written with writeHead (as fastify writes them) are seen.
 */
function rewriteResponse(res: ServerResponse, decide: (status: number, headers: OutgoingHttpHeaders) => BodyTransform | undefined): void {
  // Our replacements are own properties shadowing the prototype's methods; deleting them restores.
  const writeHead = res.writeHead.bind(res);
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  const chunks: Buffer[] = [];
  let status = 200;
  let headers: OutgoingHttpHeaders = {};
  let transform: BodyTransform | undefined;
  // Set once the body is captured. The framework may answer again because the response does not
  // look ended yet (an async handler that resolves after send() is answered a second time): those
  // later writes are dropped, the first answer is the one sent.
  let captured = false;
  const restore = (): void => {
    for (const method of ['writeHead', 'write', 'end']) Reflect.deleteProperty(res, method);
  };
  const toBuffer = (chunk: unknown): Buffer | undefined =>
    typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk) : undefined;

  Object.assign(res, {
    writeHead(this: ServerResponse, code: number, ...rest: unknown[]) {
      if (captured) return res;
      const given = rest.find((r): r is OutgoingHttpHeaders => typeof r === 'object' && r !== null && !Array.isArray(r));
      status = code;
      headers = { ...given };
      transform = decide(code, headers);
      if (!transform) {
        restore();
        return (writeHead as (...args: unknown[]) => ServerResponse)(code, ...rest);
      }
      return res;
    },
    write(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      if (captured) return true;
      if (!transform) return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
      const buffer = toBuffer(chunk);
      if (buffer) chunks.push(buffer);
      return true;
    },
    end(this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      if (captured) return res;
      if (!transform) return (end as (...args: unknown[]) => ServerResponse)(chunk, ...rest);
      captured = true;
      const buffer = toBuffer(chunk);
      if (buffer) chunks.push(buffer);
      const apply = transform;
      void apply(Buffer.concat(chunks))
        .catch((err: unknown): Awaited<ReturnType<BodyTransform>> => ({ body: String(err), contentType: 'text/plain; charset=utf-8' }))
        .then(({ body, contentType, status: replaced }) => {
          // The overrides stay in place (captured), so a late second answer cannot reach the socket.
          if (res.headersSent || res.destroyed) return;
          delete headers['content-length'];
          delete headers['Content-Length'];
          writeHead(replaced ?? status, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
          end(body);
        });
      return res;
    },
  });
}

/**
 * What the cloudevents SDK throws for an event that breaks the CloudEvents spec (e.g. no
 * `source`): faas-js-runtime answers it with a 500, but it is the sender's error and retrying
 * cannot fix it, so it becomes a 422 naming what is missing.
 */
const invalidCloudEventPrefix = 'invalid payload';

function invalidCloudEventDetail(message: string): string {
  const reasons = message
    .slice(invalidCloudEventPrefix.length)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      try {
        const issue = JSON.parse(line) as { instancePath?: string; message?: string };
        return `${issue.instancePath ? `${issue.instancePath.replace(/^\//, '')}: ` : ''}${issue.message ?? line}`;
      } catch {
        return line;
      }
    });
  return `the CloudEvent breaks the CloudEvents 1.0 spec: ${reasons.join('; ') || 'invalid attributes'}`;
}

/**
 * Turns the framework's own JSON error bodies ({statusCode, error, message}) into problem+json,
 * with the status they should have had.
 */
function frameworkErrorToProblem(status: number, count: (status: number) => void): BodyTransform {
  return (body) => {
    let detail = body.toString('utf8');
    let title = 'error';
    try {
      const parsed = JSON.parse(detail) as { message?: string; error?: string; code?: string };
      detail = parsed.message ?? detail;
      title = (parsed.error ?? title).toLowerCase();
    } catch {
      // Not JSON after all: the raw text is the best detail there is.
    }
    if (status === 500 && detail.startsWith(invalidCloudEventPrefix)) {
      count(422);
      const problem = { type: 'urn:faasbilling:problem:invalid_cloudevent', title: 'invalid CloudEvent', status: 422, detail: invalidCloudEventDetail(detail) };
      return Promise.resolve({ body: JSON.stringify(problem), contentType: problemContentType, status: 422 });
    }
    count(status);
    const code = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status === 400 ? 'malformed_json' : 'http_error';
    const hint = status === 413 ? ' (split the batch into smaller requests)' : '';
    const problem = { type: `urn:faasbilling:problem:${code}`, title, status, detail: `${detail}${hint}` };
    return Promise.resolve({ body: JSON.stringify(problem), contentType: problemContentType });
  };
}

/** Serves `registry`'s metrics after the runtime's own faas_* metrics in a /metrics answer. */
function appendMetrics(registry: Registry, headers: OutgoingHttpHeaders): BodyTransform {
  return async (body) => ({ body: `${body.toString('utf8')}\n${await registry.metrics()}`, contentType: String(headers['content-type'] ?? 'text/plain') });
}

/**
 * Adds `registry` to the /metrics of a faas-js-runtime server started without serveFunction (the
 * metered workloads, which are plain faas-js-runtime functions).
 */
export function serveRegistryToo(server: Server, registry: Registry): void {
  const upstream = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
      rewriteResponse(res, (status, headers) => (status === 200 ? appendMetrics(registry, headers) : undefined));
    }
    for (const listener of upstream) listener.call(server, req, res);
  });
}

/** Starts the function on `options.port`; resolves with the listening server. */
export async function serveFunction(module: FunctionModule, options: HostOptions): Promise<Server> {
  // The runtime's typings describe health checks over Http2ServerResponse and omit config and
  // bodyLimit, but at run time it passes fastify's reply and reads both options.
  const server = await faas.start(module as unknown as Parameters<typeof faas.start>[0], {
    port: options.port,
    logLevel: options.logLevel ?? 'warn',
    config: options.functionDir,
    bodyLimit: options.bodyLimitBytes,
  } as unknown as Parameters<typeof faas.start>[1]);
  const upstream = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const metrics = module.instance()?.metrics;
    const isMetrics = req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics';
    rewriteResponse(res, (status, headers) => {
      if (isMetrics && status === 200 && metrics) return appendMetrics(metrics.registry, headers);
      if (status < 400) return undefined;
      const count = (counted: number): void => void metrics?.requestProblems.inc({ status: String(counted) });
      if (String(headers['content-type'] ?? '').startsWith('application/json')) return frameworkErrorToProblem(status, count);
      count(status);
      return undefined;
    });
    for (const listener of upstream) listener.call(server, req, res);
  });
  return server;
}
