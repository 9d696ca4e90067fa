// A test double (test/support/): an in-memory LogStore: writes show at once, flush calls back synchronously unless held. Tests use
// `holdFlushes()` / `releaseFlushes()` to prove that nothing that depends on a write leaves before
// the write is durable, and `durable()` to see what a crash would keep.

import type { ClusterConfig, Entry, HardState, SnapshotMeta } from '../../machines/protocol.js';
import type { LogStore, LogWrite } from '../../src/raft/interfaces.js';

export interface MemoryLogStoreInit {
  hardState?: HardState;
  entries?: Entry[];
  snapshot?: SnapshotMeta;
  commit?: number;
}

interface State {
  hardState: HardState;
  commit: number;
  entries: Entry[];
  snapshot: SnapshotMeta;
}

function parseConfig(data: string): ClusterConfig | null {
  try {
    const c = JSON.parse(data) as ClusterConfig;
    return Array.isArray(c?.members) ? c : null;
  } catch {
    return null;
  }
}

export class MemoryLogStore implements LogStore {
  private state: State;
  private durableState: State;
  private held = false;
  private pending: (() => void)[] = [];
  /** Number of flushes (fsyncs) performed, for tests that count group commits. */
  flushCount = 0;

  constructor(init: MemoryLogStoreInit = {}) {
    this.state = {
      hardState: init.hardState ?? { term: 0, votedFor: null },
      commit: init.commit ?? 0,
      entries: [...(init.entries ?? [])],
      snapshot: init.snapshot ?? { index: 0, term: 0, config: { members: [] } },
    };
    this.durableState = clone(this.state);
  }

  lastIndex(): number {
    const n = this.state.entries.length;
    return n > 0 ? this.state.entries[n - 1].index : this.state.snapshot.index;
  }

  firstIndex(): number {
    return this.state.snapshot.index + 1;
  }

  termAt(index: number): number | undefined {
    if (index === 0) return 0;
    if (index === this.state.snapshot.index) return this.state.snapshot.term;
    return this.at(index)?.term;
  }

  entries(from: number, to: number, maxEntries: number): Entry[] {
    if (from < this.firstIndex()) return [];
    const last = Math.min(to, this.lastIndex(), from + maxEntries - 1);
    const out: Entry[] = [];
    for (let i = from; i <= last; i++) {
      const e = this.at(i);
      if (e) out.push(e);
    }
    return out;
  }

  snapshot(): SnapshotMeta {
    return this.state.snapshot;
  }

  hardState(): HardState {
    return this.state.hardState;
  }

  commitIndex(): number {
    return this.state.commit;
  }

  config(): ClusterConfig {
    for (let i = this.state.entries.length - 1; i >= 0; i--) {
      const e = this.state.entries[i];
      if (e.kind === 'config') {
        const c = parseConfig(e.data);
        if (c) return c;
      }
    }
    return this.state.snapshot.config;
  }

  configAt(index: number): ClusterConfig {
    for (let i = this.state.entries.length - 1; i >= 0; i--) {
      const e = this.state.entries[i];
      if (e.index > index || e.kind !== 'config') continue;
      const c = parseConfig(e.data);
      if (c) return c;
    }
    return this.state.snapshot.config;
  }

  write(batch: LogWrite): void {
    if (batch.hardState) this.state.hardState = { ...batch.hardState };
    if (batch.commit !== undefined) this.state.commit = Math.max(this.state.commit, batch.commit);
    if (batch.truncateFrom !== undefined) {
      const keep = batch.truncateFrom - this.firstIndex();
      this.state.entries = this.state.entries.slice(0, Math.max(0, keep));
    }
    if (batch.entries && batch.entries.length > 0) {
      const expected = this.lastIndex() + 1;
      if (batch.entries[0].index !== expected) {
        throw new Error(`non-consecutive append: got ${batch.entries[0].index}, expected ${expected}`);
      }
      this.state.entries.push(...batch.entries.map((e) => ({ ...e })));
    }
  }

  flush(done: () => void): void {
    const snapshot = clone(this.state);
    const complete = () => {
      this.flushCount++;
      this.durableState = snapshot;
      done();
    };
    if (this.held) this.pending.push(complete);
    else complete();
  }

  /** Compaction is durable at once (like SqliteLogStore's own transaction); staged writes stay staged. */
  compact(meta: SnapshotMeta): void {
    if (meta.index <= this.state.snapshot.index) return;
    for (const s of [this.state, this.durableState]) {
      s.entries = s.entries.filter((e) => e.index > meta.index);
      s.snapshot = meta;
    }
  }

  /** §7: keep the suffix after the snapshot if the log holds its last entry, else drop the whole log. */
  resetToSnapshot(meta: SnapshotMeta): void {
    if (meta.index <= this.state.snapshot.index) return;
    const keepSuffix = this.termAt(meta.index) === meta.term;
    this.state.entries = keepSuffix ? this.state.entries.filter((e) => e.index > meta.index) : [];
    this.state.snapshot = meta;
    // The reset is durable at once; the durable log keeps only what it shares with the new log.
    const durable = this.durableState;
    const durableHas = durable.entries.some((e) => e.index === meta.index && e.term === meta.term);
    durable.entries = keepSuffix && durableHas ? durable.entries.filter((e) => e.index > meta.index) : [];
    durable.snapshot = meta;
  }

  close(): void {}

  /** Hold flush completions until `releaseFlushes` (a slow disk). */
  holdFlushes(): void {
    this.held = true;
  }

  /** Complete every held flush, in order, and stop holding. */
  releaseFlushes(): void {
    this.held = false;
    const pending = this.pending;
    this.pending = [];
    for (const fn of pending) fn();
  }

  /** What survives a crash now: a new store with only the durable state. */
  durable(): MemoryLogStore {
    return new MemoryLogStore(clone(this.durableState));
  }

  private at(index: number): Entry | undefined {
    const e = this.state.entries[index - this.firstIndex()];
    return e && e.index === index ? e : undefined;
  }
}

function clone(s: State): State {
  return { hardState: { ...s.hardState }, commit: s.commit, entries: [...s.entries], snapshot: s.snapshot };
}
