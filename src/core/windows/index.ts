/** The pure windowing core of the aggregate stage: time-zone windows, percentiles, window statistics. */
export * from './windows.js';
export * from './percentiles.js';
export * from './aggregate.js';
export { ExactDecimal } from './exact-decimal.js';
