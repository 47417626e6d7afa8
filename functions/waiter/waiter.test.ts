/**
 * waiter in its own process, measured from outside through /proc: the memory it is asked to hold
 * is resident during the call, and the CPU it is asked to spin is really spent.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSink, type TestSink } from '../../test/support/sink.js';
import { spawnWorkload } from '../../test/support/workload.js';

const clockTicksPerSecond = 100;

/** Resident memory of `pid` in bytes (VmRSS). */
async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (!kb) throw new Error('no VmRSS');
  return Number(kb) * 1024;
}

/** CPU time `pid` has used (user + system), in ms. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at ") ": utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
}

describe('waiter (reference workload)', function () {
  this.timeout(90_000);
  let sink: TestSink;
  let waiter: { url: string; child: ChildProcess };
  let pid: number;

  before(async () => {
    sink = await startSink();
    waiter = await spawnWorkload('waiter', { K_SINK: sink.url, METERING_SINK_MODE: 'batch', WAITER_MAX_MEM_MB: '512' });
    pid = waiter.child.pid!;
  });
  after(async () => {
    waiter.child.kill('SIGTERM');
    await sink.close();
  });

  it('holds mem_mb of resident memory for the call', async () => {
    // A first call warms the process up, so the baseline is not its start-up growth.
    assert.equal((await fetch(`${waiter.url}/invoke`)).status, 200);
    const before = await residentBytes(pid);
    const call = fetch(`${waiter.url}/invoke?sleep_ms=2500&mem_mb=200`);
    let peak = before;
    for (let i = 0; i < 15; i++) {
      await sleep(100);
      peak = Math.max(peak, await residentBytes(pid));
    }
    const res = await call;
    assert.equal(res.status, 200);
    const grownMb = (peak - before) / (1024 * 1024);
    assert.ok(grownMb >= 200 * 0.9 && grownMb <= 200 * 1.5, `resident memory grew by ${grownMb.toFixed(1)} MB`);
  });

  it('spins cpu_spin_ms of CPU time', async () => {
    const before = await cpuMs(pid);
    const res = await fetch(`${waiter.url}/invoke?cpu_spin_ms=600`);
    assert.equal(res.status, 200);
    const used = (await cpuMs(pid)) - before;
    // The clock-tick resolution is 10 ms; serving the request costs a little on top.
    assert.ok(used >= 600 - 20 && used <= 600 + 300, `used ${used} ms of CPU`);
  });

  it('refuses what is over its limits with a 400 problem, and holds nothing for it', async () => {
    const before = await residentBytes(pid);
    for (const query of ['mem_mb=102400', 'sleep_ms=-1', 'cpu_spin_ms=999999', 'mem_mb=abc']) {
      const res = await fetch(`${waiter.url}/invoke?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.match(((await res.json()) as { detail: string }).detail, /mem_mb|sleep_ms|cpu_spin_ms/);
    }
    assert.ok((await residentBytes(pid)) - before < 50 * 1024 * 1024);
  });

  it('serves the seed metrics with what it did', async () => {
    const text = await (await fetch(`${waiter.url}/metrics`)).text();
    assert.match(text, /waiter_requests_total\{method="GET",endpoint="\/invoke",status="200"\} 3/);
    assert.match(text, /waiter_requests_total\{method="GET",endpoint="\/invoke",status="400"\} 4/);
    assert.match(text, /waiter_request_duration_seconds_count\{endpoint="\/invoke"\} 7/);
    assert.match(text, /waiter_cold_starts_total 1/);
    assert.match(text, /waiter_errors_total\{reason="invalid_input"\} 4/);
    const memory = Number(/^waiter_memory_usage_bytes (\d+)/m.exec(text)?.[1]);
    assert.equal(Math.abs(memory - (await residentBytes(pid))) < 64 * 1024 * 1024, true, `waiter_memory_usage_bytes ${memory}`);
    assert.match(text, /faasbilling_meter_invocations_total\{outcome="ok"\} 7/);
    for (const probe of ['/healthz', '/readiness']) assert.equal((await fetch(`${waiter.url}${probe}`)).status, 200);
  });
});
