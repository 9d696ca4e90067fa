// The pure Figure-2 rules, one by one.

import { describe, expect, it } from 'vitest';
import type { AppendEntries, ClusterConfig, Entry } from '../../machines/protocol.js';
import { termsOf } from '../../machines/replica/log-terms.js';
import {
  computeCommit,
  conflictHint,
  drawElectionTimeout,
  isSingleServerChange,
  isUpToDate,
  lastConfigAtOrBefore,
  nextIndexAfterReject,
  nextRandom,
  planAppend,
  quorum,
  tally,
} from '../../machines/replica/rules.js';
import { MemoryLogStore } from '../support/memory-log-store.js';

/** A log's terms (as the machines hold them) from a list of terms: terms[i] is the term of index i + 1. */
function log(terms: number[]) {
  return termsOf(view(terms));
}

/** A host's view of such a log. */
function view(terms: number[], kinds: Record<number, Entry['kind']> = {}, data: Record<number, string> = {}) {
  return new MemoryLogStore({
    entries: terms.map((term, i) => ({
      index: i + 1,
      term,
      kind: kinds[i + 1] ?? 'command',
      data: data[i + 1] ?? '',
    })),
  });
}

function ae(prevLogIndex: number, prevLogTerm: number, terms: number[], leaderCommit = 0): AppendEntries {
  return {
    type: 'AppendEntries',
    from: 'l',
    to: 'f',
    term: 9,
    prevLogIndex,
    prevLogTerm,
    entries: terms.map((term, i) => ({ index: prevLogIndex + 1 + i, term, kind: 'command', data: '' })),
    leaderCommit,
    readRound: 0,
  };
}

const cfg = (ids: string[], learners: string[] = []): ClusterConfig => ({
  members: [
    ...ids.map((id) => ({ id, address: id, voter: true })),
    ...learners.map((id) => ({ id, address: id, voter: false })),
  ],
});

describe('quorum and tally', () => {
  it('majorities', () => {
    expect([1, 2, 3, 4, 5].map(quorum)).toEqual([1, 2, 2, 3, 3]);
  });
  it('counts only voters: a learner vote never decides', () => {
    const c = cfg(['a', 'b', 'c'], ['l']);
    expect(tally(c, { a: true, l: true })).toBe('pending');
    expect(tally(c, { a: true, b: true })).toBe('won');
    expect(tally(c, { a: true, b: false, c: false })).toBe('lost');
  });
});

describe('§5.4.1 up-to-date check', () => {
  it('a higher last term wins regardless of length', () => {
    expect(isUpToDate(1, 3, 10, 2)).toBe(true);
    expect(isUpToDate(10, 2, 1, 3)).toBe(false);
  });
  it('equal last terms: the longer (or equal) log is up to date', () => {
    expect(isUpToDate(5, 2, 5, 2)).toBe(true);
    expect(isUpToDate(4, 2, 5, 2)).toBe(false);
  });
});

describe('AppendEntries receiver (Figure 2, rules 2-4)', () => {
  it('rejects when prevLogIndex is beyond our log, hinting our length', () => {
    expect(planAppend(log([1, 1]), ae(5, 1, []), 0)).toEqual({
      ok: false,
      conflictIndex: 3,
      conflictTerm: 0,
    });
  });
  it('rejects a term mismatch at prevLogIndex, hinting the first index of our conflicting term', () => {
    expect(planAppend(log([1, 2, 2, 2]), ae(4, 3, []), 0)).toEqual({
      ok: false,
      conflictIndex: 2,
      conflictTerm: 2,
    });
  });
  it('appends missing entries after a match', () => {
    expect(planAppend(log([1]), ae(1, 1, [2, 2]), 0)).toMatchObject({
      ok: true,
      lastNew: 3,
      append: [{ index: 2 }, { index: 3 }],
    });
  });
  it('truncates from the first conflicting entry only', () => {
    const plan = planAppend(log([1, 1, 2, 2]), ae(1, 1, [1, 3]), 0);
    expect(plan).toMatchObject({ ok: true, truncateFrom: 3, lastNew: 3 });
    if (plan.ok) expect(plan.append.map((e) => e.index)).toEqual([3]);
  });
  it('a stale (shorter) AppendEntries never truncates matching entries', () => {
    expect(planAppend(log([1, 1, 1]), ae(0, 0, [1]), 0)).toEqual({ ok: true, append: [], lastNew: 1 });
  });
  it('entries at or below the commit index are known to match and are skipped', () => {
    expect(planAppend(log([1, 1, 1]), ae(0, 0, [1, 1]), 3)).toEqual({ ok: true, append: [], lastNew: 3 });
    expect(planAppend(log([1, 1]), ae(0, 0, [1, 1, 2]), 2)).toMatchObject({
      ok: true,
      lastNew: 3,
      append: [{ index: 3 }],
    });
  });
  it('the hint never reaches below the commit index', () => {
    expect(conflictHint(log([2, 2, 2, 2]), 4, 2)).toEqual({ conflictIndex: 3, conflictTerm: 2 });
  });
});

describe('leader backtracking', () => {
  it('skips the follower whole conflicting term when the leader has none of it', () => {
    // leader: 1,3,3,3,3; follower had term 2 from index 2.
    expect(nextIndexAfterReject(log([1, 3, 3, 3, 3]), { conflictIndex: 2, conflictTerm: 2 }, 0, 6)).toBe(2);
  });
  it('resumes after the leader last entry of the conflicting term when it has some', () => {
    // leader: 1,2,2,4,4; follower has term 2 through index 5.
    expect(nextIndexAfterReject(log([1, 2, 2, 4, 4]), { conflictIndex: 2, conflictTerm: 2 }, 0, 6)).toBe(4);
  });
  it('uses the follower length when its log is short', () => {
    expect(nextIndexAfterReject(log([1, 1, 1, 1, 1]), { conflictIndex: 3, conflictTerm: 0 }, 0, 6)).toBe(3);
  });
  it('never goes below match + 1 and always moves back', () => {
    expect(nextIndexAfterReject(log([1, 1, 1, 1, 1]), { conflictIndex: 1, conflictTerm: 0 }, 3, 6)).toBe(4);
    expect(nextIndexAfterReject(log([1, 1, 1, 1, 1]), { conflictIndex: 9, conflictTerm: 0 }, 0, 6)).toBe(5);
  });
});

describe('commit (Figure 2 leader rule and Figure 8)', () => {
  const terms = (t: number[]) => (i: number) => (i === 0 ? 0 : t[i - 1]);
  it('the quorum-th highest match commits when it is of the current term', () => {
    expect(computeCommit([5, 4, 3], 0, 2, terms([2, 2, 2, 2, 2]))).toBe(4);
    expect(computeCommit([5, 4, 3, 2, 1], 0, 2, terms([2, 2, 2, 2, 2]))).toBe(3);
  });
  it('an entry of an earlier term never commits by counting (Figure 8)', () => {
    expect(computeCommit([3, 3, 1], 1, 4, terms([1, 2, 2]))).toBe(1);
  });
  it('never goes backwards', () => {
    expect(computeCommit([2, 2, 2], 5, 1, terms([1, 1, 1, 1, 1]))).toBe(5);
  });
});

describe('configurations', () => {
  it('single-server changes only', () => {
    expect(isSingleServerChange(cfg(['a', 'b']), cfg(['a', 'b', 'c']))).toBe(true);
    expect(isSingleServerChange(cfg(['a', 'b']), cfg(['a'], ['b']))).toBe(true);
    expect(isSingleServerChange(cfg(['a', 'b']), cfg(['a', 'b', 'c', 'd']))).toBe(false);
    expect(isSingleServerChange(cfg(['a', 'b']), cfg(['c', 'b']))).toBe(false);
  });
  it('finds the config in effect before a truncation point', () => {
    const one = JSON.stringify(cfg(['a']));
    const two = JSON.stringify(cfg(['a', 'b']));
    const l = view([1, 1, 1, 1], { 1: 'config', 3: 'config' }, { 1: one, 3: two });
    expect(lastConfigAtOrBefore(l, 4)).toEqual({ index: 3, config: cfg(['a', 'b']) });
    expect(lastConfigAtOrBefore(l, 2)).toEqual({ index: 1, config: cfg(['a']) });
    expect(lastConfigAtOrBefore(view([1]), 1)).toBeNull();
  });
});

describe('seeded randomness', () => {
  it('is deterministic per seed and stays in range', () => {
    const timing = { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 };
    let rng = 42;
    const seen: number[] = [];
    for (let i = 0; i < 200; i++) {
      const [ms, next] = drawElectionTimeout(rng, timing);
      expect(ms).toBeGreaterThanOrEqual(150);
      expect(ms).toBeLessThan(300);
      seen.push(ms);
      rng = next;
    }
    expect(new Set(seen).size).toBeGreaterThan(50);
    expect(nextRandom(7)).toEqual(nextRandom(7));
  });
});
