/**
 * The forecast of one tenant and horizon as other code sees it: the seed's ForecastResponse
 * (`forecasted_cost`, `components`) with the 80%/95% interval, the target's span and the model.
 * Pure: built from a priced forecast (cost.ts) and the component series' forecasts.
 */
import { z } from 'zod';
import { forecastTickData } from '../../contract/events.js';
import { Dec, meters, type Meter } from '../pricing/index.js';
import { costConfidence, type BandText, type PricedForecast } from './cost.js';
import type { SeriesForecast } from './forecast.js';

/** Version of the forecasting method, stored with every prediction; bump it when results change. */
export const FORECAST_MODEL_VERSION = '1.2.0';

/** Every horizon, in the order they are stored (the contract's forecast.tick enum). */
export const forecastHorizons = forecastTickData.shape.horizons.unwrap().element.options;
export type ForecastHorizon = (typeof forecastHorizons)[number];
/** The horizons of the seed's ForecastRequest.period. */
export type ForecastPeriod = Extract<ForecastHorizon, '1h' | '1d' | '1w'>;

const units: Record<Meter, string> = { invocations: 'invocation', compute: 'MB-ms', cold_starts: 'cold-start', cpu: 'CPU-ms' };

const money = z.string().regex(/^-?\d+(\.\d+)?$/);
/** `median`: the 50% quantile (half the outcomes below it; under `expected` when usage comes in bursts). */
const bandSchema = z.object({ expected: money, median: money, lower_80: money, upper_80: money, lower_95: money, upper_95: money });
const componentSchema = z.object({
  unit: z.string(),
  quantity: bandSchema,
  cost: bandSchema,
  /** Month-to-date actual usage and cost (month_end only; included in quantity and cost). */
  actual: z.object({ quantity: money, cost: money }).optional(),
  model: z.string(),
  backtest_mase: z.number().nullable(),
});

/**
 * The seed's ForecastResponse (`forecasted_cost`, `components`) with the interval, the target's
 * span and the model. Money and quantities are decimal strings. `components.compute` is the seed's
 * "memory" (billed MB·ms).
 */
export const forecastResponseSchema = z.object({
  tenant_id: z.string(),
  horizon: z.enum(forecastHorizons),
  horizon_hours: z.number().int().positive(),
  as_of: z.iso.datetime(),
  period_start: z.iso.datetime(),
  period_end: z.iso.datetime(),
  currency: z.string().length(3),
  forecasted_cost: money,
  /** The cost of the median usage of every component: the usual outcome (see bandSchema). */
  median_cost: money,
  interval_80: z.object({ lower: money, upper: money }),
  interval_95: z.object({ lower: money, upper: money }),
  /**
   * Month-to-date actual cost accrued so far (usage after commitment discounts), included in
   * forecasted_cost; the minimum charge's top-up and an unused commitment, owed at the month's end,
   * are in forecasted_cost only (month_end only, else null).
   */
  actual_cost: money.nullable(),
  confidence: z.string().regex(/^[01]\.\d{4}$/),
  model: z.object({ name: z.string(), version: z.string(), backtest_mase: z.number().nullable() }),
  components: z.object({ invocations: componentSchema, compute: componentSchema, cold_starts: componentSchema, cpu: componentSchema }),
});
export type ForecastResponse = z.infer<typeof forecastResponseSchema>;

const bandText = (b: BandText): z.infer<typeof bandSchema> => ({ expected: b.expected, median: b.median, lower_80: b.lower80, upper_80: b.upper80, lower_95: b.lower95, upper_95: b.upper95 });

export function toForecastResponse(
  tenantId: string,
  horizon: ForecastHorizon,
  hours: number,
  span: { asOf: number; periodStart: number; periodEnd: number },
  priced: PricedForecast,
  series: Record<Meter, SeriesForecast>,
): ForecastResponse {
  const components = Object.fromEntries(
    meters.map((m) => {
      const c = priced.components[m];
      return [m, { unit: units[m], quantity: bandText(c.quantity), cost: bandText(c.cost), ...(c.actual ? { actual: c.actual } : {}), model: series[m].model, backtest_mase: series[m].backtest.mase }];
    }),
  ) as ForecastResponse['components'];
  // The model that matters most for the money: the component with the largest expected cost.
  let lead: Meter = 'invocations';
  for (const m of meters) if (new Dec(priced.components[m].cost.expected).gt(priced.components[lead].cost.expected)) lead = m;
  return {
    tenant_id: tenantId,
    horizon,
    horizon_hours: hours,
    as_of: new Date(span.asOf).toISOString(),
    period_start: new Date(span.periodStart).toISOString(),
    period_end: new Date(span.periodEnd).toISOString(),
    currency: priced.currency,
    forecasted_cost: priced.cost.expected,
    median_cost: priced.cost.median,
    interval_80: { lower: priced.cost.lower80, upper: priced.cost.upper80 },
    interval_95: { lower: priced.cost.lower95, upper: priced.cost.upper95 },
    actual_cost: priced.actualCost ?? null,
    confidence: costConfidence(priced.cost),
    model: { name: series[lead].model, version: FORECAST_MODEL_VERSION, backtest_mase: series[lead].backtest.mase },
    components,
  };
}

