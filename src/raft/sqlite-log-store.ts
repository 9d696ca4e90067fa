// The production LogStore: the Raft log, hard state and snapshot metadata in SQLite (WAL,
// synchronous=FULL), in the replica's one database file (the chat tables may live in the same file).
//
// Two views of the log:
// - memory: the terms of every entry in the log, and the bodies of the newest `cacheEntries` entries
//   plus everything not yet durable. The machines read this view synchronously (LogView); it shows a
//   write at once, before it is durable (etcd raft's "unstable" log).
// - disk: what the last commit made durable. `write()` only stages; `flush()` commits everything
//   staged in ONE transaction, which in WAL mode with synchronous=FULL is one fsync (group commit).
//   In 'deferred' mode (the default) every flush requested in the same event-loop tick shares that
//   transaction: N messages delivered in one batch cost one fsync, not N.
//
// Staged log changes are tracked as one number, `dirtyFrom`: every index at or above it may differ
// from disk, and all of them are in the memory cache. A flush deletes from `dirtyFrom` and re-inserts
// the cached suffix, which also merges truncate-then-append sequences for free.

import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type {
  ClusterConfig,
  Entry,
  EntryKind,
  HardState,
  NodeId,
  SnapshotMeta,
} from '../../machines/protocol.js';
import { mkdirPrivate, touchPrivateDatabase } from '../private-files.js';
import { UserError } from '../user-error.js';
import type { LogStore, LogWrite } from './interfaces.js';

/** Bumped on any incompatible change of the Raft tables. */
export const FORMAT_VERSION = 1;

export type DataDirProblem = 'corrupt' | 'foreign' | 'version';

/** The data dir cannot be used: corrupt, another node's or another cluster's, or another format. */
export class DataDirError extends UserError {
  constructor(
    readonly problem: DataDirProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface SqliteLogStoreOptions {
  /** An open database (shared with the chat tables; not closed by close()) or a file path. */
  db: Database.Database | string;
  nodeId: NodeId;
  /** Recorded on first open; a different one later means the data dir belongs to another cluster. */
  clusterId?: string;
  /** 'deferred' (default): flushes of one tick share one commit, `done` runs on setImmediate.
   *  'sync': every flush commits at once and calls `done` before returning. */
  flushMode?: 'deferred' | 'sync';
  /** Bodies of this many newest durable entries stay in memory (default 8192). */
  cacheEntries?: number;
  /** Called after every commit (one fsync): for tests, metrics and the benchmark. */
  onCommit?: (info: { entries: number }) => void;
}

export interface LogStoreStats {
  /** Transactions committed, each one fsync. */
  commits: number;
  entriesWritten: number;
  /** entries() calls that had to read old entries from disk. */
  diskReads: number;
}

const KINDS: ReadonlySet<string> = new Set(['noop', 'command', 'config']);

const SCHEMA = `
  CREATE TABLE raft_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE hard_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, voted_for TEXT,
                           commit_index INTEGER NOT NULL DEFAULT 0);
  CREATE TABLE log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL);
  CREATE TABLE snapshot_meta (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL,
                              config TEXT NOT NULL);
  INSERT INTO hard_state (id, term, voted_for) VALUES (1, 0, NULL);
  INSERT INTO snapshot_meta (id, idx, term, config) VALUES (1, 0, 0, '{"members":[]}');
`;

function parseConfig(data: string): ClusterConfig | undefined {
  try {
    const c = JSON.parse(data) as ClusterConfig;
    return Array.isArray(c?.members) ? c : undefined;
  } catch {
    return undefined;
  }
}

export class SqliteLogStore implements LogStore {
  private readonly db: Database.Database;
  private readonly ownsDb: boolean;
  private readonly file: string;
  private readonly mode: 'deferred' | 'sync';
  private readonly cacheEntries: number;
  private readonly onCommit?: (info: { entries: number }) => void;
  private syncObserver: ((ms: number) => void) | undefined;

  private hs: HardState = { term: 0, votedFor: null };
  /** The commit index written (LogWrite.commit); saved with the hard state. */
  private committed = 0;
  private hsDirty = false;
  private snap: SnapshotMeta = { index: 0, term: 0, config: { members: [] } };
  /** terms[i] is the term of entry snap.index + 1 + i. */
  private terms: number[] = [];
  /** cache[i] is entry cacheStart + i; it always reaches lastIndex. */
  private cache: Entry[] = [];
  private cacheStart = 1;
  /** Config entries still in the log, oldest first. */
  private configs: { index: number; config: ClusterConfig }[] = [];
  private dirtyFrom = Number.POSITIVE_INFINITY;
  private waiters: (() => void)[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;
  private readonly counters: LogStoreStats = { commits: 0, entriesWritten: 0, diskReads: 0 };

  private readonly stmt: {
    saveHardState: Database.Statement;
    deleteFrom: Database.Statement;
    deleteThrough: Database.Statement;
    insert: Database.Statement;
    range: Database.Statement;
    saveSnapshot: Database.Statement;
  };

  constructor(opts: SqliteLogStoreOptions) {
    this.mode = opts.flushMode ?? 'deferred';
    this.cacheEntries = Math.max(1, opts.cacheEntries ?? 8192);
    this.onCommit = opts.onCommit;
    if (typeof opts.db === 'string') {
      this.file = opts.db;
      if (opts.db !== ':memory:') mkdirPrivate(dirname(opts.db));
      this.ownsDb = true;
    } else {
      this.file = opts.db.name;
      this.ownsDb = false;
    }
    const corrupt = (detail: string) =>
      new DataDirError('corrupt', `data dir ${this.file} is corrupt: ${detail}`);
    let db: Database.Database | undefined;
    try {
      if (typeof opts.db === 'string') touchPrivateDatabase(opts.db);
      db = typeof opts.db === 'string' ? new Database(opts.db) : opts.db;
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      this.initSchema(db, opts.nodeId, opts.clusterId);
      this.db = db;
      this.stmt = {
        saveHardState: db.prepare(
          'UPDATE hard_state SET term = ?, voted_for = ?, commit_index = ? WHERE id = 1',
        ),
        deleteFrom: db.prepare('DELETE FROM log WHERE idx >= ?'),
        deleteThrough: db.prepare('DELETE FROM log WHERE idx <= ?'),
        insert: db.prepare('INSERT INTO log (idx, term, kind, payload) VALUES (?, ?, ?, ?)'),
        range: db.prepare(
          'SELECT idx, term, kind, payload FROM log WHERE idx >= ? AND idx <= ? ORDER BY idx',
        ),
        saveSnapshot: db.prepare('UPDATE snapshot_meta SET idx = ?, term = ?, config = ? WHERE id = 1'),
      };
      this.load(corrupt);
    } catch (err) {
      if (this.ownsDb) db?.close();
      if (err instanceof DataDirError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') throw corrupt((err as Error).message);
      throw err;
    }
  }

  // --- LogView ---------------------------------------------------------------------------------------

  lastIndex(): number {
    return this.snap.index + this.terms.length;
  }

  firstIndex(): number {
    return this.snap.index + 1;
  }

  snapshot(): SnapshotMeta {
    return this.snap;
  }

  termAt(index: number): number | undefined {
    if (index === 0) return 0;
    if (index === this.snap.index) return this.snap.term;
    if (index <= this.snap.index || index > this.lastIndex()) return undefined;
    return this.terms[index - this.snap.index - 1];
  }

  entries(from: number, to: number, maxEntries: number): Entry[] {
    if (from < this.firstIndex()) return [];
    const last = Math.min(to, this.lastIndex(), from + maxEntries - 1);
    if (last < from) return [];
    if (from >= this.cacheStart) return this.cache.slice(from - this.cacheStart, last - this.cacheStart + 1);
    // Old entries (a follower catching up): disk for the part below the cache, which is durable and
    // current there because every staged change lies at or above cacheStart.
    this.counters.diskReads++;
    const diskLast = Math.min(last, this.cacheStart - 1);
    const rows = this.stmt.range.all(from, diskLast) as {
      idx: number;
      term: number;
      kind: EntryKind;
      payload: string;
    }[];
    if (rows.length !== diskLast - from + 1) {
      throw new Error(`log store: entries ${from}..${diskLast} missing on disk`);
    }
    const out: Entry[] = rows.map((r) => ({ index: r.idx, term: r.term, kind: r.kind, data: r.payload }));
    if (last >= this.cacheStart) out.push(...this.cache.slice(0, last - this.cacheStart + 1));
    return out;
  }

  // --- LogStore --------------------------------------------------------------------------------------

  hardState(): HardState {
    return this.hs;
  }

  commitIndex(): number {
    return this.committed;
  }

  config(): ClusterConfig {
    return this.configs.length > 0 ? this.configs[this.configs.length - 1].config : this.snap.config;
  }

  configAt(index: number): ClusterConfig {
    for (let i = this.configs.length - 1; i >= 0; i--) {
      if (this.configs[i].index <= index) return this.configs[i].config;
    }
    return this.snap.config;
  }

  write(batch: LogWrite): void {
    this.assertOpen();
    if (batch.hardState) {
      const next = batch.hardState;
      // Safety checks, not input validation: a machine that lowers its term or changes its vote
      // within a term is broken, and persisting that could elect two leaders.
      if (next.term < this.hs.term) {
        throw new Error(`log store: term would move backwards (${this.hs.term} -> ${next.term})`);
      }
      if (next.term === this.hs.term && this.hs.votedFor !== null && next.votedFor !== this.hs.votedFor) {
        throw new Error(`log store: vote in term ${next.term} would change from ${this.hs.votedFor}`);
      }
      if (next.term !== this.hs.term || next.votedFor !== this.hs.votedFor) {
        this.hs = { term: next.term, votedFor: next.votedFor };
        this.hsDirty = true;
      }
    }
    if (batch.commit !== undefined && batch.commit > this.committed) {
      this.committed = batch.commit;
      this.hsDirty = true;
    }
    if (batch.truncateFrom !== undefined) this.truncate(batch.truncateFrom);
    const entries = batch.entries ?? [];
    if (entries.length === 0) return;
    // An append that starts inside the log overwrites from there (an implicit truncation).
    if (entries[0].index <= this.lastIndex()) this.truncate(entries[0].index);
    let expect = this.lastIndex() + 1;
    for (const e of entries) {
      if (e.index !== expect) throw new Error(`log store: entry ${e.index} does not follow ${expect - 1}`);
      if (!KINDS.has(e.kind)) throw new Error(`log store: unknown entry kind ${e.kind}`);
      expect++;
    }
    this.dirtyFrom = Math.min(this.dirtyFrom, entries[0].index);
    for (const e of entries) {
      this.terms.push(e.term);
      this.cache.push(e);
      if (e.kind === 'config') {
        const config = parseConfig(e.data);
        if (config) this.configs.push({ index: e.index, config });
      }
    }
  }

  flush(done: () => void): void {
    this.assertOpen();
    if (this.mode === 'sync') {
      this.commit();
      done();
      return;
    }
    this.waiters.push(done);
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      if (this.closed) return;
      this.commit();
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    });
  }

  compact(meta: SnapshotMeta): void {
    this.assertOpen();
    if (meta.index <= this.snap.index) return;
    if (meta.index > this.lastIndex()) {
      throw new Error(
        `log store: cannot compact through ${meta.index} beyond the last entry ${this.lastIndex()}`,
      );
    }
    this.dropThrough(meta);
  }

  resetToSnapshot(meta: SnapshotMeta): void {
    this.assertOpen();
    if (meta.index <= this.snap.index) return;
    if (meta.index <= this.lastIndex() && this.termAt(meta.index) === meta.term) {
      // §7: the log has the snapshot's last entry, so the suffix after it is still valid.
      this.dropThrough(meta);
      return;
    }
    this.terms = [];
    this.cache = [];
    this.configs = [];
    this.cacheStart = meta.index + 1;
    this.snap = meta;
    this.dirtyFrom = Number.POSITIVE_INFINITY;
    this.transaction(() => {
      this.stmt.deleteFrom.run(0);
      this.stmt.saveSnapshot.run(meta.index, meta.term, JSON.stringify(meta.config));
    });
  }

  close(): void {
    if (this.closed) return;
    // A graceful stop keeps what was staged; pending `done` callbacks are dropped with the host.
    if (this.db.open) this.commit();
    this.closed = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    this.waiters = [];
    if (this.ownsDb) this.db.close();
  }

  /**
   * Report how long each commit transaction (one fsync at synchronous=FULL) takes, in ms: for metrics,
   * which time the log's fsyncs through this instead of wrapping a private method. Undefined stops it.
   */
  onSync(observer: ((ms: number) => void) | undefined): void {
    this.syncObserver = observer;
  }

  stats(): LogStoreStats {
    return { ...this.counters };
  }

  // --- internals -------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new Error('log store is closed');
  }

  private truncate(from: number): void {
    if (from <= this.snap.index) {
      throw new Error(
        `log store: cannot truncate from ${from}, entries through ${this.snap.index} are compacted`,
      );
    }
    if (from > this.lastIndex()) return;
    this.terms.length = from - this.snap.index - 1;
    if (from < this.cacheStart) {
      this.cache = [];
      this.cacheStart = from;
    } else {
      this.cache.length = from - this.cacheStart;
    }
    while (this.configs.length > 0 && this.configs[this.configs.length - 1].index >= from) this.configs.pop();
    this.dirtyFrom = Math.min(this.dirtyFrom, from);
  }

  /** Forget entries through meta.index (which is in the log with meta.term) and record the snapshot. */
  private dropThrough(meta: SnapshotMeta): void {
    const n = meta.index - this.snap.index;
    this.terms.splice(0, n);
    if (meta.index >= this.cacheStart) {
      this.cache.splice(0, meta.index - this.cacheStart + 1);
      this.cacheStart = meta.index + 1;
    }
    this.configs = this.configs.filter((c) => c.index > meta.index);
    this.snap = meta;
    this.transaction(() => {
      this.stmt.deleteThrough.run(meta.index);
      this.stmt.saveSnapshot.run(meta.index, meta.term, JSON.stringify(meta.config));
    });
  }

  /** Commit everything staged (one transaction, one fsync); nothing to do when nothing is staged. */
  private commit(): void {
    if (!this.hsDirty && this.dirtyFrom === Number.POSITIVE_INFINITY) return;
    this.transaction(() => {});
  }

  /** One transaction holding `extra` and everything staged. */
  private transaction(extra: () => void): void {
    const from = this.dirtyFrom;
    let written = 0;
    const t0 = this.syncObserver ? performance.now() : 0;
    this.db.transaction(() => {
      if (this.hsDirty) this.stmt.saveHardState.run(this.hs.term, this.hs.votedFor, this.committed);
      if (from !== Number.POSITIVE_INFINITY) {
        this.stmt.deleteFrom.run(from);
        for (let i = Math.max(from, this.cacheStart) - this.cacheStart; i < this.cache.length; i++) {
          const e = this.cache[i];
          this.stmt.insert.run(e.index, e.term, e.kind, e.data);
          written++;
        }
      }
      extra();
    })();
    this.syncObserver?.(performance.now() - t0);
    this.hsDirty = false;
    this.dirtyFrom = Number.POSITIVE_INFINITY;
    this.counters.commits++;
    this.counters.entriesWritten += written;
    this.trimCache();
    this.onCommit?.({ entries: written });
  }

  /** Keep the newest `cacheEntries` bodies; trim in chunks so the splice cost is amortized. */
  private trimCache(): void {
    if (this.cache.length <= this.cacheEntries * 2) return;
    const drop = this.cache.length - this.cacheEntries;
    this.cache.splice(0, drop);
    this.cacheStart += drop;
  }

  private initSchema(db: Database.Database, nodeId: NodeId, clusterId: string | undefined): void {
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map(
        (r) => r.name,
      ),
    );
    if (!tables.has('raft_meta')) {
      if (tables.has('log') || tables.has('hard_state') || tables.has('snapshot_meta')) {
        throw new DataDirError(
          'foreign',
          `data dir ${this.file} holds Raft tables that Quorum Chat did not create`,
        );
      }
      db.transaction(() => {
        db.exec(SCHEMA);
        const put = db.prepare('INSERT INTO raft_meta (key, value) VALUES (?, ?)');
        put.run('format_version', String(FORMAT_VERSION));
        put.run('node_id', nodeId);
        if (clusterId) put.run('cluster_id', clusterId);
      })();
      return;
    }
    const meta = new Map(
      (db.prepare('SELECT key, value FROM raft_meta').all() as { key: string; value: string }[]).map((r) => [
        r.key,
        r.value,
      ]),
    );
    const version = meta.get('format_version');
    if (version !== String(FORMAT_VERSION)) {
      throw new DataDirError(
        'version',
        `data dir ${this.file} has format version ${version ?? 'unknown'}; this build reads version ${FORMAT_VERSION}`,
      );
    }
    const owner = meta.get('node_id');
    if (owner !== nodeId) {
      throw new DataDirError('foreign', `data dir ${this.file} belongs to node "${owner}", not "${nodeId}"`);
    }
    const cluster = meta.get('cluster_id');
    if (clusterId && cluster && cluster !== clusterId) {
      throw new DataDirError(
        'foreign',
        `data dir ${this.file} belongs to another cluster (its cluster secret differs)`,
      );
    }
    if (clusterId && !cluster) {
      db.prepare('INSERT INTO raft_meta (key, value) VALUES (?, ?)').run('cluster_id', clusterId);
    }
    // Data dirs from before the commit index was persisted: add the column (0 = none recorded, the
    // replica then starts from its applied index as before). Older builds ignore the extra column.
    const hsColumns = db.prepare('PRAGMA table_info(hard_state)').all() as { name: string }[];
    if (hsColumns.length > 0 && !hsColumns.some((c) => c.name === 'commit_index')) {
      db.exec('ALTER TABLE hard_state ADD COLUMN commit_index INTEGER NOT NULL DEFAULT 0');
    }
  }

  private load(corrupt: (detail: string) => DataDirError): void {
    const hs = this.db.prepare('SELECT term, voted_for, commit_index FROM hard_state WHERE id = 1').get() as
      | { term: number; voted_for: string | null; commit_index: number }
      | undefined;
    const sm = this.db.prepare('SELECT idx, term, config FROM snapshot_meta WHERE id = 1').get() as
      | { idx: number; term: number; config: string }
      | undefined;
    if (!hs || !sm) throw corrupt('the hard state or snapshot record is missing');
    const snapConfig = parseConfig(sm.config);
    if (!snapConfig) throw corrupt('the snapshot configuration is unreadable');
    this.hs = { term: hs.term, votedFor: hs.voted_for };
    this.committed = hs.commit_index;
    this.snap = { index: sm.idx, term: sm.term, config: snapConfig };

    // Terms of the whole log (bounded by compaction) and the config entries; bodies only for the tail.
    const rows = this.db.prepare('SELECT idx, term FROM log ORDER BY idx').raw().all() as [number, number][];
    let expect = this.snap.index + 1;
    let prevTerm = this.snap.term;
    for (const [idx, term] of rows) {
      if (idx !== expect) throw corrupt(`log entry ${expect} is missing`);
      if (term < prevTerm) throw corrupt(`log terms go backwards at entry ${idx}`);
      this.terms.push(term);
      prevTerm = term;
      expect++;
    }
    if (prevTerm > this.hs.term)
      throw corrupt(`the log holds term ${prevTerm} beyond the current term ${this.hs.term}`);
    const configRows = this.db
      .prepare("SELECT idx, payload FROM log WHERE kind = 'config' ORDER BY idx")
      .all() as {
      idx: number;
      payload: string;
    }[];
    for (const r of configRows) {
      // Like write(): an unreadable config entry is not a configuration (the leader's bug, not ours).
      const config = parseConfig(r.payload);
      if (config) this.configs.push({ index: r.idx, config });
    }
    const last = this.lastIndex();
    this.cacheStart = Math.max(this.snap.index + 1, last - this.cacheEntries + 1);
    this.cache = (
      this.stmt.range.all(this.cacheStart, last) as {
        idx: number;
        term: number;
        kind: EntryKind;
        payload: string;
      }[]
    ).map((r) => {
      if (!KINDS.has(r.kind)) throw corrupt(`entry ${r.idx} has an unknown kind`);
      return { index: r.idx, term: r.term, kind: r.kind, data: r.payload };
    });
  }
}
