/**
 * A real HTTP webhook receiver for tests, on 127.0.0.1 (so tests allow private addresses): it
 * records every request (path, body, signature and webhook id headers) and answers with the
 * status `answer` picks for its path.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  body: string;
  signature: string;
  webhookId: string;
}

export interface WebhookReceiver {
  /** http://127.0.0.1:<port> */
  base: string;
  port: number;
  /** Every request, in arrival order. */
  received: ReceivedWebhook[];
  close(): Promise<void>;
}

/** Starts a receiver that answers each request with `answer(path)` (an HTTP status). */
export async function startWebhookReceiver(answer: (path: string) => number): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      received.push({ path, body, signature: String(req.headers['x-faasbilling-signature'] ?? ''), webhookId: String(req.headers['x-faasbilling-webhook-id'] ?? '') });
      res.writeHead(answer(path)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
