/** The pure parts of the metering sources: text exposition, counter deltas, quantities, cgroup files. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { quantityToMb } from '../adapters/kubernetes.js';
import { findPodCgroup, parseCpuStat, readCgroupStats } from './cgroup.js';
import { parseExposition, requestCounters, type RequestCounter } from './exposition.js';
import { counterDeltas, revisionUsage } from './revision-usage.js';

describe('text exposition', () => {
  it('reads names, escaped label values, special values and ignores timestamps and comments', () => {
    const samples = parseExposition(
      [
        '# HELP x_total A counter with "quotes"',
        '# TYPE x_total counter',
        'x_total{path="/a\\"b\\\\c",note="line\\nbreak"} 12 1700000000000',
        '  y 3.5e2',
        'z{} +Inf',
        'w{a="1",} NaN',
        '',
      ].join('\n'),
    );
    assert.deepEqual(samples.slice(0, 2), [
      { name: 'x_total', labels: { path: '/a"b\\c', note: 'line\nbreak' }, value: 12 },
      { name: 'y', labels: {}, value: 350 },
    ]);
    assert.equal(samples[2]?.value, Infinity);
    assert.ok(Number.isNaN(samples[3]?.value));
    assert.deepEqual(samples[3]?.labels, { a: '1' });
  });

  it('refuses malformed lines, naming them', () => {
    assert.throws(() => parseExposition('x{a="1" 3'), /unclosed labels|malformed labels/);
    assert.throws(() => parseExposition('x{a=1} 3'), /malformed labels/);
    assert.throws(() => parseExposition('x_total'), /no value/);
    assert.throws(() => parseExposition('x_total abc'), /bad value/);
  });

  it('folds both naming schemes into counters in milliseconds, and skips series without a revision', () => {
    const counters = requestCounters(
      parseExposition(
        [
          'kn_serving_invocation_duration_seconds_count{k8s_namespace_name="ns",kn_revision_name="r-1",http_response_status_code="200"} 4',
          'kn_serving_invocation_duration_seconds_sum{k8s_namespace_name="ns",kn_revision_name="r-1",http_response_status_code="200"} 0.5',
          'revision_app_request_count{namespace_name="ns",revision_name="r-2",response_code="500",pod_name="p"} 2',
          'revision_app_request_latencies_sum{namespace_name="ns",revision_name="r-2",response_code="500",pod_name="p"} 30',
          'kn_serving_invocation_duration_seconds_count{k8s_namespace_name="ns",http_response_status_code="200"} 99',
        ].join('\n'),
      ),
      { pod: 'own-pod' },
    );
    assert.deepEqual(
      counters.map((c) => [c.revision, c.pod, c.status, c.count, c.sumMs]),
      [
        ['r-1', 'own-pod', '200', 4, 500],
        ['r-2', 'p', '500', 2, 30],
      ],
    );
  });
});

describe('counter deltas', () => {
  const counter = (pod: string, count: number, sumMs: number, status = '200'): RequestCounter => ({ namespace: 'ns', revision: 'r-1', pod, status, count, sumMs });

  it('a first snapshot is a baseline', () => {
    assert.deepEqual(counterDeltas(undefined, [counter('a', 5, 50)]), { deltas: [], resets: 0, vanished: 0 });
  });

  it('growth counts its difference, a reset counts from zero, a new series counts whole, a gone series is vanished', () => {
    const result = counterDeltas([counter('a', 5, 50), counter('b', 9, 90), counter('gone', 1, 1)], [counter('a', 7, 80), counter('b', 2, 20), counter('new', 3, 30)]);
    assert.deepEqual(
      result.deltas.map((d) => [d.pod, d.count, d.sumMs]),
      [
        ['a', 2, 30],
        ['b', 2, 20],
        ['new', 3, 30],
      ],
    );
    assert.deepEqual([result.resets, result.vanished], [1, 1]);
  });

  it('unchanged series report nothing, and a report rounds extrapolated counts and skips those under one', () => {
    assert.deepEqual(counterDeltas([counter('a', 5, 50)], [counter('a', 5, 50)]).deltas, []);
    const interval = { start: new Date('2026-11-30T12:00:00Z'), end: new Date('2026-11-30T12:01:00Z') };
    const meta = () => ({ tenant: 't', service: 's', memoryMb: 128 });
    const reports = revisionUsage([counter('a', 2.6, 26), { ...counter('b', 0.4, 4, '503') }], meta, interval, '/src');
    assert.deepEqual(reports.map((r) => [r.data.invocations, r.data.error]), [[3, false]]);
  });
});

describe('Kubernetes memory quantities', () => {
  it('reads binary and decimal suffixes into MiB', () => {
    assert.equal(quantityToMb('512Mi'), 512);
    assert.equal(quantityToMb('1Gi'), 1024);
    assert.equal(quantityToMb('1048576'), 1);
    assert.equal(quantityToMb('1G'), 953.674);
    assert.equal(quantityToMb('2048Ki'), 2);
    assert.equal(quantityToMb('1e9'), 953.674);
    assert.equal(quantityToMb('lots'), undefined);
    assert.equal(quantityToMb(undefined), undefined);
  });
});

describe('cgroup v2 files', () => {
  let root: string;
  beforeEach(async () => (root = await mkdtemp(path.join(tmpdir(), 'cg-'))));
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('reads usage_usec from cpu.stat, and reports missing files as absent, not zero', async () => {
    assert.equal(parseCpuStat('usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n'), 1234);
    assert.equal(parseCpuStat('user_usec 1000\n'), undefined);
    await writeFile(path.join(root, 'memory.current'), '4096\n');
    assert.deepEqual(await readCgroupStats(root), { memoryCurrentBytes: 4096 });
  });

  it('finds a pod’s container cgroup in the systemd and cgroupfs layouts, else its pod cgroup', async () => {
    const uid = 'aaaa-bbbb';
    const systemd = path.join(root, 'kubepods.slice', 'kubepods-pod.slice');
    const guaranteed = path.join(root, 'kubepods.slice', 'kubepods-podaaaa_bbbb.slice');
    await mkdir(path.join(guaranteed, 'cri-containerd-abc123.scope'), { recursive: true });
    await mkdir(systemd, { recursive: true });
    assert.equal(await findPodCgroup(root, uid, 'abc123'), path.join(guaranteed, 'cri-containerd-abc123.scope'));
    assert.equal(await findPodCgroup(root, uid, 'other'), guaranteed);
    const cgroupfs = path.join(root, 'kubepods', 'burstable', 'podcccc-dddd', 'def456');
    await mkdir(cgroupfs, { recursive: true });
    assert.equal(await findPodCgroup(root, 'cccc-dddd', 'def456'), cgroupfs);
    assert.equal(await findPodCgroup(root, 'no-such-pod', undefined), undefined);
  });
});
