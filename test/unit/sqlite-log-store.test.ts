import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterConfig, Entry, HardState, SnapshotMeta } from '../../machines/protocol.js';
import { DataDirError, SqliteLogStore, type SqliteLogStoreOptions } from '../../src/raft/sqlite-log-store.js';
import { UserError } from '../../src/user-error.js';

let dir: string;
let file: string;
const open: { close(): void }[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qc-log-'));
  file = join(dir, 'node', 'replica.db');
});
afterEach(() => {
  for (const s of open.splice(0)) {
    try {
      s.close();
    } catch {
      // already closed by the test
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

function store(opts: Partial<SqliteLogStoreOptions> = {}): SqliteLogStore {
  const s = new SqliteLogStore({ db: file, nodeId: 'n1', flushMode: 'sync', ...opts });
  open.push(s);
  return s;
}

const cfg = (...ids: string[]): ClusterConfig => ({
  members: ids.map((id, i) => ({ id, address: `127.0.0.1:${5555 + i}`, voter: true })),
});

function run(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, kind: 'command', data: `{"n":${i}}` });
  return out;
}

/** Rows on disk, read through a separate connection: what a crash right now would leave. */
function onDisk(): { idx: number; term: number }[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT idx, term FROM log ORDER BY idx').all() as { idx: number; term: number }[];
  } finally {
    db.close();
  }
}

describe('SqliteLogStore', () => {
  it('starts empty', () => {
    const s = store();
    expect(s.lastIndex()).toBe(0);
    expect(s.firstIndex()).toBe(1);
    expect(s.termAt(0)).toBe(0);
    expect(s.termAt(1)).toBeUndefined();
    expect(s.entries(1, 10, 10)).toEqual([]);
    expect(s.hardState()).toEqual({ term: 0, votedFor: null });
    expect(s.snapshot()).toEqual({ index: 0, term: 0, config: { members: [] } });
    expect(s.config()).toEqual({ members: [] });
  });

  it('shows writes at once, makes them durable only on flush, and recovers them on reopen', () => {
    const s = store();
    s.write({ hardState: { term: 2, votedFor: 'n1' }, entries: run(1, 3, 2) });
    s.write({ entries: [{ index: 4, term: 2, kind: 'config', data: JSON.stringify(cfg('n1', 'n2')) }] });
    expect(s.lastIndex()).toBe(4);
    expect(s.termAt(3)).toBe(2);
    expect(s.entries(2, 3, 10)).toEqual(run(2, 3, 2));
    expect(s.config()).toEqual(cfg('n1', 'n2'));
    expect(onDisk()).toEqual([]);
    let done = false;
    s.flush(() => {
      done = true;
    });
    expect(done).toBe(true);
    expect(onDisk().map((r) => r.idx)).toEqual([1, 2, 3, 4]);
    s.close();
    const again = store();
    expect(again.hardState()).toEqual({ term: 2, votedFor: 'n1' });
    expect(again.lastIndex()).toBe(4);
    expect(again.entries(1, 4, 10)).toEqual([
      ...run(1, 3, 2),
      { index: 4, term: 2, kind: 'config', data: JSON.stringify(cfg('n1', 'n2')) },
    ]);
    expect(again.config()).toEqual(cfg('n1', 'n2'));
  });

  it('group commit: many writes, one flush, one transaction', () => {
    const commits: number[] = [];
    const s = store({ onCommit: ({ entries }) => commits.push(entries) });
    for (let i = 1; i <= 50; i++) s.write({ entries: run(i, i, 1), hardState: { term: 1, votedFor: null } });
    s.flush(() => {});
    expect(commits).toEqual([50]);
    expect(s.stats()).toMatchObject({ commits: 1, entriesWritten: 50 });
    // Nothing staged: a flush costs no transaction and still calls back.
    let called = 0;
    s.flush(() => called++);
    expect(called).toBe(1);
    expect(commits).toEqual([50]);
  });

  it('deferred mode merges every flush of one tick into one commit and calls back after it', async () => {
    const commits: number[] = [];
    const s = store({ flushMode: 'deferred', onCommit: ({ entries }) => commits.push(entries) });
    const done: number[] = [];
    for (let i = 1; i <= 10; i++) {
      s.write({ entries: run(i, i, 1) });
      s.flush(() => done.push(i));
    }
    expect(done).toEqual([]);
    expect(onDisk()).toEqual([]);
    await new Promise<void>((resolve) => s.flush(resolve));
    expect(done).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(commits).toEqual([10]);
    expect(onDisk()).toHaveLength(10);
  });

  it('truncates on conflict, explicitly and by overwriting, in memory and on disk', () => {
    const s = store();
    s.write({ hardState: { term: 3, votedFor: null }, entries: run(1, 5, 1) });
    s.flush(() => {});
    s.write({ truncateFrom: 3, entries: run(3, 4, 2) });
    expect(s.lastIndex()).toBe(4);
    expect([1, 2, 3, 4, 5].map((i) => s.termAt(i))).toEqual([1, 1, 2, 2, undefined]);
    s.write({ entries: run(4, 4, 3) }); // overwrite from 4
    s.flush(() => {});
    expect(onDisk()).toEqual([
      { idx: 1, term: 1 },
      { idx: 2, term: 1 },
      { idx: 3, term: 2 },
      { idx: 4, term: 3 },
    ]);
    // A truncation alone is a change to make durable too.
    s.write({ truncateFrom: 4 });
    s.flush(() => {});
    expect(onDisk().map((r) => r.idx)).toEqual([1, 2, 3]);
    s.close();
    expect(
      store()
        .entries(1, 10, 10)
        .map((e) => e.term),
    ).toEqual([1, 1, 2]);
  });

  it('reads old entries from disk when they left the cache, across a truncation below the cache', () => {
    const s = store({ cacheEntries: 2 });
    s.write({ hardState: { term: 2, votedFor: null }, entries: run(1, 10, 1) });
    s.flush(() => {});
    expect(s.entries(1, 10, 100)).toEqual(run(1, 10, 1));
    expect(s.entries(3, 10, 4)).toEqual(run(3, 6, 1));
    expect(s.stats().diskReads).toBeGreaterThan(0);
    s.write({ truncateFrom: 2, entries: run(2, 3, 2) });
    expect(s.entries(1, 10, 100)).toEqual([...run(1, 1, 1), ...run(2, 3, 2)]);
    s.flush(() => {});
    s.close();
    expect(store({ cacheEntries: 2 }).entries(1, 10, 100)).toEqual([...run(1, 1, 1), ...run(2, 3, 2)]);
  });

  it('compacts through a snapshot and keeps the rest, across reopen', () => {
    const s = store();
    s.write({ hardState: { term: 2, votedFor: null }, entries: run(1, 6, 2) });
    s.write({
      entries: [{ index: 7, term: 2, kind: 'config', data: JSON.stringify(cfg('n1', 'n2', 'n3')) }],
    });
    s.flush(() => {});
    const meta: SnapshotMeta = { index: 4, term: 2, config: cfg('n1', 'n2') };
    s.compact(meta);
    const check = (x: SqliteLogStore) => {
      expect(x.firstIndex()).toBe(5);
      expect(x.lastIndex()).toBe(7);
      expect(x.termAt(4)).toBe(2);
      expect(x.termAt(3)).toBeUndefined();
      expect(x.entries(3, 7, 10)).toEqual([]);
      expect(x.entries(5, 6, 10)).toEqual(run(5, 6, 2));
      expect(x.snapshot()).toEqual(meta);
      expect(x.config()).toEqual(cfg('n1', 'n2', 'n3'));
    };
    check(s);
    expect(onDisk().map((r) => r.idx)).toEqual([5, 6, 7]);
    s.close();
    const again = store();
    check(again);
    // Compacting past the config entry falls back to the snapshot's configuration.
    again.compact({ index: 7, term: 2, config: cfg('n3') });
    expect(again.config()).toEqual(cfg('n3'));
    expect(again.lastIndex()).toBe(7);
    expect(again.entries(8, 9, 10)).toEqual([]);
    again.write({ entries: run(8, 8, 2) });
    expect(again.entries(8, 9, 10)).toEqual(run(8, 8, 2));
  });

  it('resetToSnapshot keeps a matching suffix and otherwise discards the log', () => {
    const s = store();
    s.write({ hardState: { term: 3, votedFor: null }, entries: run(1, 5, 2) });
    s.flush(() => {});
    s.resetToSnapshot({ index: 3, term: 2, config: cfg('a') });
    expect([s.firstIndex(), s.lastIndex()]).toEqual([4, 5]);
    s.resetToSnapshot({ index: 5, term: 3, config: cfg('b') }); // term differs: all gone
    expect([s.firstIndex(), s.lastIndex(), s.termAt(5)]).toEqual([6, 5, 3]);
    s.write({ entries: run(6, 6, 3) }); // staged, not flushed: a reset commits it in the same transaction
    s.resetToSnapshot({ index: 9, term: 3, config: cfg('c') });
    expect([s.firstIndex(), s.lastIndex(), s.termAt(9)]).toEqual([10, 9, 3]);
    expect(s.config()).toEqual(cfg('c'));
    expect(onDisk()).toEqual([]);
    s.close();
    const again = store();
    expect(again.snapshot()).toEqual({ index: 9, term: 3, config: cfg('c') });
    expect(again.lastIndex()).toBe(9);
  });

  it('never lets the term move backwards or a vote change within a term, across reopen', () => {
    const s = store();
    s.write({ hardState: { term: 5, votedFor: 'n2' } });
    s.flush(() => {});
    s.close();
    const again = store();
    expect(again.hardState()).toEqual({ term: 5, votedFor: 'n2' });
    expect(() => again.write({ hardState: { term: 4, votedFor: null } })).toThrow(/backwards/);
    expect(() => again.write({ hardState: { term: 5, votedFor: 'n3' } })).toThrow(/vote/);
    again.write({ hardState: { term: 6, votedFor: null } });
    expect(again.hardState()).toEqual({ term: 6, votedFor: null });
  });

  it('persists the commit index with the hard state, only on flush, never lowering it', () => {
    const s = store();
    expect(s.commitIndex()).toBe(0);
    s.write({ hardState: { term: 1, votedFor: 'n1' }, entries: run(1, 3, 1), commit: 2 });
    expect(s.commitIndex()).toBe(2);
    s.write({ commit: 1 }); // a lower commit is ignored: the commit index never goes back
    expect(s.commitIndex()).toBe(2);
    const raw = () => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT commit_index FROM hard_state').get();
      } finally {
        db.close();
      }
    };
    expect(raw()).toEqual({ commit_index: 0 });
    s.flush(() => {});
    expect(raw()).toEqual({ commit_index: 2 });
    s.write({ commit: 3 }); // a commit alone is a change worth a transaction
    s.flush(() => {});
    expect(raw()).toEqual({ commit_index: 3 });
    s.close();
    const again = store();
    expect(again.commitIndex()).toBe(3);
    expect(again.hardState()).toEqual({ term: 1, votedFor: 'n1' });
  });

  it('opens a data dir written before the commit index was persisted (adds the column)', () => {
    store().write({ hardState: { term: 4, votedFor: 'n2' }, entries: run(1, 2, 4) });
    for (const s of open.splice(0)) s.close();
    // Recreate the old schema: hard_state without commit_index.
    const db = new Database(file);
    db.exec(`CREATE TABLE hs_old (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, voted_for TEXT);
             INSERT INTO hs_old SELECT id, term, voted_for FROM hard_state;
             DROP TABLE hard_state; ALTER TABLE hs_old RENAME TO hard_state;`);
    db.close();
    const s = store();
    expect(s.hardState()).toEqual({ term: 4, votedFor: 'n2' });
    expect(s.commitIndex()).toBe(0);
    expect(s.lastIndex()).toBe(2);
    s.write({ commit: 2 });
    s.flush(() => {});
    s.close();
    expect(store().commitIndex()).toBe(2);
  });

  it('refuses another node, another cluster, another format and a corrupt file with a DataDirError', () => {
    store({ clusterId: 'c1' }).close();
    const fail = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err as DataDirError;
      }
      throw new Error('expected a DataDirError');
    };
    const other = fail(() => store({ nodeId: 'n2', clusterId: 'c1' }));
    expect(other).toBeInstanceOf(DataDirError);
    expect(other).toBeInstanceOf(UserError);
    expect(other.problem).toBe('foreign');
    expect(other.message).toBe(`data dir ${file} belongs to node "n1", not "n2"`);
    expect(fail(() => store({ clusterId: 'c2' })).message).toMatch(/another cluster/);
    store({ clusterId: 'c1' }).close(); // the right one opens

    const db = new Database(file);
    db.prepare("UPDATE raft_meta SET value = '99' WHERE key = 'format_version'").run();
    db.close();
    expect(fail(() => store()).problem).toBe('version');

    fs.writeFileSync(file, 'this is not a database, just some text that is long enough'.repeat(100));
    fs.rmSync(`${file}-wal`, { force: true });
    fs.rmSync(`${file}-shm`, { force: true });
    const bad = fail(() => store());
    expect(bad.problem).toBe('corrupt');
    expect(bad.message).not.toMatch(/\n/);
  });

  it('detects a hole in the log and Raft tables it did not create', () => {
    const s = store();
    s.write({ hardState: { term: 1, votedFor: null }, entries: run(1, 4, 1) });
    s.flush(() => {});
    s.close();
    const db = new Database(file);
    db.prepare('DELETE FROM log WHERE idx = 2').run();
    db.close();
    expect(() => store()).toThrow(/corrupt: log entry 2 is missing/);

    const foreign = join(dir, 'foreign.db');
    const f = new Database(foreign);
    f.exec('CREATE TABLE log (x)');
    f.close();
    expect(() => store({ db: foreign })).toThrow(DataDirError);
  });

  it('works on a shared database it does not own, and leaves it open on close', () => {
    const db = new Database(file.replace('node', ''));
    db.exec('CREATE TABLE users (name TEXT)');
    const s = new SqliteLogStore({ db, nodeId: 'n1', flushMode: 'sync' });
    s.write({ entries: run(1, 2, 0) });
    s.flush(() => {});
    s.close();
    expect(db.open).toBe(true);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect((db.prepare('SELECT count(*) AS n FROM log').get() as { n: number }).n).toBe(2);
    db.close();
  });

  // A model check: random writes, truncations, flushes, compactions, crashes and reopens against a
  // plain array. A crash (dropping the store without close) keeps exactly what was flushed.
  it('matches a simple model under random operations, crashes included', () => {
    type Model = { snap: SnapshotMeta; log: Entry[]; hs: HardState };
    const clone = (m: Model): Model => ({ snap: m.snap, log: [...m.log], hs: { ...m.hs } });
    const op = fc.oneof(
      fc.record({ t: fc.constant('append' as const), n: fc.integer({ min: 1, max: 5 }), bump: fc.boolean() }),
      fc.record({ t: fc.constant('truncate' as const), back: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ t: fc.constant('flush' as const) }),
      fc.record({ t: fc.constant('compact' as const), back: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ t: fc.constant('crash' as const) }),
    );
    let runNo = 0;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const path = join(dir, `model-${runNo++}.db`);
        const conns: Database.Database[] = [];
        const openStore = () => {
          const db = new Database(path);
          conns.push(db);
          return new SqliteLogStore({ db, nodeId: 'n1', flushMode: 'sync', cacheEntries: 3 });
        };
        try {
          let s = openStore();
          let cur: Model = {
            snap: { index: 0, term: 0, config: { members: [] } },
            log: [],
            hs: { term: 0, votedFor: null },
          };
          let durable = clone(cur);
          const last = (m: Model) => m.snap.index + m.log.length;
          for (const o of ops) {
            if (o.t === 'append') {
              const term = o.bump ? cur.hs.term + 1 : Math.max(cur.hs.term, 1);
              const entries = run(last(cur) + 1, last(cur) + o.n, term);
              s.write({ hardState: { term, votedFor: null }, entries });
              cur.hs = { term, votedFor: null };
              cur.log.push(...entries);
            } else if (o.t === 'truncate') {
              const from = Math.max(cur.snap.index + 1, last(cur) + 1 - o.back);
              s.write({ truncateFrom: from });
              cur.log = cur.log.slice(0, from - cur.snap.index - 1);
            } else if (o.t === 'flush') {
              s.flush(() => {});
              durable = clone(cur);
            } else if (o.t === 'compact') {
              const at = last(cur) - o.back;
              if (at <= cur.snap.index) continue;
              const meta = {
                index: at,
                term: cur.log[at - cur.snap.index - 1].term,
                config: { members: [] },
              };
              s.compact(meta);
              cur.log = cur.log.slice(at - cur.snap.index);
              cur.snap = meta;
              durable = clone(cur); // compaction commits what was staged too
            } else {
              conns.pop()?.close(); // a crash: nothing staged reaches the disk
              s = openStore();
              cur = clone(durable);
            }
            expect(s.lastIndex()).toBe(last(cur));
            expect(s.hardState()).toEqual(cur.hs);
            expect(s.snapshot().index).toBe(cur.snap.index);
            expect(s.entries(cur.snap.index + 1, last(cur), 1000)).toEqual(cur.log);
            expect(s.termAt(cur.snap.index)).toBe(cur.snap.term);
          }
        } finally {
          for (const c of conns) if (c.open) c.close();
        }
      }),
      { numRuns: 100, seed: 42 },
    );
  });
});
