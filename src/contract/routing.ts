/**
 * Routing as the code intends it: which function consumes which CloudEvent and which types it
 * emits as replies. The Knative manifests in eventing/ (Broker, Triggers, PingSources) are what
 * actually routes, locally and in the cluster; test/manifests.test.ts holds the two together, so a
 * new type, reply or Trigger has to be declared here and wired there in the same change.
 */
import { EventType, type EventTypeName } from './events.js';

/** The namespace every FaaS Billing resource lives in (deploy/base and eventing/ kustomizations). */
export const billingNamespace = 'faas-billing';

/** The one Broker every event goes through (eventing/broker.yaml). */
export const brokerName = 'default';

/** The CloudEvent type a Knative PingSource sends. */
export const pingEventType = 'dev.knative.sources.ping';

/** The CloudEvent `source` a Knative PingSource puts on its events. */
export const pingSourceSource = (namespace: string, name: string): string =>
  `/apis/v1/namespaces/${namespace}/pingsources/${name}`;

/** How a function receives events: a Trigger on the Broker, or as the Broker's dead-letter sink. */
export type Consumption =
  | { readonly via: 'trigger'; readonly type: EventTypeName }
  | { readonly via: 'trigger'; readonly type: typeof pingEventType; readonly pingSource: string }
  | { readonly via: 'deadLetterSink'; readonly broker: string };

export interface FunctionRoute {
  readonly consumes: readonly Consumption[];
  /** Types the function returns from handle(), which the Broker routes on as replies. */
  readonly emits: readonly EventTypeName[];
}

/**
 * One entry per function deploy/base runs as a Knative Service: the stages of functions/index.ts
 * and the metering sources of functions/sources.ts (deployedFunctionNames).
 */
export const routing = {
  collect: {
    consumes: [{ via: 'trigger', type: EventType.usage }],
    emits: [EventType.bufferFlush],
  },
  save: {
    consumes: [
      { via: 'trigger', type: EventType.bufferFlush },
      { via: 'trigger', type: pingEventType, pingSource: 'save-flush-tick' },
    ],
    emits: [EventType.usageSaved],
  },
  deadletter: {
    consumes: [{ via: 'deadLetterSink', broker: brokerName }],
    emits: [],
  },
  aggregate: {
    consumes: [
      { via: 'trigger', type: EventType.usageSaved },
      { via: 'trigger', type: EventType.aggregateTick },
      { via: 'trigger', type: pingEventType, pingSource: 'aggregate-tick' },
    ],
    emits: [EventType.usageAggregated],
  },
  price: {
    consumes: [
      { via: 'trigger', type: EventType.usageAggregated },
      { via: 'trigger', type: EventType.billingClose },
      { via: 'trigger', type: pingEventType, pingSource: 'billing-close-tick' },
    ],
    emits: [EventType.billGenerated, EventType.billsClosed, EventType.budgetExceeded],
  },
  notifications: {
    consumes: [
      { via: 'trigger', type: EventType.billGenerated },
      { via: 'trigger', type: EventType.billsClosed },
      { via: 'trigger', type: EventType.budgetExceeded },
      { via: 'trigger', type: EventType.anomalyDetected },
      // The API event outbox's sweep (src/stages/api-event-outbox.ts).
      { via: 'trigger', type: pingEventType, pingSource: 'api-outbox-sweep' },
    ],
    emits: [],
  },
  forecast: {
    consumes: [
      { via: 'trigger', type: EventType.forecastTick },
      { via: 'trigger', type: pingEventType, pingSource: 'forecast-daily' },
    ],
    emits: [EventType.anomalyDetected],
  },
  retention: {
    consumes: [{ via: 'trigger', type: pingEventType, pingSource: 'retention-daily' }],
    emits: [],
  },
  // The usage events it measures go to K_SINK (the Broker) as requests of its own; its reply to
  // the tick is a plain JSON summary, which the Broker does not route.
  scrape: {
    consumes: [{ via: 'trigger', type: pingEventType, pingSource: 'scrape-tick' }],
    emits: [],
  },
} as const satisfies Record<string, FunctionRoute>;

export type RoutedFunctionName = keyof typeof routing;
export type EmittedEventType = (typeof routing)[RoutedFunctionName]['emits'][number];
export type ConsumedEventType = Extract<(typeof routing)[RoutedFunctionName]['consumes'][number], { via: 'trigger' }>['type'];

/**
 * Types whose consumer function is a later issue: the function that will take them (DESIGN §3).
 * When that function lands with its Trigger, its entries move from here to `routing`.
 */
export const plannedConsumers = {
} as const satisfies Partial<Record<EventTypeName, string>>;

export type PlannedEventType = keyof typeof plannedConsumers;
export type PlannedConsumer = (typeof plannedConsumers)[PlannedEventType];

export const routedFunctionNames = Object.keys(routing) as RoutedFunctionName[];

/** The planned consumer of a type, if it has one. */
export function plannedConsumerOf(type: string): PlannedConsumer | undefined {
  return Object.hasOwn(plannedConsumers, type) ? plannedConsumers[type as PlannedEventType] : undefined;
}

/** Knative retries network failures, 404, 408, 409, 429 and 5xx; other answers are final. */
export function isRetryableStatus(status: number): boolean {
  return status === 404 || status === 408 || status === 409 || status === 429 || status >= 500;
}
