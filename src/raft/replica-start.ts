// Where a replica (re)starts from. Everything comes from durable state: the host first repairs what a
// crash interrupted (recoverDurableState), then reads the log store once to build the replica machine's
// input and the Ready executor's starting point (replicaStart, pure: it only reads). After that the
// machine never reads the store again (it knows its log by terms, write-path.md).

import type { ReplicaInput } from '../../machines/protocol.js';
import type { ApplyLoop } from './apply-loop.js';
import type { LogStore } from './interfaces.js';
import type { RaftNodeOptions } from './node-types.js';
import type { ReadyStart } from './ready-executor.js';
import type { SnapshotInstaller } from './snapshot-installer.js';

/** The indexes recovery leaves the replica at. */
export interface Recovered {
  /** max(applied, persisted commit), clamped to the recovered log (ApplyLoop.recover). */
  commitIndex: number;
  appliedIndex: number;
}

/**
 * Repairs an interrupted snapshot install, then re-applies what a crash rolled back up to the recovered
 * commit, in that order: a repaired install resets the state machine's applied index, which the apply
 * recovery starts from (snapshot-installer.ts, apply-loop.ts).
 */
export function recoverDurableState(parts: {
  installer: Pick<SnapshotInstaller, 'recover'>;
  applier: Pick<ApplyLoop, 'recover' | 'appliedIndex'>;
}): Recovered {
  parts.installer.recover();
  const commitIndex = parts.applier.recover();
  return { commitIndex, appliedIndex: parts.applier.appliedIndex() };
}

export interface ReplicaStart {
  input: ReplicaInput;
  executor: ReadyStart;
}

/** The replica machine's input and the Ready executor's start, from the recovered store. */
export function replicaStart(
  log: LogStore,
  recovered: Recovered,
  opts: Pick<RaftNodeOptions, 'id' | 'timing' | 'seed' | 'maxBatch' | 'maxInflight'>,
): ReplicaStart {
  const { commitIndex, appliedIndex } = recovered;
  return {
    input: {
      id: opts.id,
      hardState: log.hardState(),
      config: log.config(),
      appliedIndex,
      commitIndex,
      log,
      timing: opts.timing,
      seed: opts.seed,
      maxBatch: opts.maxBatch,
      maxInflight: opts.maxInflight,
    },
    // Everything the store holds after a restart is durable (a crash lost the rest).
    executor: { durableIndex: log.lastIndex(), commitIndex, appliedIndex },
  };
}
