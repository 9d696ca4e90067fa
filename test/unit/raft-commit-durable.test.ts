// DESIGN.md invariant 8 across a crash: the commit index a replica reports (status().commitIndex) is
// never above what it recovers after a restart. A follower learns a commit from a scripted leader; we
// crash it after each deferred task in turn (before the commit's flush, between flush and apply, ...)
// and restart it from what its log store made durable.

import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { ClusterConfig, Entry, RaftMessage } from '../../machines/protocol.js';
import type { ApplyOutcome, StateMachine, Transport } from '../../src/raft/interfaces.js';
import { RaftNode } from '../../src/raft/node.js';
import { MemoryLogStore } from '../support/memory-log-store.js';

const config: ClusterConfig = {
  members: ['n1', 'n2', 'n3'].map((id) => ({ id, address: id, voter: true })),
};

/** Applied entries survive a crash (a real state machine records them in the apply transaction). */
class ListMachine implements StateMachine {
  applied: Entry[] = [];
  appliedIndex(): number {
    return this.applied.length > 0 ? this.applied[this.applied.length - 1].index : 0;
  }
  apply(entries: Entry[]): ApplyOutcome[] {
    this.applied.push(...entries);
    return entries.map((e) => ({ index: e.index, term: e.term, result: null }));
  }
}

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, kind: 'command', data: `e${i}` });
  return out;
}

/** One follower (n2) whose deferred work (flushes, applies) runs only when the test says so. */
class Follower {
  readonly clock = new SimulatedClock();
  readonly tasks: (() => void)[] = [];
  readonly errors: unknown[] = [];
  handler: ((m: RaftMessage) => void) | null = null;
  readonly node: RaftNode;

  constructor(
    readonly store: MemoryLogStore,
    readonly machine: ListMachine,
  ) {
    const transport: Transport = {
      send: () => {},
      listen: (h) => {
        this.handler = h;
      },
      setPeers: () => {},
      close: () => {},
    };
    this.node = new RaftNode({
      id: 'n2',
      logStore: store,
      stateMachine: machine,
      transport,
      clock: this.clock,
      // Long timeouts: no election interferes with the scripted leader.
      timing: { heartbeatMs: 50, electionMinMs: 100_000, electionMaxMs: 100_001 },
      seed: 2,
      defer: (fn) => this.tasks.push(fn),
      onError: (e) => this.errors.push(e),
    });
    this.node.start();
  }

  append(prevLogIndex: number, prevLogTerm: number, batch: Entry[], leaderCommit: number): void {
    this.handler?.({
      type: 'AppendEntries',
      from: 'n1',
      to: 'n2',
      term: 1,
      prevLogIndex,
      prevLogTerm,
      entries: batch,
      leaderCommit,
      readRound: 0,
    });
  }

  /** Run deferred tasks (bounded), `max` of them at most. */
  run(max = 1000): void {
    for (let i = 0; i < max && this.tasks.length > 0; i++) this.tasks.shift()?.();
  }

  /** Crash: only what the store made durable survives, and the state machine's applied entries. */
  restart(): Follower {
    this.node.stop();
    return new Follower(this.store.durable(), this.machine);
  }
}

describe('RaftNode commit index across a restart (invariant 8)', () => {
  it('never reports a commit index that a restart would lose, wherever the crash falls', () => {
    let sawDurableCommit = false;
    for (let crashAfter = 0; crashAfter <= 6; crashAfter++) {
      // Entries 1..2 are durable; the leader sends entry 3 and says 1..3 are committed.
      const f = new Follower(
        new MemoryLogStore({
          hardState: { term: 1, votedFor: null },
          entries: entries(1, 2, 1),
          snapshot: { index: 0, term: 0, config },
        }),
        new ListMachine(),
      );
      f.append(2, 1, entries(3, 3, 1), 3);
      f.run(crashAfter);
      const before = f.node.status();
      const g = f.restart();
      const after = g.node.status();
      expect(after.commitIndex, `crash after ${crashAfter} deferred tasks`).toBeGreaterThanOrEqual(
        before.commitIndex,
      );
      expect(after.commitIndex).toBeGreaterThanOrEqual(after.lastApplied);
      if (before.commitIndex === 3 && before.lastApplied < 3) {
        // The commit was durable but not applied yet: the restarted replica applies it on its own.
        sawDurableCommit = true;
        expect(after.commitIndex).toBe(3);
        g.run();
        expect(g.node.status().lastApplied).toBe(3);
        expect(g.machine.applied.map((e) => e.index)).toEqual([1, 2, 3]);
      }
      g.node.stop();
      expect([...f.errors, ...g.errors]).toEqual([]);
    }
    // The scenario of sim finding F1 was covered: commit reported and durable, crash before the apply.
    expect(sawDurableCommit).toBe(true);
  });

  it('reports a learnt commit only once it is durable', () => {
    const store = new MemoryLogStore({
      hardState: { term: 1, votedFor: null },
      entries: entries(1, 2, 1),
      snapshot: { index: 0, term: 0, config },
    });
    const f = new Follower(store, new ListMachine());
    store.holdFlushes();
    f.append(2, 1, entries(3, 3, 1), 3);
    f.run();
    // The flush is held: commit 3 is not reported (a crash now would lose it, and entry 3). Nothing is
    // applied either: the state machine's apply pays no fsync (lazy applied index), so an entry is
    // applied only once a durable commit covers it, and a restart recovers at least that commit.
    expect(store.commitIndex()).toBe(3);
    expect(store.durable().commitIndex()).toBe(0);
    expect(f.node.status()).toMatchObject({ commitIndex: 0, lastApplied: 0 });
    expect(f.node.actor.getSnapshot().context.commitIndex).toBe(3);
    store.releaseFlushes();
    f.run();
    expect(store.durable().commitIndex()).toBe(3);
    expect(f.node.status()).toMatchObject({ commitIndex: 3, lastApplied: 3 });
    f.node.stop();
    expect(f.errors).toEqual([]);
  });

  it('writes the commit in the same flush as the entries that carry it (no extra fsync)', () => {
    const store = new MemoryLogStore({
      hardState: { term: 1, votedFor: null },
      snapshot: { index: 0, term: 0, config },
    });
    const f = new Follower(store, new ListMachine());
    const flushes = store.flushCount;
    f.append(0, 0, entries(1, 4, 1), 4);
    f.run();
    expect(store.flushCount - flushes).toBe(1);
    expect(store.durable().commitIndex()).toBe(4);
    expect(store.durable().lastIndex()).toBe(4);
    expect(f.node.status()).toMatchObject({ commitIndex: 4, lastApplied: 4 });
    f.node.stop();
    expect(f.errors).toEqual([]);
  });

  it('a commit learnt from a heartbeat is made durable by one flush before it is applied (the apply pays none)', () => {
    const store = new MemoryLogStore({
      hardState: { term: 1, votedFor: null },
      entries: entries(1, 3, 1),
      snapshot: { index: 0, term: 0, config },
    });
    const f = new Follower(store, new ListMachine());
    const flushes = store.flushCount;
    f.append(3, 1, [], 2);
    f.run();
    // One fsync for the commit (it replaces the apply transaction's own fsync of before).
    expect(store.flushCount - flushes).toBe(1);
    expect(store.durable().commitIndex()).toBe(2);
    expect(f.node.status()).toMatchObject({ commitIndex: 2, lastApplied: 2 });
    // New entries and the commit they carry share one flush.
    f.append(3, 1, entries(4, 4, 1), 3);
    f.run();
    expect(store.flushCount - flushes).toBe(2);
    expect(store.durable().commitIndex()).toBe(3);
    expect(f.node.status()).toMatchObject({ commitIndex: 3, lastApplied: 3 });
    f.node.stop();
    expect(f.errors).toEqual([]);
  });

  it('starts from the persisted commit, clamped to the recovered log', () => {
    const store = new MemoryLogStore({
      hardState: { term: 1, votedFor: null },
      entries: entries(1, 3, 1),
      snapshot: { index: 0, term: 0, config },
      commit: 7,
    });
    const f = new Follower(store, new ListMachine());
    expect(f.node.status().commitIndex).toBe(3);
    expect(f.node.actor.getSnapshot().context.commitIndex).toBe(3);
    f.run();
    expect(f.machine.applied.map((e) => e.index)).toEqual([1, 2, 3]);
    f.node.stop();
    expect(f.errors).toEqual([]);
  });
});
