// Elections, in etcd raft's interaction-test style: scripted delivery, exact message traces.

import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, from, ofType } from './harness.js';

let c: Cluster;
afterEach(() => {
  expect(c.errors()).toEqual([]);
  c.stop();
});

/** n1 times out first (100 ms), the others much later. */
function three(extra: Partial<ConstructorParameters<typeof Cluster>[0]> = {}) {
  return new Cluster({
    nodes: [{ id: 'n1', election: [100, 101] }, 'n2', 'n3'],
    election: [300, 301],
    ...extra,
  });
}

function electN1(cl: Cluster): void {
  cl.tickUntil(() => cl.node('n1').role() === 'preCandidate');
  cl.stabilize();
  expect(cl.node('n1').role()).toBe('leader');
}

describe('elections', () => {
  it('a first election: pre-vote, then vote, then the noop append commits', () => {
    c = three();
    c.tick(100);
    expect(c.node('n1').role()).toBe('preCandidate');
    expect(c.deliver()).toEqual([
      'n1->n2 RequestVote term=1 preVote=true last=0/0',
      'n1->n3 RequestVote term=1 preVote=true last=0/0',
    ]);
    // Pre-vote changes nobody's term.
    expect([c.node('n1').term(), c.node('n2').term(), c.node('n3').term()]).toEqual([0, 0, 0]);
    expect(c.deliver()).toEqual([
      'n2->n1 RequestVoteResponse term=1 preVote=true granted=true',
      'n3->n1 RequestVoteResponse term=1 preVote=true granted=true',
    ]);
    expect(c.node('n1').role()).toBe('candidate');
    expect(c.deliver()).toEqual([
      'n1->n2 RequestVote term=1 preVote=false last=0/0',
      'n1->n3 RequestVote term=1 preVote=false last=0/0',
    ]);
    expect(c.deliver()).toEqual([
      'n2->n1 RequestVoteResponse term=1 preVote=false granted=true',
      'n3->n1 RequestVoteResponse term=1 preVote=false granted=true',
    ]);
    expect(c.node('n1').role()).toBe('leader');
    expect(c.deliver()).toEqual([
      'n1->n2 AppendEntries term=1 prev=0/0 entries=[1/1 noop] commit=0',
      'n1->n3 AppendEntries term=1 prev=0/0 entries=[1/1 noop] commit=0',
    ]);
    expect(c.deliver()).toEqual([
      'n2->n1 AppendEntriesResponse term=1 match=1',
      'n3->n1 AppendEntriesResponse term=1 match=1',
    ]);
    expect(c.node('n1').commitIndex).toBe(1);
    expect(c.node('n2').ctx().leaderId).toBe('n1');
  });

  it('dueling candidates: one vote per term, the loser steps down', () => {
    c = new Cluster({
      nodes: [
        { id: 'n1', election: [100, 101] },
        { id: 'n2', election: [300, 301] },
        { id: 'n3', election: [100, 101] },
      ],
    });
    c.tick(100);
    c.deliver(); // pre-votes: everyone grants (nobody has a leader)
    c.deliver(); // pre-vote responses: both become candidates of term 1
    expect([c.node('n1').role(), c.node('n3').role()]).toEqual(['candidate', 'candidate']);
    expect(c.deliver()).toEqual([
      'n1->n2 RequestVote term=1 preVote=false last=0/0',
      'n1->n3 RequestVote term=1 preVote=false last=0/0',
      'n3->n1 RequestVote term=1 preVote=false last=0/0',
      'n3->n2 RequestVote term=1 preVote=false last=0/0',
    ]);
    expect(c.deliver()).toEqual([
      'n2->n1 RequestVoteResponse term=1 preVote=false granted=true',
      'n3->n1 RequestVoteResponse term=1 preVote=false granted=false',
      'n1->n3 RequestVoteResponse term=1 preVote=false granted=false',
      // n2 already voted for n1 in term 1.
      'n2->n3 RequestVoteResponse term=1 preVote=false granted=false',
    ]);
    expect(c.node('n1').role()).toBe('leader');
    expect(c.node('n3').role()).toBe('follower');
    expect(c.node('n2').ctx().votedFor).toBe('n1');
    c.stabilize();
    expect(c.leaders()).toEqual(['n1']);
  });

  it('a vote is granted at most once per term', () => {
    c = three();
    const rv = (from: string) =>
      ({
        type: 'RequestVote',
        from,
        to: 'n2',
        term: 5,
        lastLogIndex: 0,
        lastLogTerm: 0,
        preVote: false,
        transfer: false,
      }) as const;
    c.node('n2').send(rv('n1'));
    c.node('n2').send(rv('n3'));
    c.node('n2').send(rv('n1')); // a retry from the same candidate is granted again
    expect(c.pending(from('n2'))).toEqual([
      'n2->n1 RequestVoteResponse term=5 preVote=false granted=true',
      'n2->n3 RequestVoteResponse term=5 preVote=false granted=false',
      'n2->n1 RequestVoteResponse term=5 preVote=false granted=true',
    ]);
  });

  it('a vote is not granted to a candidate whose log is out of date (§5.4.1)', () => {
    c = new Cluster({
      nodes: [
        { id: 'n1', election: [100, 101], log: [1], term: 1 },
        { id: 'n2', log: [1, 1], term: 1 },
        { id: 'n3', log: [1], term: 1 },
      ],
      election: [300, 301],
    });
    c.tick(100);
    expect(c.deliver()).toEqual([
      'n1->n2 RequestVote term=2 preVote=true last=1/1',
      'n1->n3 RequestVote term=2 preVote=true last=1/1',
    ]);
    expect(c.deliver()).toEqual([
      'n2->n1 RequestVoteResponse term=1 preVote=true granted=false',
      'n3->n1 RequestVoteResponse term=2 preVote=true granted=true',
    ]);
    // Pre-vote won with n3; the real vote is refused by n2 as well.
    expect(c.deliver()).toEqual([
      'n1->n2 RequestVote term=2 preVote=false last=1/1',
      'n1->n3 RequestVote term=2 preVote=false last=1/1',
    ]);
    expect(c.deliver()).toEqual([
      'n2->n1 RequestVoteResponse term=2 preVote=false granted=false',
      'n3->n1 RequestVoteResponse term=2 preVote=false granted=true',
    ]);
    expect(c.node('n2').ctx().votedFor).toBeNull();
    // n1 still wins with n3 (2 of 3); the more complete n2 catches up from it.
    expect(c.node('n1').role()).toBe('leader');
  });

  it('a disruptive rejoining follower: pre-vote keeps its term, leases keep the leader', () => {
    c = three();
    electN1(c);
    c.isolate('n3');
    for (let i = 0; i < 20; i++) {
      c.tick(50);
      c.stabilize();
    }
    // n3 has been campaigning alone for a second: pre-vote never bumped its term.
    expect(c.node('n3').term()).toBe(1);
    expect(c.node('n3').roles()).toContain('candidate');
    // The partition heals just as n3 campaigns again: its pre-votes reach followers under n1's
    // lease and are ignored (no answer, no term change).
    const n3Vote = (m: { from: string; type: string }) => m.from === 'n3' && m.type === 'RequestVote';
    c.tickUntil(() => {
      c.deliver((m) => !n3Vote(m));
      return c.network.some(n3Vote);
    }, 1000);
    c.heal();
    const votes = c.deliver(ofType('RequestVote'));
    expect(votes.every((l) => l.includes('preVote=true'))).toBe(true);
    expect(c.pending(from('n1')).filter((l) => l.includes('RequestVoteResponse'))).toEqual([]);
    expect(c.pending(from('n2')).filter((l) => l.includes('RequestVoteResponse'))).toEqual([]);
    c.tick(60);
    c.stabilize();
    expect(c.leaders()).toEqual(['n1']);
    expect([c.node('n1').term(), c.node('n2').term(), c.node('n3').term()]).toEqual([1, 1, 1]);
    expect(c.node('n3').ctx().leaderId).toBe('n1');
  });

  it('leader lease: a follower ignores a higher-term vote while its leader is live, and hears it after', () => {
    c = three();
    electN1(c);
    const rv = {
      type: 'RequestVote',
      from: 'n3',
      to: 'n2',
      term: 7,
      lastLogIndex: 9,
      lastLogTerm: 1,
      preVote: false,
      transfer: false,
    } as const;
    c.node('n2').send(rv);
    expect(c.pending(from('n2'))).toEqual([]);
    expect(c.node('n2').term()).toBe(1);
    // n1 goes silent: once n2's election timeout passes, the lease is over.
    c.isolate('n1');
    c.tick(301);
    c.drop();
    c.node('n2').send(rv);
    expect(c.node('n2').term()).toBe(7);
    expect(c.pending(from('n2'))).toEqual(['n2->n3 RequestVoteResponse term=7 preVote=false granted=true']);
  });

  it("leader lease: it ends after the base election timeout, before the follower's own randomized timer", () => {
    c = new Cluster({
      nodes: [{ id: 'n1', election: [100, 101] }, { id: 'n2', election: [150, 400] }, 'n3'],
      election: [300, 301],
    });
    electN1(c);
    c.isolate('n1');
    c.tick(1);
    c.drop();
    // n2 last heard from n1 just now; its randomized timer is set well past the base timeout.
    expect(c.node('n2').ctx().electionTimeoutMs).toBeGreaterThan(160);
    const preVote = {
      type: 'RequestVote',
      from: 'n3',
      to: 'n2',
      term: 2,
      lastLogIndex: 9,
      lastLogTerm: 1,
      preVote: true,
      transfer: false,
    } as const;
    c.node('n2').send(preVote);
    expect(c.pending(from('n2'))).toEqual([]); // under the lease: ignored
    c.tick(151);
    c.drop();
    // Past the base timeout the lease is over, though n2's own timer has not fired: it answers, so the
    // first follower to time out can win without waiting for a majority to time out as well.
    expect(c.node('n2').role()).toBe('follower');
    expect(c.node('n2').ctx().leaderId).toBeNull();
    c.node('n2').send(preVote);
    expect(c.pending(from('n2'))).toEqual(['n2->n3 RequestVoteResponse term=2 preVote=true granted=true']);
    expect(c.node('n2').term()).toBe(1);
  });

  it('a higher term in any message makes a leader step down and adopt it', () => {
    c = three();
    electN1(c);
    c.node('n1').send({
      type: 'AppendEntriesResponse',
      from: 'n2',
      to: 'n1',
      term: 4,
      success: false,
      matchIndex: 0,
      conflictIndex: 0,
      conflictTerm: 0,
      readRound: 0,
    });
    expect(c.node('n1').role()).toBe('follower');
    expect(c.node('n1').term()).toBe(4);
    expect(c.node('n1').store.hardState()).toEqual({ term: 4, votedFor: null });
  });

  it('a stale leader gets an answer carrying the newer term, and steps down on it', () => {
    c = new Cluster({
      nodes: [
        { id: 'n1', election: [100, 101] },
        { id: 'n2', election: [300, 301] },
        { id: 'n3', election: [400, 401] },
      ],
    });
    electN1(c);
    c.isolate('n1');
    // n2 and n3 elect a new leader of term 2 behind n1's back.
    c.tickUntil(() => {
      c.stabilize();
      return c.leaders().some((id) => id !== 'n1');
    }, 1000);
    const newLeader = c.leaders().find((id) => id !== 'n1');
    expect(newLeader).toBeDefined();
    const nl = newLeader ?? '';
    c.drop();
    c.heal();
    // A heartbeat n1 sent while it still believed it led term 1 arrives late at the new leader.
    c.node(nl).send({
      type: 'AppendEntries',
      from: 'n1',
      to: nl,
      term: 1,
      prevLogIndex: 1,
      prevLogTerm: 1,
      entries: [],
      leaderCommit: 1,
      readRound: 0,
    });
    expect(c.pending(from(nl))).toContain(`${nl}->n1 AppendEntriesResponse term=2 reject hint=0/0`);
    c.deliver(from(nl));
    expect(c.node('n1').role()).not.toBe('leader');
    expect(c.node('n1').term()).toBe(2);
  });

  it('a one-member cluster elects itself and commits, but only once its writes are durable', () => {
    c = new Cluster({ nodes: ['n1'], election: [100, 101] });
    const n1 = c.node('n1');
    n1.store.holdFlushes();
    c.tick(100);
    // Pre-vote needs nothing durable; the candidate's own vote does.
    expect(n1.role()).toBe('candidate');
    c.tick(20);
    expect(n1.role()).toBe('candidate');
    n1.store.releaseFlushes();
    expect(n1.role()).toBe('leader');
    expect(n1.commitIndex).toBe(1);
    n1.store.holdFlushes();
    c.propose('n1', 'x');
    expect(n1.commitIndex).toBe(1);
    n1.store.releaseFlushes();
    expect(n1.commitIndex).toBe(2);
    expect(n1.applied.map((e) => e.kind)).toEqual(['noop', 'command']);
  });
});
