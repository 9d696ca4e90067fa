// The chat side of snapshots (src/chat/snapshots.ts): the bytes Raft stores and streams are a copy of
// the chat tables, taken from a file the Raft log shares, and restored in one transaction that sets
// the applied index with the state, so the digest of equal states stays equal.

import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../machines/protocol.js';
import { type Command, encodeCommand } from '../../src/chat/commands.js';
import {
  CHAT_TABLES,
  ChatSnapshots,
  checkChatSnapshot,
  restoreChatSnapshot,
  writeChatSnapshot,
} from '../../src/chat/snapshots.js';
import { ChatStore } from '../../src/chat/store.js';
import { tokenHash } from '../../src/chat/tokens.js';
import { SqliteLogStore } from '../../src/raft/sqlite-log-store.js';

let dir: string;
const closers: (() => void)[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qc-chatsnap-'));
});
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c();
  fs.rmSync(dir, { recursive: true, force: true });
});

const T0 = 1_700_000_000_000;

/** A replica's file: the Raft log and the chat tables side by side, as in production. */
function replica(name: string): {
  file: string;
  db: Database.Database;
  chat: ChatStore;
  log: SqliteLogStore;
} {
  const file = join(dir, `${name}.sqlite`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const log = new SqliteLogStore({ db, nodeId: name, flushMode: 'sync' });
  const chat = new ChatStore(db);
  closers.push(() => {
    log.close();
    db.close();
  });
  return { file, db, chat, log };
}

/** Apply commands after the chat's applied index (and log them, so the log tables have rows too). */
function run(r: ReturnType<typeof replica>, cmds: Command[]): void {
  let index = r.chat.appliedIndex();
  const entries: Entry[] = cmds.map((c) => ({
    index: ++index,
    term: 1,
    kind: 'command',
    data: encodeCommand(c),
  }));
  r.log.write({ hardState: { term: 1, votedFor: null }, entries });
  r.log.flush(() => {});
  r.chat.apply(entries);
}

function populate(r: ReturnType<typeof replica>, messages: number, tag = 'm'): void {
  run(r, [
    { type: 'signup', at: T0, username: 'alice', nickname: 'A', passwordHash: 'scrypt$x' },
    { type: 'signup', at: T0, username: 'bob', nickname: 'B', passwordHash: 'scrypt$x' },
  ]);
  const userId = r.db.prepare("SELECT id FROM users WHERE username_key = 'alice'").pluck().get() as number;
  const actor = tokenHash(`token-${tag}-0123456789abcdef`);
  run(r, [{ type: 'login', at: T0, username: 'alice', userId, tokenHash: actor, ttlMs: 86_400_000 }]);
  run(r, [{ type: 'startChat', at: T0, actor, username: 'bob' }]);
  const chatId = r.db.prepare('SELECT id FROM chats').pluck().get() as string;
  run(
    r,
    Array.from({ length: messages }, (_, n) => ({
      type: 'sendMessage' as const,
      at: T0 + n,
      actor,
      chatId,
      content: `${tag} ${n}`,
      idempotencyKey: `${tag}${n}`,
    })),
  );
}

const tables = (db: Database.Database) =>
  (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[]
  ).filter((n) => !n.startsWith('sqlite_'));

const rows = (db: Database.Database, t: string) => db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all();

async function copyOf(r: ReturnType<typeof replica>): Promise<string> {
  const out = join(dir, `copy-${r.chat.appliedIndex()}.db`);
  const written = await writeChatSnapshot(r.file, out, { accept: () => true });
  expect(written?.index).toBe(r.chat.appliedIndex());
  return out;
}

describe('chat snapshots', () => {
  it('CHAT_TABLES names exactly the tables the chat store creates', () => {
    const chat = new ChatStore(':memory:');
    closers.push(() => chat.close());
    expect(tables(chat.db)).toEqual([...CHAT_TABLES].sort());
  });

  it('a copy holds the chat tables only, and a restore reproduces them and the digest exactly', async () => {
    const a = replica('a');
    populate(a, 200);
    const copy = await copyOf(a);
    const snap = new Database(copy, { readonly: true });
    expect(tables(snap)).toEqual([...CHAT_TABLES].sort());
    snap.close();

    const b = replica('b');
    populate(b, 7, 'other');
    const logBefore = rows(b.db, 'log');
    expect(restoreChatSnapshot(b.db, copy, a.chat.appliedIndex())).toBe(a.chat.appliedIndex());
    for (const t of CHAT_TABLES) expect(rows(b.db, t)).toEqual(rows(a.db, t));
    expect(b.chat.stateDigest()).toBe(a.chat.stateDigest());
    // Whatever else shares the file (the Raft log) is untouched.
    expect(rows(b.db, 'log')).toEqual(logBefore);
  });

  it('a copy at another index than announced is refused and changes nothing', async () => {
    const a = replica('a');
    populate(a, 20);
    const copy = await copyOf(a);
    const b = replica('b');
    populate(b, 3, 'other');
    const digest = b.chat.stateDigest();
    const applied = b.chat.appliedIndex();
    expect(() => restoreChatSnapshot(b.db, copy, a.chat.appliedIndex() + 1)).toThrow(/applied through/);
    expect(b.chat.appliedIndex()).toBe(applied);
    expect(b.chat.stateDigest()).toBe(digest);
  });

  it('checkChatSnapshot accepts a sound copy at its index only', async () => {
    const a = replica('a');
    populate(a, 50);
    const copy = await copyOf(a);
    const index = a.chat.appliedIndex();
    expect(checkChatSnapshot(copy, index)).toBe(true);
    expect(checkChatSnapshot(copy, index - 1)).toBe(false);
    const damaged = join(dir, 'damaged.db');
    const bytes = fs.readFileSync(copy);
    bytes.fill(7, 0, 100); // destroys the SQLite header
    fs.writeFileSync(damaged, bytes);
    expect(checkChatSnapshot(damaged, index)).toBe(false);
    fs.writeFileSync(damaged, 'not a database at all');
    expect(checkChatSnapshot(damaged, index)).toBe(false);
    expect(checkChatSnapshot(join(dir, 'missing.db'), index)).toBe(false);
  });

  it('the chat store restores from a payload Raft hands it, and refuses one without a file', async () => {
    const a = replica('a');
    populate(a, 30);
    const copy = await copyOf(a);
    const meta = { index: a.chat.appliedIndex(), term: 1, config: { members: [] } };
    const b = replica('b');
    const read = () => new Uint8Array(0);
    expect(() => b.chat.restore({ meta, byteLength: 1, read })).toThrow(/from a file/);
    b.chat.restore({ meta, byteLength: fs.statSync(copy).size, read, file: copy });
    expect(b.chat.appliedIndex()).toBe(meta.index);
    expect(b.chat.stateDigest()).toBe(a.chat.stateDigest());
  });

  it('snapshotTo abandons the copy when its index is not accepted, leaving no file', async () => {
    const a = replica('a');
    populate(a, 5);
    const out = join(dir, 'out.db');
    expect(await new ChatSnapshots(a.db).snapshotTo(out, { accept: () => false })).toBeUndefined();
    expect(fs.existsSync(out)).toBe(false);
  });
});
