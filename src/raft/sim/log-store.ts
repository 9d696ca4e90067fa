// A crash-capable in-memory LogStore. write() shows at once in the view (the "unstable" log);
// flush() makes everything written so far durable after a simulated fsync latency. The durable part
// lives in a SimDisk that outlives the store: a crash throws the store away, and the restarted node
// reads back exactly what was fsynced, so a crash between write and fsync loses that write (even
// when the crash falls in the middle of a batch of writes).

import type { ClusterConfig, Entry, HardState, NodeId, SnapshotMeta } from '../../../machines/protocol.js';
import type { LogStore, LogWrite } from '../interfaces.js';
import type { EventQueue } from './event-queue.js';

/** The log as stored: entries[i] has index snapshot.index + 1 + i. */
export interface LogState {
  hardState: HardState;
  /** The commit index written (LogWrite.commit): lost in a crash like any other unflushed write. */
  commit: number;
  snapshot: SnapshotMeta;
  entries: Entry[];
}

type Op =
  | { type: 'write'; batch: LogWrite }
  | { type: 'compact'; meta: SnapshotMeta }
  | { type: 'reset'; meta: SnapshotMeta };

/** What survives a crash: the fsynced log and hard state of one node. */
export class SimDisk {
  state: LogState;
  fsyncs = 0;

  constructor(config: ClusterConfig) {
    this.state = {
      hardState: { term: 0, votedFor: null },
      commit: 0,
      snapshot: { index: 0, term: 0, config: cloneConfig(config) },
      entries: [],
    };
  }
}

export interface SimLogStoreOptions {
  disk: SimDisk;
  queue: EventQueue;
  owner: NodeId;
  /** Latency of one fsync in ms (drawn per flush). */
  fsyncLatency: () => number;
  /** Called when the host breaks the LogStore contract (the simulator reports it as a failure). */
  onViolation?: (message: string) => void;
  /** Fault injection: when it returns true, an fsync reports success without making anything durable. */
  lie?: () => boolean;
  /**
   * The other writes in the same file (the chat tables, applied without an fsync of their own): called
   * when an fsync is issued, it returns what to call once that fsync has made them durable too.
   */
  stageFileWrites?: () => () => void;
}

export class SimLogStore implements LogStore {
  private view: LogState;
  /** Writes not yet durable, oldest first. */
  private pending: Op[] = [];
  /** Ops issued so far (a flush covers everything issued before it). */
  private issued = 0;
  /** Ops made durable so far. */
  private durableOps = 0;
  /** Completion time of the last fsync scheduled: fsyncs finish in order. */
  private lastFsyncAt = 0;
  private closed = false;
  /** Indices of config entries in the view, ascending (so config() does not scan the log). */
  private configIdx: number[] = [];
  /** Lowest log index changed since takeDirtyFrom() (the log-matching check rehashes from there). */
  private dirtyFrom = 1;
  /** Count of writes and flushes, for tests and statistics. */
  writes = 0;

  constructor(private readonly opts: SimLogStoreOptions) {
    this.view = cloneState(opts.disk.state);
    this.reindexConfigs();
  }

  // --- LogView -----------------------------------------------------------------------------------

  lastIndex(): number {
    return this.view.snapshot.index + this.view.entries.length;
  }

  firstIndex(): number {
    return this.view.snapshot.index + 1;
  }

  termAt(index: number): number | undefined {
    if (index === 0) return 0;
    const snap = this.view.snapshot;
    if (index === snap.index) return snap.term;
    if (index < snap.index) return undefined;
    return this.view.entries[index - snap.index - 1]?.term;
  }

  entries(from: number, to: number, maxEntries: number): Entry[] {
    const snap = this.view.snapshot;
    if (from <= snap.index) return [];
    const hi = Math.min(to, this.lastIndex(), from + Math.max(0, maxEntries) - 1);
    if (hi < from) return [];
    return this.view.entries.slice(from - snap.index - 1, hi - snap.index);
  }

  snapshot(): SnapshotMeta {
    return this.view.snapshot;
  }

  // --- LogStore ----------------------------------------------------------------------------------

  hardState(): HardState {
    return this.view.hardState;
  }

  commitIndex(): number {
    return this.view.commit;
  }

  config(): ClusterConfig {
    const last = this.configIdx[this.configIdx.length - 1];
    if (last !== undefined) {
      const entry = this.view.entries[last - this.view.snapshot.index - 1];
      if (entry) return JSON.parse(entry.data) as ClusterConfig;
    }
    return this.view.snapshot.config;
  }

  write(batch: LogWrite): void {
    if (this.closed) return;
    const copy: LogWrite = {};
    if (batch.hardState) copy.hardState = { ...batch.hardState };
    if (batch.truncateFrom !== undefined) copy.truncateFrom = batch.truncateFrom;
    if (batch.commit !== undefined) copy.commit = batch.commit;
    if (batch.entries) copy.entries = batch.entries.map((e) => ({ ...e }));
    const problem = checkWrite(this.view, copy);
    if (problem) {
      this.opts.onViolation?.(`${this.opts.owner}: log write ${problem}`);
      throw new Error(`${this.opts.owner}: log write ${problem}`);
    }
    applyOp(this.view, { type: 'write', batch: copy });
    if (copy.truncateFrom !== undefined) this.markDirty(copy.truncateFrom);
    if (copy.entries && copy.entries.length > 0) this.markDirty(copy.entries[0]!.index);
    if (copy.truncateFrom !== undefined || copy.entries?.some((e) => e.kind === 'config'))
      this.reindexConfigs();
    this.enqueue({ type: 'write', batch: copy });
    this.writes++;
  }

  flush(done: () => void): void {
    if (this.closed) return;
    const upTo = this.issued;
    const fileWrites = this.opts.stageFileWrites?.();
    const at = Math.max(this.opts.queue.now() + Math.max(0, this.opts.fsyncLatency()), this.lastFsyncAt);
    this.lastFsyncAt = at;
    this.opts.queue.after(
      at - this.opts.queue.now(),
      'fsync',
      () => {
        if (this.closed) return;
        if (!this.opts.lie?.()) {
          this.makeDurable(upTo);
          fileWrites?.();
        }
        this.opts.disk.fsyncs++;
        done();
      },
      this.opts.owner,
    );
  }

  compact(meta: SnapshotMeta): void {
    if (this.closed) return;
    if (meta.index <= this.view.snapshot.index) return;
    const op: Op = { type: 'compact', meta: { ...meta, config: cloneConfig(meta.config) } };
    applyOp(this.view, op);
    this.reindexConfigs();
    this.enqueue(op);
  }

  resetToSnapshot(meta: SnapshotMeta): void {
    if (this.closed) return;
    const op: Op = { type: 'reset', meta: { ...meta, config: cloneConfig(meta.config) } };
    applyOp(this.view, op);
    this.reindexConfigs();
    this.markDirty(meta.index + 1);
    this.enqueue(op);
  }

  close(): void {
    this.closed = true;
  }

  // --- for the simulator -------------------------------------------------------------------------

  /** Simulate a crash: the store stops, and every write not yet fsynced is lost. */
  crash(): void {
    this.closed = true;
    this.pending = [];
  }

  isClosed(): boolean {
    return this.closed;
  }

  /** Writes issued but not yet durable. */
  unflushed(): number {
    return this.pending.length;
  }

  /** The lowest index changed since the last call (Infinity when nothing changed). */
  takeDirtyFrom(): number {
    const d = this.dirtyFrom;
    this.dirtyFrom = Number.POSITIVE_INFINITY;
    return d;
  }

  private markDirty(index: number): void {
    if (index < this.dirtyFrom) this.dirtyFrom = index;
  }

  private enqueue(op: Op): void {
    this.pending.push(op);
    this.issued++;
  }

  private makeDurable(upTo: number): void {
    while (this.durableOps < upTo && this.pending.length > 0) {
      applyOp(this.opts.disk.state, this.pending.shift()!);
      this.durableOps++;
    }
  }

  private reindexConfigs(): void {
    this.configIdx = [];
    const base = this.view.snapshot.index;
    this.view.entries.forEach((e, i) => {
      if (e.kind === 'config') this.configIdx.push(base + 1 + i);
    });
  }
}

function checkWrite(state: LogState, batch: LogWrite): string | null {
  const snapIndex = state.snapshot.index;
  let last = snapIndex + state.entries.length;
  if (batch.truncateFrom !== undefined) {
    if (batch.truncateFrom <= snapIndex)
      return `truncates at ${batch.truncateFrom}, inside the snapshot (${snapIndex})`;
    if (batch.truncateFrom > last + 1) return `truncates at ${batch.truncateFrom}, past the end (${last})`;
    last = batch.truncateFrom - 1;
  }
  const entries = batch.entries ?? [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.index !== last + 1 + i) return `appends index ${e.index} where ${last + 1 + i} was expected`;
    if (!(e.term > 0)) return `appends index ${e.index} with term ${e.term}`;
  }
  return null;
}

function applyOp(state: LogState, op: Op): void {
  if (op.type === 'write') {
    const b = op.batch;
    if (b.hardState) state.hardState = { ...b.hardState };
    if (b.commit !== undefined) state.commit = Math.max(state.commit, b.commit);
    if (b.truncateFrom !== undefined) {
      state.entries.length = Math.max(0, b.truncateFrom - state.snapshot.index - 1);
    }
    if (b.entries) {
      for (const e of b.entries) {
        // Drop anything at or after this index first: the batch was validated against the view, and
        // the disk (a prefix-in-time of the view) follows the same sequence of writes.
        const pos = e.index - state.snapshot.index - 1;
        if (pos < 0) continue;
        state.entries.length = Math.min(state.entries.length, pos);
        state.entries.push({ ...e });
      }
    }
    return;
  }
  if (op.type === 'compact') {
    const drop = op.meta.index - state.snapshot.index;
    if (drop <= 0) return;
    state.entries = state.entries.slice(drop);
    state.snapshot = { ...op.meta, config: cloneConfig(op.meta.config) };
    return;
  }
  // reset: keep the suffix after the snapshot if the log has the snapshot's last entry (§7).
  const pos = op.meta.index - state.snapshot.index - 1;
  const keep = pos >= 0 && state.entries[pos]?.term === op.meta.term ? state.entries.slice(pos + 1) : [];
  state.entries = keep;
  state.snapshot = { ...op.meta, config: cloneConfig(op.meta.config) };
}

export function cloneState(s: LogState): LogState {
  return {
    hardState: { ...s.hardState },
    commit: s.commit,
    snapshot: { ...s.snapshot, config: cloneConfig(s.snapshot.config) },
    entries: s.entries.map((e) => ({ ...e })),
  };
}

function cloneConfig(c: ClusterConfig): ClusterConfig {
  return { members: c.members.map((m) => ({ ...m })) };
}
