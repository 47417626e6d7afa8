/**
 * The aggregate function's handler logic: usage.saved (save's reply), aggregate.tick and the
 * PingSource tick all mean "process what is dirty" — the marks say exactly which windows changed,
 * so usage.saved's figures and the tick's window_sizes are validated but not needed (every size is
 * always kept current). A plain POST runs too (a manual trigger). Replies usage.aggregated when
 * windows were recomputed, else 204; bad event data is a 422 problem, a database outage a 503.
 */
import { CloudEvent } from 'cloudevents';
import type { z } from 'zod';
import { EventType, aggregateTickData, eventSource, usageAggregatedData, usageSavedData, type UsageAggregatedData } from '../contract/events.js';
import { BillingError } from '../contract/problem.js';
import { pingEventType } from '../contract/routing.js';
import type { FunctionRequest, FunctionResult } from '../runtime/function.js';
import type { Logger } from '../runtime/logger.js';
import type { AggregateResult, Aggregator } from './aggregate.js';

export interface AggregateStageOptions {
  aggregator: Aggregator;
  logger: Logger;
  /** Throws when the database is unreachable (to tell an outage from a bug). */
  pingDb: () => Promise<void>;
}

function checkData<T>(schema: z.ZodType<T>, event: CloudEvent<unknown>): T {
  const parsed = schema.safeParse(event.data ?? {});
  if (parsed.success) return parsed.data;
  const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ');
  throw new BillingError('invalid_event', `${event.type} data is not valid: ${detail}`);
}

/** The usage.aggregated reply for a run that recomputed windows. */
export function usageAggregatedEvent(result: AggregateResult): CloudEvent<UsageAggregatedData> {
  const data = usageAggregatedData.parse({
    windows: result.windows['5m'] + result.windows['1h'] + result.windows['1d'],
    tenants: result.tenants,
    from: result.from,
    to: result.to,
  });
  return new CloudEvent({ type: EventType.usageAggregated, source: eventSource('aggregate'), data });
}

/** Turns triggers into aggregator runs and their outcome into a reply. */
export class AggregateStage {
  constructor(private readonly options: AggregateStageOptions) {}

  /** Handles one request; never throws anything but a BillingError or an unexpected bug. */
  async handle(request: FunctionRequest): Promise<FunctionResult> {
    const event = request.cloudevent;
    if (event) {
      switch (event.type) {
        case EventType.usageSaved:
          checkData(usageSavedData, event);
          break;
        case EventType.aggregateTick:
          checkData(aggregateTickData, event);
          break;
        case pingEventType:
          break;
        default:
          throw new BillingError(
            'invalid_event',
            `aggregate does not handle events of type ${JSON.stringify(event.type)}; it takes ${EventType.usageSaved}, ${EventType.aggregateTick} and ${pingEventType}`,
          );
      }
    }
    let result: AggregateResult;
    try {
      result = await this.options.aggregator.run();
    } catch (err) {
      throw await this.asBillingError(err);
    }
    if (result.more) this.options.logger.info({ buckets: result.buckets }, 'aggregate time budget spent; the next trigger continues');
    const windows = result.windows['5m'] + result.windows['1h'] + result.windows['1d'];
    return windows === 0 ? { statusCode: 204 } : usageAggregatedEvent(result);
  }

  /** A database outage → 503 (retryable); anything else stays a 500. */
  private async asBillingError(err: unknown): Promise<unknown> {
    try {
      await this.options.pingDb();
    } catch {
      return new BillingError('database_unavailable', 'PostgreSQL is not reachable; the dirty windows stay marked, retry later', true, undefined, { cause: err });
    }
    this.options.logger.error({ err }, 'aggregate failed');
    return err;
  }
}
