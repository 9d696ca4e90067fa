// The bench's CPU figure: a process's user + system CPU from /proc, growing with work; undefined for a
// process that does not exist (or off Linux, where this test must fail rather than pass vacuously).

import { describe, expect, it } from 'vitest';
import { processCpuMs, totalCpuMs } from '../../src/bench/cpu.js';

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
});
