// An in-memory SnapshotStore with the same chunk protocol as FileSnapshotStore (resumable offsets,
// a partial transfer restarts when the snapshot changes, install is all-or-nothing). Tests and the
// simulator use it (it lives under src/raft/sim because `make sim`, production-side tooling, runs it); `crash()` drops what a process crash would lose (the partial incoming transfer).

import type { SnapshotMeta } from '../../../machines/protocol.js';
import type { SnapshotPayload, SnapshotStore } from '../interfaces.js';

const NONE: SnapshotMeta = { index: 0, term: 0, config: { members: [] } };

export class MemorySnapshotStore implements SnapshotStore {
  private meta: SnapshotMeta = NONE;
  private data: Uint8Array = new Uint8Array(0);
  private incoming: { meta: SnapshotMeta; parts: Uint8Array[]; size: number } | undefined;
  /** Chunks received, for tests. */
  received = 0;

  latest(): SnapshotMeta {
    return this.meta;
  }

  bytes(): Uint8Array {
    return this.data;
  }

  byteLength(): number {
    return this.data.length;
  }

  payload(): SnapshotPayload | undefined {
    if (this.meta.index === 0) return undefined;
    const data = this.data;
    return {
      meta: this.meta,
      byteLength: data.length,
      read: (offset, length) => data.slice(offset, Math.min(data.length, offset + Math.max(0, length))),
    };
  }

  /** Make `data` the latest snapshot at `meta` (a local take). */
  put(meta: SnapshotMeta, data: Uint8Array): void {
    this.meta = meta;
    this.data = data;
  }

  read(offset: number, length: number): { chunk: Uint8Array; done: boolean } {
    const end = Math.min(this.data.length, offset + Math.max(0, length));
    return { chunk: this.data.slice(Math.min(offset, end), end), done: end >= this.data.length };
  }

  receive(meta: SnapshotMeta, offset: number, chunk: Uint8Array, done: boolean): number {
    this.received++;
    if (meta.index === this.meta.index && meta.term === this.meta.term && this.meta.index > 0) {
      return this.data.length;
    }
    if (this.incoming && (this.incoming.meta.index !== meta.index || this.incoming.meta.term !== meta.term)) {
      this.incoming = undefined;
    }
    if (!this.incoming) {
      if (offset !== 0) return 0;
      this.incoming = { meta, parts: [], size: 0 };
    }
    const inc = this.incoming;
    if (offset !== inc.size) return inc.size;
    inc.parts.push(Uint8Array.from(chunk));
    inc.size += chunk.length;
    if (!done) return inc.size;
    const all = new Uint8Array(inc.size);
    let at = 0;
    for (const p of inc.parts) {
      all.set(p, at);
      at += p.length;
    }
    this.incoming = undefined;
    this.put(meta, all);
    return all.length;
  }

  /** A copy holding only what survives a crash: the latest complete snapshot. */
  crash(): MemorySnapshotStore {
    const s = new MemorySnapshotStore();
    s.put(this.meta, this.data);
    return s;
  }
}
