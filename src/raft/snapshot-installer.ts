// SnapshotInstaller: the receiver side of InstallSnapshot, and the repair of an install a crash
// interrupted. Installing is three durable steps: the store makes the received bytes its latest
// snapshot (the commit point, inside the SnapshotStore), the state machine restores itself from those
// opaque bytes in one atomic step that also sets its applied index, and the log is reset to the
// snapshot. A crash between any two of them is repaired by recover() on the next start, before the
// machine runs. Raft never looks inside the bytes: what they hold is the state machine's business.

import type { InstallSnapshot, InstallSnapshotResponse, SnapshotMeta } from '../../machines/protocol.js';
import type { LogStore, SnapshotStore, StateMachine } from './interfaces.js';
import type { RaftLogger } from './node-types.js';

export interface SnapshotInstallerOptions {
  id: string;
  store: SnapshotStore | undefined;
  logStore: LogStore;
  stateMachine: StateMachine;
  /** Acknowledge a chunk (the leader paces the transfer on it). */
  send: (m: InstallSnapshotResponse) => void;
  logger?: RaftLogger;
  now?: () => number;
}

export class SnapshotInstaller {
  constructor(private readonly opts: SnapshotInstallerOptions) {}

  /** Restores the state machine from the store's latest snapshot, when both can (else undefined). */
  private restorer(): ((meta: SnapshotMeta) => void) | undefined {
    const { stateMachine: sm, store } = this.opts;
    if (!sm.restore || !store) return undefined;
    return (meta) => {
      const payload = store.payload();
      if (!payload || payload.meta.index !== meta.index || payload.meta.term !== meta.term) {
        throw new Error(`snapshot ${meta.index}/${meta.term} is not the one the store holds`);
      }
      sm.restore?.(payload);
      const applied = sm.appliedIndex();
      if (applied !== meta.index) {
        throw new Error(`the snapshot at ${meta.index} restored an applied index of ${applied}`);
      }
    };
  }

  /**
   * Store one chunk; on the last one, install. Returns the installed snapshot's metadata, or null
   * while chunks are still expected (or when this host cannot install snapshots). Throws when the
   * restore fails: the file is in place, and the next start retries it (recover()).
   */
  receive(m: InstallSnapshot): SnapshotMeta | null {
    const store = this.opts.store;
    const restore = this.restorer();
    if (!store || !restore) return null;
    const meta: SnapshotMeta = { index: m.lastIncludedIndex, term: m.lastIncludedTerm, config: m.config };
    const bytes = Buffer.from(m.chunk, 'base64');
    const next = store.receive(meta, m.offset, bytes, m.done);
    const installed = m.done && next === m.offset + bytes.length && store.latest().index === meta.index;
    if (!installed) {
      this.opts.send({
        type: 'InstallSnapshotResponse',
        from: this.opts.id,
        to: m.from,
        term: m.term,
        lastIncludedIndex: meta.index,
        nextOffset: next,
        installed: false,
      });
      return null;
    }
    const now = this.opts.now ?? Date.now;
    const started = now();
    restore(meta);
    this.opts.logStore.resetToSnapshot(meta);
    this.opts.logger?.info({ index: meta.index, ms: now() - started }, 'snapshot installed');
    return meta;
  }

  /**
   * Repair an install interrupted by a crash, before the machine starts:
   * - the file was renamed in but the tables were not restored: restore them now;
   * - the tables were restored but the log was not reset: reset it (a log that already holds the
   *   snapshot's last entry with its term is consistent with it and stays as it is).
   */
  recover(): void {
    const store = this.opts.store;
    if (!store) return;
    const meta = store.latest();
    if (meta.index === 0) return;
    const { logStore, stateMachine } = this.opts;
    if (meta.index > stateMachine.appliedIndex()) {
      const restore = this.restorer();
      if (!restore) return;
      this.opts.logger?.warn({ index: meta.index }, 'finishing a snapshot install interrupted by a crash');
      restore(meta);
    }
    if (meta.index > logStore.snapshot().index && logStore.termAt(meta.index) !== meta.term) {
      logStore.resetToSnapshot(meta);
    }
  }
}
