/**
 * Child processes of the bench. The load generator and the save stage each get their own process
 * (their own event loop, as their own pods would), talking to the bench over the IPC channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A message between the bench and a child: always an object with a `type`. */
export interface ChildMessage {
  type: string;
}

const failureOf = (m: ChildMessage): string => String((m as { message?: unknown }).message);

/** A running child with typed waits on its messages. */
export class Child {
  private readonly exited: Promise<number | null>;
  private readonly queue: ChildMessage[] = [];
  private readonly waiters: ((m: ChildMessage) => boolean)[] = [];

  constructor(private readonly child: ChildProcess) {
    child.on('message', (message: ChildMessage) => {
      const index = this.waiters.findIndex((take) => take(message));
      if (index >= 0) this.waiters.splice(index, 1);
      else this.queue.push(message);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the next message of `type`; rejects if the child exits first. */
  next<T extends ChildMessage>(type: string): Promise<T> {
    const failed = this.queue.find((m) => m.type === 'error');
    if (failed) return Promise.reject(new Error(`child failed: ${failureOf(failed)}`));
    const queued = this.queue.findIndex((m) => m.type === type);
    if (queued >= 0) return Promise.resolve(this.queue.splice(queued, 1)[0] as T);
    return new Promise<T>((resolve, reject) => {
      const take = (m: ChildMessage): boolean => {
        if (m.type === 'error') {
          reject(new Error(`child failed: ${failureOf(m)}`));
          return true;
        }
        if (m.type !== type) return false;
        resolve(m as T);
        return true;
      };
      this.waiters.push(take);
      void this.exited.then((code) => reject(new Error(`child exited (code ${String(code)}) before sending "${type}"`)));
    });
  }

  send(message: ChildMessage): void {
    this.child.send(message);
  }

  /** Waits for the child to end; kills it if it has not within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * Starts `file` (a TypeScript module under bench/) with `arg` as JSON in argv[2]. `cpuProfileDir`
 * makes node write a CPU profile of the child there when it exits (to see what bounds a stage).
 */
export function forkBench(file: string, arg: unknown, options: { cpuProfileDir?: string | undefined } = {}): Child {
  const profile = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  const child = fork(path.join(projectRoot, 'bench', file), [JSON.stringify(arg)], {
    cwd: projectRoot,
    execArgv: ['--import', 'tsx', ...profile],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Child(child);
}

/**
 * In a child: the JSON argument its parent passed. Also ties the child's life to the bench's: when
 * the bench goes away (the IPC channel closes), the child ends instead of running on alone.
 */
export function childArgument(): unknown {
  const raw = process.argv[2];
  if (raw === undefined || !process.send) throw new Error('this module runs as a child of the bench (it expects a JSON argument and an IPC channel)');
  process.once('disconnect', () => process.exit(process.exitCode ?? 0));
  return JSON.parse(raw) as unknown;
}

/** In a child: sends a message to the bench. */
export function toParent<T extends ChildMessage>(message: T): void {
  if (!process.send) throw new Error('this module runs as a child of the bench (no IPC channel)');
  process.send(message);
}

/** In a child: the next message from the bench whose type is one of `types`. */
export function fromParent<T extends ChildMessage>(...types: string[]): Promise<T> {
  return new Promise((resolve) => {
    const listener = (message: ChildMessage): void => {
      if (!types.includes(message.type)) return;
      process.off('message', listener);
      resolve(message as T);
    };
    process.on('message', listener);
  });
}

/** In a child: reports a failure to the bench (which rejects what it waits for) and ends. */
export function failInChild(err: unknown): void {
  toParent({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exitCode = 1;
  process.disconnect();
}
