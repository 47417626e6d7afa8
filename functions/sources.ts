/**
 * Metering sources that run as functions under faas-js-runtime: the runner serves them like the
 * stages, and deploy/base runs each as a Knative Service with its PingSource and Trigger in
 * eventing/ (deploy/components/agent removes the scraper when it adds the billing agent). They read a Kubernetes cluster, so the local runner (`npm start`, functions/index.ts)
 * leaves them out and its broker skips their Triggers.
 */
import { functionNames } from './index.js';
import scrape from './scrape/index.js';
import type { FunctionModule } from '../src/runtime/function.js';

export const sources: Record<string, FunctionModule> = { scrape };
export const sourceNames = Object.keys(sources);

/** Every function deploy/base runs as a Knative Service (the API aside): the stages and the sources. */
export const deployedFunctionNames: readonly string[] = [...functionNames, ...sourceNames];
