// A test double (test/support/): a LogStore whose writes become visible only once they are durable.
// write() queues; a flush makes what was queued before it visible and durable together, when it
// completes (at once, or when the test releases held flushes). So until the disk answers, the store
// shows none of the writes the machine asked for: a host that carried out `persist` late looks like
// this. The replica machine must still decide right (it knows its log by terms, as data), and the
// Ready executor must still send the entries it was handed (it keeps them until they are durable).
// Snapshot compaction and reset act on everything written before them (they are synchronous barriers).

import type { ClusterConfig, Entry, HardState, SnapshotMeta } from '../../machines/protocol.js';
import type { LogStore, LogWrite } from '../../src/raft/interfaces.js';
import { MemoryLogStore, type MemoryLogStoreInit } from './memory-log-store.js';

export class LateLogStore implements LogStore {
  /** What is visible: exactly what is durable (its own flushes complete at once). */
  private inner: MemoryLogStore;
  private queued: LogWrite[] = [];
  private held = false;
  private heldFlushes: { writes: LogWrite[]; done: () => void }[] = [];
  /** Flushes completed (each made its writes visible). */
  flushCount = 0;

  constructor(init: MemoryLogStoreInit | MemoryLogStore = {}) {
    this.inner = init instanceof MemoryLogStore ? init : new MemoryLogStore(init);
  }

  lastIndex(): number {
    return this.inner.lastIndex();
  }
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  termAt(index: number): number | undefined {
    return this.inner.termAt(index);
  }
  entries(from: number, to: number, maxEntries: number): Entry[] {
    return this.inner.entries(from, to, maxEntries);
  }
  snapshot(): SnapshotMeta {
    return this.inner.snapshot();
  }
  hardState(): HardState {
    return this.inner.hardState();
  }
  commitIndex(): number {
    return this.inner.commitIndex();
  }
  config(): ClusterConfig {
    return this.inner.config();
  }
  configAt(index: number): ClusterConfig {
    return this.inner.configAt(index);
  }

  write(batch: LogWrite): void {
    this.queued.push(batch);
  }

  flush(done: () => void): void {
    const flush = { writes: this.queued, done };
    this.queued = [];
    if (this.held) this.heldFlushes.push(flush);
    else this.complete(flush);
  }

  private complete(flush: { writes: LogWrite[]; done: () => void }): void {
    for (const w of flush.writes) this.inner.write(w);
    flush.writes = [];
    this.inner.flush(() => {});
    this.flushCount++;
    flush.done();
  }

  compact(meta: SnapshotMeta): void {
    this.barrier();
    this.inner.compact(meta);
  }

  resetToSnapshot(meta: SnapshotMeta): void {
    this.barrier();
    this.inner.resetToSnapshot(meta);
  }

  close(): void {}

  /** Writes not visible yet (queued or in a held flush). */
  invisibleWrites(): number {
    return this.queued.length + this.heldFlushes.reduce((n, f) => n + f.writes.length, 0);
  }

  holdFlushes(): void {
    this.held = true;
  }

  /** Complete every held flush, in order, and stop holding. */
  releaseFlushes(): void {
    this.held = false;
    const flushes = this.heldFlushes;
    this.heldFlushes = [];
    for (const f of flushes) this.complete(f);
  }

  /** What survives a crash now: only what is durable (and so visible). */
  durable(): LateLogStore {
    return new LateLogStore(this.inner.durable());
  }

  /**
   * Everything written so far becomes visible (and durable) first; held flushes still answer only
   * when released.
   */
  private barrier(): void {
    for (const f of this.heldFlushes) {
      for (const w of f.writes) this.inner.write(w);
      f.writes = [];
    }
    for (const w of this.queued) this.inner.write(w);
    this.queued = [];
    this.inner.flush(() => {});
  }
}
