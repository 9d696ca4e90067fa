import { describe, expect, it } from 'vitest';
import { type HistoryOp, checkLinearizable } from '../../src/raft/sim/linearizability.js';

// Tiny builders: a(value, invoked, responded?) appends to key 'k'; r(result, invoked, responded).
let nextId = 1;
function a(value: string, invokedAt: number, respondedAt?: number, key = 'k'): HistoryOp {
  return { id: nextId++, client: `c-${value}`, kind: 'append', key, value, invokedAt, respondedAt };
}
function r(result: string[], invokedAt: number, respondedAt: number | undefined, key = 'k'): HistoryOp {
  return { id: nextId++, client: 'reader', kind: 'read', key, invokedAt, respondedAt, result };
}
function check(ops: HistoryOp[]) {
  return checkLinearizable(ops);
}

describe('checkLinearizable: histories that must pass', () => {
  it('empty history and a read of nothing', () => {
    expect(check([]).ok).toBe(true);
    expect(check([r([], 0, 1)]).ok).toBe(true);
  });

  it('sequential appends and reads', () => {
    expect(check([a('x', 0, 1), r(['x'], 2, 3), a('y', 4, 5), r(['x', 'y'], 6, 7)]).ok).toBe(true);
  });

  it('concurrent appends may take either order', () => {
    expect(check([a('x', 0, 10), a('y', 1, 9), r(['y', 'x'], 11, 12)]).ok).toBe(true);
    expect(check([a('x', 0, 10), a('y', 1, 9), r(['x', 'y'], 11, 12)]).ok).toBe(true);
  });

  it('a read concurrent with an append may or may not see it', () => {
    expect(check([a('x', 0, 10), r([], 5, 6)]).ok).toBe(true);
    expect(check([a('x', 0, 10), r(['x'], 5, 6)]).ok).toBe(true);
  });

  it('an append with no response may show up, late or never', () => {
    expect(check([a('x', 0), r([], 5, 6), r(['x'], 100, 101)]).ok).toBe(true);
    expect(check([a('x', 0), r([], 100, 101)]).ok).toBe(true);
  });

  it('a read with no response constrains nothing', () => {
    expect(check([a('x', 0, 1), r(['bogus-order'], 5, undefined)]).ok).toBe(true);
  });

  it('keys are independent', () => {
    const ops = [a('x', 0, 1, 'k1'), a('y', 0, 1, 'k2'), r(['x'], 2, 3, 'k1'), r(['y'], 2, 3, 'k2')];
    expect(check(ops).ok).toBe(true);
  });

  it('two concurrent reads of different lengths while an append is in flight', () => {
    expect(check([a('x', 0, 20), r(['x'], 1, 5), r([], 2, 6)]).ok).toBe(true);
  });

  it('operations touching at the same instant count as concurrent', () => {
    expect(check([a('x', 0, 5), r([], 5, 6)]).ok).toBe(true);
  });

  it('checks a long, highly concurrent history (polynomial: an exponential search would not finish)', () => {
    const ops: HistoryOp[] = [];
    const seen: string[] = [];
    for (let i = 0; i < 1500; i++) {
      const v = `v${i}`;
      ops.push(a(v, i * 10, i * 10 + 15)); // overlapping appends
      seen.push(v);
      if (i % 3 === 0) ops.push(r([...seen], i * 10 + 16, i * 10 + 17));
    }
    expect(check(ops).ok).toBe(true);
    // The same history with one stale read at the end must fail.
    ops.push(r(seen.slice(0, 10), 1e6, 1e6 + 1));
    expect(check(ops).ok).toBe(false);
  });
});

describe('checkLinearizable: histories that must fail', () => {
  it('a read misses an append acknowledged before it began (stale read)', () => {
    const res = check([a('x', 0, 1), r([], 2, 3)]);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(/missed append/);
  });

  it('a read sees a value appended only after it finished', () => {
    const res = check([r(['x'], 0, 1), a('x', 2, 3)]);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(/not yet appended/);
  });

  it('reads that disagree on the order', () => {
    const res = check([a('x', 0, 10), a('y', 0, 10), r(['x', 'y'], 11, 12), r(['y', 'x'], 11, 12)]);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(/not a prefix/);
  });

  it('reads going backwards in real time', () => {
    const res = check([a('x', 0, 100), r(['x'], 1, 2), r([], 3, 4)]);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(/backwards/);
  });

  it('appends ordered against real time', () => {
    const res = check([a('x', 0, 1), a('y', 2, 3), r(['y', 'x'], 4, 5)]);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(/out of real-time order/);
  });

  it('an acknowledged append no read saw, ordered before one a read saw', () => {
    const res = check([a('x', 0, 1), a('y', 2, 3), r(['y'], 2.5, 10)]);
    expect(res.ok).toBe(false);
  });

  it('a value applied twice (duplicate in a read)', () => {
    const res = check([a('x', 0, 1), r(['x', 'x'], 2, 3)]);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(/twice/);
  });

  it('a value nobody appended, or appended to another key', () => {
    const ghost = check([r(['ghost'], 0, 1)]);
    expect(ghost.ok).toBe(false);
    if (!ghost.ok) expect(ghost.reason).toMatch(/nobody appended/);
    const wrongKey = check([a('x', 0, 1, 'k1'), r(['x'], 2, 3, 'k2')]);
    expect(wrongKey.ok).toBe(false);
    if (!wrongKey.ok) expect(wrongKey.reason).toMatch(/appended to key k1/);
  });

  it('the same value appended twice in the history is refused as input', () => {
    const res = check([a('x', 0, 1), a('x', 2, 3)]);
    expect(res.ok).toBe(false);
  });

  it('a lost acknowledged append seen by an early read but not a later one', () => {
    const res = check([a('x', 0, 1), r(['x'], 2, 3), r([], 4, 5)]);
    expect(res.ok).toBe(false);
  });

  it('a failure names the key and the operations involved', () => {
    const res = check([a('x', 0, 1, 'chat-7'), r([], 2, 3, 'chat-7')]);
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.key).toBe('chat-7');
      expect(res.ops.map((o) => o.kind).sort()).toEqual(['append', 'read']);
    }
  });
});
