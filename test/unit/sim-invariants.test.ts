import { describe, expect, it } from 'vitest';
import type { Entry, LogView, RaftMessage, Role } from '../../machines/protocol.js';
import { InvariantChecker, type NodeObservation } from '../../src/raft/sim/invariants.js';

// Logs are written as term lists: [1, 1, 2] is entries 1..3 with those terms, data `t<term>i<index>`.
function logOf(terms: number[], data: (i: number, t: number) => string = (i, t) => `t${t}i${i}`): LogView {
  const entries: Entry[] = terms.map((term, k) => ({
    index: k + 1,
    term,
    kind: 'command',
    data: data(k + 1, term),
  }));
  return {
    lastIndex: () => entries.length,
    firstIndex: () => 1,
    termAt: (i) => (i === 0 ? 0 : entries[i - 1]?.term),
    entries: (from, to, max) => entries.slice(from - 1, Math.min(to, from + max - 1)),
    snapshot: () => ({ index: 0, term: 0, config: { members: [] } }),
  };
}

function node(
  id: string,
  o: Partial<Omit<NodeObservation, 'id' | 'log'>> & { log?: LogView } = {},
): NodeObservation {
  const log = o.log ?? logOf([]);
  return {
    id,
    incarnation: 0,
    role: 'follower' as Role,
    term: 1,
    commitIndex: 0,
    appliedIndex: 0,
    logDirtyFrom: 1,
    ...o,
    log,
  };
}

function entry(index: number, term: number, data = `t${term}i${index}`): Entry {
  return { index, term, kind: 'command', data };
}

describe('InvariantChecker passes a healthy cluster', () => {
  it('one leader per term, matching logs, growing commits, consistent applies', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { role: 'leader', term: 1, log: logOf([1, 1]) }), node('b', { log: logOf([1]) })]);
    c.observe([
      node('a', { role: 'leader', term: 1, log: logOf([1, 1, 1]), commitIndex: 2 }),
      node('b', { log: logOf([1, 1]), commitIndex: 1 }),
    ]);
    c.appliedEntries('a', [entry(1, 1), entry(2, 1)]);
    c.appliedEntries('b', [entry(1, 1)]);
    c.observe([
      node('a', { role: 'follower', term: 2, log: logOf([1, 1, 1]), commitIndex: 2, appliedIndex: 2 }),
      node('b', { role: 'leader', term: 2, log: logOf([1, 1, 1, 2]), commitIndex: 2, appliedIndex: 1 }),
    ]);
    expect(c.violations).toEqual([]);
    expect(c.committedIndex()).toBe(2);
  });

  it('a follower may truncate an uncommitted suffix', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { term: 2, log: logOf([1, 2, 2]), commitIndex: 1 })]);
    c.observe([node('a', { term: 3, log: logOf([1, 3]), commitIndex: 1 })]);
    expect(c.violations).toEqual([]);
  });

  it('after a restart, term may fall back to the durable term and commit to the applied index', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { term: 5, commitIndex: 3, appliedIndex: 2, log: logOf([1, 1, 1]) })]);
    c.crashed('a', 4, 2);
    c.observe([
      node('a', { incarnation: 1, term: 4, commitIndex: 2, appliedIndex: 2, log: logOf([1, 1, 1]) }),
    ]);
    expect(c.violations).toEqual([]);
  });

  it('pre-vote messages may carry a future term', () => {
    const c = new InvariantChecker();
    const send = (m: Partial<RaftMessage>) => c.sent({ from: 'a', to: 'b', ...m } as RaftMessage);
    send({ type: 'RequestVote', term: 3, preVote: true, lastLogIndex: 0, lastLogTerm: 0, transfer: false });
    send({ type: 'AppendEntriesResponse', term: 2 } as Partial<RaftMessage>);
    expect(c.violations).toEqual([]);
  });
});

describe('InvariantChecker catches broken clusters', () => {
  it('election safety: two leaders in one term, even at different times', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { role: 'leader', term: 3 })]);
    c.observe([node('a', { role: 'follower', term: 3 }), node('b', { role: 'leader', term: 3 })]);
    expect(c.violations.join()).toMatch(/election safety: b and a are both leaders of term 3/);
  });

  it('a voter granting two candidates in one term (votedFor not persisted across a restart)', () => {
    const c = new InvariantChecker();
    const grant = (to: string) =>
      c.sent({ type: 'RequestVoteResponse', from: 'v', to, term: 4, granted: true, preVote: false });
    grant('a');
    grant('a'); // a duplicate answer to the same candidate is fine
    expect(c.violations).toEqual([]);
    grant('b');
    expect(c.violations.join()).toMatch(/granted its vote in term 4 to both a and b/);
  });

  it('log matching: same (index, term) with different data', () => {
    const c = new InvariantChecker();
    c.observe([
      node('a', { log: logOf([1, 1]) }),
      node('b', { log: logOf([1, 1], (i, t) => (i === 2 ? 'other' : `t${t}i${i}`)) }),
    ]);
    expect(c.violations.join()).toMatch(/log matching: entry \(2, term 1\) differs/);
  });

  it('log matching: same (index, term) on different prefixes', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { log: logOf([1, 2, 3]) }), node('b', { log: logOf([1, 1, 3]) })]);
    expect(c.violations.join()).toMatch(/differ at 2/);
  });

  it('log matching is checked across time, not only between logs alive together', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { log: logOf([1, 1]) })]);
    c.observe([node('a', { log: logOf([1, 1], () => 'rewritten') })]);
    expect(c.violations.join()).toMatch(/log matching/);
  });

  it('leader completeness: a new leader without a committed entry', () => {
    const c = new InvariantChecker();
    c.observe([
      node('a', { role: 'leader', term: 1, log: logOf([1, 1]), commitIndex: 2 }),
      node('b', { term: 1, log: logOf([1, 1]), commitIndex: 2 }),
      node('c', { term: 1, log: logOf([1]) }),
    ]);
    c.observe([node('c', { role: 'leader', term: 2, log: logOf([1, 2]) })]);
    expect(c.violations.join()).toMatch(/leader completeness: c, leader of term 2, has term 2 at 2/);
  });

  it('leader completeness: a sitting leader of a later term lacking a newly seen commit', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { role: 'leader', term: 3, log: logOf([1, 3]) })]);
    // A node of term 1 reports index 2 (term 1) committed in term 1: leader a (term 3) must have it.
    c.observe([
      node('a', { role: 'leader', term: 3, log: logOf([1, 3]) }),
      node('z', { term: 1, log: logOf([1, 1]), commitIndex: 2 }),
    ]);
    expect(c.violations.join()).toMatch(/leader completeness/);
  });

  it('state machine safety: different commands applied at one index', () => {
    const c = new InvariantChecker();
    c.appliedEntries('a', [entry(1, 1, 'x')]);
    c.appliedEntries('b', [entry(1, 1, 'y')]);
    expect(c.violations.join()).toMatch(/state machine safety: b applied/);
  });

  it('applying something other than the committed entry', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { term: 2, log: logOf([2]), commitIndex: 1 })]);
    c.appliedEntries('b', [entry(1, 1)]);
    expect(c.violations.join()).toMatch(/committed entry has term 2/);
  });

  it('two nodes committing different terms at one index', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { term: 2, log: logOf([1]), commitIndex: 1 })]);
    c.observe([node('b', { term: 2, log: logOf([2]), commitIndex: 1 })]);
    expect(c.violations.join()).toMatch(/committed/);
  });

  it('monotonicity within an incarnation: term, commitIndex, applied', () => {
    for (const field of ['term', 'commitIndex', 'appliedIndex'] as const) {
      const c = new InvariantChecker();
      c.observe([node('a', { term: 3, commitIndex: 2, appliedIndex: 2, log: logOf([1, 1]) })]);
      c.observe([node('a', { term: 3, commitIndex: 2, appliedIndex: 2, log: logOf([1, 1]), [field]: 1 })]);
      expect(c.violations.join()).toMatch(/went back/);
    }
  });

  it('monotonicity across a restart: term below the durable term, applied going back', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { term: 5, commitIndex: 2, appliedIndex: 2, log: logOf([1, 1]) })]);
    c.crashed('a', 5, 2);
    c.observe([node('a', { incarnation: 1, term: 4, commitIndex: 1, appliedIndex: 1, log: logOf([1, 1]) })]);
    const v = c.violations.join('\n');
    expect(v).toMatch(/below its durable term 5/);
    expect(v).toMatch(/restarted with applied 1/);
  });

  it('strict mode: commitIndex must not fall below the commitIndex before a crash', () => {
    const c = new InvariantChecker({ strictCommitAcrossRestarts: true });
    c.observe([node('a', { term: 1, commitIndex: 3, appliedIndex: 2, log: logOf([1, 1, 1]) })]);
    c.crashed('a', 1, 2);
    c.observe([
      node('a', { incarnation: 1, term: 1, commitIndex: 2, appliedIndex: 2, log: logOf([1, 1, 1]) }),
    ]);
    expect(c.violations.join()).toMatch(/restarted with commitIndex 2, below 3/);
  });

  it('a node speaking with a lower term than it spoke before (term not persisted)', () => {
    const c = new InvariantChecker();
    c.sent({ type: 'TimeoutNow', from: 'a', to: 'b', term: 5 });
    c.sent({ type: 'TimeoutNow', from: 'a', to: 'b', term: 4 });
    expect(c.violations.join()).toMatch(/sent TimeoutNow with term 4 after sending term 5/);
  });

  it('applied beyond commit, commit beyond the log', () => {
    const c = new InvariantChecker();
    c.observe([node('a', { commitIndex: 3, appliedIndex: 4, log: logOf([1, 1]) })]);
    expect(c.violations.join('\n')).toMatch(/applied 4 beyond commitIndex 3/);
    expect(c.violations.join('\n')).toMatch(/commitIndex 3 beyond its last log index 2/);
  });
});
