/**
 * Metering sources run as functions under faas-js-runtime but not yet wired into deploy/base and
 * eventing/ (see the README, Metering sources): the runner serves them like the stages.
 */
import scrape from './scrape/index.js';
import type { FunctionModule } from '../src/runtime/function.js';

export const sources: Record<string, FunctionModule> = { scrape };
