import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SnapshotMeta } from '../../machines/protocol.js';
import { FileSnapshotStore, restoreSnapshot } from '../../src/raft/snapshot-store.js';
import { SqliteLogStore } from '../../src/raft/sqlite-log-store.js';

let dir: string;
const closers: (() => void)[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qc-snap-'));
});
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c();
  fs.rmSync(dir, { recursive: true, force: true });
});

const config = { members: [{ id: 'n1', address: '127.0.0.1:5555', voter: true }] };

/** A replica database: chat-like tables next to the Raft tables. */
function replicaDb(name: string, rows: number): Database.Database {
  const db = new Database(join(dir, name));
  closers.push(() => db.close());
  const log = new SqliteLogStore({ db, nodeId: 'n1', flushMode: 'sync' });
  log.write({
    hardState: { term: 1, votedFor: null },
    entries: [{ index: 1, term: 1, kind: 'noop', data: '' }],
  });
  log.flush(() => {});
  db.exec(`
    CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);
    CREATE INDEX users_by_name ON users (lower(name));
    CREATE TABLE applied (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL);
  `);
  const ins = db.prepare('INSERT INTO users (name) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run(`user-${i}-${'x'.repeat(40)}`);
  })();
  db.prepare('INSERT INTO applied (id, idx) VALUES (1, ?)').run(rows);
  return db;
}

function snapshotStore(sub: string): FileSnapshotStore {
  const s = new FileSnapshotStore(join(dir, sub));
  closers.push(() => s.close());
  return s;
}

/** Stream `from`'s latest snapshot into `to` in chunks of `size`; returns the receiver's last answer. */
function transfer(from: FileSnapshotStore, to: FileSnapshotStore, size: number): number {
  const meta = from.latest();
  let offset = 0;
  for (let i = 0; i < 100_000; i++) {
    const { chunk, done } = from.read(offset, size);
    const next = to.receive(meta, offset, chunk, done);
    if (done) return next;
    offset = next;
  }
  throw new Error('transfer did not finish');
}

const users = (db: Database.Database) => db.prepare('SELECT id, name FROM users ORDER BY id').all();

describe('FileSnapshotStore', () => {
  it('starts with no snapshot', () => {
    const s = snapshotStore('a');
    expect(s.latest()).toEqual({ index: 0, term: 0, config: { members: [] } });
    expect(s.path()).toBeUndefined();
    expect(s.read(0, 10)).toEqual({ chunk: new Uint8Array(0), done: true });
  });

  it('takes the chat tables only, and a restore reproduces them exactly', () => {
    const db = replicaDb('a.db', 500);
    const s = snapshotStore('a');
    const meta: SnapshotMeta = { index: 500, term: 1, config };
    expect(s.take(db, meta)).toEqual(meta);
    expect(s.latest()).toEqual(meta);
    const snap = new Database(s.path()!, { readonly: true });
    const names = (
      snap.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    )
      .map((r) => r.name)
      .sort();
    snap.close();
    expect(names).toEqual(['applied', 'snapshot_info', 'sqlite_sequence', 'users']);

    const fresh = new Database(join(dir, 'fresh.db'));
    closers.push(() => fresh.close());
    expect(restoreSnapshot(fresh, s.path()!)).toEqual(meta);
    expect(users(fresh)).toEqual(users(db));
    expect(fresh.prepare('SELECT idx FROM applied').get()).toEqual({ idx: 500 });
    // The AUTOINCREMENT counter came along, so the next id is the same on both.
    fresh.prepare('INSERT INTO users (name) VALUES (?)').run('new');
    db.prepare('INSERT INTO users (name) VALUES (?)').run('new');
    expect(users(fresh)).toEqual(users(db));

    // Restoring into a database with other contents replaces them, Raft tables untouched.
    const other = replicaDb('other.db', 3);
    restoreSnapshot(other, s.path()!);
    expect((other.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n).toBe(500);
    expect((other.prepare('SELECT count(*) AS n FROM log').get() as { n: number }).n).toBe(1);
  });

  it('streams in chunks and installs atomically on the receiver', () => {
    const leader = snapshotStore('leader');
    leader.take(replicaDb('a.db', 2000), { index: 2000, term: 3, config });
    const follower = snapshotStore('follower');
    const size = transfer(leader, follower, 4096);
    expect(size).toBe(leader.byteLength());
    expect(follower.latest()).toEqual(leader.latest());
    expect(fs.readFileSync(follower.path()!).equals(fs.readFileSync(leader.path()!))).toBe(true);
    // A repeated last chunk (its answer was lost) is answered as installed.
    const last = Math.floor((size - 1) / 4096) * 4096;
    expect(follower.receive(leader.latest(), last, leader.read(last, 4096).chunk, true)).toBe(size);
  });

  it('resumes: duplicates and gaps get the expected offset, a new snapshot restarts the transfer', () => {
    const leader = snapshotStore('leader');
    leader.take(replicaDb('a.db', 500), { index: 500, term: 2, config });
    const meta = leader.latest();
    const f = snapshotStore('follower');
    expect(f.receive(meta, 1000, leader.read(1000, 1000).chunk, false)).toBe(0); // no start seen
    expect(f.receive(meta, 0, leader.read(0, 1000).chunk, false)).toBe(1000);
    expect(f.receive(meta, 0, leader.read(0, 1000).chunk, false)).toBe(1000); // duplicate
    expect(f.receive(meta, 3000, leader.read(3000, 1000).chunk, false)).toBe(1000); // gap
    expect(f.receive({ ...meta, index: 600 }, 1000, leader.read(1000, 1000).chunk, false)).toBe(0); // other snapshot
    expect(f.latest().index).toBe(0);
    expect(transfer(leader, f, 1000)).toBe(leader.byteLength());
    expect(f.latest()).toEqual(meta);
  });

  it('a crash mid-transfer or a damaged transfer leaves the old snapshot intact', () => {
    const db = replicaDb('a.db', 300);
    const leader = snapshotStore('leader');
    const follower = new FileSnapshotStore(join(dir, 'follower'));
    closers.push(() => follower.close()); // after the test: the "crashed" store still holds its files
    follower.take(db, { index: 100, term: 1, config });
    const before = fs.readFileSync(follower.path()!);

    leader.take(db, { index: 300, term: 2, config });
    const meta = leader.latest();
    follower.receive(meta, 0, leader.read(0, 2048).chunk, false);
    // Crash: the store is dropped without close; a new one starts on the same directory.
    const restarted = snapshotStore('follower');
    expect(restarted.latest().index).toBe(100);
    expect(fs.readFileSync(restarted.path()!).equals(before)).toBe(true);
    expect(fs.readdirSync(join(dir, 'follower'))).toEqual(['snapshot.db']);

    // Damaged bytes: the receiver refuses to install and asks to start over.
    let offset = 0;
    let answer = -1;
    for (let i = 0; i < 10_000; i++) {
      const { chunk, done } = leader.read(offset, 4096);
      const bad = Buffer.from(chunk);
      if (offset === 0) bad.fill(7, 0, 100); // destroys the SQLite header
      answer = restarted.receive(meta, offset, bad, done);
      if (done) break;
      offset = answer;
    }
    expect(answer).toBe(0);
    expect(restarted.latest().index).toBe(100);
    expect(fs.readFileSync(restarted.path()!).equals(before)).toBe(true);
  });
});
