/**
 * `npm run build:web`: builds the dashboard (web/) into web/dist with Vite. With --if-stale (what
 * `npm start` runs first) it builds only when web/dist is missing or older than a source file,
 * so a fresh clone gets its dashboard and a later start does not wait for a rebuild.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'vite';

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'web');
const { values: args } = parseArgs({ options: { 'if-stale': { type: 'boolean', default: false } } });

/** Newest modification time of the files under `dir` (0 when it does not exist). */
async function newestMtime(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const times = await Promise.all(entries.filter((e) => e.isFile()).map(async (e) => (await stat(path.join(e.parentPath, e.name))).mtimeMs));
  return Math.max(0, ...times);
}

async function main(): Promise<void> {
  if (args['if-stale']) {
    const built = await stat(path.join(webDir, 'dist', 'index.html')).then((s) => s.mtimeMs, () => 0);
    const sources = Math.max(await newestMtime(path.join(webDir, 'src')), (await stat(path.join(webDir, 'index.html'))).mtimeMs);
    if (built > sources) return;
  }
  process.stderr.write('building the web dashboard (web/ → web/dist)...\n');
  await build({ configFile: path.join(webDir, 'vite.config.ts') });
}

main().catch((err: unknown) => {
  process.stderr.write(`the dashboard build failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
