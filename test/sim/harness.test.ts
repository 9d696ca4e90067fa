// The simulator tested on a fake host (test/sim/support/oracle-host.ts): a correct fake must pass on
// every seed, and each deliberately broken fake must be caught by the matching check. This proves
// the end-to-end checks (durability, linearizability, election safety, log matching) can fail.

import { describe, expect, it } from 'vitest';
import { type SimOptions, Simulation } from '../../src/raft/sim/simulation.js';
import { type OracleBug, oracleFactory } from './support/oracle-host.js';

function run(seed: number, bug: OracleBug, extra: Partial<SimOptions> = {}) {
  return new Simulation(seed, { factory: oracleFactory(bug), faultyMs: 4000, quietMs: 1000, ...extra }).run();
}

describe('simulator on a correct fake host', () => {
  it('passes every seed, with crashes, and records a real history', async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const r = await run(seed, 'none');
      expect(r.failure, `seed ${seed}:\n${r.trace.slice(-30).join('\n')}`).toBeUndefined();
      expect(r.ok).toBe(true);
      expect(r.stats.crashes).toBeGreaterThanOrEqual(2);
      expect(r.stats.restarts).toBeGreaterThanOrEqual(2);
      expect(r.stats.appendsAcked).toBeGreaterThan(10);
      expect(r.stats.readsOk).toBeGreaterThan(10);
      expect(r.simulatedMs).toBeGreaterThanOrEqual(4000);
    }
  });

  it('replays a seed exactly', async () => {
    const a = await run(77, 'none');
    const b = await run(77, 'none');
    expect(a.steps).toBe(b.steps);
    expect(a.trace).toEqual(b.trace);
    const c = await run(78, 'none');
    expect(c.trace).not.toEqual(a.trace);
  });
});

describe('simulator on broken fake hosts', () => {
  it('catches stale reads (linearizability)', async () => {
    const r = await run(3, 'stale-read', { randomFaults: false, crashCycles: 0 });
    expect(r.ok).toBe(false);
    expect(r.failure).toMatch(/linearizability/);
  });

  it('catches a lost acknowledged write (durability)', async () => {
    const r = await run(3, 'lose-ack');
    expect(r.ok).toBe(false);
    expect(r.failure).toMatch(/durability/);
  });

  it('catches two leaders in one term (election safety)', async () => {
    const r = await run(3, 'two-leaders');
    expect(r.ok).toBe(false);
    expect(r.failure).toMatch(/election safety/);
  });

  it('catches diverging logs (log matching) and prints a trace', async () => {
    const r = await run(3, 'diverge');
    expect(r.ok).toBe(false);
    expect(r.failure).toMatch(/log matching/);
    expect(r.trace.length).toBeGreaterThan(3);
    expect(r.trace.at(-1)).toMatch(/FAILURE/);
  });
});
