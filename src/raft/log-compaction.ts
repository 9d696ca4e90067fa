// How far a local snapshot lets the host compact its log (RaftNode.snapshotTaken). Pure: it reads the
// log store and says what to compact through, the caller compacts and tells the machine.

import type { ClusterConfig, SnapshotMeta } from '../../machines/protocol.js';
import { lastConfigAtOrBefore } from '../../machines/replica/rules.js';
import type { LogStore } from './interfaces.js';

/**
 * The compaction a durable local snapshot through `snapshotIndex` allows, or null for none. `keep`
 * entries before the snapshot index stay, so a follower slightly behind still gets entries rather than
 * the whole snapshot; never past `appliedIndex` (what is applied here), never back behind the log's
 * current snapshot, and only through an entry whose term the log still holds.
 */
export function compactionAfterSnapshot(
  log: LogStore,
  snapshotIndex: number,
  keep: number,
  appliedIndex: number,
): SnapshotMeta | null {
  const through = Math.min(snapshotIndex - Math.max(0, keep), appliedIndex);
  if (through <= log.snapshot().index) return null;
  const term = log.termAt(through);
  if (term === undefined) return null;
  return { index: through, term, config: configAt(log, through) };
}

/** The configuration in effect at `index` of the log. */
function configAt(log: LogStore, index: number): ClusterConfig {
  if (log.configAt) return log.configAt(index);
  return lastConfigAtOrBefore(log, index)?.config ?? log.snapshot().config;
}
