/**
 * Entry point of the billing agent (deploy/components/agent: one pod per node). Samples every
 * AGENT_INTERVAL_SECONDS, on interval boundaries, and serves /metrics, /health/liveness and
 * /health/readiness on PORT. SIGTERM sends what is queued, then exits.
 */
import { createServer } from 'node:http';
import { Registry } from 'prom-client';
import { connectKubernetes } from '../adapters/kubernetes.js';
import { createLogger } from '../runtime/logger.js';
import { BillingAgent } from './agent.js';
import { agentConfigSchema } from './config.js';

const logger = createLogger('billing-agent', process.env.LOG_LEVEL ?? 'info');
const parsed = agentConfigSchema.safeParse(process.env);
if (!parsed.success) {
  // AGENT_NODE_NAME is the usual one: the DaemonSet sets it from the downward API.
  logger.fatal(`invalid agent configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  process.exit(2);
}
const config = parsed.data;
const registry = new Registry();
registry.setDefaultLabels({ function: 'billing-agent' });
const agent = new BillingAgent({ config, cluster: connectKubernetes(config.KUBERNETES_API_URL), registry, startedAt: new Date() });
let lastSampleOk = false;

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/metrics') {
    void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
  } else if (path === '/health/liveness') {
    res.writeHead(200).end('OK');
  } else if (path === '/health/readiness') {
    res.writeHead(lastSampleOk ? 200 : 503).end(lastSampleOk ? 'OK' : 'no successful sample yet');
  } else {
    res.writeHead(404).end();
  }
});
server.listen(config.PORT, () => logger.info({ port: config.PORT, node: config.AGENT_NODE_NAME }, 'billing agent listening'));

const intervalMs = config.AGENT_INTERVAL_SECONDS * 1000;
let timer: NodeJS.Timeout | undefined;
const scheduleNext = (): void => {
  timer = setTimeout(() => void tick(), intervalMs - (Date.now() % intervalMs));
};
async function tick(): Promise<void> {
  // The sample is named by its interval boundary, so its report ids are stable.
  const at = new Date(Math.round(Date.now() / intervalMs) * intervalMs);
  try {
    const sample = await agent.sample(at);
    lastSampleOk = true;
    logger.debug({ pods: sample.pods, reports: sample.reports.length }, 'sampled');
  } catch (err) {
    lastSampleOk = false;
    logger.error({ err }, 'sample failed');
  }
  scheduleNext();
}
scheduleNext();

const stop = (): void => {
  if (timer) clearTimeout(timer);
  server.close();
  void agent.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
