// Leader features: ReadIndex, leadership transfer (TimeoutNow), learners and membership changes.

import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterConfig } from '../../machines/protocol.js';
import { Cluster, from, ofType, to } from './harness.js';

let c: Cluster;
afterEach(() => {
  expect(c.errors()).toEqual([]);
  c.stop();
});

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

function electN1(cl: Cluster): void {
  cl.tickUntil(() => cl.node('n1').role() === 'preCandidate');
  cl.stabilize();
  expect(cl.node('n1').role()).toBe('leader');
}

function run(cl: Cluster, ms: number): void {
  for (let i = 0; i < ms; i++) {
    cl.tick(1);
    cl.stabilize();
  }
}

const cfg = (voters: string[], learners: string[] = []): ClusterConfig => ({
  members: [
    ...voters.map((id) => ({ id, address: `${id}:0`, voter: true })),
    ...learners.map((id) => ({ id, address: `${id}:0`, voter: false })),
  ],
});

describe('ReadIndex', () => {
  it('confirms leadership with a quorum heartbeat round before the read is ready', () => {
    c = three();
    electN1(c);
    c.node('n1').send({ type: 'readIndex', requestId: 'r1' });
    expect(c.node('n1').readReady).toEqual([]);
    expect(c.deliver()).toEqual([
      'n1->n2 AppendEntries term=1 prev=1/1 entries=[] commit=1 read=1',
      'n1->n3 AppendEntries term=1 prev=1/1 entries=[] commit=1 read=1',
    ]);
    expect(c.deliver(from('n2'))).toEqual(['n2->n1 AppendEntriesResponse term=1 match=1 read=1']);
    expect(c.node('n1').readReady).toEqual([{ requestId: 'r1', index: 1 }]);
  });

  it('waits until the new leader has committed an entry of its own term', () => {
    c = three();
    c.tick(100);
    for (let i = 0; i < 4; i++) c.deliver();
    expect(c.node('n1').role()).toBe('leader');
    c.node('n1').send({ type: 'readIndex', requestId: 'r1' });
    expect(c.node('n1').readReady).toEqual([]);
    c.deliver(); // the noop
    c.deliver(); // acks: the noop commits, and the read round starts only now
    expect(c.node('n1').commitIndex).toBe(1);
    expect(c.node('n1').readReady).toEqual([]);
    c.stabilize();
    expect(c.node('n1').readReady).toEqual([{ requestId: 'r1', index: 1 }]);
  });

  it('a deposed leader rejects the reads it could not confirm', () => {
    c = three();
    electN1(c);
    c.isolate('n1');
    c.node('n1').send({ type: 'readIndex', requestId: 'r1' });
    run(c, 300);
    expect(c.node('n1').role()).not.toBe('leader');
    expect(c.node('n1').readReady).toEqual([]);
    expect(c.node('n1').readRejected).toEqual(['r1']);
  });

  it('a follower refuses proposals naming the leader, but asks the leader for a read index', () => {
    c = three();
    electN1(c);
    c.node('n2').send({ type: 'readIndex', requestId: 'r' });
    c.propose('n2', 'p');
    const refusals = c
      .node('n2')
      .effects.filter((e) => e.type === 'readRejected' || e.type === 'proposalRejected');
    expect(refusals).toEqual([
      { type: 'proposalRejected', requestId: 'p', reason: 'not the leader', leaderId: 'n1' },
    ]);
    expect(c.pending()).toEqual(['n2->n1 ReadIndexRequest term=1 reads=[r]']);
  });

  it('a candidate refuses reads: it knows no leader to ask', () => {
    c = three();
    c.tickUntil(() => c.node('n1').role() === 'preCandidate');
    c.node('n1').send({ type: 'readIndex', requestId: 'r' });
    expect(c.node('n1').readRejected).toEqual(['r']);
  });
});

describe('leadership transfer', () => {
  it('catches the target up, sends TimeoutNow; the target campaigns at once, past leases', () => {
    c = three();
    electN1(c);
    c.node('n3').store.holdFlushes(); // n3 lags behind
    c.propose('n1', 'x');
    c.stabilize();
    c.node('n1').send({ type: 'transferLeadership', to: 'n3' });
    expect(c.node('n1').state()).toBe('leader.transferring');
    // No new proposals while transferring.
    c.propose('n1', 'refused');
    expect(c.node('n1').proposalsRejected).toEqual([
      { requestId: 'refused', reason: 'leadership transfer in progress' },
    ]);
    expect(c.pending(ofType('TimeoutNow'))).toEqual([]);
    c.node('n3').store.releaseFlushes();
    c.stabilize();
    // TimeoutNow went out once n3 matched; n3 skipped pre-vote and asked with transfer=true.
    expect(c.delivered.filter((l) => l.includes('TimeoutNow') || l.includes('transfer=true'))).toEqual([
      'n1->n3 TimeoutNow term=1',
      'n3->n1 RequestVote term=2 preVote=false last=2/1 transfer=true',
      'n3->n2 RequestVote term=2 preVote=false last=2/1 transfer=true',
    ]);
    expect(c.leaders()).toEqual(['n3']);
    expect(c.node('n1').effects).toContainEqual({ type: 'transferFinished', to: 'n3', ok: true });
  });

  it('is abandoned after an election timeout if the target does not take over', () => {
    c = three();
    electN1(c);
    c.node('n1').send({ type: 'transferLeadership', to: 'n2' });
    const start = c.clock.now();
    for (let i = 0; i < 400 && c.node('n1').state() === 'leader.transferring'; i++) {
      c.tick(1);
      c.drop(ofType('TimeoutNow'));
      c.stabilize();
    }
    expect(c.clock.now() - start).toBeGreaterThanOrEqual(100);
    expect(c.node('n1').state()).toBe('leader.active');
    expect(c.node('n1').effects).toContainEqual({ type: 'transferFinished', to: 'n2', ok: false });
    c.propose('n1', 'again');
    c.stabilize();
    expect(c.node('n1').applied.map((e) => e.data)).toContain('again');
  });
});

describe('learners', () => {
  it('a learner replicates but never campaigns, and is never asked for a vote', () => {
    c = new Cluster({
      nodes: [{ id: 'n1', election: [100, 101] }, 'n2', 'n3', { id: 'n4', voter: false, election: [60, 61] }],
      election: [300, 301],
    });
    expect(c.node('n4').role()).toBe('learner');
    run(c, 1000);
    expect(c.leaders()).toEqual(['n1']);
    expect(c.delivered.filter((l) => l.startsWith('n4->') && l.includes('RequestVote '))).toEqual([]);
    expect(c.delivered.filter((l) => l.includes('->n4 RequestVote'))).toEqual([]);
    c.propose('n1', 'x');
    run(c, 60);
    expect(c.node('n4').applied.map((e) => e.data)).toEqual(['', 'x']);
  });

  it("a learner's acknowledgement does not count toward commit", () => {
    c = new Cluster({
      nodes: [{ id: 'n1', election: [100, 101] }, 'n2', 'n3', { id: 'n4', voter: false }],
      election: [300, 301],
    });
    c.tick(100);
    c.stabilize();
    c.partition(['n1', 'n4'], ['n2', 'n3']);
    c.propose('n1', 'x');
    c.stabilize();
    expect(c.node('n4').store.lastIndex()).toBe(2);
    expect(c.node('n1').commitIndex).toBe(1);
  });
});

describe('membership changes', () => {
  it('refuses a config change before the leader has committed an entry of its term', () => {
    c = three();
    c.tick(100);
    for (let i = 0; i < 4; i++) c.deliver();
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3'], ['n4'])), 'config', 'cc');
    expect(c.node('n1').proposalsRejected).toEqual([
      { requestId: 'cc', reason: 'the leader has not committed an entry of its term yet' },
    ]);
  });

  it('applies a config when appended, one change at a time, and single-server only', () => {
    c = three();
    electN1(c);
    c.addNode({ id: 'n4' });
    expect(c.node('n4').role()).toBe('learner');
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3', 'n4', 'n5'])), 'config', 'two-at-once');
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3'], ['n4'])), 'config', 'add-learner');
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3', 'n4'])), 'config', 'promote-too-early');
    expect(c.node('n1').proposalsRejected).toEqual([
      { requestId: 'two-at-once', reason: 'only one member may change at a time' },
      { requestId: 'promote-too-early', reason: 'a configuration change is in progress' },
    ]);
    // In effect at once: the leader already replicates to n4 before the entry commits.
    expect(c.node('n1').commitIndex).toBe(1);
    expect(c.pending(to('n4'))).toEqual(['n1->n4 AppendEntries term=1 prev=2/1 entries=[] commit=1']);
    run(c, 100);
    expect(c.node('n4').ctx().config).toEqual(cfg(['n1', 'n2', 'n3'], ['n4']));
    expect(c.node('n4').role()).toBe('learner');
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3', 'n4'])), 'config', 'promote');
    run(c, 100);
    expect(c.node('n4').role()).toBe('follower');
    expect(c.node('n1').proposalsRejected.map((p) => p.requestId)).not.toContain('promote');
  });

  it('a config entry truncated away stops being in effect', () => {
    c = three();
    electN1(c);
    c.partition(['n1', 'n2'], ['n3']);
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3'], ['n9'])), 'config', 'cc');
    c.deliver(to('n2')); // n2 appends the config entry; its ack is lost with n1
    c.drop();
    expect(c.node('n2').ctx().config).toEqual(cfg(['n1', 'n2', 'n3'], ['n9']));
    // A leader of term 2 that never saw the entry (n3 in the other partition) overwrites it on n2.
    c.node('n2').send({
      type: 'AppendEntries',
      from: 'n3',
      to: 'n2',
      term: 2,
      prevLogIndex: 1,
      prevLogTerm: 1,
      entries: [{ index: 2, term: 2, kind: 'noop', data: '' }],
      leaderCommit: 1,
      readRound: 0,
    });
    expect(c.node('n2').store.termAt(2)).toBe(2);
    expect(c.node('n2').ctx().config).toEqual(cfg(['n1', 'n2', 'n3']));
    expect(
      c
        .node('n2')
        .effects.filter((e) => e.type === 'configChanged')
        .at(-1),
    ).toEqual({
      type: 'configChanged',
      config: cfg(['n1', 'n2', 'n3']),
    });
  });

  it('a removed leader steps down once the change commits, and never campaigns again', () => {
    c = three();
    electN1(c);
    c.propose('n1', JSON.stringify(cfg(['n2', 'n3'])), 'config', 'remove-n1');
    expect(c.node('n1').role()).toBe('leader');
    c.deliver(); // appended everywhere; not yet committed
    expect(c.node('n1').role()).toBe('leader');
    c.deliver(); // acks: committed
    expect(c.node('n1').role()).toBe('learner');
    run(c, 1500);
    expect(c.leaders().length).toBe(1);
    expect(c.leaders()[0]).not.toBe('n1');
    const since = c.delivered.findIndex((l) => l.includes('match=2'));
    expect(
      c.delivered.slice(since).filter((l) => l.startsWith('n1->') && l.includes('RequestVote ')),
    ).toEqual([]);
  });
});
