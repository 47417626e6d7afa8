/**
 * A CloudEvents sink for tests (what K_SINK points at): takes binary, structured and batch
 * requests, keeps every event it was sent, and can be told to hang (a broker that never answers)
 * or to fail.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTP, type CloudEventV1 } from 'cloudevents';

export interface TestSink {
  url: string;
  events: CloudEventV1<unknown>[];
  /** Requests received (a batch is one). */
  requests: number;
  /** "ok" answers 202; "hang" never answers; "fail" answers 503. */
  mode: 'ok' | 'hang' | 'fail';
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a sink on `port` (a free one by default). */
export async function startSink(port = 0): Promise<TestSink> {
  const hanging = new Set<ServerResponse>();
  const sink: TestSink = {
    url: '',
    events: [],
    requests: 0,
    mode: 'ok',
    close: () => Promise.resolve(),
  };
  const server: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      sink.requests++;
      if (sink.mode === 'hang') {
        hanging.add(res);
        return;
      }
      if (sink.mode === 'fail') {
        res.writeHead(503).end('down');
        return;
      }
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      if ((headers['content-type'] ?? '').startsWith('application/cloudevents-batch+json')) {
        sink.events.push(...(JSON.parse(body) as CloudEventV1<unknown>[]));
      } else {
        const parsed = HTTP.toEvent<unknown>({ headers, body });
        sink.events.push(...(Array.isArray(parsed) ? parsed : [parsed]));
      }
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  sink.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return sink;
}
