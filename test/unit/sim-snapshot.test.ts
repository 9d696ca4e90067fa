// The simulator's snapshot pieces: the state machine's encode/restore, and the invariant checks that
// keep working on compacted logs (each check is shown to fail on a bad input).

import { describe, expect, it } from 'vitest';
import type { Entry, LogView, Role, SnapshotMeta } from '../../machines/protocol.js';
import type { SnapshotPayload } from '../../src/raft/interfaces.js';
import { InvariantChecker, type NodeObservation } from '../../src/raft/sim/invariants.js';
import { MemorySnapshotStore } from '../../src/raft/sim/memory-snapshot-store.js';
import {
  SimDatabase,
  SimStateMachine,
  decodeDatabaseInto,
  encodeAppend,
  encodeDatabase,
} from '../../src/raft/sim/state-machine.js';

const config = { members: [{ id: 'n1', address: 'sim://n1', voter: true }] };

function cmd(index: number, value: string, seq: number, key = 'k'): Entry {
  return { index, term: 1, kind: 'command', data: encodeAppend({ key, value, client: 'c1', seq }) };
}

/** A log compacted through `snapIndex` (term `snapTerm`), holding `terms` after it. */
function compactedLog(snapIndex: number, snapTerm: number, terms: number[]): LogView {
  const entries: Entry[] = terms.map((term, k) => ({
    index: snapIndex + 1 + k,
    term,
    kind: 'command',
    data: `t${term}i${snapIndex + 1 + k}`,
  }));
  return {
    lastIndex: () => snapIndex + entries.length,
    firstIndex: () => snapIndex + 1,
    termAt: (i) => (i === 0 ? 0 : i === snapIndex ? snapTerm : entries[i - snapIndex - 1]?.term),
    entries: (from, to, max) =>
      from <= snapIndex ? [] : entries.slice(from - snapIndex - 1, Math.min(to, from + max - 1) - snapIndex),
    snapshot: () => ({ index: snapIndex, term: snapTerm, config }),
  };
}

function obs(id: string, log: LogView, commitIndex: number, role: Role = 'follower'): NodeObservation {
  return { id, incarnation: 0, role, term: 2, commitIndex, appliedIndex: commitIndex, log, logDirtyFrom: 1 };
}

describe('SimStateMachine snapshots', () => {
  it('encodes its state canonically and restores it exactly, applied index included', () => {
    const a = new SimDatabase();
    const sm = new SimStateMachine(a);
    sm.apply([cmd(1, 'x', 1, 'b'), cmd(2, 'y', 2, 'a'), cmd(3, 'z', 3, 'b')]);
    const text = encodeDatabase(a);
    const b = new SimDatabase();
    decodeDatabaseInto(b, text);
    expect(b.applied).toBe(3);
    expect(b.lists.get('b')).toEqual(['x', 'z']);
    expect(encodeDatabase(b)).toBe(text);
    // The session table is part of it: a retry of seq 3 after a restore is still a duplicate.
    const sm2 = new SimStateMachine(b);
    const [out] = sm2.apply([cmd(4, 'z', 3, 'b')]);
    expect(out!.result).toMatchObject({ ok: true, duplicate: true });
    expect(b.lists.get('b')).toEqual(['x', 'z']);
  });

  it("restore() replaces the state with a snapshot's bytes and reports what it holds", () => {
    const leader = new SimDatabase();
    new SimStateMachine(leader).apply([cmd(1, 'x', 1), cmd(2, 'y', 2)]);
    const meta: SnapshotMeta = { index: 2, term: 1, config };
    const store = new MemorySnapshotStore();
    store.put(meta, new TextEncoder().encode(encodeDatabase(leader)));
    const follower = new SimDatabase();
    const restored: string[] = [];
    const sm = new SimStateMachine(follower, undefined, undefined, (_m, text) => restored.push(text));
    sm.restore(store.payload() as SnapshotPayload);
    expect(follower.applied).toBe(2);
    expect(follower.lists.get('k')).toEqual(['x', 'y']);
    expect(restored).toEqual([encodeDatabase(leader)]);
    // The next apply continues right after the snapshot.
    sm.apply([cmd(3, 'w', 3)]);
    expect(follower.lists.get('k')).toEqual(['x', 'y', 'w']);
  });

  it('restore() refuses bytes that are not a database, or one at another index, and changes nothing', () => {
    const db = new SimDatabase();
    const violations: string[] = [];
    const sm = new SimStateMachine(db, undefined, (m) => violations.push(m));
    const payload = (index: number, bytes: Uint8Array): SnapshotPayload => ({
      meta: { index, term: 1, config },
      byteLength: bytes.length,
      read: (o, n) => bytes.slice(o, o + n),
    });
    const text = encodeDatabase(Object.assign(new SimDatabase(), { applied: 5 }));
    expect(() => sm.restore(payload(6, new TextEncoder().encode(text)))).toThrow(/applied through 5/);
    expect(() => sm.restore(payload(6, Uint8Array.of(0, 1, 2)))).toThrow(/not an encoded database/);
    expect(violations).toHaveLength(2);
    expect(db.applied).toBe(0);
  });
});

describe('invariant checks with snapshots', () => {
  it('accepts compacted logs that agree with the committed entries', () => {
    const c = new InvariantChecker();
    // n1 holds the full log and commits 1..4; n2 compacted through 3 and holds 4.
    const full = compactedLog(0, 0, [1, 1, 2, 2]);
    c.observe([obs('n1', full, 4, 'leader'), obs('n2', compactedLog(3, 2, [2]), 4)]);
    c.snapshotTaken('n2', 3, 'state@3');
    c.snapshotRestored('n3', 3, 2, 'state@3');
    expect(c.violations).toEqual([]);
  });

  it('catches a log snapshot whose term is not the committed one', () => {
    const c = new InvariantChecker();
    c.observe([obs('n1', compactedLog(0, 0, [1, 1, 2]), 3, 'leader')]);
    c.observe([obs('n2', compactedLog(2, 2, [2]), 3)]);
    expect(c.violations.join()).toMatch(/n2: log snapshot at 2 has term 2, but term 1 was committed/);
  });

  it('catches a log compacted beyond what the node knows committed', () => {
    const c = new InvariantChecker();
    c.observe([obs('n2', compactedLog(3, 1, [1]), 2)]);
    expect(c.violations.join()).toMatch(/log snapshot at 3 beyond commitIndex 2/);
  });

  it('catches two different states taken or installed at one index (state machine safety)', () => {
    const c = new InvariantChecker();
    c.snapshotTaken('n1', 10, '{"a":1}');
    c.snapshotTaken('n2', 10, '{"a":1}');
    expect(c.violations).toEqual([]);
    c.snapshotRestored('n3', 10, 1, '{"a":2}');
    expect(c.violations.join()).toMatch(
      /state machine safety: n3 installed a snapshot at 10 that differs from n1/,
    );
  });

  it('catches an installed snapshot whose term is not the committed one', () => {
    const c = new InvariantChecker();
    c.observe([obs('n1', compactedLog(0, 0, [1, 1]), 2, 'leader')]);
    c.snapshotRestored('n2', 2, 3, 'x');
    expect(c.violations.join()).toMatch(/installed a snapshot at 2 with term 3, but term 1 was committed/);
  });
});
