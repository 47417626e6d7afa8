/**
 * price: triggered by faasbilling.usage.aggregated.v1 (month-to-date running cost), by
 * faasbilling.billing.close.v1 and by the PingSource tick (close the previous month of every
 * tenant in its time zone). Replies faasbilling.bill.generated.v1 for a single-tenant close.
 * The work is in src/stages/price.ts and src/billing/.
 */
import { Billing } from '../../src/billing/index.js';
import { createDb, pingDb } from '../../src/adapters/postgres.js';
import { requireDatabaseUrl } from '../../src/runtime/config.js';
import { defineFunction, type FunctionFactory } from '../../src/runtime/function.js';
import { createStageMetrics } from '../../src/runtime/metrics.js';
import { PriceStage, createPriceMetrics } from '../../src/stages/price.js';

/** A price function factory; `now` pins the clock that picks billing periods (tests). */
export function priceFactory(options: { now?: () => Date } = {}): FunctionFactory {
  return (config, logger) => {
    const db = createDb(requireDatabaseUrl(config), config.DATABASE_POOL_MAX);
    const metrics = createStageMetrics('price');
    const billing = new Billing({ db, logger, batchTenants: config.PRICE_BATCH_TENANTS, ...(options.now ? { now: options.now } : {}) });
    const stage = new PriceStage({ billing, metrics: createPriceMetrics(metrics.registry), logger, pingDb: () => pingDb(db) });
    return Promise.resolve({
      metrics,
      handle: (request) => stage.handle(request),
      ready: () => pingDb(db),
      close: () => db.destroy(),
    });
  };
}

/** Creates the price function from its configuration. */
export const createPrice: FunctionFactory = priceFactory();

const price = defineFunction('price', createPrice);

export const { init, handle, readiness, liveness, shutdown, instance, logger } = price;
export default price;
