/**
 * The pure forecasting core: hourly usage series in, forecasts with 80%/95% intervals out, and
 * forecast usage priced through the pricing core. No I/O, no clock, no environment.
 */
export { forecastSeries } from './forecast.js';
export type { BacktestSummary, CandidateScore, ForecastSeriesOptions, SeriesForecast } from './forecast.js';
export { IntervalModel, bandOf, quantileSorted } from './intervals.js';
export type { Band, Offsets, WidthFloor } from './intervals.js';
export { DAY_HOURS, WEEK_HOURS, modelNames } from './models.js';
export type { FittedModel, ModelName, ModelSpec } from './models.js';
export { FORECAST_SERVICE, bandNames, billByMeter, costConfidence, priceForecast, quantityText } from './cost.js';
export type { BandName, BandText, ForecastPart, MeterUsage, PricedComponent, PricedForecast } from './cost.js';
export { FORECAST_MODEL_VERSION, forecastHorizons, forecastResponseSchema, toForecastResponse } from './response.js';
export type { ForecastHorizon, ForecastPeriod, ForecastResponse } from './response.js';
export { MIN_ANOMALY_HISTORY, detectAnomalies } from './anomaly.js';
export { cleanHistory, robustScale } from './clean.js';
export type { AnomalyOptions, AnomalyScan, DetectedAnomaly } from './anomaly.js';
export { budgetCrossing, durationElasticity, minScaleAdvice, suggestedMemoryLimit } from './recommend.js';
export type { LimitRun, ScaleAdvice, ScaleFacts, ScalePrices } from './recommend.js';
