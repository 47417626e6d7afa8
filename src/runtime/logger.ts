/** One logger factory for every process: JSON lines (pino), level from LOG_LEVEL. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** A logger named after the component that writes with it. */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
