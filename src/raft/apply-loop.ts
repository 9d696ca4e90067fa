// ApplyLoop: applies committed, durable log entries to the state machine, and hands each batch's
// outcomes on (proposers, the replica machine, the onApplied listeners, waiting reads). It owns the
// applied index the host reports. The Ready executor (ready-executor.ts) decides how far it may go,
// min(durable commit, durable index here), and calls apply() until it has caught up; this class only
// applies, one bounded batch per call.
//
// It also runs the recovery half of the lazy applied index (docs/design/lazy-applied-index.md) at
// start: the state machine's apply pays no fsync of its own, so a crash may roll it back to an older
// applied index, and recover() re-applies the lost tail up to the recovered (durable) commit before the
// replica machine starts.

import type { ApplyOutcome, LogStore, StateMachine } from './interfaces.js';
import type { NodeListeners } from './node-listeners.js';
import type { RaftLogger } from './node-types.js';
import type { ProposalTracker } from './proposal-tracker.js';
import type { ReadTracker } from './read-tracker.js';

/**
 * Entries per apply call by default. One call reads and applies at most this many, so a long backlog
 * (a follower catching up) is spread over turns of the event loop: the Ready executor goes on in a
 * later turn while each call makes progress.
 */
export const APPLY_BATCH = 1024;

export interface ApplyLoopDeps {
  /** The log to apply from, and what recovery reads of it (snapshot, persisted commit, last index). */
  log: Pick<LogStore, 'entries' | 'lastIndex' | 'commitIndex' | 'snapshot'>;
  stateMachine: Pick<StateMachine, 'apply' | 'appliedIndex'>;
  proposals: Pick<ProposalTracker, 'applied'>;
  reads: Pick<ReadTracker, 'appliedTo'>;
  /** Tells the replica machine the new applied index (nothing while it does not exist yet). */
  machine: (appliedIndex: number) => void;
  listeners: Pick<NodeListeners, 'applied'>;
  /** The state machine failed on a committed entry (already logged): the host must stop. */
  fatal: (err: unknown) => void;
  logger?: RaftLogger;
  /** Entries per apply call (default APPLY_BATCH); the Ready executor calls again on a later turn. */
  maxBatch?: number;
}

export class ApplyLoop {
  private lastApplied = 0;
  private stopped = false;
  private readonly maxBatch: number;

  constructor(private readonly deps: ApplyLoopDeps) {
    this.maxBatch = deps.maxBatch ?? APPLY_BATCH;
  }

  /** The applied index (what a snapshot taken now would cover). */
  appliedIndex(): number {
    return this.lastApplied;
  }

  /** From now on apply() applies nothing (the host stopped). */
  stop(): void {
    this.stopped = true;
  }

  /**
   * At start, before the replica machine exists: take the applied index from the state machine (at
   * least the log's snapshot), re-apply what a crash rolled back, and return the commit index the
   * machine starts from, max(applied, persisted commit) clamped to the recovered log.
   */
  recover(): number {
    const { log, stateMachine } = this.deps;
    const snapshotIndex = log.snapshot().index;
    this.lastApplied = Math.max(stateMachine.appliedIndex(), snapshotIndex);
    // The persisted commit never exceeds the durable log when written in order; clamp anyway.
    const persistedCommit = Math.min(log.commitIndex(), log.lastIndex());
    const commitIndex = Math.max(this.lastApplied, persistedCommit);
    this.reapplyLost(commitIndex);
    return commitIndex;
  }

  /** A snapshot installed from the leader recorded `index` as applied. */
  snapshotInstalled(index: number): void {
    this.lastApplied = Math.max(this.lastApplied, index);
  }

  /** The executor's apply sink: apply committed, durable entries in a bounded batch, answer proposers. */
  apply(upTo: number): number {
    if (this.stopped || upTo <= this.lastApplied) return this.lastApplied;
    const entries = this.deps.log.entries(this.lastApplied + 1, upTo, this.maxBatch);
    if (entries.length === 0) return this.lastApplied;
    let outcomes: ApplyOutcome[];
    try {
      outcomes = this.deps.stateMachine.apply(entries);
    } catch (err) {
      // A state machine that cannot apply a committed entry cannot go on safely.
      this.deps.logger?.error({ err, index: entries[0].index }, 'state machine apply failed');
      this.deps.fatal(err);
      return this.lastApplied;
    }
    this.lastApplied = entries[entries.length - 1].index;
    this.deps.proposals.applied(entries, outcomes, this.lastApplied);
    this.deps.machine(this.lastApplied);
    this.deps.listeners.applied(outcomes);
    this.deps.reads.appliedTo(this.lastApplied);
    return this.lastApplied;
  }

  /**
   * Lazy applied index (docs/design/lazy-applied-index.md): the state machine's apply pays no fsync of
   * its own, so a crash may roll it back to an older applied index. Everything up to the recovered
   * (durable) commit is re-applied here, before the machine starts and before any status or read can
   * observe the applied index: nobody sees it go back (invariant 8). Apply is idempotent per index.
   */
  private reapplyLost(commitIndex: number): void {
    const target = Math.min(commitIndex, this.deps.log.lastIndex());
    for (let guard = 0; guard < 1_000_000 && this.lastApplied < target; guard++) {
      const before = this.lastApplied;
      this.apply(target);
      if (this.lastApplied === before) break;
    }
  }
}
