// The machine's decisions do not depend on when its host carries out `persist` (issue 10: the replica
// once read the host's log store for terms and entries, so it was right only if every write showed in
// the store at once). Here some nodes run on a LateLogStore (test/support/late-log-store.ts), which
// shows a write only once a flush made it durable, and the flushes are held: the store shows none of
// the new entries while the machine decides. The machine knows its log by terms (plain data) and the
// Ready executor attaches the entries it still holds to the AppendEntries it sends, so every scenario
// delivers exactly the same messages as on a store that shows writes at once.

import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, from, to } from './harness.js';

let c: Cluster;
let stopped = false;
afterEach(() => {
  if (!stopped) c.stop();
});

/** Each scenario runs twice (late and prompt store): check and stop the first before the second. */
function finish<T>(result: T): T {
  expect(c.errors()).toEqual([]);
  c.stop();
  stopped = true;
  return result;
}

function cluster(lateStores: string[]): Cluster {
  stopped = false;
  c = new Cluster({
    nodes: [
      { id: 'n1', election: [100, 101] },
      { id: 'n2', election: [300, 301] },
      { id: 'n3', election: [400, 401] },
    ],
    lateStores,
  });
  c.tickUntil(() => c.node('n1').role() === 'preCandidate');
  c.stabilize();
  expect(c.node('n1').role()).toBe('leader');
  return c;
}

const commands = (id: string) =>
  c
    .node(id)
    .applied.filter((e) => e.kind === 'command')
    .map((e) => e.data);

/**
 * The leader's disk is slow: it proposes three commands one by one and replicates them while its
 * store shows none of them. Returns the messages delivered, the commit index reached and what the
 * leader applied before and after its disk answered.
 */
function leaderDiskSlow(late: boolean) {
  cluster(late ? ['n1'] : []);
  const n1 = c.node('n1');
  n1.store.holdFlushes();
  const mark = c.delivered.length;
  for (const x of ['a', 'b', 'c']) c.propose('n1', x);
  const seenByStore = n1.store.lastIndex();
  c.stabilize();
  const commit = n1.commitIndex;
  const appliedWhileSlow = commands('n1');
  n1.store.releaseFlushes();
  c.stabilize();
  return finish({
    lines: c.delivered.slice(mark),
    seenByStore,
    commit,
    appliedWhileSlow,
    applied: commands('n1'),
  });
}

/**
 * A follower's disk is slow: three AppendEntries reach it back to back, each building on entries the
 * previous one brought, which its store does not show yet. Its acknowledgements wait for its disk.
 */
function followerDiskSlow(late: boolean) {
  cluster(late ? ['n2'] : []);
  const n2 = c.node('n2');
  c.isolate('n3');
  n2.store.holdFlushes();
  const mark = c.delivered.length;
  for (const x of ['a', 'b', 'c']) c.propose('n1', x);
  const appends = c.pending(to('n2'));
  c.deliver(to('n2'));
  const seenByStore = n2.store.lastIndex();
  const acksWhileSlow = c.pending(from('n2'));
  const lastIndex = n2.ctx().lastIndex;
  n2.store.releaseFlushes();
  c.stabilize();
  return finish({
    appends,
    seenByStore,
    lastIndex,
    acksWhileSlow,
    lines: c.delivered.slice(mark),
    commit: c.node('n1').commitIndex,
  });
}

describe('a host that carries out persist late', () => {
  it("leader: replicates and commits entries its own store does not show yet, applies them once they're durable", () => {
    const late = leaderDiskSlow(true);
    expect(late.seenByStore).toBe(1); // only the noop is visible
    expect(late.lines).toContain('n1->n2 AppendEntries term=1 prev=1/1 entries=[2/1] commit=1');
    expect(late.lines).toContain('n1->n2 AppendEntries term=1 prev=3/1 entries=[4/1] commit=1');
    // n2 and n3 are a quorum: committed although the leader's own copy is not durable yet...
    expect(late.commit).toBe(4);
    // ...but the leader applies only what is durable here.
    expect(late.appliedWhileSlow).toEqual([]);
    expect(late.applied).toEqual(['a', 'b', 'c']);
    const prompt = leaderDiskSlow(false);
    expect(late.lines).toEqual(prompt.lines);
    expect(late.commit).toBe(prompt.commit);
  });

  it('follower: accepts AppendEntries that build on entries its store does not show yet, acknowledges once durable', () => {
    const late = followerDiskSlow(true);
    expect(late.appends).toEqual([
      'n1->n2 AppendEntries term=1 prev=1/1 entries=[2/1] commit=1',
      'n1->n2 AppendEntries term=1 prev=2/1 entries=[3/1] commit=1',
      'n1->n2 AppendEntries term=1 prev=3/1 entries=[4/1] commit=1',
    ]);
    expect(late.seenByStore).toBe(1);
    expect(late.lastIndex).toBe(4);
    // Nothing is promised before it is durable.
    expect(late.acksWhileSlow).toEqual([]);
    expect(late.lines).toContain('n2->n1 AppendEntriesResponse term=1 match=4');
    expect(late.lines.some((l) => l.includes('reject'))).toBe(false);
    expect(late.commit).toBe(4);
    const prompt = followerDiskSlow(false);
    expect(late.lines).toEqual(prompt.lines);
  });
});
