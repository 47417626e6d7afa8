/**
 * A replacement for pglite-socket's query queue. PGlite is one session shared by every client
 * connection; the socket server's own queue interleaves clients message by message and keeps a
 * client exclusive only inside an explicit transaction. With the extended query protocol (what
 * `pg` uses for parameterised queries) a client sends Parse, Bind, Describe, Execute and Sync as
 * separate messages, so two concurrent clients clobber each other's unnamed portal ("portal \"\"
 * cannot be run", 08P01). This queue keeps a client exclusive from its first message until its
 * group ends — a Sync, a simple Query, or a Terminate — and for as long as a transaction is open.
 */
import type { PGlite } from '@electric-sql/pglite';

interface Item {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (error: unknown) => void;
}

/** Message types after which a client's group is complete (outside a transaction). */
const groupEnd = new Set(['S', 'Q', 'X']);

export class ProtocolGroupQueue {
  private queue: Item[] = [];
  private processing = false;
  /** The client whose group (or transaction) is in progress; only its messages run. */
  private owner: number | null = null;

  constructor(private readonly db: PGlite) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message, onData, resolve, reject });
      void this.process();
    });
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  /** A client went away: drop its queued messages and release its hold. */
  clearQueueForHandler(handlerId: number): void {
    this.queue = this.queue.filter((item) => {
      if (item.handlerId !== handlerId) return true;
      item.reject(new Error('Handler disconnected'));
      return false;
    });
    if (this.owner === handlerId && !this.db.isInTransaction()) {
      this.owner = null;
      void this.process();
    }
  }

  /** A client went away inside its transaction: roll it back so the others can go on. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.owner !== handlerId) return;
    if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    this.owner = null;
    await this.process();
  }

  private async process(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      for (;;) {
        const index = this.owner === null ? 0 : this.queue.findIndex((item) => item.handlerId === this.owner);
        if (index === -1 || this.queue.length === 0) break;
        const [item] = this.queue.splice(index, 1) as [Item];
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data: Uint8Array) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
        } catch (err) {
          this.owner = null;
          item.reject(err);
          continue;
        }
        // A startup message has no type byte (it begins with its length, whose first byte is 0).
        const type = item.message[0] === 0 ? 'X' : String.fromCharCode(item.message[0] ?? 0);
        this.owner = groupEnd.has(type) && !this.db.isInTransaction() ? null : item.handlerId;
        item.resolve(bytes);
      }
    } finally {
      this.processing = false;
    }
  }
}
