/** waiter as a workload the runner can start: the express app of app.ts on its own HTTP server. */
import { createServer } from 'node:http';
import { loadMeteringConfig } from '../../src/metering/config.js';
import { Meter } from '../../src/metering/meter.js';
import type { Workload } from '../../src/metering/workload.js';
import { createWaiterApp, waiterLimitsSchema } from './app.js';

const waiter: Workload = {
  name: 'waiter',
  async serve(port, env) {
    const meter = new Meter({ config: loadMeteringConfig({ K_SERVICE: 'waiter', ...env }) });
    const server = createServer(createWaiterApp(meter, waiterLimitsSchema.parse(env)));
    await new Promise<void>((resolve) => server.listen(port, resolve));
    return {
      meter,
      server,
      handlesSignals: false,
      async close() {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await meter.close();
      },
    };
  },
};
export default waiter;
