// What the machines know of their log, as plain data: the snapshot it starts after, its last index, and
// the terms of its entries as runs (one {index, term} per term change). Raft decides everything on
// terms alone (matching, conflicts, the up-to-date check, "commit only entries of the current term"),
// so with this the machines never read the host's log store: their decisions cannot depend on when
// the host carries out a write. Entry bodies stay with the host: a leader's AppendEntries names the
// range it carries and the Ready executor attaches the entries when it sends it.
//
// A log has few term changes (one per leader that wrote to it since the last snapshot), so the runs are
// a tiny array, replaced (never mutated) only when a term starts, a truncation cuts one, or the log is
// compacted: appending entries of the last run's term changes no array at all.

import type { ClusterConfig, Entry, LogView } from '../protocol.js';

/** Entries from `index` up to the next run's index - 1 (the last run: up to the last index) have `term`. */
export interface TermRun {
  index: number;
  term: number;
}

export interface LogTerms {
  /** Entries through snapshotIndex are compacted away; snapshotTerm is the term of the entry at it. */
  snapshotIndex: number;
  snapshotTerm: number;
  /** Runs covering (snapshotIndex, lastIndex], ascending; empty when the log holds nothing after the snapshot. */
  termRuns: TermRun[];
  lastIndex: number;
}

/** The term of the entry at `index`: 0 for index 0, the snapshot's at its index, undefined when compacted away or beyond the end. */
export function termAt(log: LogTerms, index: number): number | undefined {
  if (index === 0) return 0;
  if (index === log.snapshotIndex) return log.snapshotTerm;
  if (index < log.snapshotIndex || index > log.lastIndex) return undefined;
  const r = runAt(log.termRuns, index);
  return r < 0 ? undefined : log.termRuns[r].term;
}

/** Position of the run holding `index` (binary search; -1 when before the first run). */
export function runAt(runs: readonly TermRun[], index: number): number {
  let lo = 0;
  let hi = runs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid].index <= index) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** The first index of the run holding `index` (the first entry with its term, no lower than the log's first). */
export function runStart(log: LogTerms, index: number): number {
  const r = runAt(log.termRuns, index);
  return r < 0 ? index : log.termRuns[r].index;
}

/**
 * The log after a write: everything from `truncateFrom` dropped, then `entries` appended (consecutive).
 * An append that starts inside the log truncates there first, as the log stores do. Returns the same
 * runs array when no term boundary changed.
 */
export function writeTerms(
  log: LogTerms,
  truncateFrom: number | undefined,
  entries: readonly Entry[],
): { termRuns: TermRun[]; lastIndex: number; lastTerm: number } {
  let runs = log.termRuns;
  let last = log.lastIndex;
  let cut = truncateFrom;
  if (entries.length > 0 && entries[0].index <= last)
    cut = Math.min(cut ?? entries[0].index, entries[0].index);
  if (cut !== undefined && cut <= last) {
    let keep = runs.length;
    while (keep > 0 && runs[keep - 1].index >= cut) keep--;
    if (keep < runs.length) runs = runs.slice(0, keep);
    last = Math.max(log.snapshotIndex, cut - 1);
  }
  let lastTerm = runs.length > 0 ? runs[runs.length - 1].term : log.snapshotTerm;
  let copied = runs !== log.termRuns;
  for (const e of entries) {
    if (runs.length === 0 || e.term !== lastTerm) {
      if (!copied) {
        runs = runs.slice();
        copied = true;
      }
      runs.push({ index: e.index, term: e.term });
      lastTerm = e.term;
    }
  }
  if (entries.length > 0) last = entries[entries.length - 1].index;
  return { termRuns: runs, lastIndex: last, lastTerm };
}

/** The log compacted through `index` (whose entry has `term`): the runs before it are dropped. */
export function compactTerms(log: LogTerms, index: number, term: number): LogTerms {
  if (index <= log.snapshotIndex) return log;
  if (index >= log.lastIndex)
    return { snapshotIndex: index, snapshotTerm: term, termRuns: [], lastIndex: index };
  const r = runAt(log.termRuns, index + 1);
  const runs = log.termRuns.slice(Math.max(0, r));
  if (runs.length > 0 && runs[0].index <= index) runs[0] = { index: index + 1, term: runs[0].term };
  return { snapshotIndex: index, snapshotTerm: term, termRuns: runs, lastIndex: log.lastIndex };
}

/** The terms of a log read once from a host's view (its durable state, at start). */
export function termsOf(view: LogView): LogTerms {
  const snap = view.snapshot();
  const lastIndex = view.lastIndex();
  const runs: TermRun[] = [];
  let prev = -1;
  for (let i = snap.index + 1; i <= lastIndex; i++) {
    const t = view.termAt(i) ?? 0;
    if (t !== prev) runs.push({ index: i, term: t });
    prev = t;
  }
  return { snapshotIndex: snap.index, snapshotTerm: snap.term, termRuns: runs, lastIndex };
}

/** A config entry of the log (its configuration, parsed once). */
export interface ConfigEntry {
  index: number;
  config: ClusterConfig;
}
