// Randomized simulation, part 2 of 2 (the parts run in parallel): seeds with mixed faults against
// the invariants, durability and linearizability. A failure prints its seed and trace; replay it
// with `make sim SEED=<seed>`. Deeper runs: `make sim SEEDS=5000`. Even seeds run with snapshots and
// log compaction (snapshotsForSeed), so lagging and restarted nodes catch up through InstallSnapshot.

import { describe, expect, it } from 'vitest';
import { formatFailure, runSeed, snapshotsForSeed } from '../../src/raft/sim/run-seed.js';
import { CI_SEEDS_PER_PART } from './seeds.js';

const FIRST = 1 + (2 - 1) * CI_SEEDS_PER_PART;

describe('random simulation seeds, part 2', () => {
  for (let seed = FIRST; seed < FIRST + CI_SEEDS_PER_PART; seed++) {
    it(`seed ${seed}`, async () => {
      const r = await runSeed(seed, { snapshots: snapshotsForSeed(seed) });
      expect(r.ok, formatFailure(r)).toBe(true);
      expect(r.stats.crashes).toBeGreaterThanOrEqual(2);
    });
  }
});
