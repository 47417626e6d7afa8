/** Making save run now in a running local system, instead of waiting for its per-minute tick. */
import { EventType } from '../../src/contract/events.js';
import { eventually } from './eventually.js';

/**
 * Sends a buffer.flush event to the broker, again and again, until `done` holds. Deliveries to
 * collect run concurrently in the broker, so one flush may come before the last events are buffered.
 */
export async function flushUntil(brokerUrl: string, done: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  let flushes = 0;
  await eventually(
    async () => {
      flushes += 1;
      await fetch(brokerUrl, {
        method: 'POST',
        headers: { 'ce-specversion': '1.0', 'ce-type': EventType.bufferFlush, 'ce-source': '/test', 'ce-id': `flush-${Date.now()}-${flushes}`, 'content-type': 'application/json' },
        body: '{}',
      });
      return done();
    },
    timeoutMs,
    what,
  );
}
