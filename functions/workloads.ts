/**
 * The reference workloads (the seed's waiter, hello and echo): functions a tenant would run, each
 * metered by the metering middleware. Not billing stages: they have no Trigger and are started by
 * the runner (`run-function <name>`) and by `npm start` beside the stages.
 */
import echo from './echo/index.js';
import hello from './hello/index.js';
import waiter from './waiter/index.js';
import type { Workload } from '../src/metering/workload.js';

export const workloads: Record<string, Workload> = { waiter, hello, echo };
export const workloadNames = Object.keys(workloads);
