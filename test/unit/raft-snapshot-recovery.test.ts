// Snapshots with the production pieces: ChatStore and SqliteLogStore sharing one SQLite file, and a
// FileSnapshotStore. A background (stepped) take is consistent with exactly the applied index it
// reports while applies continue between its steps; an install interrupted by a crash at any point is
// finished (or ignored) by RaftNode.start, so the chat tables, the applied index and the log agree.

import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { ClusterConfig, Entry, SnapshotMeta } from '../../machines/protocol.js';
import { type Command, encodeCommand } from '../../src/chat/commands.js';
import { ChatSnapshots, checkChatSnapshot, restoreChatSnapshot } from '../../src/chat/snapshots.js';
import { ChatStore } from '../../src/chat/store.js';
import { tokenHash } from '../../src/chat/tokens.js';
import type { SnapshotPayload } from '../../src/raft/interfaces.js';
import { RaftNode } from '../../src/raft/node.js';
import { FileSnapshotStore } from '../../src/raft/snapshot-store.js';
import { SqliteLogStore } from '../../src/raft/sqlite-log-store.js';

let dir: string;
const open: Replica[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qc-snaprec-'));
});
afterEach(() => {
  for (const r of open.splice(0)) r.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const config: ClusterConfig = { members: [{ id: 'n1', address: '127.0.0.1:1', voter: true }] };

interface Replica {
  file: string;
  db: Database.Database;
  log: SqliteLogStore;
  chat: ChatStore;
  snaps: FileSnapshotStore;
  close(): void;
}

function openReplica(name: string): Replica {
  const file = join(dir, name, 'replica.db');
  fs.mkdirSync(join(dir, name), { recursive: true });
  const db = new Database(file);
  const log = new SqliteLogStore({ db, nodeId: name, flushMode: 'sync' });
  const chat = new ChatStore(db);
  const snaps = new FileSnapshotStore(join(dir, name, 'snapshots'), {
    verify: (f, meta) => checkChatSnapshot(f, meta.index),
  });
  let closed = false;
  const r: Replica = {
    file,
    db,
    log,
    chat,
    snaps,
    close: () => {
      if (closed) return;
      closed = true;
      snaps.close();
      log.close();
      db.close();
    },
  };
  open.push(r);
  return r;
}

/** "Crash": drop the handles without any shutdown step, and open the same files again. */
function crash(r: Replica, name: string): Replica {
  open.splice(open.indexOf(r), 1);
  r.db.close();
  return openReplica(name);
}

const T0 = 1_700_000_000_000;

/** Append one command to the log (term 1) and apply it, as a replica would. */
function exec(r: Replica, cmd: Command): unknown {
  const index = r.log.lastIndex() + 1;
  const entry: Entry = { index, term: 1, kind: 'command', data: encodeCommand(cmd) };
  r.log.write({ hardState: { term: 1, votedFor: 'n1' }, entries: [entry] });
  r.log.flush(() => {});
  const [out] = r.chat.apply([entry]);
  return out.result;
}

/** Users, a session, a chat and `messages` messages. Returns a function that sends one more. */
function populate(r: Replica, messages: number): () => void {
  exec(r, { type: 'signup', at: T0, username: 'alice', nickname: 'A', passwordHash: 'scrypt$x' });
  exec(r, { type: 'signup', at: T0, username: 'bob', nickname: 'B', passwordHash: 'scrypt$x' });
  const userId = r.db.prepare("SELECT id FROM users WHERE username_key = 'alice'").pluck().get() as number;
  const token = 'token-of-alice-0123456789';
  const actor = tokenHash(token);
  exec(r, {
    type: 'login',
    at: T0,
    username: 'alice',
    userId,
    tokenHash: actor,
    ttlMs: 86_400_000,
    idempotencyKey: 'k1',
  });
  const chat = exec(r, { type: 'startChat', at: T0, actor, username: 'bob' }) as {
    ok: boolean;
    value: { chat_id: string };
  };
  expect(chat).toMatchObject({ ok: true });
  let n = 0;
  const send = () => {
    n++;
    exec(r, {
      type: 'sendMessage',
      at: T0 + n,
      actor,
      chatId: chat.value.chat_id,
      content: `message ${n} ${'x'.repeat(100)}`,
      idempotencyKey: `m${n}`,
    });
  };
  for (let i = 0; i < messages; i++) send();
  return send;
}

/** The digest a replica has after applying exactly entries 1..index of `r`'s log. */
function digestAt(r: Replica, index: number): string {
  const fresh = new ChatStore(':memory:');
  fresh.apply(r.log.entries(1, index, index));
  const d = fresh.stateDigest();
  fresh.close();
  return d;
}

function metaAt(r: Replica) {
  return (index: number): SnapshotMeta | undefined => {
    const term = r.log.termAt(index);
    return term === undefined ? undefined : { index, term, config };
  };
}

/** A background take at the replica's applied index, waited for. */
async function takeNow(r: Replica): Promise<SnapshotMeta> {
  const meta = await r.snaps.takeInSteps(r.chat, { metaAt: metaAt(r) });
  if (!meta) throw new Error('no snapshot was taken');
  return meta;
}

/** The files of a replica's snapshot directory, sorted. */
function snapshotFiles(name: string): string[] {
  return fs.readdirSync(join(dir, name, 'snapshots')).sort();
}

/** A RaftNode on the replica's stores (not elected: only start-up recovery is under test). */
function startNode(r: Replica, id: string): RaftNode {
  const node = new RaftNode({
    id,
    logStore: r.log,
    stateMachine: r.chat,
    transport: { send: () => {}, listen: () => {}, setPeers: () => {}, close: () => {} },
    clock: new SimulatedClock(),
    timing: { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 },
    seed: 1,
    snapshots: r.snaps,
  });
  node.start();
  return node;
}

/** Stream the leader's latest snapshot to `to`, stopping before the last chunk when `partial`. */
function ship(from: FileSnapshotStore, to: FileSnapshotStore, partial = false): void {
  const meta = from.latest();
  let offset = 0;
  for (let i = 0; i < 100_000; i++) {
    const { chunk, done } = from.read(offset, 8192);
    if (partial && done) return;
    offset = to.receive(meta, offset, chunk, done);
    if (done) return;
  }
}

describe('stepped snapshot take', () => {
  it('is consistent with the applied index it reports while entries are applied between steps', async () => {
    const r = openReplica('n1');
    const send = populate(r, 300);
    const applied = r.chat.appliedIndex();
    let pauses = 0;
    const source = new ChatSnapshots(r.db, {
      rowsPerStep: 16,
      budgetMs: 0,
      pause: async () => {
        pauses++;
        send(); // the main connection keeps applying while the copy runs
        await new Promise((res) => setImmediate(res));
      },
    });
    const meta = await r.snaps.takeInSteps(source, { metaAt: metaAt(r) });
    expect(pauses).toBeGreaterThan(10);
    expect(meta?.index).toBe(applied);
    expect(r.chat.appliedIndex()).toBe(applied + pauses);
    const copy = new ChatStore(':memory:');
    restoreChatSnapshot(copy.db, r.snaps.path() as string);
    expect(copy.appliedIndex()).toBe(applied);
    expect(copy.stateDigest()).toBe(digestAt(r, applied));
    // The idempotency table and the sessions came along: a repeated login key replays, the token works.
    expect(copy.db.prepare('SELECT count(*) FROM idempotency').pluck().get()).toBeGreaterThan(300);
    expect(copy.db.prepare('SELECT count(*) FROM sessions').pluck().get()).toBe(1);
    copy.close();
    expect(r.snaps.lastTake?.steps).toBeGreaterThan(10);
    expect(snapshotFiles('n1')).toEqual([`snapshot-${applied}-1.data`, 'snapshot.meta']);
  });

  it('is discarded when a newer snapshot was installed meanwhile', async () => {
    const leader = openReplica('leader');
    populate(leader, 200);
    await takeNow(leader);
    const r = openReplica('n1');
    populate(r, 50);
    let shipped = false;
    const source = new ChatSnapshots(r.db, {
      rowsPerStep: 8,
      budgetMs: 0,
      pause: async () => {
        if (!shipped) ship(leader.snaps, r.snaps);
        shipped = true;
      },
    });
    const got = await r.snaps.takeInSteps(source, { metaAt: metaAt(r) });
    expect(got).toBeUndefined();
    const { index } = leader.snaps.latest();
    expect(r.snaps.latest().index).toBe(index);
    expect(snapshotFiles('n1')).toEqual([`snapshot-${index}-1.data`, 'snapshot.meta']);
  });
});

describe('install across crashes', () => {
  async function setup() {
    const leader = openReplica('leader');
    populate(leader, 120);
    const meta = await takeNow(leader);
    let f = openReplica('f');
    populate(f, 5);
    // The follower was cut off after 9 entries: its log ends long before the snapshot's index, so
    // after the install its log must start right after the snapshot.
    const oldDigest = f.chat.stateDigest();
    const oldApplied = f.chat.appliedIndex();
    const reopen = () => {
      f = crash(f, 'f');
      return f;
    };
    return { leader, meta, f, oldDigest, oldApplied, reopen };
  }

  it('crash mid-transfer: the old state is intact and nothing is left over', async () => {
    const { leader, f, oldDigest, oldApplied, reopen } = await setup();
    ship(leader.snaps, f.snaps, true);
    const g = reopen();
    const node = startNode(g, 'f');
    expect(g.snaps.latest().index).toBe(0);
    expect(g.chat.appliedIndex()).toBe(oldApplied);
    expect(g.chat.stateDigest()).toBe(oldDigest);
    expect(node.status().lastApplied).toBe(oldApplied);
    expect(snapshotFiles('f')).toEqual([]);
    node.stop();
  });

  it('crash after the file was renamed in but before the tables were restored: start finishes it', async () => {
    const { leader, meta, f, reopen } = await setup();
    ship(leader.snaps, f.snaps);
    expect(f.snaps.latest()).toEqual(meta);
    const g = reopen();
    expect(g.chat.appliedIndex()).toBeLessThan(meta.index);
    const node = startNode(g, 'f');
    expect(g.chat.appliedIndex()).toBe(meta.index);
    expect(g.chat.stateDigest()).toBe(leader.chat.stateDigest());
    expect(g.log.snapshot()).toEqual(meta);
    expect(g.log.lastIndex()).toBe(meta.index);
    expect(node.status()).toMatchObject({ lastApplied: meta.index, commitIndex: meta.index });
    node.stop();
  });

  it('crash after the tables were restored but before the log was reset: start resets the log', async () => {
    const { leader, meta, f, reopen } = await setup();
    ship(leader.snaps, f.snaps);
    f.chat.restore(f.snaps.payload() as SnapshotPayload);
    expect(f.log.snapshot().index).toBe(0);
    const g = reopen();
    const node = startNode(g, 'f');
    expect(g.chat.appliedIndex()).toBe(meta.index);
    expect(g.chat.stateDigest()).toBe(leader.chat.stateDigest());
    expect(g.log.snapshot()).toEqual(meta);
    expect(g.log.firstIndex()).toBe(meta.index + 1);
    node.stop();
  });

  it('a completed install survives a restart unchanged', async () => {
    const { leader, meta, f, reopen } = await setup();
    ship(leader.snaps, f.snaps);
    f.chat.restore(f.snaps.payload() as SnapshotPayload);
    f.log.resetToSnapshot(meta);
    const digest = f.chat.stateDigest();
    const g = reopen();
    const node = startNode(g, 'f');
    expect(g.chat.stateDigest()).toBe(digest);
    expect(g.chat.stateDigest()).toBe(leader.chat.stateDigest());
    expect(g.log.snapshot()).toEqual(meta);
    node.stop();
  });

  it('a local snapshot with a trailing window is left alone on restart (no needless reset)', async () => {
    const r = openReplica('n1');
    populate(r, 50);
    const meta = await takeNow(r);
    r.log.compact({ index: meta.index - 10, term: 1, config });
    const g = crash(r, 'n1');
    const node = startNode(g, 'n1');
    expect(g.log.snapshot().index).toBe(meta.index - 10);
    expect(g.log.lastIndex()).toBe(meta.index);
    node.stop();
  });
});
