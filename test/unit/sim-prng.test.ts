import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/raft/sim/prng.js';

describe('Prng', () => {
  it('replays the same sequence for the same seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const xs = Array.from({ length: 100 }, () => a.nextU32());
    const ys = Array.from({ length: 100 }, () => b.nextU32());
    expect(xs).toEqual(ys);
  });

  it('gives different sequences for different seeds', () => {
    const a = Array.from(
      { length: 8 },
      (
        (r) => () =>
          r.nextU32()
      )(new Prng(1)),
    );
    const b = Array.from(
      { length: 8 },
      (
        (r) => () =>
          r.nextU32()
      )(new Prng(2)),
    );
    expect(a).not.toEqual(b);
  });

  it('keeps int, range and float within bounds and covers them', () => {
    const r = new Prng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const x = r.int(10);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(10);
      seen.add(x);
      const y = r.range(3, 5);
      expect(y).toBeGreaterThanOrEqual(3);
      expect(y).toBeLessThanOrEqual(5);
      const f = r.float();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
    }
    expect(seen.size).toBe(10);
  });

  it('chance(0) is never true and chance(1) always', () => {
    const r = new Prng(3);
    for (let i = 0; i < 100; i++) {
      expect(r.chance(0)).toBe(false);
      expect(r.chance(1)).toBe(true);
    }
  });

  it('forks deterministic, independent streams', () => {
    const a = new Prng(9).fork();
    const b = new Prng(9).fork();
    expect(a.nextU32()).toBe(b.nextU32());
    const parent = new Prng(9);
    const child = parent.fork();
    expect(child.nextU32()).not.toBe(parent.nextU32());
  });
});
