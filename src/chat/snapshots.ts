// The chat state machine's side of snapshots: ChatStore keeps its tables (users, settings, sessions,
// chats, messages, idempotency, and `applied`) in the replica's SQLite file, so a snapshot is a copy of
// those tables and a restore replaces them. Because `applied` is one of the copied tables, restoring
// sets the applied index in the same transaction as the state: no crash can separate the two.

import type { SnapshotMeta } from '../../machines/protocol.js';
import { type FileSnapshotStore, restoreSnapshot } from '../raft/snapshot-store.js';
import type { ChatStore } from './store.js';

/** `installSnapshot` for RaftNode: replace the chat tables with the snapshot just installed. */
export function chatRestorer(chat: ChatStore, snapshots: FileSnapshotStore): (meta: SnapshotMeta) => void {
  return (meta) => {
    const file = snapshots.path();
    const latest = snapshots.latest();
    if (!file || latest.index !== meta.index || latest.term !== meta.term) {
      throw new Error(`snapshot ${meta.index}/${meta.term} is not the installed one`);
    }
    restoreSnapshot(chat.db, file);
    const applied = chat.appliedIndex();
    if (applied !== meta.index) {
      throw new Error(`snapshot ${meta.index} restored an applied index of ${applied}`);
    }
  };
}
