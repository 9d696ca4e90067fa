// Focused simulations of snapshots and compaction on the real RaftNode: a replica that was down while
// the others compacted their logs several times must catch up through InstallSnapshot, also when it
// crashes in the middle of the transfer. The full invariant and linearizability checks run underneath.

import { describe, expect, it } from 'vitest';
import { PROFILES, formatFailure, runSeed } from '../../src/raft/sim/run-seed.js';
import { DEFAULT_SNAPSHOTS, type SimResult, type Simulation } from '../../src/raft/sim/simulation.js';

function expectOk(r: SimResult): void {
  expect(r.ok, formatFailure(r, 80)).toBe(true);
}

/** Calm network, no random faults, snapshots every 20 entries with 5 kept behind. */
const quiet = {
  randomFaults: false,
  crashCycles: 0,
  snapshots: { ...DEFAULT_SNAPSHOTS, every: 20, keep: 5 },
} as const;

/** The lowest first log index among the up nodes other than `id` (what a returning node can get as entries). */
function othersFirstIndex(sim: Simulation, id: string): number {
  const firsts = sim
    .upIds()
    .filter((x) => x !== id)
    .map((x) => sim.replica(x).store!.firstIndex());
  return Math.min(...firsts);
}

/** A follower (not the leader) at time of the call. */
function aFollower(sim: Simulation): string | null {
  const leader = sim.leader();
  return leader ? (sim.ids.find((id) => id !== leader) ?? null) : null;
}

describe('focused simulations: snapshots', () => {
  it('a follower down across several compactions catches up by InstallSnapshot', async () => {
    let down: string | null = null;
    let snapAtCrash = -1;
    let atRestart: { applied: number; othersFirst: number; othersSnap: number } | null = null;
    let installs: Simulation['installs'] = [];
    const r = await runSeed(21, {
      ...quiet,
      faultyMs: 6000,
      scenario: (sim) => {
        installs = sim.installs;
        sim.at(800, 'crash a follower', () => {
          down = aFollower(sim);
          if (!down) return;
          snapAtCrash = sim.replica(sim.leader()!).snaps!.latest().index;
          sim.crash(down);
        });
        sim.at(4500, 'bring it back', () => {
          if (!down) return;
          const leader = sim.leader()!;
          atRestart = {
            applied: sim.replica(down).db.applied,
            othersFirst: othersFirstIndex(sim, down),
            othersSnap: sim.replica(leader).snaps!.latest().index,
          };
          sim.restart(down);
        });
      },
    });
    expectOk(r);
    expect(down).not.toBeNull();
    const back = atRestart!;
    // The others compacted at least twice (every 20 entries) while it was down, and past its log.
    expect(back.othersSnap - snapAtCrash).toBeGreaterThanOrEqual(2 * 20);
    expect(back.othersFirst).toBeGreaterThan(back.applied + 1);
    // It caught up through a snapshot from the leader, not by replaying the log.
    const mine = installs.filter((i) => i.id === down && i.t >= 4500);
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(mine[0]!.index).toBeGreaterThan(back.applied);
    expect(r.stats.snapshotChunks).toBeGreaterThan(1);
    expect(r.stats.snapshotsTaken).toBeGreaterThanOrEqual(8);
  });

  it('a follower that crashes in the middle of the transfer keeps its old state, and catches up after a restart', async () => {
    let down: string | null = null;
    let before: { applied: number; snap: number } | null = null;
    let afterCrash: { up: boolean; applied: number; snap: number } | null = null;
    let installs: Simulation['installs'] = [];
    const r = await runSeed(22, {
      ...quiet,
      faultyMs: 6000,
      scenario: (sim) => {
        installs = sim.installs;
        sim.at(800, 'crash a follower', () => {
          down = aFollower(sim);
          if (down) sim.crash(down);
        });
        sim.at(4000, 'bring it back, to crash at its first snapshot chunk', () => {
          if (!down) return;
          before = { applied: sim.replica(down).db.applied, snap: sim.replica(down).snaps!.latest().index };
          sim.restart(down);
          sim.crashDuringNextTransfer(down);
        });
        sim.at(4800, 'look at it while it is down', () => {
          if (!down) return;
          const s = sim.replica(down);
          afterCrash = { up: s.up, applied: s.db.applied, snap: s.snaps!.latest().index };
        });
        sim.at(5000, 'restart it again', () => {
          if (down) sim.restart(down);
        });
      },
    });
    expectOk(r);
    expect(down).not.toBeNull();
    expect(r.stats.crashesMidTransfer).toBe(1);
    // The crash cut the transfer: nothing of it was installed, the old state is intact.
    expect(afterCrash).toEqual({ up: false, applied: before!.applied, snap: before!.snap });
    expect(installs.filter((i) => i.id === down && i.t < 5000)).toEqual([]);
    // After the second restart the transfer starts over and completes.
    const mine = installs.filter((i) => i.id === down && i.t >= 5000);
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(mine[0]!.index).toBeGreaterThan(before!.applied);
  });

  it('harsh profile: whole members are removed from the configuration and added back, with snapshots on', async () => {
    // Scan a bounded range of seeds until one removes a member and adds one back; every run must pass.
    const seen = { removed: 0, added: 0 };
    for (let seed = 1; seed <= 12 && (seen.removed === 0 || seen.added === 0); seed++) {
      const r = await runSeed(seed, {
        ...PROFILES.harsh,
        snapshots: DEFAULT_SNAPSHOTS,
        verbose: (line) => {
          if (/ remove n\d: applied/.test(line)) seen.removed++;
          if (/ add n\d as a learner: applied/.test(line)) seen.added++;
        },
      });
      expectOk(r);
    }
    expect(seen.removed).toBeGreaterThan(0);
    expect(seen.added).toBeGreaterThan(0);
  });
});
