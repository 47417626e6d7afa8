/**
 * The load waiter simulates: memory really allocated and touched (so it is resident), CPU really
 * spent (measured in process CPU time, so a busy machine still gets the CPU asked for), and a
 * sleep. Pure of HTTP so the waiter's tests can measure it.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const bytesPerMb = 1024 * 1024;

/** Allocates `memMb` MiB and writes every page, so the memory is resident, not just reserved. */
export function allocateResident(memMb: number): Buffer {
  const buffer = Buffer.allocUnsafe(memMb * bytesPerMb);
  buffer.fill(0xa5);
  return buffer;
}

/**
 * Spins until the process has used `cpuMs` of CPU time since the call (or ten times that in wall
 * time, so a starved process cannot spin forever); returns the CPU ms actually used.
 */
export function spinCpu(cpuMs: number): number {
  if (cpuMs <= 0) return 0;
  const start = process.cpuUsage();
  const wallLimit = Date.now() + cpuMs * 10;
  let used = 0;
  let x = 0;
  while (used < cpuMs && Date.now() < wallLimit) {
    for (let i = 0; i < 20_000; i++) x = (x * 31 + i) % 1_000_003;
    const cpu = process.cpuUsage(start);
    used = (cpu.user + cpu.system) / 1000;
  }
  // x keeps the loop from being optimised away.
  return x < 0 ? -1 : used;
}

/** Holds `memMb` for the whole call while it spins `cpuSpinMs` and sleeps `sleepMs`. */
export async function simulateLoad(load: { sleepMs: number; memMb: number; cpuSpinMs: number }): Promise<{ cpuMsUsed: number; heldBytes: number }> {
  const held = load.memMb > 0 ? allocateResident(load.memMb) : undefined;
  const cpuMsUsed = spinCpu(load.cpuSpinMs);
  if (load.sleepMs > 0) await sleep(load.sleepMs);
  // Reading the buffer after the sleep keeps it alive (and resident) until here.
  const heldBytes = held ? held.length - (held[held.length - 1] === 0xa5 ? 0 : 1) : 0;
  return { cpuMsUsed, heldBytes };
}
