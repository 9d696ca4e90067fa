// The Ready executor on its own (src/raft/ready-executor.ts): the order of the durability contract,
// step by step, on a MemoryLogStore whose flushes the test holds (a slow disk) and a hand-run defer.

import { describe, expect, it } from 'vitest';
import type { Effect, Entry, RaftMessage } from '../../machines/protocol.js';
import { ReadyExecutor } from '../../src/raft/ready-executor.js';
import { MemoryLogStore } from '../support/memory-log-store.js';

const vote: RaftMessage = {
  type: 'RequestVoteResponse',
  from: 'n1',
  to: 'n2',
  term: 1,
  granted: true,
  preVote: false,
};
const heartbeat: RaftMessage = {
  type: 'AppendEntries',
  from: 'n1',
  to: 'n2',
  term: 1,
  prevLogIndex: 0,
  prevLogTerm: 0,
  entries: [],
  leaderCommit: 0,
  readRound: 0,
};
const entry = (index: number, term = 1): Entry => ({ index, term, kind: 'command', data: `e${index}` });

function rig(unsafeSendBeforePersist = false) {
  const store = new MemoryLogStore();
  store.holdFlushes();
  const deferred: (() => void)[] = [];
  const log: string[] = [];
  const ready = new ReadyExecutor(
    {
      log: store,
      send: (m) => log.push(`send ${m.type}`),
      defer: (fn) => deferred.push(fn),
      persisted: (p) => log.push(`persisted ${p.index}/${p.term} seq=${p.seq}`),
      apply: (upTo) => {
        log.push(`apply ${upTo}`);
        return upTo;
      },
      other: (e) => log.push(`other ${e.type}`),
      unsafeSendBeforePersist,
    },
    { durableIndex: 0, commitIndex: 0, appliedIndex: 0 },
  );
  /** One turn of the event loop: run what was deferred. */
  const turn = () => {
    for (const fn of deferred.splice(0)) fn();
  };
  return { store, ready, log, turn };
}

describe('ReadyExecutor', () => {
  it('writes at once, holds afterPersist sends until the fsync, sends them before telling the machine', () => {
    const { store, ready, log, turn } = rig();
    const effects: Effect[] = [
      { type: 'persist', hardState: { term: 1, votedFor: 'n2' } },
      { type: 'send', message: vote, afterPersist: true },
      { type: 'send', message: heartbeat, afterPersist: false },
    ];
    ready.execute(effects);
    // Written (readable) at once; the leader-style send left; the grant waits.
    expect(store.hardState()).toEqual({ term: 1, votedFor: 'n2' });
    expect(store.durable().hardState()).toEqual({ term: 0, votedFor: null });
    expect(log).toEqual(['send AppendEntries']);
    turn(); // the flush starts; the disk has not answered
    expect(log).toEqual(['send AppendEntries']);
    store.releaseFlushes();
    expect(log).toEqual(['send AppendEntries', 'send RequestVoteResponse', 'persisted 0/0 seq=1']);
    expect(store.durable().hardState()).toEqual({ term: 1, votedFor: 'n2' });
  });

  it('one flush for every write of a turn (group commit)', () => {
    const { store, ready, turn } = rig();
    ready.execute([{ type: 'persist', entries: [entry(1)] }]);
    ready.execute([{ type: 'persist', entries: [entry(2)] }]);
    turn();
    store.releaseFlushes();
    expect(store.flushCount).toBe(1);
  });

  it('a commit rides the flush of its turn, and only a durable commit is applied (lazy applied index)', () => {
    const { store, ready, log, turn } = rig();
    ready.execute([{ type: 'persist', entries: [entry(1), entry(2)] }]);
    ready.execute([{ type: 'commit', index: 2 }]);
    turn(); // one flush started for the entries and the commit: nothing durable yet
    expect(log).toEqual([]);
    store.releaseFlushes();
    expect(log).toEqual(['persisted 2/1 seq=1']);
    turn();
    expect(log).toEqual(['persisted 2/1 seq=1', 'apply 2']);
    expect(store.flushCount).toBe(1);
    expect(ready.durableCommit()).toBe(2);
    // An entry made durable, then its commit alone: the commit schedules a flush, and the entry is
    // applied only once that flush made the commit durable (a crash must not roll back past it).
    ready.execute([{ type: 'persist', entries: [entry(3)] }]);
    turn();
    store.releaseFlushes();
    turn();
    expect(store.flushCount).toBe(2);
    ready.execute([{ type: 'commit', index: 3 }]);
    turn();
    expect(store.flushCount).toBe(3);
    expect(log.filter((l) => l.startsWith('apply'))).toEqual(['apply 2']);
    store.releaseFlushes();
    turn();
    expect(log.filter((l) => l.startsWith('apply'))).toEqual(['apply 2', 'apply 3']);
    expect(ready.durableCommit()).toBe(3);
  });

  it('other effects go to the host in order; nothing leaves after stop()', () => {
    const { ready, log, turn } = rig();
    ready.execute([
      { type: 'readReady', requestId: 'r1', index: 0 },
      { type: 'configChanged', config: { members: [] } },
    ]);
    expect(log).toEqual(['other readReady', 'other configChanged']);
    ready.execute([
      { type: 'persist', hardState: { term: 2, votedFor: 'n2' } },
      { type: 'send', message: vote, afterPersist: true },
    ]);
    ready.stop();
    turn();
    ready.execute([{ type: 'send', message: heartbeat, afterPersist: false }]);
    expect(log).toEqual(['other readReady', 'other configChanged']);
  });

  it('the test-only broken order sends a grant before its write is durable', () => {
    const { ready, log } = rig(true);
    ready.execute([
      { type: 'persist', hardState: { term: 1, votedFor: 'n2' } },
      { type: 'send', message: vote, afterPersist: true },
    ]);
    expect(log).toEqual(['send RequestVoteResponse']);
  });
});
