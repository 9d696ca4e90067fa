// RemovalWatch: a replica stops itself only on proof that a committed configuration leaves it out.
import { describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../../src/client/types.js';
import { RemovalWatch, type RemovedEvidence } from '../../src/server/removal-watch.js';

const members = [
  { id: 'a', address: 'h:1', voter: true },
  { id: 'b', address: 'h:2', voter: true },
  { id: 'c', address: 'h:3', voter: true },
];

function leader(over: Partial<ClusterStatus>): ClusterStatus {
  return {
    node_id: 'a',
    address: 'h:1',
    role: 'leader',
    term: 5,
    leader_id: 'a',
    leader_address: 'h:1',
    commit_index: 10,
    last_applied: 10,
    last_log_index: 12,
    snapshot_index: 0,
    members: members.filter((m) => m.id !== 'c'),
    state_digest: '',
    ...over,
  };
}

function setup() {
  const state = { role: 'follower', leaderId: null as string | null, member: true };
  const answers = new Map<string, ClusterStatus | undefined>();
  const removed: RemovedEvidence[] = [];
  const watch = new RemovalWatch({
    node: {
      id: 'c',
      status: () => ({ role: state.role, term: 5, leaderId: state.leaderId, config: { members } }),
      isMember: () => state.member,
    },
    getStatus: async (address) => {
      const a = answers.get(address);
      if (!a) throw new Error('unreachable');
      return a;
    },
    onRemoved: (e) => removed.push(e),
  });
  return { state, answers, removed, watch };
}

describe('removal watch', () => {
  it('stops only after the same leader has committed a configuration without it', async () => {
    const { answers, removed, watch } = setup();
    answers.set('h:1', leader({}));
    answers.set('h:2', { ...leader({}), node_id: 'b', role: 'follower' });
    expect(await watch.tick()).toBe(false); // leaderless for one interval: not yet asking
    expect(await watch.tick()).toBe(false); // first look: noted (the config may not be committed yet)
    expect(await watch.tick()).toBe(false); // commit 10 < the noted last log index 12
    answers.set('h:1', leader({ commit_index: 12, last_log_index: 13 }));
    expect(await watch.tick()).toBe(true);
    expect(removed).toEqual([{ leaderId: 'a', leaderAddress: 'h:1', term: 5, commitIndex: 12 }]);
    expect(await watch.tick()).toBe(true); // once
    expect(removed).toHaveLength(1);
  });

  it('never stops while a leader lists it, it knows a leader, no leader answers, or leadership changed', async () => {
    const { state, answers, removed, watch } = setup();
    // A leader that still lists it (a partitioned member, say).
    answers.set('h:1', leader({ members, commit_index: 99 }));
    for (let i = 0; i < 5; i++) expect(await watch.tick()).toBe(false);
    // Nobody answers.
    answers.clear();
    for (let i = 0; i < 5; i++) expect(await watch.tick()).toBe(false);
    // A leader without it, then a new leader in a new term: the proof starts over.
    answers.set('h:1', leader({}));
    await watch.tick();
    answers.set('h:1', undefined);
    answers.set('h:2', leader({ node_id: 'b', address: 'h:2', term: 6, commit_index: 50 }));
    expect(await watch.tick()).toBe(false);
    // It hears from a leader again: nothing to prove.
    state.leaderId = 'b';
    expect(await watch.tick()).toBe(false);
    state.leaderId = null;
    expect(await watch.tick()).toBe(false);
    expect(removed).toEqual([]);
  });

  it('does nothing for a replica that has not been a member in this run (a fresh joiner)', async () => {
    const { state, answers, removed, watch } = setup();
    state.member = false;
    answers.set('h:1', leader({ commit_index: 99 }));
    for (let i = 0; i < 5; i++) expect(await watch.tick()).toBe(false);
    expect(removed).toEqual([]);
  });
});
