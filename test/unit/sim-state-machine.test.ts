import { describe, expect, it } from 'vitest';
import type { Entry } from '../../machines/protocol.js';
import { SimDatabase, SimStateMachine, encodeAppend } from '../../src/raft/sim/state-machine.js';

function cmd(index: number, client: string, seq: number, key = 'k', value = `${client}.${seq}`): Entry {
  return { index, term: 1, kind: 'command', data: encodeAppend({ key, value, client, seq }) };
}

describe('SimStateMachine', () => {
  it('appends values, advances the applied index, skips noops', () => {
    const db = new SimDatabase();
    const sm = new SimStateMachine(db);
    const out = sm.apply([cmd(1, 'c1', 1), { index: 2, term: 1, kind: 'noop', data: '' }, cmd(3, 'c2', 1)]);
    expect(sm.appliedIndex()).toBe(3);
    expect(sm.read('k')).toEqual(['c1.1', 'c2.1']);
    expect(out.map((o) => o.index)).toEqual([1, 2, 3]);
    expect(out[0]!.result).toEqual({ ok: true, value: 'c1.1', position: 0, duplicate: false });
    expect(out[1]!.result).toBeNull();
  });

  it('applies a retried request once and answers it like the first time', () => {
    const db = new SimDatabase();
    const sm = new SimStateMachine(db);
    sm.apply([cmd(1, 'c1', 1), cmd(2, 'c1', 1)]);
    expect(sm.read('k')).toEqual(['c1.1']);
    const [again] = sm.apply([cmd(3, 'c1', 1)]);
    expect(again!.result).toEqual({ ok: true, value: 'c1.1', position: 0, duplicate: true });
    sm.apply([cmd(4, 'c1', 2)]);
    expect(sm.read('k')).toEqual(['c1.1', 'c1.2']);
  });

  it('refuses to skip or re-apply an index', () => {
    const violations: string[] = [];
    const sm = new SimStateMachine(new SimDatabase(), undefined, (m) => violations.push(m));
    sm.apply([cmd(1, 'c', 1)]);
    expect(() => sm.apply([cmd(1, 'c', 1)])).toThrow(/double apply/);
    expect(() => sm.apply([cmd(3, 'c', 2)])).toThrow(/skip/);
    expect(violations).toHaveLength(2);
    expect(sm.appliedIndex()).toBe(1);
  });

  it('survives a restart exactly as applied (the database is the durable part)', () => {
    const db = new SimDatabase();
    new SimStateMachine(db).apply([cmd(1, 'c', 1), cmd(2, 'c', 2)]);
    const after = new SimStateMachine(db);
    expect(after.appliedIndex()).toBe(2);
    expect(after.read('k')).toEqual(['c.1', 'c.2']);
  });

  it('returns an error as data for a malformed command', () => {
    const sm = new SimStateMachine(new SimDatabase());
    const [o] = sm.apply([{ index: 1, term: 1, kind: 'command', data: '{nope' }]);
    expect(o!.result).toEqual({ ok: false, error: 'malformed command' });
    expect(sm.appliedIndex()).toBe(1);
  });

  it('reports every applied batch', () => {
    const seen: number[] = [];
    const sm = new SimStateMachine(new SimDatabase(), (es) => seen.push(...es.map((e) => e.index)));
    sm.apply([cmd(1, 'c', 1), cmd(2, 'c', 2)]);
    expect(seen).toEqual([1, 2]);
  });
});
