/** Free local ports for systems started beside another (the demo, the browser suite). */
import { createServer } from 'node:net';

/** A free TCP port (so a demo or a test does not collide with an `npm start` already running). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A first port such that it and the next `count - 1` are free. */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const taken = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        new Promise<boolean>((resolve) => {
          const server = createServer();
          server.once('error', () => resolve(true));
          server.listen(base + i, '127.0.0.1', () => server.close(() => resolve(false)));
        }),
      ),
    );
    if (!taken.some(Boolean)) return base;
  }
  throw new Error('found no free range of ports for the functions');
}

/**
 * Ports for a whole local system beside another: `processes` contiguous ports for the functions
 * and workloads (LOCAL_FUNCTIONS_PORT onwards), then the broker, the API and the embedded
 * PostgreSQL right after them — one free range, so no port the OS hands out for one part can fall
 * inside another part's range.
 */
export async function localSystemPorts(processes: number): Promise<{ functions: number; broker: number; api: number; pg: number }> {
  const base = await freePortRange(processes + 3);
  return { functions: base, broker: base + processes, api: base + processes + 1, pg: base + processes + 2 };
}
