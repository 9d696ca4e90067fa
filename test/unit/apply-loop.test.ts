// ApplyLoop (src/raft/apply-loop.ts) on its own: bounded batches, the order a batch is handed on, a
// state machine that fails, and the recovery at start (the lazy applied index,
// docs/design/lazy-applied-index.md): re-apply a lost tail up to the recovered commit and nothing
// beyond it, starting from the state machine's applied index or the log's snapshot.

import { describe, expect, it } from 'vitest';
import type { Entry } from '../../machines/protocol.js';
import { APPLY_BATCH, ApplyLoop, type ApplyLoopDeps } from '../../src/raft/apply-loop.js';
import type { ApplyOutcome, StateMachine } from '../../src/raft/interfaces.js';
import { MemoryLogStore } from '../support/memory-log-store.js';

function entries(from: number, to: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term: 1, kind: 'command', data: `e${i}` });
  return out;
}

/** Records every batch; starts at `appliedIndex` (what a crash left of its durable applies). */
class RecordingMachine implements StateMachine {
  readonly batches: number[][] = [];
  failWith: Error | null = null;
  constructor(private applied = 0) {}
  appliedIndex(): number {
    return this.applied;
  }
  apply(batch: Entry[]): ApplyOutcome[] {
    if (this.failWith) throw this.failWith;
    this.batches.push(batch.map((e) => e.index));
    this.applied = batch[batch.length - 1].index;
    return batch.map((e) => ({ index: e.index, term: e.term, result: e.data }));
  }
  indexes(): number[] {
    return this.batches.flat();
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

interface Setup {
  loop: ApplyLoop;
  sm: RecordingMachine;
  calls: string[];
  fatal: unknown[];
}

function setup(log: MemoryLogStore, sm: RecordingMachine, extra: Partial<ApplyLoopDeps> = {}): Setup {
  const calls: string[] = [];
  const fatal: unknown[] = [];
  const loop = new ApplyLoop({
    log,
    stateMachine: sm,
    proposals: { applied: (_e, outcomes, index) => calls.push(`proposals ${outcomes.length} ${index}`) },
    reads: { appliedTo: (index) => calls.push(`reads ${index}`) },
    machine: (index) => calls.push(`machine ${index}`),
    listeners: { applied: (outcomes) => calls.push(`listeners ${outcomes.length}`) },
    fatal: (err) => fatal.push(err),
    ...extra,
  });
  return { loop, sm, calls, fatal };
}

describe('ApplyLoop: applying', () => {
  it(`applies at most ${APPLY_BATCH} entries per call; the caller calls again for the rest`, () => {
    const total = 2 * APPLY_BATCH + 10;
    const { loop, sm } = setup(
      new MemoryLogStore({ entries: entries(1, total), commit: total }),
      new RecordingMachine(),
    );
    expect(loop.apply(total)).toBe(APPLY_BATCH);
    expect(sm.batches.map((b) => b.length)).toEqual([APPLY_BATCH]);
    expect(loop.apply(total)).toBe(2 * APPLY_BATCH);
    expect(loop.apply(total)).toBe(total);
    expect(sm.indexes()).toEqual(range(1, total));
    expect(loop.appliedIndex()).toBe(total);
  });

  it('applies through upTo and no further, even when the log holds more', () => {
    const { loop, sm } = setup(new MemoryLogStore({ entries: entries(1, 10) }), new RecordingMachine());
    expect(loop.apply(4)).toBe(4);
    expect(sm.indexes()).toEqual(range(1, 4));
    // Nothing new to apply: the state machine is not called.
    expect(loop.apply(4)).toBe(4);
    expect(loop.apply(2)).toBe(4);
    expect(sm.batches).toHaveLength(1);
  });

  it('hands a batch on in order: proposers, the machine, the listeners, then waiting reads', () => {
    const { loop, calls } = setup(new MemoryLogStore({ entries: entries(1, 3) }), new RecordingMachine());
    loop.apply(3);
    expect(calls).toEqual(['proposals 3 3', 'machine 3', 'listeners 3', 'reads 3']);
  });

  it('a state machine that throws is fatal: nothing advances and nothing is handed on', () => {
    const sm = new RecordingMachine();
    const { loop, calls, fatal } = setup(new MemoryLogStore({ entries: entries(1, 3) }), sm);
    const boom = new Error('boom');
    sm.failWith = boom;
    expect(loop.apply(3)).toBe(0);
    expect(fatal).toEqual([boom]);
    expect(calls).toEqual([]);
    expect(loop.appliedIndex()).toBe(0);
  });

  it('applies nothing once stopped', () => {
    const { loop, sm } = setup(new MemoryLogStore({ entries: entries(1, 3) }), new RecordingMachine());
    loop.stop();
    expect(loop.apply(3)).toBe(0);
    expect(sm.batches).toEqual([]);
  });

  it('an installed snapshot raises the applied index and never lowers it', () => {
    const { loop } = setup(new MemoryLogStore({ entries: entries(1, 10) }), new RecordingMachine());
    loop.apply(6);
    loop.snapshotInstalled(4);
    expect(loop.appliedIndex()).toBe(6);
    loop.snapshotInstalled(9);
    expect(loop.appliedIndex()).toBe(9);
  });
});

describe('ApplyLoop: recovery at start', () => {
  it('re-applies the tail a crash rolled back, up to the recovered commit, across batches', () => {
    // The state machine kept applies through 3; the durable commit covers 8 (everything applied before
    // the crash), the log holds 10.
    const log = new MemoryLogStore({ entries: entries(1, 10), commit: 8 });
    const { loop, sm, calls } = setup(log, new RecordingMachine(3), { maxBatch: 2 });
    expect(loop.recover()).toBe(8);
    expect(sm.indexes()).toEqual(range(4, 8));
    expect(sm.batches).toEqual([[4, 5], [6, 7], [8]]);
    expect(loop.appliedIndex()).toBe(8);
    // Each re-applied batch is handed on like any other (reads and listeners see the applied index).
    expect(calls.filter((c) => c.startsWith('reads'))).toEqual(['reads 5', 'reads 7', 'reads 8']);
  });

  it('applies nothing beyond the durable commit, though the log holds more', () => {
    const log = new MemoryLogStore({ entries: entries(1, 10), commit: 6 });
    const { loop, sm } = setup(log, new RecordingMachine(2));
    expect(loop.recover()).toBe(6);
    expect(sm.indexes()).toEqual(range(3, 6));
    expect(loop.appliedIndex()).toBe(6);
  });

  it('clamps a persisted commit beyond the recovered log to its last index', () => {
    const log = new MemoryLogStore({ entries: entries(1, 10), commit: 12 });
    const { loop, sm } = setup(log, new RecordingMachine(0));
    expect(loop.recover()).toBe(10);
    expect(sm.indexes()).toEqual(range(1, 10));
  });

  it('never starts the commit below what the state machine applied', () => {
    const log = new MemoryLogStore({ entries: entries(1, 10), commit: 5 });
    const { loop, sm } = setup(log, new RecordingMachine(7));
    expect(loop.recover()).toBe(7);
    expect(loop.appliedIndex()).toBe(7);
    expect(sm.batches).toEqual([]);
  });

  it('starts after the log snapshot when the state machine reports less', () => {
    const log = new MemoryLogStore({
      entries: entries(5, 8),
      snapshot: { index: 4, term: 1, config: { members: [] } },
      commit: 8,
    });
    const { loop, sm } = setup(log, new RecordingMachine(0));
    expect(loop.recover()).toBe(8);
    expect(sm.indexes()).toEqual(range(5, 8));
  });

  it('stops re-applying when the log yields nothing (no spinning on a hole)', () => {
    const log = new MemoryLogStore({ entries: entries(1, 10), commit: 10 });
    let reads = 0;
    const holey = {
      lastIndex: () => log.lastIndex(),
      commitIndex: () => log.commitIndex(),
      snapshot: () => log.snapshot(),
      entries: (): Entry[] => {
        reads++;
        return [];
      },
    };
    const { loop, sm } = setup(log, new RecordingMachine(2), { log: holey });
    expect(loop.recover()).toBe(10);
    expect(sm.batches).toEqual([]);
    expect(reads).toBe(1);
  });
});
