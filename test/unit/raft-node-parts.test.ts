// The parts RaftNode is composed of that node.ts used to hold inline: the start from durable state
// (replica-start.ts), log compaction after a local snapshot (log-compaction.ts), the leadership-transfer
// waiters (transfer-tracker.ts), the effects the executor leaves to the host (host-effects.ts) and the
// inspector's hook (inspection-hook.ts). RaftNode's own behaviour is covered by raft-node.test.ts and
// the simulator; these pin each part's rules.

import { describe, expect, it } from 'vitest';
import { createActor, fromTransition } from 'xstate';
import type { ClusterConfig, Effect, Entry, SnapshotMeta } from '../../machines/protocol.js';
import { HostEffects } from '../../src/raft/host-effects.js';
import { InspectionHook } from '../../src/raft/inspection-hook.js';
import { compactionAfterSnapshot } from '../../src/raft/log-compaction.js';
import { recoverDurableState, replicaStart } from '../../src/raft/replica-start.js';
import { TransferFailedError, TransferTracker } from '../../src/raft/transfer-tracker.js';
import { MemoryLogStore } from '../support/memory-log-store.js';

const one: ClusterConfig = { members: [{ id: 'a', address: 'a', voter: true }] };
const two: ClusterConfig = {
  members: [
    { id: 'a', address: 'a', voter: true },
    { id: 'b', address: 'b', voter: true },
  ],
};
const cmd = (index: number, term: number): Entry => ({ index, term, kind: 'command', data: `c${index}` });
const conf = (index: number, term: number, c: ClusterConfig): Entry => ({
  index,
  term,
  kind: 'config',
  data: JSON.stringify(c),
});

describe('replica start', () => {
  it('repairs an interrupted snapshot install before the apply recovery reads the applied index', () => {
    const calls: string[] = [];
    let applied = 0;
    const recovered = recoverDurableState({
      installer: {
        recover: () => {
          calls.push('installer');
          applied = 7; // the restore recorded the snapshot's index as applied
        },
      },
      applier: {
        recover: () => {
          calls.push('applier');
          return Math.max(applied, 9);
        },
        appliedIndex: () => applied,
      },
    });
    expect(calls).toEqual(['installer', 'applier']);
    expect(recovered).toEqual({ commitIndex: 9, appliedIndex: 7 });
  });

  it("builds the machine's input and the executor's start from the recovered store", () => {
    const log = new MemoryLogStore({
      hardState: { term: 4, votedFor: 'b' },
      snapshot: { index: 0, term: 0, config: one },
      entries: [cmd(1, 1), conf(2, 2, two), cmd(3, 4)],
      commit: 2,
    });
    const timing = { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 };
    const start = replicaStart(
      log,
      { commitIndex: 2, appliedIndex: 1 },
      { id: 'a', timing, seed: 5, maxBatch: 8 },
    );
    expect(start.input).toMatchObject({
      id: 'a',
      hardState: { term: 4, votedFor: 'b' },
      config: two,
      appliedIndex: 1,
      commitIndex: 2,
      timing,
      seed: 5,
      maxBatch: 8,
    });
    expect(start.input.log).toBe(log);
    // Everything the store holds after a restart is durable: the executor starts with all of it.
    expect(start.executor).toEqual({ durableIndex: 3, commitIndex: 2, appliedIndex: 1 });
  });
});

describe('log compaction after a local snapshot', () => {
  const log = () =>
    new MemoryLogStore({
      snapshot: { index: 0, term: 0, config: one },
      entries: [cmd(1, 1), conf(2, 1, two), cmd(3, 2), cmd(4, 2), cmd(5, 2), cmd(6, 3)],
    });

  it('compacts through the snapshot index with the term and config in effect there', () => {
    expect(compactionAfterSnapshot(log(), 4, 0, 6)).toEqual({ index: 4, term: 2, config: two });
    expect(compactionAfterSnapshot(log(), 1, 0, 6)).toEqual({ index: 1, term: 1, config: one });
  });

  it('keeps `keep` entries before the snapshot index', () => {
    expect(compactionAfterSnapshot(log(), 5, 2, 6)?.index).toBe(3);
  });

  it('never compacts past what is applied here', () => {
    expect(compactionAfterSnapshot(log(), 6, 0, 3)?.index).toBe(3);
  });

  it('does nothing at or behind the current snapshot, or where the log has no such entry', () => {
    const l = log();
    l.compact({ index: 3, term: 2, config: two });
    expect(compactionAfterSnapshot(l, 3, 0, 6)).toBeNull();
    expect(compactionAfterSnapshot(l, 5, 3, 6)).toBeNull();
    expect(compactionAfterSnapshot(log(), 9, 0, 9)).toBeNull();
  });
});

describe('TransferTracker', () => {
  it('answers every waiting caller with the outcome, and only those', async () => {
    const t = new TransferTracker();
    const seen: string[] = [];
    const wait = (name: string) =>
      new Promise<void>((resolve, reject) => t.add({ resolve, reject })).then(
        () => seen.push(`${name} ok`),
        (e) => seen.push(`${name} ${e instanceof TransferFailedError ? `failed:${e.to}` : e.message}`),
      );
    const first = [wait('p'), wait('q')];
    t.finished(false, 'b');
    await Promise.all(first);
    const second = wait('r');
    t.finished(true, null);
    await second;
    const third = wait('s');
    t.failAll(new Error('stopped'));
    await third;
    t.finished(true, null); // nobody waits any more
    expect(seen).toEqual(['p failed:b', 'q failed:b', 'r ok', 's stopped']);
  });
});

describe('HostEffects', () => {
  function host(opts: { member?: boolean; sender?: boolean; receive?: () => SnapshotMeta | null } = {}) {
    const calls: string[] = [];
    const note =
      (name: string) =>
      (...args: unknown[]) => {
        calls.push(`${name}(${args.map((a) => JSON.stringify(a)).join(',')})`);
      };
    let applied = 3;
    const active = ['b', 'c'];
    const effects = new HostEffects(
      {
        proposals: {
          proposed: note('proposed'),
          rejected: note('rejected'),
          dropOrphaned: note('dropOrphaned'),
          snapshotInstalled: note('proposals.snapshotInstalled'),
        },
        reads: { effect: () => {}, appliedTo: note('reads.appliedTo') },
        transfers: { finished: note('transfers.finished') },
        listeners: {
          roleChanged: note('listeners.roleChanged'),
          snapshotInstalled: note('listeners.snapshotInstalled'),
        },
        installer: { receive: opts.receive ?? (() => null) },
        applier: {
          snapshotInstalled: (i: number) => {
            applied = i;
            calls.push(`applier.snapshotInstalled(${i})`);
          },
          appliedIndex: () => applied,
        },
        sender:
          opts.sender === false
            ? null
            : {
                start: note('sender.start'),
                cancel: note('sender.cancel'),
                cancelAll: note('sender.cancelAll'),
                active: () => active,
              },
      },
      {
        executor: { commitIndex: () => 11, snapshotInstalled: note('executor.snapshotInstalled') },
        machine: (e) => calls.push(`machine(${e.type})`),
        isMember: () => opts.member ?? true,
        setPeers: (m) => calls.push(`setPeers(${m.map((x) => x.id)})`),
        fatal: note('fatal'),
        clock: { now: () => 1000 },
      },
      2,
    );
    return { effects, calls };
  }
  const role = (r: 'leader' | 'follower' | 'candidate'): Effect => ({
    type: 'roleChanged',
    role: r,
    term: 3,
    leaderId: r === 'leader' ? 'a' : null,
  });

  it('starts as a follower in the durable term, and reports the last role announced', () => {
    const { effects, calls } = host();
    expect(effects.role()).toEqual({ role: 'follower', term: 2, leaderId: null });
    effects.handle(role('leader'));
    expect(effects.role()).toEqual({ role: 'leader', term: 3, leaderId: 'a' });
    expect(calls).toEqual(['listeners.roleChanged({"role":"leader","term":3,"leaderId":"a"})']);
  });

  it('a replica that stops leading stops its snapshot streams; one no longer listed drops orphans', () => {
    const member = host();
    member.effects.handle(role('follower'));
    expect(member.calls.slice(0, 2)).toEqual(['sender.cancelAll()', expect.stringMatching(/^listeners/)]);
    const removed = host({ member: false });
    removed.effects.handle(role('follower'));
    expect(removed.calls.slice(0, 2)).toEqual(['sender.cancelAll()', 'dropOrphaned(11)']);
  });

  it('a configuration change sets the peers and stops streams to removed peers', () => {
    const { effects, calls } = host();
    effects.handle({
      type: 'configChanged',
      config: {
        members: [
          { id: 'a', address: 'a', voter: true },
          { id: 'b', address: 'b', voter: true },
        ],
      },
    } as Effect);
    expect(calls).toEqual(['setPeers(a,b)', 'sender.cancel("c")']);
  });

  it('routes proposal outcomes, transfer outcomes and snapshot requests', () => {
    const { effects, calls } = host();
    effects.handle({ type: 'proposed', requestId: 'r1', index: 4, term: 3 } as Effect);
    effects.handle({ type: 'proposalRejected', requestId: 'r2', reason: 'no', leaderId: 'b' } as Effect);
    effects.handle({ type: 'transferFinished', to: 'b', ok: true });
    effects.handle({ type: 'sendSnapshot', to: 'b', term: 3 } as Effect);
    expect(calls).toEqual([
      'proposed("r1",4,3)',
      'rejected("r2","no","b")',
      'transfers.finished(true,"b")',
      'sender.start("b",3)',
    ]);
    const none = host({ sender: false });
    none.effects.handle({ type: 'sendSnapshot', to: 'b', term: 3 } as Effect);
    expect(none.calls).toEqual([]);
  });

  it('an installed snapshot moves every part to its index, the machine before the listeners', () => {
    const meta: SnapshotMeta = { index: 20, term: 3, config: one };
    const { effects, calls } = host({ receive: () => meta });
    effects.handle({ type: 'receiveSnapshotChunk', message: { from: 'b' } } as Effect);
    expect(calls).toEqual([
      'applier.snapshotInstalled(20)',
      'executor.snapshotInstalled(20)',
      'proposals.snapshotInstalled(20,"b")',
      'machine(snapshotInstalled)',
      `listeners.snapshotInstalled(${JSON.stringify(meta)})`,
      'reads.appliedTo(20)',
    ]);
  });

  it('a snapshot that cannot be installed is fatal, and moves nothing', () => {
    const { effects, calls } = host({
      receive: () => {
        throw new Error('disk');
      },
    });
    effects.handle({ type: 'receiveSnapshotChunk', message: { from: 'b' } } as Effect);
    expect(calls).toEqual(['fatal({})']);
  });
});

describe('InspectionHook', () => {
  const counter = () => fromTransition((n: number) => n + 1, 0);

  it('an observer set before the actor exists observes it once attached; null stops it', () => {
    const hook = new InspectionHook();
    const seen: string[] = [];
    hook.set((e) => seen.push(e.type), undefined);
    const actor = hook.attach(createActor(counter()));
    actor.start();
    actor.send({ type: 'tick' });
    expect(seen.length).toBeGreaterThan(0);
    const before = seen.length;
    hook.set(null, actor.system);
    actor.send({ type: 'tick' });
    expect(seen.length).toBe(before);
  });

  it('an observer set on a running actor observes it from then on', () => {
    const hook = new InspectionHook();
    const actor = hook.attach(createActor(counter()));
    actor.start();
    const seen: string[] = [];
    hook.set((e) => seen.push(e.type), actor.system);
    actor.send({ type: 'tick' });
    expect(seen).toContain('@xstate.event');
  });
});
