// Snapshot files: a consistent copy of the chat tables at an applied index, streamed in chunks and
// installed atomically.
//
// One snapshot is one SQLite file, `snapshot.db`, in the snapshot directory. The file carries its own
// metadata (table `snapshot_info`), so there is no second file to keep in step: a snapshot is complete
// exactly when `snapshot.db` exists, and it only ever appears by rename(2) of a fully written, fsynced
// temporary file. A crash while taking or receiving a snapshot therefore leaves the old one intact, and
// the leftover temporary file is removed on the next start.
//
// Recovery note for the host: the rename is the commit point of an installed snapshot. If the process
// dies after it but before the chat tables were restored and the log reset, then on start
// `latest().index` exceeds the state machine's applied index, and the host must restore from `path()`
// (restoreSnapshot) and call LogStore.resetToSnapshot(latest()) before anything else.

import * as fs from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ClusterConfig, SnapshotMeta } from '../../machines/protocol.js';
import { mkdirPrivate, touchPrivate } from '../private-files.js';
import type { SnapshotStore } from './interfaces.js';

/** Tables of the Raft layer (src/raft/sqlite-log-store.ts): never part of a snapshot. */
export const RAFT_TABLES: ReadonlySet<string> = new Set(['raft_meta', 'hard_state', 'log', 'snapshot_meta']);

const NONE: SnapshotMeta = { index: 0, term: 0, config: { members: [] } };

/** fsync a file or a directory (after a rename into it). */
export function fsyncPath(path: string): void {
  const fd = fs.openSync(path, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Read a snapshot file's metadata; undefined when it is not a complete, sound snapshot. */
function readInfo(file: string, deep: boolean): SnapshotMeta | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    if (deep && db.pragma('quick_check', { simple: true }) !== 'ok') return undefined;
    const row = db.prepare('SELECT idx, term, config FROM snapshot_info').get() as
      | { idx: number; term: number; config: string }
      | undefined;
    if (!row) return undefined;
    const config = JSON.parse(row.config) as ClusterConfig;
    if (!Array.isArray(config?.members)) return undefined;
    return { index: row.idx, term: row.term, config };
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

interface Incoming {
  meta: SnapshotMeta;
  fd: number;
  size: number;
}

export class FileSnapshotStore implements SnapshotStore {
  private readonly file: string;
  private readonly takingFile: string;
  private readonly incomingFile: string;
  private meta: SnapshotMeta = NONE;
  private size = 0;
  /** Open on the current snapshot so chunk reads stay consistent even if a newer one is renamed in. */
  private fd: number | undefined;
  private incoming: Incoming | undefined;
  /** A background take is running (one at a time; it owns the `.taking` file). */
  private taking = false;
  private closed = false;
  /** Figures of the last background take: total time and the longest single step (the pause). */
  lastTake:
    | {
        totalMs: number;
        maxStepMs: number;
        steps: number;
        bytes: number;
        /** Wall time of each step, and the CPU time this process used in it (wall minus CPU is time the
         *  process was not running at all: a loaded machine, not the copy). */
        stepMs: number[];
        stepCpuMs: number[];
      }
    | undefined;

  constructor(private readonly dir: string) {
    mkdirPrivate(dir);
    this.file = join(dir, 'snapshot.db');
    this.takingFile = join(dir, 'snapshot.db.taking');
    this.incomingFile = join(dir, 'snapshot.db.incoming');
    for (const leftover of [this.takingFile, this.incomingFile]) fs.rmSync(leftover, { force: true });
    if (fs.existsSync(this.file)) {
      const meta = readInfo(this.file, false);
      if (!meta) throw new Error(`snapshot file ${this.file} is unreadable`);
      this.adopt(meta);
    }
  }

  latest(): SnapshotMeta {
    return this.meta;
  }

  /** The file of the latest snapshot, for restoreSnapshot (undefined when there is none). */
  path(): string | undefined {
    return this.fd === undefined ? undefined : this.file;
  }

  /** Size in bytes of the latest snapshot. */
  byteLength(): number {
    return this.size;
  }

  read(offset: number, length: number): { chunk: Uint8Array; done: boolean } {
    if (this.fd === undefined) return { chunk: new Uint8Array(0), done: true };
    const want = Math.max(0, Math.min(length, this.size - offset));
    const chunk = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(this.fd, chunk, got, want - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return { chunk: chunk.subarray(0, got), done: offset + got >= this.size };
  }

  /**
   * Copy the chat tables of `db` (every table but the Raft ones) into a new snapshot at `meta`, then
   * make it the latest. Synchronous: the copy is consistent with the state at the call, which must be
   * the state machine's state after applying `meta.index`.
   */
  take(db: Database.Database, meta: SnapshotMeta): SnapshotMeta {
    if (this.taking) throw new Error('a snapshot is already being taken');
    fs.rmSync(this.takingFile, { force: true });
    const schema = (
      db
        .prepare(
          "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'",
        )
        .all() as { type: string; name: string; sql: string }[]
    ).filter((r) => !RAFT_TABLES.has(r.name));
    const tables = schema.filter((r) => r.type === 'table').map((r) => r.name);
    const indexSql = (
      db
        .prepare("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        .all() as { tbl_name: string; sql: string }[]
    ).filter((r) => !RAFT_TABLES.has(r.tbl_name));

    // The temporary file needs no journal and no syncs of its own: it counts only after the explicit
    // fsync before its rename, and a crash before that just leaves a leftover to delete.
    touchPrivate(this.takingFile);
    const out = new Database(this.takingFile);
    try {
      out.pragma('journal_mode = OFF');
      out.exec(
        'CREATE TABLE snapshot_info (idx INTEGER NOT NULL, term INTEGER NOT NULL, config TEXT NOT NULL)',
      );
      for (const r of schema) if (r.type === 'table') out.exec(r.sql);
    } finally {
      out.close();
    }
    db.prepare('ATTACH DATABASE ? AS snap').run(this.takingFile);
    try {
      db.pragma('snap.journal_mode = OFF');
      db.pragma('snap.synchronous = OFF');
      // One read transaction on the live database: every table is copied as of the same instant.
      db.transaction(() => {
        for (const t of tables) {
          const q = `"${t.replaceAll('"', '""')}"`;
          db.exec(`INSERT INTO snap.${q} SELECT * FROM main.${q}`);
        }
        copySequences(db, 'main', 'snap', tables);
        db.prepare('INSERT INTO snap.snapshot_info (idx, term, config) VALUES (?, ?, ?)').run(
          meta.index,
          meta.term,
          JSON.stringify(meta.config),
        );
      })();
    } finally {
      db.exec('DETACH DATABASE snap');
    }
    // Indexes after the data: faster, and the file is smaller.
    const finish = new Database(this.takingFile);
    try {
      finish.pragma('journal_mode = OFF');
      finish.pragma('synchronous = OFF');
      for (const r of indexSql) finish.exec(r.sql);
      finish.exec('VACUUM');
    } finally {
      finish.close();
    }
    this.install(this.takingFile);
    return this.meta;
  }

  /**
   * Take a snapshot in the background, without holding the event loop for long (copyInSteps), then
   * make it the latest. Resolves with the new latest snapshot, or undefined when nothing was installed
   * (abandoned, or a newer snapshot arrived meanwhile, e.g. one received from the leader).
   */
  async takeInSteps(dbFile: string, opts: StepOptions): Promise<SnapshotMeta | undefined> {
    if (this.taking) throw new Error('a snapshot is already being taken');
    if (this.closed) return undefined;
    this.taking = true;
    try {
      const copied = await copyInSteps(dbFile, this.takingFile, {
        ...opts,
        // Only a copy newer than the latest snapshot is worth taking.
        metaAt: (index) => (index <= this.meta.index ? undefined : opts.metaAt(index)),
        cancelled: () => this.closed,
      });
      if (!copied) return undefined;
      const { meta } = copied;
      // A snapshot installed meanwhile (received from the leader) is newer: it wins.
      if (this.closed || meta.index <= this.meta.index) {
        fs.rmSync(this.takingFile, { force: true });
        return undefined;
      }
      fs.renameSync(this.takingFile, this.file);
      await fsyncDir(this.dir);
      const got = readInfo(this.file, false);
      if (!got) throw new Error(`snapshot file ${this.file} is unreadable after install`);
      this.adopt(got);
      this.lastTake = { ...copied.stats, bytes: this.size };
      return got;
    } finally {
      this.taking = false;
    }
  }

  /** True while a background take is running. */
  isTaking(): boolean {
    return this.taking;
  }

  receive(meta: SnapshotMeta, offset: number, chunk: Uint8Array, done: boolean): number {
    if (meta.index === this.meta.index && meta.term === this.meta.term && this.fd !== undefined) {
      return this.size; // already installed (a repeated last chunk after a lost response)
    }
    if (this.incoming && (this.incoming.meta.index !== meta.index || this.incoming.meta.term !== meta.term)) {
      this.dropIncoming();
    }
    if (!this.incoming) {
      if (offset !== 0) return 0; // a transfer we have no start of: ask for it from the beginning
      this.incoming = { meta, fd: fs.openSync(this.incomingFile, 'w', 0o600), size: 0 };
    }
    const inc = this.incoming;
    if (offset !== inc.size) return inc.size; // a duplicate or a gap: tell the leader where we are
    let written = 0;
    while (written < chunk.length) {
      written += fs.writeSync(inc.fd, chunk, written, chunk.length - written, offset + written);
    }
    inc.size += chunk.length;
    if (!done) return inc.size;

    fs.fsyncSync(inc.fd);
    fs.closeSync(inc.fd);
    this.incoming = undefined;
    const got = readInfo(this.incomingFile, true);
    if (!got || got.index !== meta.index || got.term !== meta.term) {
      fs.rmSync(this.incomingFile, { force: true });
      return 0; // damaged or not what was announced: start over
    }
    this.install(this.incomingFile);
    return this.size;
  }

  /** Stop any transfer and release the file. */
  close(): void {
    this.closed = true;
    this.dropIncoming();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private dropIncoming(): void {
    if (!this.incoming) return;
    fs.closeSync(this.incoming.fd);
    fs.rmSync(this.incomingFile, { force: true });
    this.incoming = undefined;
  }

  /** Make a complete, fsynced temp file the latest snapshot: the rename is the commit point. */
  private install(tempFile: string): void {
    fsyncPath(tempFile);
    fs.renameSync(tempFile, this.file);
    fsyncPath(this.dir);
    const meta = readInfo(this.file, false);
    if (!meta) throw new Error(`snapshot file ${this.file} is unreadable after install`);
    this.adopt(meta);
  }

  private adopt(meta: SnapshotMeta): void {
    // The previous file was replaced by rename: closing its last descriptor frees tens of MB of
    // blocks, which can take a while on a busy disk. Do that on the thread pool, not the event loop.
    if (this.fd !== undefined) fs.close(this.fd, () => {});
    this.fd = fs.openSync(this.file, 'r');
    this.size = fs.fstatSync(this.fd).size;
    this.meta = meta;
  }
}

export interface StepOptions {
  /** The term and configuration of the applied index the copy turned out to be at. */
  metaAt: (index: number) => SnapshotMeta | undefined;
  /** Rows copied per statement (default 500: about 1-5 ms of work). */
  rowsPerStep?: number;
  /** Work per event-loop turn before yielding, in ms (default 4). */
  budgetMs?: number;
  /** How to yield between steps (default: setImmediate). */
  pause?: () => Promise<void>;
  now?: () => number;
}

export interface CopyOptions extends StepOptions {
  /** Checked between steps: true abandons the copy (it throws, and the file is removed). */
  cancelled?: () => boolean;
}

/** What copyInSteps produced: the metadata it recorded, and how long it held the event loop. */
export interface CopyResult {
  meta: SnapshotMeta;
  stats: {
    totalMs: number;
    maxStepMs: number;
    steps: number;
    /** Wall time of each step, and the CPU time this process used in it (wall minus CPU is time the
     *  process was not running at all: a loaded machine, not the copy). */
    stepMs: number[];
    stepCpuMs: number[];
  };
}

/**
 * Copy the non-Raft tables of the database file `dbFile` into a new snapshot file `outFile` (fsynced,
 * not installed anywhere), without holding the event loop for long: a second connection to the file
 * opens a read transaction (in WAL mode it sees one fixed snapshot of the database while the main
 * connection keeps applying), reads the applied index in that same transaction, and copies the tables
 * a few hundred rows at a time, yielding between steps. The copy is therefore consistent with exactly
 * the applied index it reports.
 *
 * `metaAt(index)` supplies the term and configuration recorded for that index; returning undefined
 * abandons the copy (resolves undefined, no file left). Snapshots (takeInSteps) and backups use it.
 */
export async function copyInSteps(
  dbFile: string,
  outFile: string,
  opts: CopyOptions,
): Promise<CopyResult | undefined> {
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
    createSnapshotFile(outFile, tables, indexes);
    reader.prepare('ATTACH DATABASE ? AS snap').run(outFile);
    reader.pragma('snap.journal_mode = OFF');
    reader.pragma('snap.synchronous = OFF');
    reader.exec('BEGIN');
    inTx = true;
    // The first read pins the WAL snapshot: every later read in this transaction sees this state.
    const index = reader.prepare('SELECT idx FROM main.applied WHERE id = 1').pluck().get() as
      | number
      | undefined;
    const meta = index === undefined ? undefined : opts.metaAt(index);
    if (!meta || meta.index !== index) {
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
    copySequences(
      reader,
      'main',
      'snap',
      tables.map((t) => t.name),
    );
    reader
      .prepare('INSERT INTO snap.snapshot_info (idx, term, config) VALUES (?, ?, ?)')
      .run(meta.index, meta.term, JSON.stringify(meta.config));
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
    return { meta, stats: { totalMs: now() - began, maxStepMs, steps, stepMs, stepCpuMs } };
  } catch (err) {
    if (reader?.open) {
      if (inTx) reader.exec('ROLLBACK');
      reader.close();
    }
    fs.rmSync(outFile, { force: true });
    throw err;
  }
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The chat tables and their indexes: everything in the file except the Raft layer's tables. */
function chatSchema(db: Database.Database): {
  tables: { name: string; sql: string }[];
  indexes: string[];
} {
  const rows = db
    .prepare(
      "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'",
    )
    .all() as { type: string; name: string; tbl_name: string; sql: string }[];
  return {
    tables: rows.filter((r) => r.type === 'table' && !RAFT_TABLES.has(r.name)),
    indexes: rows.filter((r) => r.type === 'index' && !RAFT_TABLES.has(r.tbl_name)).map((r) => r.sql),
  };
}

/** An empty snapshot file with the schema. Indexes come first so no single step has to build one. */
function createSnapshotFile(file: string, tables: { sql: string }[], indexes: string[]): void {
  touchPrivate(file);
  const out = new Database(file);
  try {
    out.pragma('journal_mode = OFF');
    out.pragma('synchronous = OFF');
    out.exec(
      'CREATE TABLE snapshot_info (idx INTEGER NOT NULL, term INTEGER NOT NULL, config TEXT NOT NULL)',
    );
    for (const t of tables) out.exec(t.sql);
    for (const i of indexes) out.exec(i);
  } finally {
    out.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** AUTOINCREMENT counters live in sqlite_sequence, which a table copy does not carry. */
function copySequences(db: Database.Database, from: string, to: string, tables: string[]): void {
  const has = (schema: string) =>
    db.prepare(`SELECT 1 FROM ${schema}.sqlite_master WHERE name = 'sqlite_sequence'`).get() !== undefined;
  if (tables.length === 0 || !has(from) || !has(to)) return;
  const list = tables.map(() => '?').join(', ');
  db.prepare(`DELETE FROM ${to}.sqlite_sequence WHERE name IN (${list})`).run(...tables);
  db.prepare(
    `INSERT INTO ${to}.sqlite_sequence SELECT name, seq FROM ${from}.sqlite_sequence WHERE name IN (${list})`,
  ).run(...tables);
}

/**
 * Replace the chat tables of `db` with those of a snapshot file, in one transaction: every table of
 * the snapshot is emptied and refilled, and a table the snapshot lacks is created. Raft tables are
 * untouched. Returns the snapshot's metadata.
 */
export function restoreSnapshot(db: Database.Database, file: string): SnapshotMeta {
  const meta = readInfo(file, false);
  if (!meta) throw new Error(`snapshot file ${file} is unreadable`);
  db.prepare('ATTACH DATABASE ? AS snap').run(file);
  try {
    const tables = (
      db
        .prepare("SELECT name, sql FROM snap.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .all() as {
        name: string;
        sql: string;
      }[]
    ).filter((t) => t.name !== 'snapshot_info' && !RAFT_TABLES.has(t.name));
    const indexes = db
      .prepare("SELECT tbl_name, sql FROM snap.sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
      .all() as { tbl_name: string; sql: string }[];
    const existing = new Set(
      (
        db.prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'").all() as { name: string }[]
      ).map((r) => r.name),
    );
    db.transaction(() => {
      for (const t of tables) {
        const q = `"${t.name.replaceAll('"', '""')}"`;
        if (!existing.has(t.name)) {
          db.exec(t.sql);
          for (const i of indexes) if (i.tbl_name === t.name) db.exec(i.sql);
        }
        db.exec(`DELETE FROM main.${q}`);
        db.exec(`INSERT INTO main.${q} SELECT * FROM snap.${q}`);
      }
      copySequences(
        db,
        'snap',
        'main',
        tables.map((t) => t.name),
      );
    })();
  } finally {
    db.exec('DETACH DATABASE snap');
  }
  return meta;
}
