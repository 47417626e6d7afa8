/** The usage buffer on a Redis stream with the consumer group "save" (ioredis). */
import { Redis } from 'ioredis';
import type { UsageRecord } from '../../contract/usage.js';
import { chunkRecords, decodeEntry, type BufferEntry, type BufferStats, type UsageBuffer } from './types.js';

const GROUP = 'save';
const FIELD = 'r';

type StreamEntry = [id: string, fields: string[]];

function toEntries(raw: StreamEntry[]): BufferEntry[] {
  return raw.map(([id, fields]) => {
    const at = fields.indexOf(FIELD);
    return decodeEntry(id, fields[at + 1] ?? '[]');
  });
}

/** Age in ms of a stream id ("<ms>-<seq>") at `now`. */
function idAgeMs(id: string, now: number): number {
  const ms = Number(id.split('-')[0]);
  return Number.isFinite(ms) ? Math.max(0, now - ms) : 0;
}

export class RedisStreamBuffer implements UsageBuffer {
  private groupReady: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
  ) {}

  /**
   * Connects to `url`. A command waits for at most one reconnection attempt, so a down Redis
   * fails calls within about a second (collect answers 503) instead of queueing them forever.
   */
  static connect(url: string, stream: string): RedisStreamBuffer {
    const redis = new Redis(url, {
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 1000),
    });
    // Connection errors surface on the calls that need Redis; the event would only spam logs.
    redis.on('error', () => undefined);
    return new RedisStreamBuffer(redis, stream);
  }

  private ensureGroup(): Promise<void> {
    this.groupReady ??= this.redis
      .xgroup('CREATE', this.stream, GROUP, '0', 'MKSTREAM')
      .then(() => undefined)
      .catch((err: unknown) => {
        if (err instanceof Error && err.message.includes('BUSYGROUP')) return;
        this.groupReady = undefined;
        throw err;
      });
    return this.groupReady;
  }

  async append(records: UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.ensureGroup();
    const pipeline = this.redis.pipeline();
    for (const chunk of chunkRecords(records)) pipeline.xadd(this.stream, '*', FIELD, JSON.stringify(chunk));
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  async readNew(consumer: string, count: number): Promise<BufferEntry[]> {
    await this.ensureGroup();
    const reply = (await this.redis.xreadgroup('GROUP', GROUP, consumer, 'COUNT', count, 'STREAMS', this.stream, '>')) as
      | [string, StreamEntry[]][]
      | null;
    return reply?.[0] ? toEntries(reply[0][1]) : [];
  }

  async claimStale(consumer: string, minIdleMs: number, count: number): Promise<BufferEntry[]> {
    await this.ensureGroup();
    const reply = (await this.redis.xautoclaim(this.stream, GROUP, consumer, minIdleMs, '0-0', 'COUNT', count)) as [
      string,
      StreamEntry[],
      string[]?,
    ];
    // Entries trimmed while pending come back as null ids; there is nothing left to save for them.
    return toEntries(reply[1].filter((e): e is StreamEntry => Array.isArray(e) && Array.isArray(e[1])));
  }

  async ack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    // XDEL after XACK keeps the stream bounded: an acknowledged entry is never read again.
    await this.redis.multi().xack(this.stream, GROUP, ...ids).xdel(this.stream, ...ids).exec();
  }

  async stats(): Promise<BufferStats> {
    await this.ensureGroup();
    const [length, pendingSummary, first] = await Promise.all([
      this.redis.xlen(this.stream),
      this.redis.xpending(this.stream, GROUP) as Promise<[number, string | null, string | null, unknown]>,
      this.redis.xrange(this.stream, '-', '+', 'COUNT', 1),
    ]);
    const oldest = first[0]?.[0];
    return { length, pending: Number(pendingSummary[0]), lagMs: oldest ? idAgeMs(oldest, Date.now()) : 0 };
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** Removes the stream (tests). */
  async destroy(): Promise<void> {
    await this.redis.del(this.stream);
  }
}

