// The chat state machine's side of snapshots. To Raft a snapshot is opaque bytes (src/raft/
// snapshot-store.ts); here those bytes are a SQLite file holding a copy of the chat tables (users,
// settings, sessions, chats, messages, idempotency, sequences, chat_meta, and `applied`). Because
// `applied` is one of the copied tables, the copy names the applied index it is consistent with, and
// restoring it sets the applied index in the same transaction as the state: no crash can separate the
// two. Only the chat tables are read or written; whatever else shares the replica's file (the Raft log)
// is none of this module's business.
//
// - writeChatSnapshot: copy the tables from a second connection's read transaction, a few hundred rows
//   per event-loop turn (background snapshots and backups);
// - restoreChatSnapshot: replace the chat tables with a copy's, in one transaction;
// - checkChatSnapshot: is a received file a sound copy at the announced index (before it is installed).

import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { touchPrivate } from '../private-files.js';
import type {
  SnapshotPayload,
  SnapshotSource,
  SnapshotTakeStats,
  SnapshotToOptions,
  SnapshotWritten,
} from '../raft/interfaces.js';
import { CHAT_META_SCHEMA, CHAT_SCHEMA } from './schema.js';

/** The tables of the chat state machine (every table schema.ts creates): what a snapshot holds. */
export const CHAT_TABLES: ReadonlySet<string> = new Set(
  [...`${CHAT_META_SCHEMA}\n${CHAT_SCHEMA}`.matchAll(/CREATE TABLE IF NOT EXISTS (\w+)/g)].map((m) => m[1]),
);

export interface ChatSnapshotSteps {
  /** Rows copied per statement (default 500: about 1-5 ms of work). */
  rowsPerStep?: number;
  /** Work per event-loop turn before yielding, in ms (default 4). */
  budgetMs?: number;
  /** How to yield between steps (default: setImmediate). */
  pause?: () => Promise<void>;
  now?: () => number;
}

export interface WriteChatSnapshotOptions extends ChatSnapshotSteps, SnapshotToOptions {}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The chat tables and their indexes as a database defines them (its own SQL, so copies match). */
function chatSchema(
  db: Database.Database,
  schema = 'main',
): { tables: { name: string; sql: string }[]; indexes: { table: string; sql: string }[] } {
  const rows = db
    .prepare(
      `SELECT type, name, tbl_name, sql FROM ${schema}.sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'`,
    )
    .all() as { type: string; name: string; tbl_name: string; sql: string }[];
  return {
    tables: rows.filter((r) => r.type === 'table' && CHAT_TABLES.has(r.name)),
    indexes: rows
      .filter((r) => r.type === 'index' && CHAT_TABLES.has(r.tbl_name))
      .map((r) => ({ table: r.tbl_name, sql: r.sql })),
  };
}

/** An empty copy file with the schema. Indexes come first so no single step has to build one. */
function createCopyFile(file: string, tables: { sql: string }[], indexes: { sql: string }[]): void {
  touchPrivate(file);
  const out = new Database(file);
  try {
    out.pragma('journal_mode = OFF');
    out.pragma('synchronous = OFF');
    for (const t of tables) out.exec(t.sql);
    for (const i of indexes) out.exec(i.sql);
  } finally {
    out.close();
  }
}

/**
 * Copy the chat tables of the database file `dbFile` into the new file `outFile` (fsynced), without
 * holding the event loop for long: a second connection to the file opens a read transaction (in WAL
 * mode it sees one fixed state of the database while the main connection keeps applying), reads the
 * applied index in that same transaction, and copies the tables a few hundred rows at a time, yielding
 * between steps. The copy is therefore consistent with exactly the applied index it reports.
 *
 * `accept(index)` is asked once that index is fixed; false abandons the copy (resolves undefined, no
 * file left). Snapshots (ChatSnapshots.snapshotTo) and backups (server/backup-source.ts) use it.
 */
export async function writeChatSnapshot(
  dbFile: string,
  outFile: string,
  opts: WriteChatSnapshotOptions,
): Promise<SnapshotWritten | undefined> {
  const rows = Math.max(1, opts.rowsPerStep ?? 500);
  const budget = opts.budgetMs ?? 4;
  const now = opts.now ?? (() => performance.now());
  const pause = opts.pause ?? (() => new Promise<void>((r) => setImmediate(r)));
  let reader: Database.Database | undefined;
  let inTx = false;
  try {
    fs.rmSync(outFile, { force: true });
    reader = new Database(dbFile, { fileMustExist: true });
    const { tables, indexes } = chatSchema(reader);
    createCopyFile(outFile, tables, indexes);
    reader.prepare('ATTACH DATABASE ? AS snap').run(outFile);
    reader.pragma('snap.journal_mode = OFF');
    reader.pragma('snap.synchronous = OFF');
    reader.exec('BEGIN');
    inTx = true;
    // The first read pins the WAL snapshot: every later read in this transaction sees this state.
    const index = reader.prepare('SELECT idx FROM main.applied WHERE id = 1').pluck().get() as
      | number
      | undefined;
    if (index === undefined || !opts.accept(index)) {
      reader.exec('ROLLBACK');
      inTx = false;
      reader.close();
      fs.rmSync(outFile, { force: true });
      return undefined;
    }
    const began = now();
    let stepStart = began;
    let maxStepMs = 0;
    let steps = 1;
    const stepMs: number[] = [];
    const stepCpuMs: number[] = [];
    let cpuStart = process.cpuUsage();
    const endStep = (spent: number) => {
      maxStepMs = Math.max(maxStepMs, spent);
      stepMs.push(spent);
      const cpu = process.cpuUsage(cpuStart);
      stepCpuMs.push((cpu.user + cpu.system) / 1000);
    };
    const maybePause = async () => {
      const spent = now() - stepStart;
      if (spent < budget) return;
      endStep(spent);
      steps++;
      await pause();
      stepStart = now();
      cpuStart = process.cpuUsage();
      if (opts.cancelled?.()) throw new Error('the copy was cancelled (the store closed)');
    };
    for (const t of tables) {
      const q = quote(t.name);
      if (/WITHOUT\s+ROWID/i.test(t.sql)) {
        reader.exec(`INSERT INTO snap.${q} SELECT * FROM main.${q}`);
        await maybePause();
        continue;
      }
      const bound = reader.prepare(
        `SELECT rowid FROM main.${q} WHERE rowid > ? ORDER BY rowid LIMIT 1 OFFSET ${rows - 1}`,
      );
      const some = reader.prepare(
        `INSERT INTO snap.${q} SELECT * FROM main.${q} WHERE rowid > ? AND rowid <= ? ORDER BY rowid`,
      );
      const rest = reader.prepare(
        `INSERT INTO snap.${q} SELECT * FROM main.${q} WHERE rowid > ? ORDER BY rowid`,
      );
      let after: number | bigint = Number.MIN_SAFE_INTEGER;
      for (let guard = 0; guard < 1e9; guard++) {
        const end = bound.pluck().get(after) as number | bigint | undefined;
        if (end === undefined) {
          rest.run(after);
          break;
        }
        some.run(after, end);
        after = end;
        await maybePause();
      }
    }
    reader.exec('COMMIT');
    inTx = false;
    reader.exec('DETACH DATABASE snap');
    reader.close();
    reader = undefined;
    endStep(now() - stepStart);
    // fsync on the thread pool: a large file must not hold the event loop.
    const fh = await fs.promises.open(outFile, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const stats: SnapshotTakeStats = { totalMs: now() - began, maxStepMs, steps, stepMs, stepCpuMs };
    return { index, stats };
  } catch (err) {
    if (reader?.open) {
      if (inTx) reader.exec('ROLLBACK');
      reader.close();
    }
    fs.rmSync(outFile, { force: true });
    throw err;
  }
}

/**
 * Replace the chat tables of `db` with those of the copy `file`, in one transaction: every chat table
 * of the copy is emptied and refilled (a table the database lacks is created with its indexes).
 * Nothing else in `db` is touched. With `expectIndex`, a copy at another applied index is refused and
 * nothing changes. Returns the restored applied index.
 */
export function restoreChatSnapshot(db: Database.Database, file: string, expectIndex?: number): number {
  db.prepare('ATTACH DATABASE ? AS snap').run(file);
  try {
    const { tables, indexes } = chatSchema(db, 'snap');
    if (!tables.some((t) => t.name === 'applied')) {
      throw new Error(`${file} is not a chat snapshot (it has no applied table)`);
    }
    const existing = new Set(
      db.prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'").pluck().all() as string[],
    );
    return db.transaction(() => {
      for (const t of tables) {
        const q = quote(t.name);
        if (!existing.has(t.name)) {
          db.exec(t.sql);
          for (const i of indexes) if (i.table === t.name) db.exec(i.sql);
        }
        // An unqualified DELETE empties the table wholesale, and an INSERT of a whole table into an
        // empty one of the same shape copies rows and index entries in order (SQLite's transfer
        // optimization), without re-sorting the indexes.
        db.exec(`DELETE FROM main.${q}`);
        db.exec(`INSERT INTO main.${q} SELECT * FROM snap.${q}`);
      }
      const applied = db.prepare('SELECT idx FROM main.applied WHERE id = 1').pluck().get() as number;
      if (expectIndex !== undefined && applied !== expectIndex) {
        throw new Error(`the snapshot holds a state applied through ${applied}, not ${expectIndex}`);
      }
      return applied;
    })();
  } finally {
    db.exec('DETACH DATABASE snap');
  }
}

/**
 * Whether `file` is a sound chat snapshot at applied index `index` (SQLite's quick_check, then the
 * applied index): FileSnapshotStore's verifier for bytes received from the leader.
 */
export function checkChatSnapshot(file: string, index: number): boolean {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    if (db.pragma('quick_check', { simple: true }) !== 'ok') return false;
    return db.prepare('SELECT idx FROM applied WHERE id = 1').pluck().get() === index;
  } catch {
    return false;
  } finally {
    db?.close();
  }
}

/** The chat store's snapshots as Raft asks for them: bytes written in steps, restored at once. */
export class ChatSnapshots implements SnapshotSource {
  constructor(
    private readonly db: Database.Database,
    private readonly steps: ChatSnapshotSteps = {},
  ) {}

  snapshotTo(file: string, opts: SnapshotToOptions): Promise<SnapshotWritten | undefined> {
    if (this.db.memory) throw new Error('an in-memory chat store cannot be snapshotted in the background');
    return writeChatSnapshot(this.db.name, file, { ...this.steps, ...opts });
  }

  restore(payload: SnapshotPayload): void {
    if (!payload.file) throw new Error('a chat snapshot is restored from a file');
    restoreChatSnapshot(this.db, payload.file, payload.meta.index);
  }
}
