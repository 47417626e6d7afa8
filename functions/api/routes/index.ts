/** Every route of the API, and what they need. */
import type { Logger } from 'pino';
import type { ArtifactStore } from '../../../src/api/artifacts.js';
import type { EventSender } from '../../../src/api/events.js';
import type { KeyStore } from '../../../src/api/keys.js';
import type { AnyRoute } from '../../../src/api/route.js';
import type { Db } from '../../../src/adapters/postgres.js';
import type { Billing } from '../../../src/billing/index.js';
import type { Config } from '../../../src/runtime/config.js';
import type { Aggregator } from '../../../src/stages/aggregate.js';
import type { Collector } from '../../../src/stages/collect.js';
import type { Forecaster } from '../../../src/stages/forecast.js';
import { adminRoutes } from './admin.js';
import { billingRoutes } from './billing.js';
import { budgetRoutes } from './budgets.js';
import { creditRoutes } from './credits.js';
import { deployRoutes } from './deploy.js';
import { dashboardRoutes } from './dashboard.js';
import { forecastRoutes } from './forecast.js';
import { metricsRoutes } from './metrics.js';
import { mlRoutes } from './ml.js';
import { planRoutes, simulateRoute } from './plans.js';
import { serviceRoutes } from './services.js';
import { systemRoutes } from './system.js';
import { tenantRoutes } from './tenants.js';
import { usageRoutes } from './usage.js';
import { webhookRoutes } from './webhooks.js';

export interface ApiDeps {
  db: Db;
  config: Config;
  logger: Logger;
  keys: KeyStore;
  billing: Billing;
  aggregator: Aggregator;
  forecaster: Forecaster;
  collector: Collector;
  artifacts: ArtifactStore;
  /** The Broker, for events the API causes (bill.generated of bills finalized or paid here). */
  events: EventSender;
  now: () => Date;
}

export const allRoutes = (deps: ApiDeps): AnyRoute[] => [
  ...systemRoutes(deps),
  ...tenantRoutes(deps),
  ...planRoutes(deps),
  simulateRoute(deps),
  ...serviceRoutes(deps),
  ...deployRoutes(deps),
  ...usageRoutes(deps),
  ...metricsRoutes(deps),
  ...billingRoutes(deps),
  ...budgetRoutes(deps),
  ...creditRoutes(deps),
  ...forecastRoutes(deps),
  ...dashboardRoutes(deps),
  ...mlRoutes(deps),
  ...webhookRoutes(deps),
  ...adminRoutes(deps),
];
