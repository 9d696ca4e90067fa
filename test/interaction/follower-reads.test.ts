// Follower reads (ReadIndex as etcd does it: MsgReadIndex to the leader, MsgReadIndexResp with the
// index): scripted traces of the leader's confirming round, of a deposed leader that cannot confirm, and
// of the follower's wait for its applied index (through the production ReadTracker).

import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, from, ofType, settled, to } from './harness.js';

let c: Cluster;
afterEach(() => {
  expect(c.errors()).toEqual([]);
  c.stop();
});

function cluster(n: number): Cluster {
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  return new Cluster({
    // n1 times out first; the others much later, so the script decides who leads.
    nodes: ids.map((id, i) => ({ id, election: i === 0 ? [100, 101] : [300 + 100 * i, 301 + 100 * i] })),
  });
}

function electN1(cl: Cluster): void {
  cl.tickUntil(() => cl.node('n1').role() === 'preCandidate');
  cl.stabilize();
  expect(cl.node('n1').role()).toBe('leader');
}

describe('follower reads', () => {
  it('a follower read is answered after the leader’s quorum round, with the leader’s commit index', async () => {
    c = cluster(3);
    electN1(c);
    c.propose('n1', 'w');
    c.stabilize();
    expect(c.node('n1').commitIndex).toBe(2);

    const id = c.node('n2').read();
    expect(c.deliver()).toEqual([`n2->n1 ReadIndexRequest term=1 reads=[${id}]`]);
    // The leader does not answer from what it knows: it starts a heartbeat round first.
    expect(c.pending()).toEqual([
      'n1->n2 AppendEntries term=1 prev=2/1 entries=[] commit=2 read=1',
      'n1->n3 AppendEntries term=1 prev=2/1 entries=[] commit=2 read=1',
    ]);
    c.deliver(to('n3'));
    expect(c.pending(ofType('ReadIndexResponse'))).toEqual([]);
    // n3's ack makes a quorum with the leader: now, and only now, the index goes back.
    expect(c.deliver(from('n3'))).toEqual(['n3->n1 AppendEntriesResponse term=1 match=2 read=1']);
    expect(c.pending(ofType('ReadIndexResponse'))).toEqual([
      `n1->n2 ReadIndexResponse term=1 reads=[${id}] index=2`,
    ]);
    c.deliver(ofType('ReadIndexResponse'));
    expect(c.node('n2').readReady).toEqual([{ requestId: id, index: 2 }]);
    // n2 has the entry but has not learnt that it committed (the round's heartbeat to it is still in
    // flight): it has applied only through 1, so it does not serve yet.
    await settled();
    expect(c.node('n2').appliedIndex()).toBe(1);
    expect(c.node('n2').readsServed).toEqual([]);
    expect(c.deliver(to('n2'))).toEqual(['n1->n2 AppendEntries term=1 prev=2/1 entries=[] commit=2 read=1']);
    await settled();
    expect(c.node('n2').appliedIndex()).toBe(2);
    expect(c.node('n2').readsServed).toEqual([id]);
  });

  it('a read arriving after its batch’s request went out does not join it: it waits for the next batch', async () => {
    c = cluster(3);
    electN1(c);
    const a = c.node('n2').read();
    expect(c.deliver()).toEqual([`n2->n1 ReadIndexRequest term=1 reads=[${a}]`]); // n1 starts round 1
    // b arrives after a's request left: it must get an index learnt after it arrived, so it is held
    // back, not added to a's batch, and nothing more goes to the leader while a's answer is awaited.
    expect(c.node('n2').read()).toBeUndefined();
    const own = 'own';
    c.node('n1').send({ type: 'readIndex', requestId: own });
    c.stabilize();
    await settled();
    const [, b] = c.node('n2').readsStarted;
    expect(b).toBe('n2:2');
    expect(c.node('n2').readsServed).toEqual([a, b]);
    expect(c.node('n1').readReady.map((r) => r.requestId)).toEqual([own]);
    // b's request left only once a's answer was in; the leader confirmed it with a later round.
    const lines = c.delivered.filter((l) => l.includes('ReadIndex'));
    expect(lines).toEqual([
      `n2->n1 ReadIndexRequest term=1 reads=[${a}]`,
      `n1->n2 ReadIndexResponse term=1 reads=[${a}] index=1`,
      `n2->n1 ReadIndexRequest term=1 reads=[${b}]`,
      `n1->n2 ReadIndexResponse term=1 reads=[${b}] index=1`,
    ]);
    expect(c.delivered.filter((l) => l.includes('read=2')).length).toBeGreaterThan(0);
    expect(c.delivered.filter((l) => l.includes('read=3')).length).toBeGreaterThan(0);
  });

  it('reads held back while a batch is in flight share one ReadIndexRequest and one round', async () => {
    c = cluster(3);
    electN1(c);
    const a = c.node('n2').read();
    c.deliver(); // a's request reaches n1, which starts round 1
    for (let i = 0; i < 5; i++) expect(c.node('n2').read()).toBeUndefined();
    c.stabilize();
    await settled();
    const [, b] = c.node('n2').readsStarted;
    expect(c.node('n2').readsStarted).toEqual([a, b]);
    expect(c.node('n2').readsServed).toEqual([a, b, b, b, b, b]);
    expect(c.delivered.filter((l) => l.includes('ReadIndexRequest'))).toEqual([
      `n2->n1 ReadIndexRequest term=1 reads=[${a}]`,
      `n2->n1 ReadIndexRequest term=1 reads=[${b}]`,
    ]);
    // Two rounds in all: one per batch, not one per read.
    expect(c.delivered.some((l) => l.includes('read=2'))).toBe(true);
    expect(c.delivered.some((l) => l.includes('read=3'))).toBe(false);
  });

  it('64 concurrent reads spread over 5 replicas cost a few requests and rounds, not one of each per read', async () => {
    c = cluster(5);
    electN1(c);
    c.delivered = [];
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    // The reads arrive while the first batch of each replica is in flight (the harness sends a batch
    // as soon as nothing holds it back), so all but the first of each replica share its second batch.
    for (let i = 0; i < 64; i++) c.node(ids[i % 5]).read();
    c.stabilize();
    await settled();
    const served = ids.reduce((n, id) => n + c.node(id).readsServed.length, 0);
    expect(served).toBe(64);
    const requests = c.delivered.filter((l) => l.includes('ReadIndexRequest'));
    const rounds = new Set(c.delivered.flatMap((l) => /read=(\d+)/.exec(l)?.[1] ?? []));
    // Two batches per follower (the first read alone, then everything held behind it)...
    expect(requests).toHaveLength(8);
    expect(c.delivered.filter((l) => l.includes('ReadIndexResponse'))).toHaveLength(8);
    // ...and a handful of quorum rounds on the leader for all 64: batches arriving during a round
    // share the next one, so fewer rounds than the 10 batches.
    expect(rounds.size).toBeLessThanOrEqual(5);
  });

  it('a deposed leader (partitioned, stale term) cannot confirm a read index for its follower', async () => {
    // n1 and n2 have a long check-quorum window and election timeout; n3, n4, n5 elect fast.
    c = new Cluster({
      nodes: [
        { id: 'n1', election: [1000, 1001] },
        { id: 'n2', election: [1000, 1001] },
        { id: 'n3', election: [150, 151] },
        { id: 'n4', election: [160, 161] },
        { id: 'n5', election: [170, 171] },
      ],
    });
    // n1 campaigns at once (TimeoutNow skips pre-vote) and wins term 1.
    c.node('n1').send({ type: 'TimeoutNow', from: 'n2', to: 'n1', term: 0 });
    c.stabilize();
    expect(c.node('n1').role()).toBe('leader');
    // n1 and n2 on one side; n3, n4, n5 elect a leader in term 2 and commit a write n2 never sees.
    c.partition(['n1', 'n2'], ['n3', 'n4', 'n5']);
    const majority = ['n3', 'n4', 'n5'];
    c.tickUntil(() => {
      c.stabilize();
      return majority.some((id) => c.node(id).role() === 'leader');
    });
    const fresh = majority.find((id) => c.node(id).role() === 'leader')!;
    expect(c.node(fresh).term()).toBe(2);
    c.propose(fresh, 'fresh');
    c.stabilize();
    expect(c.node(fresh).commitIndex).toBe(3);
    expect(c.node('n1').role()).toBe('leader'); // still believes it leads, in term 1
    expect(c.node('n2').ctx()).toMatchObject({ term: 1, leaderId: 'n1' });

    const id = c.node('n2').read();
    expect(c.deliver()).toEqual([`n2->n1 ReadIndexRequest term=1 reads=[${id}]`]);
    // n1's round reaches only n2: 2 acks of 5 are no quorum, so no index goes back.
    // (Its check-quorum window is 1 s, so it keeps believing it leads for a while.)
    for (let i = 0; i < 3000 && c.node('n1').role() === 'leader'; i++) {
      c.tick(1);
      c.stabilize();
      expect(c.delivered.filter((l) => l.includes('ReadIndexResponse') && l.includes('index='))).toEqual([]);
    }
    // Check-quorum deposes n1; it refuses the read it could not confirm, and n2 does not serve it.
    expect(c.node('n1').role()).not.toBe('leader');
    c.stabilize();
    expect(c.delivered).toContain(`n1->n2 ReadIndexResponse term=1 reads=[${id}] refused`);
    await settled();
    expect(c.node('n2').readReady).toEqual([]);
    expect(c.node('n2').readsServed).toEqual([]);
    expect(c.node('n2').readsFailed).toEqual([id]);
  });

  it('a follower does not serve until it has applied through the read index', async () => {
    c = cluster(3);
    electN1(c);
    c.tickUntil(() => {
      c.stabilize();
      return c.node('n2').appliedIndex() === 1;
    });
    c.propose('n1', 'w');
    // The entry reaches n3 (which makes it committed) but not n2: its AppendEntries is held back.
    const toN2 = (m: { to: string; type: string }) => m.to === 'n2' && m.type === 'AppendEntries';
    for (let i = 0; i < 5; i++) c.deliver((m) => !toN2(m));
    expect(c.node('n1').commitIndex).toBe(2);
    expect(c.node('n2').appliedIndex()).toBe(1);

    const id = c.node('n2').read();
    for (let i = 0; i < 5; i++)
      c.deliver((m) => !toN2(m) || m.type !== 'AppendEntries' || m.entries.length === 0);
    expect(c.node('n2').readReady).toEqual([{ requestId: id, index: 2 }]);
    await settled();
    expect(c.node('n2').readsServed).toEqual([]);

    // The held entry arrives with the old commit index: in the log, not yet applied, still no read.
    c.deliver(toN2);
    expect(c.node('n2').store.lastIndex()).toBe(2);
    expect(c.node('n2').appliedIndex()).toBe(1);
    await settled();
    expect(c.node('n2').readsServed).toEqual([]);

    // The next heartbeat carries commit 2: n2 applies it, and only then serves.
    c.tickUntil(() => {
      c.stabilize();
      return c.node('n2').appliedIndex() === 2;
    });
    await settled();
    expect(c.node('n2').readsServed).toEqual([id]);
  });

  it('a follower with no known leader refuses at once; a stale answer after a term change is not taken', async () => {
    c = cluster(3);
    electN1(c);
    const id = c.node('n2').read();
    c.deliver(); // the request reaches n1
    // n2 moves to a new term before the answer arrives (a pre-vote-free TimeoutNow would do; here a
    // higher-term message from n3).
    c.node('n2').send({
      type: 'AppendEntries',
      from: 'n3',
      to: 'n2',
      term: 5,
      prevLogIndex: 0,
      prevLogTerm: 0,
      entries: [],
      leaderCommit: 0,
      readRound: 0,
    });
    await settled();
    expect(c.node('n2').readsFailed).toEqual([id]);
    c.stabilize();
    await settled();
    expect(c.node('n2').readsServed).toEqual([]);
  });
});
