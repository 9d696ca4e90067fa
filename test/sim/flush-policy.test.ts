// The flush policy (--flush-delay-us, --flush-max-entries) in the simulator: RaftNode's executor waits
// on the simulated clock (10 ms here) before its fsync, or flushes once maxEntries wait. Seeds with random faults
// and crash cycles (some crashes land while writes wait for the delayed flush) must keep every
// invariant: no acknowledged write lost, none applied twice, equal states, a linearizable history.
// The same seeds without the policy give the baseline that shows the delay was really in force
// (fewer fsyncs per acknowledged write), so this cannot pass by never reaching the policy.

import { describe, expect, it } from 'vitest';
import { formatFailure, runSeed, snapshotsForSeed } from '../../src/raft/sim/run-seed.js';

const SEEDS = 6;

describe('flush policy in the simulator', () => {
  it(`${SEEDS} seeds with a 10 ms flush delay and crash cycles keep every invariant`, async () => {
    const totals = { delayed: { fsyncs: 0, acked: 0 }, plain: { fsyncs: 0, acked: 0 } };
    for (let seed = 7301; seed < 7301 + SEEDS; seed++) {
      for (const mode of ['delayed', 'plain'] as const) {
        const r = await runSeed(seed, {
          snapshots: snapshotsForSeed(seed),
          crashCycles: 3,
          ...(mode === 'delayed' ? { flushPolicy: { delayUs: 10_000, maxEntries: 64 } } : {}),
        });
        expect(r.ok, `${mode}: ${formatFailure(r)}`).toBe(true);
        totals[mode].fsyncs += r.stats.fsyncs;
        totals[mode].acked += r.stats.appendsAcked;
      }
    }
    const perWrite = (t: { fsyncs: number; acked: number }) => t.fsyncs / Math.max(1, t.acked);
    console.log(
      `flush policy: ${perWrite(totals.delayed).toFixed(2)} fsyncs per acknowledged write with a 10 ms delay, ${perWrite(totals.plain).toFixed(2)} without`,
    );
    expect(totals.delayed.acked).toBeGreaterThan(0);
    expect(perWrite(totals.delayed)).toBeLessThan(perWrite(totals.plain));
  });
});
