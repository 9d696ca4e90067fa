import { describe, expect, it } from 'vitest';
import type { ClusterConfig, Entry } from '../../machines/protocol.js';
import { EventQueue } from '../../src/raft/sim/event-queue.js';
import { SimDisk, SimLogStore } from '../../src/raft/sim/log-store.js';

const CONFIG: ClusterConfig = {
  members: ['a', 'b', 'c'].map((id) => ({ id, address: id, voter: true })),
};

function entry(index: number, term: number, data = `v${index}`): Entry {
  return { index, term, kind: 'command', data };
}

function setup(latency = 10) {
  const q = new EventQueue();
  const disk = new SimDisk(CONFIG);
  const violations: string[] = [];
  const open = () =>
    new SimLogStore({
      disk,
      queue: q,
      owner: 'a',
      fsyncLatency: () => latency,
      onViolation: (m) => violations.push(m),
    });
  const run = () => {
    for (let i = 0; i < 10_000 && q.step(); i++) {}
  };
  return { q, disk, open, run, violations };
}

describe('SimLogStore', () => {
  it('starts empty with the bootstrap configuration', () => {
    const { open } = setup();
    const s = open();
    expect(s.lastIndex()).toBe(0);
    expect(s.firstIndex()).toBe(1);
    expect(s.termAt(0)).toBe(0);
    expect(s.termAt(1)).toBeUndefined();
    expect(s.hardState()).toEqual({ term: 0, votedFor: null });
    expect(s.config()).toEqual(CONFIG);
  });

  it('shows writes at once and makes them durable only when the fsync completes', () => {
    const { open, disk, run, q } = setup();
    const s = open();
    s.write({ hardState: { term: 2, votedFor: 'a' }, entries: [entry(1, 2), entry(2, 2)] });
    expect(s.lastIndex()).toBe(2);
    expect(s.entries(1, 2, 10).map((e) => e.data)).toEqual(['v1', 'v2']);
    expect(s.hardState().term).toBe(2);
    expect(disk.state.entries).toHaveLength(0);
    let doneAt = -1;
    s.flush(() => {
      doneAt = q.now();
    });
    expect(disk.state.entries).toHaveLength(0);
    run();
    expect(doneAt).toBe(10);
    expect(disk.state.entries).toHaveLength(2);
    expect(disk.state.hardState).toEqual({ term: 2, votedFor: 'a' });
  });

  it('loses every write not yet fsynced in a crash, including one in the middle of a batch', () => {
    const { open, q, run } = setup();
    const s = open();
    s.write({ entries: [entry(1, 1)] });
    s.flush(() => {});
    run(); // entry 1 durable
    s.write({ entries: [entry(2, 1)] });
    s.flush(() => {}); // in flight
    s.write({ hardState: { term: 3, votedFor: 'b' } });
    q.after(5, 'crash', () => s.crash()); // before the fsync completes at +10
    run();
    const again = open();
    expect(again.lastIndex()).toBe(1);
    expect(again.hardState()).toEqual({ term: 0, votedFor: null });
  });

  it('a flush covers exactly the writes issued before it; fsyncs complete in order', () => {
    let latency = 30;
    const q = new EventQueue();
    const disk = new SimDisk(CONFIG);
    const s = new SimLogStore({ disk, queue: q, owner: 'a', fsyncLatency: () => latency });
    const done: string[] = [];
    s.write({ entries: [entry(1, 1)] });
    s.flush(() => done.push(`first@${q.now()}:${disk.state.entries.length}`));
    latency = 5;
    s.write({ entries: [entry(2, 1)] });
    s.flush(() => done.push(`second@${q.now()}:${disk.state.entries.length}`));
    s.write({ entries: [entry(3, 1)] });
    for (let i = 0; i < 100 && q.step(); i++) {}
    expect(done).toEqual(['first@30:1', 'second@30:2']);
    expect(s.unflushed()).toBe(1);
  });

  it('can be made to lie: an fsync that acks without persisting (fault injection)', () => {
    const q = new EventQueue();
    const disk = new SimDisk(CONFIG);
    const s = new SimLogStore({ disk, queue: q, owner: 'a', fsyncLatency: () => 1, lie: () => true });
    let acked = false;
    s.write({ entries: [entry(1, 1)] });
    s.flush(() => {
      acked = true;
    });
    for (let i = 0; i < 10 && q.step(); i++) {}
    expect(acked).toBe(true);
    expect(disk.state.entries).toHaveLength(0);
  });

  it('truncates a conflicting suffix, on disk too once flushed', () => {
    const { open, disk, run } = setup();
    const s = open();
    s.write({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
    s.flush(() => {});
    run();
    s.write({ truncateFrom: 2, entries: [entry(2, 2, 'x')] });
    expect(s.lastIndex()).toBe(2);
    expect(s.termAt(2)).toBe(2);
    expect(disk.state.entries.map((e) => e.term)).toEqual([1, 1, 1]);
    s.flush(() => {});
    run();
    expect(disk.state.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
  });

  it('reports a write that breaks the contract (gap, truncation past the end)', () => {
    const { open, violations } = setup();
    const s = open();
    expect(() => s.write({ entries: [entry(2, 1)] })).toThrow(/expected/);
    expect(() => s.write({ truncateFrom: 5 })).toThrow(/past the end/);
    expect(violations).toHaveLength(2);
  });

  it('tracks the last configuration entry, and forgets it when truncated', () => {
    const { open } = setup();
    const s = open();
    const two: ClusterConfig = { members: CONFIG.members.slice(0, 2) };
    s.write({ entries: [entry(1, 1), { index: 2, term: 1, kind: 'config', data: JSON.stringify(two) }] });
    expect(s.config()).toEqual(two);
    s.write({ truncateFrom: 2 });
    expect(s.config()).toEqual(CONFIG);
  });

  it('reports the lowest changed index since the last look', () => {
    const { open } = setup();
    const s = open();
    expect(s.takeDirtyFrom()).toBe(1);
    expect(s.takeDirtyFrom()).toBe(Number.POSITIVE_INFINITY);
    s.write({ entries: [entry(1, 1), entry(2, 1)] });
    s.write({ truncateFrom: 2, entries: [entry(2, 2)] });
    expect(s.takeDirtyFrom()).toBe(1);
    s.write({ entries: [entry(3, 2)] });
    expect(s.takeDirtyFrom()).toBe(3);
  });

  it('compacts and resets to a snapshot, keeping a matching suffix', () => {
    const { open } = setup();
    const s = open();
    s.write({ entries: [entry(1, 1), entry(2, 1), entry(3, 2)] });
    s.compact({ index: 2, term: 1, config: CONFIG });
    expect(s.firstIndex()).toBe(3);
    expect(s.termAt(2)).toBe(1);
    expect(s.termAt(1)).toBeUndefined();
    expect(s.entries(1, 3, 10)).toEqual([]);
    expect(s.entries(3, 3, 10).map((e) => e.index)).toEqual([3]);
    s.resetToSnapshot({ index: 3, term: 2, config: CONFIG });
    expect(s.lastIndex()).toBe(3);
    s.resetToSnapshot({ index: 5, term: 3, config: CONFIG });
    expect(s.lastIndex()).toBe(5);
    expect(s.firstIndex()).toBe(6);
  });
});
