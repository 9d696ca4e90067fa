// The Ready executor's ordering, seen from outside: a vote is a promise, so it must be durable before
// the grant leaves (Raft §5.2; src/raft/ready-executor.ts, step 2). The scenario gives a voter a slow
// disk, lets it grant a vote, crashes it before the fsync and lets another candidate ask it again in
// the same term. With the production order the grant never left, the crash loses vote and grant
// together, and there is one leader in the term. With the order broken on purpose (the grant leaves
// before its write is durable), the same voter votes twice in one term and two leaders are elected:
// this file shows the break is caught, so a regression in the executor fails the first test.

import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, type HarnessNode } from './harness.js';

let c: Cluster;
afterEach(() => {
  expect(c.errors()).toEqual([]);
  c.stop();
});

/** Every (term, leader) the nodes announced, grouped by term. */
function leadersByTerm(cl: Cluster): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const n of cl.nodes.values()) {
    for (const e of n.effects) {
      if (e.type !== 'roleChanged' || e.role !== 'leader') continue;
      const ids = out.get(e.term) ?? [];
      if (!ids.includes(n.id)) ids.push(n.id);
      out.set(e.term, ids);
    }
  }
  return out;
}

/** Election safety (Figure 3): terms in which more than one node became leader. */
function twoLeaderTerms(cl: Cluster): number[] {
  return [...leadersByTerm(cl)].filter(([, ids]) => ids.length > 1).map(([term]) => term);
}

function runUntil(cl: Cluster, cond: () => boolean, maxMs = 5_000): void {
  for (let i = 0; i < maxMs; i++) {
    if (cond()) return;
    cl.tick(1);
    cl.stabilize();
  }
  throw new Error('condition not reached within the time bound');
}

/**
 * n2 campaigns for term 1 and asks n1 (n3 is cut off); n1's disk holds its flushes. Then n1 crashes
 * (keeping only what was flushed), restarts, and n3 campaigns for term 1 with n1 while n2 is cut off.
 * Returns n1, and whether n1's grant to n2 left before the crash.
 */
function voteThenCrash(unsafeSendBeforePersist: boolean): { n1: HarnessNode; grantLeft: boolean } {
  c = new Cluster({
    nodes: [
      { id: 'n1', election: [2000, 2001] },
      { id: 'n2', election: [100, 101] },
      { id: 'n3', election: [1000, 1001] },
    ],
    unsafeSendBeforePersist,
  });
  const n1 = c.node('n1');
  n1.store.holdFlushes();
  c.partition(['n1', 'n2'], ['n3']);
  c.tickUntil(() => c.node('n2').role() === 'preCandidate');
  const lines = c.stabilize();
  expect(lines).toContain('n2->n1 RequestVote term=1 preVote=false last=0/0');
  const grantLeft = lines.includes('n1->n2 RequestVoteResponse term=1 preVote=false granted=true');
  // n1 crashes before its disk answered: the term and the vote were never durable.
  c.crash('n1');
  c.restart('n1');
  expect(n1.term()).toBe(0);
  c.partition(['n2'], ['n1', 'n3']);
  runUntil(c, () => c.node('n3').role() === 'leader');
  expect(c.node('n3').term()).toBe(1);
  return { n1, grantLeft };
}

describe('the Ready executor keeps a vote durable before the grant leaves', () => {
  it('production order: the grant waits for the fsync, the crash loses both, one leader in term 1', () => {
    const { grantLeft } = voteThenCrash(false);
    expect(grantLeft).toBe(false);
    expect(c.node('n2').role()).not.toBe('leader');
    expect(leadersByTerm(c).get(1)).toEqual(['n3']);
    expect(twoLeaderTerms(c)).toEqual([]);
  });

  it('ordering broken on purpose (send before persist): the same run elects two leaders in term 1', () => {
    const { grantLeft } = voteThenCrash(true);
    expect(grantLeft).toBe(true);
    expect(twoLeaderTerms(c)).toEqual([1]);
    expect(leadersByTerm(c).get(1)?.sort()).toEqual(['n2', 'n3']);
  });
});
