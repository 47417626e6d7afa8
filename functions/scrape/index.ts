/**
 * scrape: the queue-proxy scraper, run every minute by a PingSource. Reads Knative's request
 * metrics (a Prometheus server, or each revision pod's queue-proxy) and sends usage events per
 * revision to K_SINK. Answers a summary of what it sent.
 */
import { connectKubernetes } from '../../src/adapters/kubernetes.js';
import { scrapeConfigSchema } from '../../src/metering/scrape-config.js';
import { processScrapeState, redisScrapeState } from '../../src/metering/scrape-state.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { Scraper } from '../../src/stages/scrape.js';

/** Creates the scrape function; `env` is its environment (process.env by default). */
export const createScrape =
  (env: NodeJS.ProcessEnv = process.env): FunctionFactory =>
  (config) => {
    const scrapeConfig = scrapeConfigSchema.parse(env);
    const metrics = createStageMetrics('scrape');
    const state = config.REDIS_URL ? redisScrapeState(config.REDIS_URL, scrapeConfig.SCRAPE_STATE_KEY) : processScrapeState();
    const scraper = new Scraper({ config: scrapeConfig, cluster: connectKubernetes(scrapeConfig.KUBERNETES_API_URL), state, registry: metrics.registry });
    return Promise.resolve({
      metrics,
      handle: async (request) => {
        // The tick's own time names the interval, so a redelivered tick scrapes the same one.
        const time = request.cloudevent?.time;
        const summary = await scraper.tick(time ? new Date(time) : new Date());
        return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: summary };
      },
      ready: () => Promise.resolve(),
      close: () => state.close(),
    });
  };

const scrape = defineFunction('scrape', createScrape());

export const { init, handle, readiness, liveness, shutdown, instance, logger } = scrape;
export default scrape;
