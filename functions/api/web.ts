/**
 * The web dashboard's static files (built by `npm run build:web` into web/dist), served at `/`
 * beside the API. The app routes by URL hash, so only `/` and its assets are needed here; the
 * page talks to /api/v1 with the key its user types in (nothing secret is in the files).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';

/** Where `npm run build:web` writes the dashboard. */
export const webDistDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/dist');

/** Serves the built dashboard from `dir`; without a build, `/` says how to make one. */
export function dashboardRouter(dir: string = webDistDir): Router {
  const router = express.Router();
  // Hashed asset names never change content: cache them; index.html must be re-read.
  router.use('/assets', (_req, res, next) => {
    res.locals.routeTemplate = '/assets/*';
    next();
  }, express.static(path.join(dir, 'assets'), { immutable: true, maxAge: '1y', fallthrough: true }));
  router.get('/', (_req, res) => {
    res.locals.routeTemplate = '/';
    const index = path.join(dir, 'index.html');
    if (!existsSync(index)) {
      res.status(503).type('text/plain').send('The dashboard is not built yet: run `npm run build:web` (npm start does it when it is missing). The API is at /api/v1.');
      return;
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(index);
  });
  return router;
}
