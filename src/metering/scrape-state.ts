/**
 * What the queue-proxy scraper remembers between ticks when it reads pods directly: the counters
 * of the last scrape and the reports that scrape produced (so a redelivered tick resends exactly
 * them). Kept in Redis (REDIS_URL), so any scraper pod continues where the last one stopped; without
 * Redis (local mode) it lives in the process, and a restart begins with a fresh baseline.
 */
import { Redis } from 'ioredis';
import { z } from 'zod';
import { usageData } from '../contract/usage.js';

export const scrapeStateSchema = z.object({
  /** End of the last scraped interval, ISO 8601. */
  intervalEnd: z.iso.datetime({ offset: true }),
  counters: z.array(
    z.object({
      namespace: z.string(),
      revision: z.string(),
      service: z.string().optional(),
      pod: z.string(),
      status: z.string(),
      count: z.number(),
      sumMs: z.number(),
    }),
  ),
  reports: z.array(z.object({ id: z.string(), time: z.iso.datetime({ offset: true }), data: usageData })),
});
export type ScrapeState = z.infer<typeof scrapeStateSchema>;

/** Where scrape state is kept. */
export interface ScrapeStateStore {
  load(): Promise<ScrapeState | undefined>;
  save(state: ScrapeState): Promise<void>;
  close(): Promise<void>;
}

/** Scrape state under one Redis key. */
export function redisScrapeState(url: string, key: string): ScrapeStateStore {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  return {
    async load() {
      const text = await redis.get(key);
      return text === null ? undefined : scrapeStateSchema.parse(JSON.parse(text));
    },
    async save(state) {
      await redis.set(key, JSON.stringify(state));
    },
    async close() {
      redis.disconnect();
      return Promise.resolve();
    },
  };
}

/** Scrape state in this process (local mode without Redis). */
export function processScrapeState(): ScrapeStateStore {
  let kept: ScrapeState | undefined;
  return {
    load: () => Promise.resolve(kept),
    save: (state) => Promise.resolve(void (kept = structuredClone(state))),
    close: () => Promise.resolve(),
  };
}
