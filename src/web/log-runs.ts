// The log strip's data: a replica's log as runs of one term ({fromIndex, toIndex, term}), not one item
// per entry, so a 100,000-entry log costs a few runs on the wire and a few binary searches here. A Raft
// log's terms never go down along the index, so each run's end is found by binary search on termAt.
import type { LogView } from '../../machines/protocol.js';

export interface TermRun {
  fromIndex: number;
  toIndex: number;
  term: number;
}

/**
 * The runs of the log from its first index to its last, newest last. With more than `maxRuns` terms in
 * the log only the newest `maxRuns` are returned (the page shows the newest entries first).
 */
export function termRuns(
  log: Pick<LogView, 'firstIndex' | 'lastIndex' | 'termAt'>,
  maxRuns = 256,
): TermRun[] {
  const first = log.firstIndex();
  let end = log.lastIndex();
  const runs: TermRun[] = [];
  while (end >= first && runs.length < maxRuns) {
    const term = log.termAt(end);
    if (term === undefined) break;
    // The smallest index in [first, end] whose term is `term`: terms are non-decreasing.
    let lo = first;
    let hi = end;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const t = log.termAt(mid);
      if (t !== undefined && t >= term) hi = mid;
      else lo = mid + 1;
    }
    runs.push({ fromIndex: lo, toIndex: end, term });
    end = lo - 1;
  }
  return runs.reverse();
}
