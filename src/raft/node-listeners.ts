// NodeListeners: the callbacks a RaftNode's users register (role changes, applied batches, installed
// snapshots), each with an unsubscribe function. A listener that throws is logged and skipped: it must
// not break the effect dispatch or the apply loop that calls it, nor keep the other listeners from
// hearing.

import type { SnapshotMeta } from '../../machines/protocol.js';
import type { ApplyOutcome } from './interfaces.js';
import type { RaftLogger, RoleChange } from './node-types.js';

export class NodeListeners {
  private roleListeners = new Set<(r: RoleChange) => void>();
  private appliedListeners = new Set<(o: ApplyOutcome[]) => void>();
  private installedListeners = new Set<(meta: SnapshotMeta) => void>();

  constructor(private readonly logger?: RaftLogger) {}

  onRoleChange(cb: (r: RoleChange) => void): () => void {
    this.roleListeners.add(cb);
    return () => this.roleListeners.delete(cb);
  }

  onApplied(cb: (outcomes: ApplyOutcome[]) => void): () => void {
    this.appliedListeners.add(cb);
    return () => this.appliedListeners.delete(cb);
  }

  onSnapshotInstalled(cb: (meta: SnapshotMeta) => void): () => void {
    this.installedListeners.add(cb);
    return () => this.installedListeners.delete(cb);
  }

  roleChanged(role: RoleChange): void {
    for (const cb of this.roleListeners) this.safely(() => cb(role));
  }

  applied(outcomes: ApplyOutcome[]): void {
    for (const cb of this.appliedListeners) this.safely(() => cb(outcomes));
  }

  snapshotInstalled(meta: SnapshotMeta): void {
    for (const cb of this.installedListeners) this.safely(() => cb(meta));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger?.warn({ err }, 'listener failed');
    }
  }
}
