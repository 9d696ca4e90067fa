// The Ready executor: the one place where the replica machine's effects become I/O (etcd raft's
// Ready/Advance boundary). Production (RaftNode), the simulator (which runs RaftNode), the interaction
// harness and the model replay all carry out effects through this class, so every test that drives
// the machine exercises the production durability order. There is no other copy.
//
// The durability contract, in the order it is carried out:
//
//   1. `persist` (term, vote, truncation, entries) is written to the log store AT ONCE, in the order
//      emitted (the store's "unstable" log: readable, not yet durable). One flush (fsync) is then
//      scheduled with `defer`, so every write of one turn shares it (group commit).
//   2. `send` with afterPersist waits until every persist emitted before it is durable: a vote grant,
//      an AppendEntries acknowledgement or a candidate's RequestVote never leaves ahead of the fsync of
//      what it promises (Raft §5: "respond after updating stable storage"). Without afterPersist (a
//      leader's AppendEntries and heartbeats, read-index traffic) it leaves at once: a leader may
//      replicate entries while its own fsync is in flight.
//   3. When the flush calls back, the held sends leave FIRST, then the machine is told
//      `persisted {index, term, seq}`; only then does it count itself in a quorum (its own vote as a
//      candidate, its own match index as a leader).
//   4. `commit` raises the commit index; it is written to the store (like etcd's HardState.Commit) and
//      a flush is scheduled (coalesced with any flush of the same turn).
//   5. Entries are applied only up to min(DURABLE commit, durable index here). The apply itself pays
//      no fsync (the lazy applied index, docs/design/lazy-applied-index.md): a crash may roll an apply
//      back, and the host re-applies up to the recovered commit at start. Applying only what a durable
//      commit covers is what makes that recovery complete: the applied index never goes back.
//   Every other effect (proposal outcomes, reads, role and config changes, snapshots) goes to the
//   host's `other` handler, in the order emitted.
//
// The machine emits effects one at a time as its transition runs; a batch (etcd's Ready) is what
// accumulates between two flushes: the writes of one turn, and the sends that wait on them.

import type { Effect, RaftMessage } from '../../machines/protocol.js';
import type { LogWrite } from './interfaces.js';

/** The part of a LogStore the executor writes and flushes. */
export interface ReadyLog {
  write(batch: LogWrite): void;
  /** One fsync for everything written so far; `done` runs when it is durable (possibly at once). */
  flush(done: () => void): void;
  lastIndex(): number;
  termAt(index: number): number | undefined;
}

export interface ReadyDeps {
  log: ReadyLog;
  send: (message: RaftMessage) => void;
  /** Schedules the group-commit flush and the apply step (setImmediate, a simulated clock, a test's hand). */
  defer: (fn: () => void) => void;
  /** Writes are durable through `index`/`term`, and `seq` persist effects are: tell the machine. */
  persisted: (p: { index: number; term: number; seq: number }) => void;
  /** Apply the committed, durable entries not applied yet, through at most `upTo`; returns the index applied through. */
  apply: (upTo: number) => number;
  /** Every effect that is not persist, send or commit, in the order emitted. */
  other: (effect: Effect) => void;
  /**
   * TEST ONLY: break the contract on purpose (afterPersist sends leave before their write is durable),
   * so a test can show the break is caught. Never set in production.
   */
  unsafeSendBeforePersist?: boolean;
}

/** What the executor starts from after a (re)start: everything in the store is durable then. */
export interface ReadyStart {
  durableIndex: number;
  commitIndex: number;
  appliedIndex: number;
}

export class ReadyExecutor {
  private stopped = false;
  private persistCount = 0;
  private durableSeq = 0;
  private durableIndex: number;
  /** The highest commit learnt (in memory), the highest written to the store, and the highest made durable. */
  private commit: number;
  private commitWritten: number;
  private commitDurable: number;
  private applied: number;
  private flushScheduled = false;
  private applyScheduled = false;
  private waiting: { seq: number; message: RaftMessage }[] = [];

  constructor(
    private readonly deps: ReadyDeps,
    start: ReadyStart,
  ) {
    this.durableIndex = start.durableIndex;
    this.commit = start.commitIndex;
    this.commitWritten = start.commitIndex;
    this.commitDurable = start.commitIndex;
    this.applied = start.appliedIndex;
  }

  /** After the machine started: apply what was committed before a restart but not applied then. */
  resume(): void {
    if (this.commitDurable > this.applied) this.scheduleApply();
  }

  /** Carry out a batch of effects, in the order emitted. */
  execute(effects: readonly Effect[]): void {
    for (const e of effects) {
      if (this.stopped) return;
      switch (e.type) {
        case 'persist':
          this.persist(e);
          break;
        case 'send':
          if (e.afterPersist && this.persistCount > this.durableSeq && !this.deps.unsafeSendBeforePersist) {
            this.waiting.push({ seq: this.persistCount, message: e.message });
          } else {
            this.deps.send(e.message);
          }
          break;
        case 'commit':
          if (e.index > this.commit) {
            this.commit = e.index;
            this.deps.log.write({ commit: e.index });
            this.commitWritten = e.index;
            this.scheduleFlush();
          }
          break;
        default:
          this.deps.other(e);
      }
    }
  }

  /** The commit index learnt (in memory). */
  commitIndex(): number {
    return this.commit;
  }

  /** The highest commit index a flush made durable (what a restart recovers, with the applied index). */
  durableCommit(): number {
    return this.commitDurable;
  }

  appliedIndex(): number {
    return this.applied;
  }

  /**
   * A snapshot through `index` was installed (the state machine and the log store reset, durably):
   * it is committed, applied and durable here.
   */
  snapshotInstalled(index: number): void {
    this.applied = Math.max(this.applied, index);
    this.commit = Math.max(this.commit, index);
    this.commitDurable = Math.max(this.commitDurable, index);
    this.durableIndex = Math.max(this.durableIndex, index);
    this.scheduleApply();
  }

  /** Nothing more leaves, is written or applied; held sends are dropped (a crash would lose them too). */
  stop(): void {
    this.stopped = true;
    this.waiting = [];
  }

  private persist(e: Extract<Effect, { type: 'persist' }>): void {
    this.deps.log.write({
      ...(e.hardState ? { hardState: e.hardState } : {}),
      ...(e.truncateFrom !== undefined ? { truncateFrom: e.truncateFrom } : {}),
      ...(e.entries ? { entries: e.entries } : {}),
    });
    this.persistCount++;
    if (e.truncateFrom !== undefined) this.durableIndex = Math.min(this.durableIndex, e.truncateFrom - 1);
    this.scheduleFlush();
  }

  /** One flush for every write of this turn (group commit). */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.deps.defer(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.stopped) return;
    const { log } = this.deps;
    const seq = this.persistCount;
    const commit = this.commitWritten;
    const index = log.lastIndex();
    const term = log.termAt(index) ?? 0;
    log.flush(() => this.flushed(seq, index, term, commit));
  }

  private flushed(seq: number, index: number, term: number, commit: number): void {
    if (this.stopped) return;
    this.commitDurable = Math.max(this.commitDurable, commit);
    this.durableSeq = Math.max(this.durableSeq, seq);
    // A truncation after the flush started may have replaced the entry at `index`: not durable then.
    if (index > this.durableIndex && this.deps.log.termAt(index) === term) this.durableIndex = index;
    const ready = this.waiting.filter((w) => w.seq <= this.durableSeq);
    this.waiting = this.waiting.filter((w) => w.seq > this.durableSeq);
    for (const w of ready) this.deps.send(w.message);
    this.deps.persisted({ index, term, seq });
    this.scheduleApply();
  }

  private scheduleApply(): void {
    if (this.applyScheduled) return;
    this.applyScheduled = true;
    this.deps.defer(() => this.applyReady());
  }

  private applyReady(): void {
    this.applyScheduled = false;
    if (this.stopped) return;
    const upTo = Math.min(this.commitDurable, this.durableIndex);
    const before = this.applied;
    if (upTo <= before) return;
    this.applied = Math.max(before, this.deps.apply(upTo));
    // The host applies in bounded batches: go on next turn (only while it makes progress).
    if (!this.stopped && this.applied > before && this.applied < upTo) this.scheduleApply();
  }
}
