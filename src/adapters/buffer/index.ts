/** Chooses the usage buffer: Redis Streams when REDIS_URL is set, else the PostgreSQL queue. */
import type { Config } from '../../runtime/config.js';
import type { Db } from '../postgres.js';
import { PostgresQueueBuffer } from './postgres-queue.js';
import { RedisStreamBuffer } from './redis.js';
import type { UsageBuffer } from './types.js';

export type { UsageBuffer, BufferEntry, BufferStats } from './types.js';

/** Opens the buffer the configuration asks for; `db` backs the embedded one. */
export function openBuffer(config: Pick<Config, 'REDIS_URL' | 'BUFFER_STREAM'>, db: () => Db): UsageBuffer {
  return config.REDIS_URL ? RedisStreamBuffer.connect(config.REDIS_URL, config.BUFFER_STREAM) : new PostgresQueueBuffer(db());
}
