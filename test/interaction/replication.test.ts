// Log replication and commitment: persistence before acknowledgement, check-quorum, overwriting a
// stale leader's entries, Figure 8, fast backtracking.

import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, from, ofType, to } from './harness.js';

let c: Cluster;
afterEach(() => {
  expect(c.errors()).toEqual([]);
  c.stop();
});

function electN1(cl: Cluster): void {
  cl.tickUntil(() => cl.node('n1').role() === 'preCandidate');
  cl.stabilize();
  expect(cl.node('n1').role()).toBe('leader');
}

function three(extra: Partial<ConstructorParameters<typeof Cluster>[0]> = {}) {
  return new Cluster({
    nodes: [
      { id: 'n1', election: [100, 101] },
      { id: 'n2', election: [300, 301] },
      { id: 'n3', election: [400, 401] },
    ],
    ...extra,
  });
}

/** Let time pass with the network delivering everything (bounded). */
function run(cl: Cluster, ms: number): void {
  for (let i = 0; i < ms; i++) {
    cl.tick(1);
    cl.stabilize();
  }
}

describe('replication', () => {
  it('a proposal is replicated, committed by a quorum, then applied everywhere', () => {
    c = three();
    electN1(c);
    c.propose('n1', 'x');
    expect(c.deliver()).toEqual([
      'n1->n2 AppendEntries term=1 prev=1/1 entries=[2/1] commit=1',
      'n1->n3 AppendEntries term=1 prev=1/1 entries=[2/1] commit=1',
    ]);
    expect(c.deliver(from('n2'))).toEqual(['n2->n1 AppendEntriesResponse term=1 match=2']);
    expect(c.node('n1').commitIndex).toBe(2);
    expect(c.node('n1').applied.map((e) => e.data)).toEqual(['', 'x']);
    // Followers learn the commit index from the next append or heartbeat.
    run(c, 60);
    expect(c.node('n2').applied.map((e) => e.data)).toEqual(['', 'x']);
    expect(c.node('n3').applied.map((e) => e.data)).toEqual(['', 'x']);
  });

  it('nothing leaves before it is durable: no vote grant, no ack until the flush completes', () => {
    c = three();
    const n2 = c.node('n2');
    n2.store.holdFlushes();
    c.tick(100);
    c.deliver(); // pre-votes (need nothing durable)
    c.deliver(); // pre-vote responses
    c.deliver(); // RequestVote: n2 grants, but its vote is not on disk yet
    expect(c.pending(from('n2'))).toEqual([]);
    expect(c.pending(from('n3'))).toEqual(['n3->n1 RequestVoteResponse term=1 preVote=false granted=true']);
    n2.store.releaseFlushes();
    expect(c.pending(from('n2'))).toEqual(['n2->n1 RequestVoteResponse term=1 preVote=false granted=true']);
    c.stabilize();
    expect(c.node('n1').role()).toBe('leader');
    // Acks wait for the follower's fsync too.
    n2.store.holdFlushes();
    c.propose('n1', 'x');
    c.deliver(); // AppendEntries
    expect(c.pending(from('n2'))).toEqual([]);
    n2.store.releaseFlushes();
    expect(c.pending(from('n2'))).toEqual(['n2->n1 AppendEntriesResponse term=1 match=2']);
  });

  it('a candidate does not ask for votes before its own term and vote are durable', () => {
    c = three();
    c.node('n1').store.holdFlushes();
    c.tick(100);
    c.stabilize(); // pre-vote round completes; n1 is a candidate of term 1
    expect(c.node('n1').role()).toBe('candidate');
    expect(c.pending(ofType('RequestVote'))).toEqual([]);
    c.node('n1').store.releaseFlushes();
    expect(c.pending(ofType('RequestVote'))).toEqual([
      'n1->n2 RequestVote term=1 preVote=false last=0/0',
      'n1->n3 RequestVote term=1 preVote=false last=0/0',
    ]);
  });

  it('the leader sends entries while its own write is in flight, and counts itself only once durable', () => {
    c = new Cluster({
      nodes: [{ id: 'n1', election: [100, 101] }, 'n2', 'n3', 'n4', 'n5'],
      election: [300, 301],
    });
    electN1(c);
    c.node('n1').store.holdFlushes();
    c.propose('n1', 'x');
    expect(c.pending(to('n2'))).toEqual(['n1->n2 AppendEntries term=1 prev=1/1 entries=[2/1] commit=1']);
    c.deliver();
    // Two followers + a leader whose entry is not durable: 2 of 5, not a quorum.
    c.deliver((m) => m.from === 'n2' || m.from === 'n3');
    expect(c.node('n1').commitIndex).toBe(1);
    c.node('n1').store.releaseFlushes();
    expect(c.node('n1').commitIndex).toBe(2);
  });

  it('check-quorum: a leader cut off into a minority steps down and acknowledges nothing', () => {
    c = three();
    electN1(c);
    c.isolate('n1');
    c.propose('n1', 'lost');
    // Detected within two check-quorum intervals (electionMinMs = 100 for n1).
    run(c, 250);
    expect(c.node('n1').role()).toBe('follower');
    expect(c.node('n1').commitIndex).toBe(1);
    expect(c.node('n1').applied.map((e) => e.data)).toEqual(['']);
    expect(c.node('n1').effects.filter((e) => e.type === 'commit' && e.index > 1)).toEqual([]);
  });

  it("a stale leader's uncommitted entries are overwritten after the partition heals", () => {
    c = three();
    electN1(c);
    c.isolate('n1');
    c.propose('n1', 'a');
    c.propose('n1', 'b');
    run(c, 1000);
    const leader = c.leaders()[0];
    expect(leader).not.toBe('n1');
    c.propose(leader, 'z');
    run(c, 10);
    c.heal();
    run(c, 200);
    const data = (id: string) =>
      c
        .node(id)
        .store.entries(1, 100, 100)
        .map((e) => `${e.index}/${e.term}:${e.data}`);
    expect(data('n1')).toEqual(data(leader));
    expect(data('n1')).not.toContain('2/1:a');
    expect(c.node('n1').applied.map((e) => e.data)).not.toContain('a');
    expect(c.node('n1').applied.map((e) => e.data)).toContain('z');
  });

  it('Figure 8: an entry of an earlier term on a majority is not committed until one of the current term is', () => {
    // S5 led term 3 and wrote index 2 alone; S1 (term 2 entry at index 2, on S1 and S2) now wins term 4.
    c = new Cluster({
      nodes: [
        { id: 's1', log: [1, 2], term: 3, election: [100, 101] },
        { id: 's2', log: [1, 2], term: 3 },
        { id: 's3', log: [1], term: 3, votedFor: 's5' },
        { id: 's4', log: [1], term: 3, votedFor: 's5' },
        { id: 's5', log: [1, 3], term: 3, votedFor: 's5' },
      ],
      election: [500, 501],
      maxBatch: 1,
    });
    c.tick(100);
    for (let i = 0; i < 4; i++) c.deliver(); // pre-vote and vote rounds
    expect(c.node('s1').role()).toBe('leader');
    expect(c.node('s1').term()).toBe(4);
    // Keep s4 and s5 out from now on; s1 probes s2 and s3 one entry at a time.
    c.partition(['s1', 's2', 's3'], ['s4'], ['s5']);
    expect(c.deliver()).toEqual([
      's1->s2 AppendEntries term=4 prev=2/2 entries=[3/4 noop] commit=0',
      's1->s3 AppendEntries term=4 prev=2/2 entries=[3/4 noop] commit=0',
    ]);
    expect(c.deliver()).toEqual([
      's2->s1 AppendEntriesResponse term=4 match=3',
      's3->s1 AppendEntriesResponse term=4 reject hint=2/0',
    ]);
    expect(c.deliver(to('s3'))).toEqual(['s1->s3 AppendEntries term=4 prev=1/1 entries=[2/2] commit=0']);
    expect(c.deliver(from('s3'))).toEqual(['s3->s1 AppendEntriesResponse term=4 match=2']);
    // Index 2 (term 2) is now on s1, s2, s3: a majority, yet not committed (it is not of term 4).
    expect(c.node('s1').commitIndex).toBe(0);
    expect(c.deliver(to('s3'))).toEqual(['s1->s3 AppendEntries term=4 prev=2/2 entries=[3/4 noop] commit=0']);
    c.deliver(from('s3'));
    expect(c.node('s1').commitIndex).toBe(3);
  });

  it('50 conflicting entries on each side of a partition are resolved in a few round trips, not 50', () => {
    c = three();
    electN1(c);
    c.isolate('n1');
    for (let i = 0; i < 50; i++) c.propose('n1', `old${i}`);
    run(c, 1000);
    const leader = c.leaders()[0];
    expect(leader).toBeDefined();
    for (let i = 0; i < 50; i++) c.propose(leader, `new${i}`);
    run(c, 10);
    // Hand leadership to the other majority node: a fresh leader starts with nextIndex = its last
    // index + 1 for n1, far beyond where n1's log agrees with it.
    const other = leader === 'n2' ? 'n3' : 'n2';
    c.node(leader).send({ type: 'transferLeadership', to: other });
    run(c, 50);
    expect(c.leaders()).toEqual([other]);
    expect(c.node('n1').store.lastIndex()).toBe(51);
    expect(c.node(other).store.lastIndex()).toBe(53);
    // Heal and count what the leader needs to bring n1 in line.
    c.heal();
    const toN1: string[] = [];
    const rejects: string[] = [];
    for (let i = 0; i < 200; i++) {
      c.tick(1);
      const lines = c.stabilize();
      toN1.push(...lines.filter((l) => l.startsWith(`${other}->n1 AppendEntries `)));
      rejects.push(
        ...lines.filter((l) => l.startsWith(`n1->${other} AppendEntriesResponse`) && l.includes('reject')),
      );
      if (c.node('n1').commitIndex === 53) break;
    }
    expect(
      c
        .node('n1')
        .store.entries(2, 53, 100)
        .map((e) => e.data),
    ).toEqual(
      c
        .node(other)
        .store.entries(2, 53, 100)
        .map((e) => e.data),
    );
    // One rejection for the length, one for the conflicting term, then one append with everything.
    expect(rejects.length).toBeLessThanOrEqual(2);
    expect(toN1.length).toBeLessThanOrEqual(5);
  });
});
