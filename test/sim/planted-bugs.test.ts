// Planted bugs (test-only) break Raft on purpose so the failure tooling has a red seed: each rewrites
// what a replica sends, and a seed run with one fails an invariant, the same way every time.
import { describe, expect, it } from 'vitest';
import type { AppendEntries, RequestVoteResponse } from '../../machines/protocol.js';
import { imaginedAck, isPlantedBug, plant } from '../../src/raft/sim/planted-bugs.js';
import { runSeed } from '../../src/raft/sim/run-seed.js';

const refusal: RequestVoteResponse = {
  type: 'RequestVoteResponse',
  from: 'n1',
  to: 'n2',
  term: 3,
  granted: false,
  preVote: false,
};
const append: AppendEntries = {
  type: 'AppendEntries',
  from: 'n1',
  to: 'n2',
  term: 3,
  prevLogIndex: 4,
  prevLogTerm: 2,
  entries: [
    { index: 5, term: 3, kind: 'command', data: 'a' },
    { index: 6, term: 3, kind: 'command', data: 'b' },
  ],
  leaderCommit: 4,
  readRound: 0,
};

describe('planted bugs', () => {
  it('vote-twice grants a refused real vote, and leaves pre-votes and everything else alone', () => {
    expect(plant('vote-twice', refusal)).toEqual({ ...refusal, granted: true });
    expect(plant('vote-twice', { ...refusal, preVote: true })).toEqual({ ...refusal, preVote: true });
    expect(plant('vote-twice', append)).toBe(append);
    expect(plant('commit-without-quorum', refusal)).toBe(refusal);
  });

  it('commit-without-quorum imagines the ack of entries the moment they are sent, not of heartbeats', () => {
    expect(imaginedAck('commit-without-quorum', append)).toMatchObject({
      type: 'AppendEntriesResponse',
      from: 'n2',
      to: 'n1',
      term: 3,
      success: true,
      matchIndex: 6,
    });
    expect(imaginedAck('commit-without-quorum', { ...append, entries: [] })).toBeUndefined();
    expect(imaginedAck('vote-twice', append)).toBeUndefined();
  });

  it('only the named bugs exist', () => {
    expect(isPlantedBug('vote-twice')).toBe(true);
    expect(isPlantedBug('commit-without-quorum')).toBe(true);
    expect(isPlantedBug('none')).toBe(false);
  });

  it('a seed with a planted bug fails an invariant, the same way on every run; without it, it passes', async () => {
    const a = await runSeed(6, { plantedBug: 'vote-twice' });
    const b = await runSeed(6, { plantedBug: 'vote-twice' });
    expect(a.ok).toBe(false);
    expect(a.failure).toMatch(/granted its vote in term \d+ to both/);
    expect(b.failure).toBe(a.failure);
    expect(b.steps).toBe(a.steps);
    const c = await runSeed(4, { plantedBug: 'commit-without-quorum' });
    expect(c.failure).toMatch(/leader completeness|state machine|committed/);
    expect((await runSeed(6, { faultyMs: 1000, quietMs: 1000 })).ok).toBe(true);
  });
});
