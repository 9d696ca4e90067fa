// What a copy of the chat state holds (a chat snapshot, src/chat/snapshots.ts: a SQLite file of the
// chat tables; backups made before snapshots became opaque to Raft also carry a `snapshot_info`
// table): its applied index and its state_digest, computed exactly as GetStatus computes it
// (ChatStore.stateDigest), so a backup's digest and a restored replica's digest are comparable.
import Database from 'better-sqlite3';
import { ChatStore } from '../chat/store.js';

export interface CopyState {
  lastApplied: number;
  stateDigest: string;
}

/**
 * Reads a copy's applied index and digest, a few thousand rows per event-loop turn (a replica computes
 * it while serving). With `check`, SQLite's quick_check runs first (for a file from elsewhere). Throws
 * a plain Error (with SQLite's reason) when the file is not a sound copy: the caller words it for its
 * audience.
 */
export async function copyState(file: string, opts: { check?: boolean } = {}): Promise<CopyState> {
  if (opts.check) {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const ok = db.pragma('quick_check', { simple: true });
      if (ok !== 'ok') throw new Error(`SQLite's quick_check says: ${String(ok)}`);
    } finally {
      db.close();
    }
  }
  // Not durable: the copy is read, never written (ChatStore only creates what is missing, and in a
  // copy nothing is), and it must not be switched to WAL mode.
  const store = new ChatStore(file, { durable: false });
  try {
    const lastApplied = store.appliedIndex();
    const legacy = store.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'snapshot_info'")
      .get();
    const info = legacy
      ? (store.db.prepare('SELECT idx FROM snapshot_info').pluck().get() as number | undefined)
      : undefined;
    if (info !== undefined && info !== lastApplied) {
      throw new Error(`its snapshot_info says index ${info} but its chat tables are at ${lastApplied}`);
    }
    return { lastApplied, stateDigest: await store.stateDigestInSteps() };
  } finally {
    store.close();
  }
}
