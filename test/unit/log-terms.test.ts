// The machines' plain-data view of their log (machines/replica/log-terms.ts): term runs written,
// truncated and compacted exactly as the log stores do, and lookups that agree with a real store.

import { describe, expect, it } from 'vitest';
import type { Entry } from '../../machines/protocol.js';
import { initialContext } from '../../machines/replica/context.js';
import {
  type LogTerms,
  compactTerms,
  runStart,
  termAt,
  termsOf,
  writeTerms,
} from '../../machines/replica/log-terms.js';
import { MemoryLogStore } from '../support/memory-log-store.js';

const entries = (first: number, terms: number[]): Entry[] =>
  terms.map((term, i) => ({ index: first + i, term, kind: 'command', data: '' }));

const empty: LogTerms = { snapshotIndex: 0, snapshotTerm: 0, termRuns: [], lastIndex: 0 };

function write(log: LogTerms, truncateFrom: number | undefined, es: Entry[]): LogTerms {
  const next = writeTerms(log, truncateFrom, es);
  return { ...log, termRuns: next.termRuns, lastIndex: next.lastIndex };
}

/** Every term from 0 to past the end, as a list (undefined where the log has no entry). */
const allTerms = (log: { termAt(i: number): number | undefined }, upTo: number) =>
  Array.from({ length: upTo + 1 }, (_, i) => log.termAt(i));

describe('term runs', () => {
  it('one run per term change; appending entries of the last term changes no array', () => {
    const a = write(empty, undefined, entries(1, [1, 1, 2, 2, 2, 5]));
    expect(a.termRuns).toEqual([
      { index: 1, term: 1 },
      { index: 3, term: 2 },
      { index: 6, term: 5 },
    ]);
    const b = write(a, undefined, entries(7, [5, 5]));
    expect(b.termRuns).toBe(a.termRuns);
    expect(b.lastIndex).toBe(8);
    expect([termAt(b, 0), termAt(b, 2), termAt(b, 3), termAt(b, 8), termAt(b, 9)]).toEqual([
      0,
      1,
      2,
      5,
      undefined,
    ]);
    expect(runStart(b, 5)).toBe(3);
  });

  it('a truncation cuts runs, and the appended entries start new ones (also an append inside the log)', () => {
    const a = write(empty, undefined, entries(1, [1, 1, 2, 2, 3]));
    const b = write(a, 4, entries(4, [4, 4]));
    expect(b.termRuns).toEqual([
      { index: 1, term: 1 },
      { index: 3, term: 2 },
      { index: 4, term: 4 },
    ]);
    expect(writeTerms(a, undefined, entries(3, [6])).termRuns).toEqual([
      { index: 1, term: 1 },
      { index: 3, term: 6 },
    ]);
    expect(writeTerms(a, 3, [])).toMatchObject({ lastIndex: 2, lastTerm: 1 });
  });

  it('compaction drops the runs behind the snapshot and keeps its term', () => {
    const a = write(empty, undefined, entries(1, [1, 1, 2, 2, 3]));
    const b = compactTerms(a, 3, 2);
    expect(b).toEqual({
      snapshotIndex: 3,
      snapshotTerm: 2,
      termRuns: [
        { index: 4, term: 2 },
        { index: 5, term: 3 },
      ],
      lastIndex: 5,
    });
    expect([termAt(b, 2), termAt(b, 3), termAt(b, 4), termAt(b, 5)]).toEqual([undefined, 2, 2, 3]);
    expect(compactTerms(a, 5, 3)).toEqual({ snapshotIndex: 5, snapshotTerm: 3, termRuns: [], lastIndex: 5 });
    // Appending after a compaction through the last entry starts a run.
    expect(write(compactTerms(a, 5, 3), undefined, entries(6, [3])).termRuns).toEqual([
      { index: 6, term: 3 },
    ]);
  });

  it('agrees with a log store through writes, truncations and compaction', () => {
    const store = new MemoryLogStore();
    let log = termsOf(store);
    const steps: [number | undefined, Entry[]][] = [
      [undefined, entries(1, [1, 1, 1, 2])],
      [3, entries(3, [3, 3, 3])],
      [undefined, entries(6, [3, 4])],
      [6, entries(6, [5])],
    ];
    for (const [truncateFrom, es] of steps) {
      store.write({ ...(truncateFrom !== undefined ? { truncateFrom } : {}), entries: es });
      log = write(log, truncateFrom, es);
      expect(allTerms({ termAt: (i) => termAt(log, i) }, 8)).toEqual(allTerms(store, 8));
      expect(termsOf(store)).toEqual(log);
    }
    store.compact({ index: 4, term: 3, config: { members: [] } });
    log = compactTerms(log, 4, 3);
    expect(allTerms({ termAt: (i) => termAt(log, i) }, 8)).toEqual(allTerms(store, 8));
    expect(termsOf(store)).toEqual(log);
  });
});

describe('the replica context', () => {
  it('is plain data: a JSON round trip gives it back, and it holds no reference to the log it started from', () => {
    const config = { members: [{ id: 'a', address: 'a:0', voter: true }] };
    const store = new MemoryLogStore({
      snapshot: { index: 2, term: 1, config },
      hardState: { term: 3, votedFor: 'a' },
      entries: [...entries(3, [1, 2]), { index: 5, term: 3, kind: 'config', data: JSON.stringify(config) }],
    });
    const c = initialContext({
      id: 'a',
      hardState: store.hardState(),
      config: store.config(),
      appliedIndex: 2,
      log: store,
      timing: { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 },
      seed: 1,
    });
    expect(JSON.parse(JSON.stringify(c))).toEqual(c);
    expect(Object.values(c)).not.toContain(store);
    expect(c).toMatchObject({ snapshotIndex: 2, snapshotTerm: 1, lastIndex: 5, lastTerm: 3, configIndex: 5 });
    expect(c.termRuns).toEqual([
      { index: 3, term: 1 },
      { index: 4, term: 2 },
      { index: 5, term: 3 },
    ]);
    expect(c.configs).toEqual([{ index: 5, config }]);
  });
});
