// The Ready executor: the one place where the replica machine's effects become I/O (etcd raft's
// Ready/Advance boundary). Production (RaftNode), the simulator (which runs RaftNode), the interaction
// harness and the model replay all carry out effects through this class, so every test that drives
// the machine exercises the production durability order. There is no other copy.
//
// The durability contract, in the order it is carried out:
//
//   1. `persist` (term, vote, truncation, entries) is written to the log store AT ONCE, in the order
//      emitted (the store's "unstable" log: readable, not yet durable). One flush (fsync) is then
//      scheduled with `defer`, so every write of one turn shares it (group commit). With a flush
//      policy (FlushPolicy below), the flush waits up to `delayUs` for the writes of later turns too,
//      unless `maxEntries` entries are already waiting, which flushes on the next turn.
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
//   host's `other` handler, in the order emitted (RaftNode's HostEffects, host-effects.ts).
//
// The commit index (DESIGN.md invariant 8: never back, even across a restart). Unlike etcd, a commit
// learnt alone (a heartbeat on a follower, an acknowledgement on the leader) does cost the flush of step
// 4, because entries are applied only up to the DURABLE commit (test/unit/raft-commit-durable.test.ts);
// since the apply pays no fsync, the recovered commit must cover everything applied before a crash.
// So RaftNode.status().commitIndex reports only what a restart would recover, max(durableCommit(),
// applied); after a restart the replica starts from max(applied, persisted commit), clamped to the
// recovered log, and re-applies up to it before the machine starts (ApplyLoop.recover, apply-loop.ts).
//
// The machine knows its log by terms only (machines/replica/log-terms.ts): a leader's AppendEntries
// leaves the machine with a range of entries, and the executor attaches them here as it sends it. It
// keeps the entries it handed to the store and has not yet seen made durable (etcd raft's "unstable"
// log), so a send never depends on the store showing a write before it is durable: a store may make
// its writes visible only when they are durable (test/support/late-log-store.ts does), and nothing
// here or in the machine decides differently. Below the unstable entries, it reads the store.
//
// The machine emits effects one at a time as its transition runs; a batch (etcd's Ready) is what
// accumulates between two flushes: the writes of one turn, and the sends that wait on them.

import type { Effect, Entry, EntryRange, RaftMessage } from '../../machines/protocol.js';
import type { Clock, LogWrite } from './interfaces.js';

/** The part of a LogStore the executor writes and flushes. */
export interface ReadyLog {
  write(batch: LogWrite): void;
  /** One fsync for everything written so far; `done` runs when it is durable (possibly at once). */
  flush(done: () => void): void;
  /** Read for what is durable only (the executor keeps the rest): entries of AppendEntries, terms. */
  lastIndex(): number;
  termAt(index: number): number | undefined;
  entries(from: number, to: number, maxEntries: number): Entry[];
}

/**
 * When the group-commit flush runs (server flags --flush-delay-us and --flush-max-entries). Waiting a
 * little lets the writes of several turns share one fsync (fewer fsyncs under load) at the price of
 * that wait on every write's latency; it changes when a write becomes durable, never what may leave
 * before it is (afterPersist sends still wait for the flush that covers them).
 */
export interface FlushPolicy {
  /** Wait this long after the first unflushed write before flushing. 0: flush on the next turn (`defer`). */
  delayUs: number;
  /** Once this many entries are unflushed, flush on the next turn without waiting for the delay. */
  maxEntries: number;
}

export const DEFAULT_FLUSH_POLICY: FlushPolicy = { delayUs: 0, maxEntries: 512 };

/** ReadyDeps.timer on a clock (real timers in production, a simulated clock in the simulator). */
export function clockTimer(clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>): ReadyDeps['timer'] {
  return (fn, delayUs) => {
    const handle = clock.setTimeout(fn, delayUs / 1000);
    return () => clock.clearTimeout(handle);
  };
}

export interface ReadyDeps {
  log: ReadyLog;
  send: (message: RaftMessage) => void;
  /** Schedules the group-commit flush and the apply step (setImmediate, a simulated clock, a test's hand). */
  defer: (fn: () => void) => void;
  /** When to flush (default DEFAULT_FLUSH_POLICY: on the next turn). */
  flushPolicy?: FlushPolicy;
  /** Runs `fn` after `delayUs` (a real or simulated timer); returns a cancel function. Needed when
   *  flushPolicy.delayUs > 0. */
  timer?: (fn: () => void, delayUs: number) => () => void;
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
  private readonly policy: FlushPolicy;
  /** A flush is scheduled: on the next turn ('deferred'), or when the policy's delay ends ('timer'). */
  private flushPending: 'none' | 'deferred' | 'timer' = 'none';
  private cancelFlushTimer: (() => void) | undefined;
  /** Entries written since the last flush started (for the policy's maxEntries). */
  private unflushedEntries = 0;
  private applyScheduled = false;
  private waiting: { seq: number; message: RaftMessage }[] = [];
  /** Entries handed to the store and not yet seen durable: unstable[i] has index unstableFrom + i. */
  private unstable: Entry[] = [];
  private unstableFrom: number;
  /** The last entry written (durable or not). */
  private lastIndex: number;
  private lastTerm: number;

  constructor(
    private readonly deps: ReadyDeps,
    start: ReadyStart,
  ) {
    this.policy = deps.flushPolicy ?? DEFAULT_FLUSH_POLICY;
    if (this.policy.delayUs > 0 && !deps.timer) throw new Error('ReadyExecutor: a flush delay needs a timer');
    this.durableIndex = start.durableIndex;
    this.commit = start.commitIndex;
    this.commitWritten = start.commitIndex;
    this.commitDurable = start.commitIndex;
    this.applied = start.appliedIndex;
    this.lastIndex = deps.log.lastIndex();
    this.lastTerm = deps.log.termAt(this.lastIndex) ?? 0;
    this.unstableFrom = this.lastIndex + 1;
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
        case 'send': {
          const message = e.entries ? this.withEntries(e.message, e.entries) : e.message;
          // The entries are no longer in the log (compacted, or replaced): dropped, as the network may.
          if (message === null) break;
          if (e.afterPersist && this.persistCount > this.durableSeq && !this.deps.unsafeSendBeforePersist) {
            this.waiting.push({ seq: this.persistCount, message });
          } else {
            this.deps.send(message);
          }
          break;
        }
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
    // The store was reset to the snapshot (and shows its whole log, durable, from here).
    this.unstable = [];
    this.lastIndex = this.deps.log.lastIndex();
    this.lastTerm = this.deps.log.termAt(this.lastIndex) ?? 0;
    this.unstableFrom = this.lastIndex + 1;
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
    this.cancelFlushTimer?.();
    this.cancelFlushTimer = undefined;
  }

  private persist(e: Extract<Effect, { type: 'persist' }>): void {
    this.deps.log.write({
      ...(e.hardState ? { hardState: e.hardState } : {}),
      ...(e.truncateFrom !== undefined ? { truncateFrom: e.truncateFrom } : {}),
      ...(e.entries ? { entries: e.entries } : {}),
    });
    this.persistCount++;
    this.unflushedEntries += e.entries?.length ?? 0;
    if (e.truncateFrom !== undefined) this.durableIndex = Math.min(this.durableIndex, e.truncateFrom - 1);
    this.keepUnstable(e.truncateFrom, e.entries);
    this.scheduleFlush();
  }

  /** Track the write in the unstable entries (and the last entry) until a flush makes it durable. */
  private keepUnstable(truncateFrom: number | undefined, entries: Entry[] | undefined): void {
    const first = entries && entries.length > 0 ? entries[0].index : undefined;
    const cut = Math.min(truncateFrom ?? Number.POSITIVE_INFINITY, first ?? Number.POSITIVE_INFINITY);
    if (cut <= this.lastIndex) {
      if (cut < this.unstableFrom) {
        // Durable entries are replaced: the store's copy below `cut` is still current.
        this.unstable = [];
        this.unstableFrom = cut;
      } else {
        this.unstable.length = cut - this.unstableFrom;
      }
      this.lastIndex = cut - 1;
      this.lastTerm = this.termAt(cut - 1) ?? 0;
    }
    if (!entries || entries.length === 0) return;
    if (this.unstable.length === 0) this.unstableFrom = entries[0].index;
    for (const entry of entries) this.unstable.push(entry);
    this.lastIndex = entries[entries.length - 1].index;
    this.lastTerm = entries[entries.length - 1].term;
  }

  /** The term of an entry written (durable or not); undefined when not in the log. */
  private termAt(index: number): number | undefined {
    if (index >= this.unstableFrom) return this.unstable[index - this.unstableFrom]?.term;
    return this.deps.log.termAt(index);
  }

  /** The message with the entries of `range` attached, or null when the log no longer holds them. */
  private withEntries(message: RaftMessage, range: EntryRange): RaftMessage | null {
    if (message.type !== 'AppendEntries') return message;
    const n = range.to - range.from + 1;
    let entries: Entry[];
    if (range.from >= this.unstableFrom) {
      entries = this.unstable.slice(range.from - this.unstableFrom, range.to - this.unstableFrom + 1);
    } else if (range.to < this.unstableFrom) {
      entries = this.deps.log.entries(range.from, range.to, n);
    } else {
      entries = this.deps.log.entries(range.from, this.unstableFrom - 1, n);
      for (const e of this.unstable) {
        if (e.index > range.to) break;
        entries.push(e);
      }
    }
    if (entries.length !== n || entries[n - 1].term !== range.term) return null;
    return { ...message, entries };
  }

  /**
   * One flush for every write of this turn (group commit), or, with a delay, for every write until the
   * delay ends or `maxEntries` entries wait (then on the next turn, like delay 0).
   */
  private scheduleFlush(): void {
    if (this.flushPending === 'deferred') return;
    const { delayUs, maxEntries } = this.policy;
    if (delayUs <= 0 || this.unflushedEntries >= maxEntries) {
      this.cancelFlushTimer?.();
      this.cancelFlushTimer = undefined;
      this.flushPending = 'deferred';
      this.deps.defer(() => {
        if (this.flushPending === 'deferred') this.flush();
      });
      return;
    }
    if (this.flushPending === 'timer') return;
    this.flushPending = 'timer';
    const timer = this.deps.timer as NonNullable<ReadyDeps['timer']>;
    this.cancelFlushTimer = timer(() => {
      this.cancelFlushTimer = undefined;
      if (this.flushPending === 'timer') this.flush();
    }, delayUs);
  }

  private flush(): void {
    this.flushPending = 'none';
    this.unflushedEntries = 0;
    if (this.stopped) return;
    const { log } = this.deps;
    const seq = this.persistCount;
    const commit = this.commitWritten;
    const index = this.lastIndex;
    const term = this.lastTerm;
    log.flush(() => this.flushed(seq, index, term, commit));
  }

  private flushed(seq: number, index: number, term: number, commit: number): void {
    if (this.stopped) return;
    this.commitDurable = Math.max(this.commitDurable, commit);
    this.durableSeq = Math.max(this.durableSeq, seq);
    // A truncation after the flush started may have replaced the entry at `index`: not durable then.
    // Otherwise the log still holds it, so everything through it is durable and leaves the unstable list.
    if (this.termAt(index) === term) {
      if (index > this.durableIndex) this.durableIndex = index;
      if (index >= this.unstableFrom) {
        this.unstable.splice(0, index - this.unstableFrom + 1);
        this.unstableFrom = index + 1;
      }
    }
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
