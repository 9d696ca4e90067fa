// The bench's CPU figure: a process's user + system CPU from /proc, growing with work; undefined for a
// process that does not exist (or off Linux, where this test must fail rather than pass vacuously).

import { describe, expect, it } from 'vitest';
import { cpuPerOp, processCpuMs, totalCpuMs } from '../../src/bench/cpu.js';

describe('bench CPU figures', () => {
  it('reads this process’s CPU time, which grows with work', () => {
    const before = processCpuMs(process.pid);
    expect(before).toBeTypeOf('number');
    const until = performance.now() + 150;
    let x = 0;
    for (let i = 0; i < 1e9 && performance.now() < until; i++) x += Math.sqrt(i);
    expect(x).toBeGreaterThan(0);
    const after = processCpuMs(process.pid) as number;
    expect(after).toBeGreaterThan(before as number);
  });

  it('a process that does not exist has no figure, and neither has a total that includes it', () => {
    const gone = 2 ** 22 + 12345; // above the default pid_max: no such process
    expect(processCpuMs(gone)).toBeUndefined();
    expect(totalCpuMs([process.pid, gone])).toBeUndefined();
    expect(totalCpuMs([process.pid])).toBeTypeOf('number');
  });

  it('per op: replicas summed, the busiest one, the driver apart, and the ceiling both bounds give', () => {
    // 1000 reads; the leader used 800 ms, four followers 50 ms each, the driver 600 ms; 2 cores.
    const f = cpuPerOp([100, 0, 0, 0, 0], [900, 50, 50, 50, 50], 600, 1000, 2);
    expect(f).toEqual({
      serverCpuMsPerOp: 1,
      busiestReplicaCpuMsPerOp: 0.8,
      driverCpuMsPerOp: 0.6,
      // The shared cores allow 2000 / 1.6 = 1250/s; the leader's one thread 1000 / 0.8 = 1250/s.
      cpuCeilingPerSecond: 1250,
    });
    // Spread evenly, the one-thread bound no longer binds: 2000 / (1 + 0.6).
    expect(cpuPerOp([0, 0, 0, 0, 0], [200, 200, 200, 200, 200], 600, 1000, 2).cpuCeilingPerSecond).toBe(1250);
    // The leader alone at 1 ms per read binds below the shared figure.
    expect(cpuPerOp([0, 0], [1000, 0], 100, 1000, 2).cpuCeilingPerSecond).toBe(1000);
  });

  it('no figures when a replica could not be read or nothing succeeded', () => {
    expect(cpuPerOp([1, undefined], [2, 3], 1, 10, 2)).toEqual({});
    expect(cpuPerOp([1, 2], [2, 3], 1, 0, 2)).toEqual({});
  });
});
