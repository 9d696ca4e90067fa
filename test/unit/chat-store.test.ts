// ChatStore as a state machine: determinism, one index per entry, errors as data, no half-applied
// commands, durability across reopen.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../machines/protocol.js';
import type { Command, CommandResult } from '../../src/chat/commands.js';
import { CHATS_VIEW_SQL, ChatStore, HISTORY_PAGE_SQL } from '../../src/chat/store.js';
import { tokenHash } from '../../src/chat/tokens.js';
import { makeStack, userCtx } from './chat-fixture.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'qc-store-'));
  dirs.push(d);
  return d;
};

/** Runs a service scenario and records every entry the store applied. */
async function recordedScenario() {
  const s = makeStack();
  const entries: Entry[] = [];
  const apply = s.store.apply.bind(s.store);
  s.store.apply = (batch: Entry[]) => {
    entries.push(...batch);
    return apply(batch);
  };
  const alice = await userCtx(s, 'alice');
  const bob = await userCtx(s, 'Bob');
  const chat = await s.service.startChat({ username: 'bob' }, alice);
  for (let i = 0; i < 8; i++) {
    s.clock.now += 7;
    await s.service.sendMessage({ chat_id: chat.chat_id, content: `m${i} ✓` }, i % 3 ? alice : bob);
  }
  await s.service.readMessages({ chat_id: chat.chat_id }, bob);
  await s.service.markRead({ chat_id: chat.chat_id, up_to_id: 8 }, alice);
  await s.service.editMessage({ chat_id: chat.chat_id, message_id: 2, content: 'edited ✓' }, alice);
  await s.service.updateSettings({ view_limit: 3 }, alice);
  await s.service.deleteMessages({ chat_id: chat.chat_id, message_ids: [1] }, alice).catch(() => {});
  return { s, entries };
}

let n = 0;
const cmd = (c: Command, index: number): Entry => ({
  index,
  term: 1,
  kind: 'command',
  data: JSON.stringify(c),
});
const result = (store: ChatStore, entry: Entry) => store.apply([entry])[0].result as CommandResult;
const at = () => 1_000_000 + n++;
const HASH = 'scrypt$1024$8$1$c2FsdA==$aGFzaA==';

describe('ChatStore', () => {
  it('a history page and the unread counts read index ranges, never a whole chat (query plans)', () => {
    const st = new ChatStore(':memory:', { durable: false });
    const plan = (sql: string, params: unknown) =>
      (st.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail);
    const history = plan(HISTORY_PAGE_SQL, { chat: 'c1', me: 1, other: 2, before: 10, n: 51 });
    expect(history).toContain('MERGE (UNION ALL)');
    expect(history.filter((d) => /messages|^(SEARCH|SCAN) m\b/.test(d))).toEqual([
      ...Array(3).fill(
        'SEARCH messages USING COVERING INDEX messages_by_chat_sender (chat_id=? AND sender_id=? AND read=? AND id<?)',
      ),
      'SEARCH m USING INTEGER PRIMARY KEY (rowid=?)',
    ]);
    const chats = plan(CHATS_VIEW_SQL, [1, 1, 1]);
    expect(chats.some((d) => /^SCAN m\b|^SCAN messages/.test(d))).toBe(false);
    expect(chats).toContain(
      'SEARCH m USING COVERING INDEX messages_by_chat_sender (chat_id=? AND sender_id=? AND read=?)',
    );
    expect(chats).toContain('SEARCH m USING INDEX messages_by_chat_id (chat_id=?)');
    st.close();
  });

  it('applying the same entries to fresh stores gives equal digests and equal ids', async () => {
    const { s, entries } = await recordedScenario();
    const a = new ChatStore(':memory:', { durable: false });
    const b = new ChatStore(':memory:', { durable: false });
    a.apply(entries);
    // Different batching, same log.
    for (const e of entries) b.apply([e]);
    expect(a.appliedIndex()).toBe(entries.length);
    expect(a.stateDigest()).toBe(s.store.stateDigest());
    expect(b.stateDigest()).toBe(s.store.stateDigest());
    expect(a.listChats(1)).toEqual(s.store.listChats(1));
  });

  it('the digest changes with user-visible state, including read flags and edits', async () => {
    const s = makeStack();
    const alice = await userCtx(s, 'alice');
    const bob = await userCtx(s, 'bob');
    const d0 = s.store.stateDigest();
    const chat = await s.service.startChat({ username: 'bob' }, alice);
    const d1 = s.store.stateDigest();
    await s.service.sendMessage({ chat_id: chat.chat_id, content: 'x' }, alice);
    const d2 = s.store.stateDigest();
    await s.service.readMessages({ chat_id: chat.chat_id }, bob);
    const d3 = s.store.stateDigest();
    // An edit with the same content changes only edited_at: the digest still moves.
    s.clock.now += 1;
    await s.service.editMessage({ chat_id: chat.chat_id, message_id: 1, content: 'x' }, alice);
    const d4 = s.store.stateDigest();
    expect(new Set([d0, d1, d2, d3, d4]).size).toBe(5);
    expect(d3).toMatch(/^[0-9a-f]{64}$/);
  });

  it('noop and config entries only advance the index; re-delivered entries are skipped; gaps throw', () => {
    const st = new ChatStore(':memory:', { durable: false });
    const out = st.apply([
      { index: 1, term: 1, kind: 'noop', data: '' },
      { index: 2, term: 1, kind: 'config', data: '{"members":[]}' },
    ]);
    expect(out.map((o) => [o.index, o.result])).toEqual([
      [1, undefined],
      [2, undefined],
    ]);
    expect(st.appliedIndex()).toBe(2);
    expect(st.apply([{ index: 2, term: 1, kind: 'noop', data: '' }])).toEqual([]);
    expect(() => st.apply([{ index: 4, term: 1, kind: 'noop', data: '' }])).toThrow(/does not follow/);
    expect(st.appliedIndex()).toBe(2);
  });

  it('malformed commands become error results and still consume their index', () => {
    const st = new ChatStore(':memory:', { durable: false });
    const bad: Entry[] = [
      { index: 1, term: 1, kind: 'command', data: '{not json' },
      { index: 2, term: 1, kind: 'command', data: 'null' },
      { index: 3, term: 1, kind: 'command', data: JSON.stringify({ type: 'signup', username: 'alice' }) },
      { index: 4, term: 1, kind: 'command', data: JSON.stringify({ type: 'explode', at: 5 }) },
      {
        index: 5,
        term: 1,
        kind: 'command',
        data: JSON.stringify({ type: 'signup', at: 5, username: 'alice', nickname: 'A' }),
      },
    ];
    const out = st.apply(bad);
    expect(out.map((o) => (o.result as CommandResult).ok)).toEqual([false, false, false, false, false]);
    expect(out.every((o) => (o.result as { code: number }).code === status.INVALID_ARGUMENT)).toBe(true);
    expect(st.appliedIndex()).toBe(5);
    expect(st.listUsers(0, '', 1, 20).total_count).toBe(0);
  });

  it('re-validates in apply: a login for an account replaced since verification fails', () => {
    const st = new ChatStore(':memory:', { durable: false });
    expect(
      result(st, cmd({ type: 'signup', username: 'alice', nickname: 'A', passwordHash: HASH, at: at() }, 1))
        .ok,
    ).toBe(true);
    const token = 'a-token-of-sufficient-length';
    // userId 2 does not exist (the verified account 1 would be the right one).
    const r = result(
      st,
      cmd(
        { type: 'login', username: 'alice', userId: 2, tokenHash: tokenHash(token), ttlMs: 1000, at: at() },
        2,
      ),
    );
    expect(r).toMatchObject({ ok: false, code: status.UNAUTHENTICATED });
    expect(st.authenticate(tokenHash(token), 0)).toBeUndefined();
  });

  it('SendMessage answers and delivers the message exactly as the tables hold it (built, not read back)', () => {
    const st = new ChatStore(':memory:', { durable: false });
    const events: unknown[] = [];
    st.onApplied((b) => events.push(...b.events));
    let i = 0;
    const run = (c: Command) => result(st, cmd(c, ++i));
    // A display name with capitals, logged in by its folded form: the sender is the display name.
    run({ type: 'signup', username: 'AliceW', nickname: 'A', passwordHash: HASH, at: at() });
    run({ type: 'signup', username: 'bob', nickname: 'B', passwordHash: HASH, at: at() });
    const alice = tokenHash('alice-token-0123456789');
    run({ type: 'login', username: 'alicew', userId: 1, tokenHash: alice, ttlMs: 60_000, at: at() });
    const chat = run({ type: 'startChat', actor: alice, username: 'bob', at: at() });
    const chatId = (chat as { value: { chat_id: string } }).value.chat_id;
    const sentAt = at();
    const first = run({ type: 'sendMessage', actor: alice, chatId, content: 'hi ✓', at: sentAt });
    const second = run({ type: 'sendMessage', actor: alice, chatId, content: 'again', at: at() });
    const page = st.history(1, chatId, 0, 10).messages;
    expect(page).toHaveLength(2);
    expect(first).toEqual({ ok: true, value: page[0] });
    expect(second).toEqual({ ok: true, value: page[1] });
    expect(page[0]).toEqual({
      message_id: 1,
      chat_id: chatId,
      sender: 'AliceW',
      content: 'hi ✓',
      sent_at: sentAt,
      read: false,
      edited_at: 0,
    });
    // The id sequence goes on from the tables: message ids 1, 2.
    expect(page[1].message_id).toBe(2);
    expect(events.filter((e) => 'message_received' in (e as { event: object }).event)).toEqual([
      { userId: 2, event: { index: 5, message_received: page[0] } },
      { userId: 2, event: { index: 6, message_received: page[1] } },
    ]);
  });

  it('a failing command changes nothing (no half-applied delete)', () => {
    const st = new ChatStore(':memory:', { durable: false });
    let i = 0;
    const run = (c: Command) => result(st, cmd(c, ++i));
    run({ type: 'signup', username: 'alice', nickname: 'A', passwordHash: HASH, at: at() });
    run({ type: 'signup', username: 'bob', nickname: 'B', passwordHash: HASH, at: at() });
    const alice = tokenHash('alice-token-0123456789');
    const bob = tokenHash('bob-token-0123456789');
    run({ type: 'login', username: 'alice', userId: 1, tokenHash: alice, ttlMs: 60_000, at: at() });
    run({ type: 'login', username: 'bob', userId: 2, tokenHash: bob, ttlMs: 60_000, at: at() });
    const chat = run({ type: 'startChat', actor: alice, username: 'bob', at: at() });
    const chatId = (chat as { value: { chat_id: string } }).value.chat_id;
    run({ type: 'sendMessage', actor: alice, chatId, content: 'a', at: at() });
    run({ type: 'sendMessage', actor: bob, chatId, content: 'b', at: at() });
    const before = st.stateDigest();
    // Ids are deleted in ascending order: 1 (alice's, deletable) comes before 2 (bob's).
    const r = run({ type: 'deleteMessages', actor: alice, chatId, messageIds: [1, 2], at: at() });
    expect(r).toMatchObject({ ok: false, code: status.PERMISSION_DENIED });
    expect(st.stateDigest()).toBe(before);
  });

  it('lazy applied index: the apply transaction commits with synchronous=NORMAL (no fsync of its own), then FULL again', () => {
    const path = join(tempDir(), 'replica.sqlite');
    const levels = (lazyApply: boolean) => {
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      const st = new ChatStore(db, { lazyApply });
      // A trigger records the connection's level at the moment the apply transaction writes.
      db.exec('CREATE TEMP TABLE seen (level INTEGER)');
      db.exec(
        'CREATE TEMP TRIGGER probe AFTER UPDATE ON applied BEGIN INSERT INTO seen SELECT synchronous FROM pragma_synchronous; END',
      );
      const from = st.appliedIndex();
      st.apply([{ index: from + 1, term: 1, kind: 'noop', data: '' }]);
      const seen = db.prepare('SELECT level FROM seen').pluck().all();
      const after = db.pragma('synchronous', { simple: true });
      st.close();
      db.close();
      return { seen, after };
    };
    expect(levels(true)).toEqual({ seen: [1], after: 2 });
    expect(levels(false)).toEqual({ seen: [2], after: 2 });
  });

  it('keeps everything across close and reopen of the file', async () => {
    const path = join(tempDir(), 'chat.sqlite');
    const s = makeStack(path);
    const alice = await userCtx(s, 'alice');
    await userCtx(s, 'bob');
    const chat = await s.service.startChat({ username: 'bob' }, alice);
    await s.service.sendMessage({ chat_id: chat.chat_id, content: 'persist me' }, alice);
    const digest = s.store.stateDigest();
    const index = s.store.appliedIndex();
    s.store.close();
    const reopened = new ChatStore(path);
    expect(reopened.appliedIndex()).toBe(index);
    expect(reopened.stateDigest()).toBe(digest);
    expect(reopened.authenticate(tokenHash(alice.token!), s.clock.now)?.username).toBe('alice');
    reopened.close();
  });

  it('backupTo writes a consistent copy with the same digest', async () => {
    const { s } = await recordedScenario();
    const copy = join(tempDir(), 'backup.sqlite');
    await s.store.backupTo(copy);
    const restored = new ChatStore(copy);
    expect(restored.appliedIndex()).toBe(s.store.appliedIndex());
    expect(restored.stateDigest()).toBe(s.store.stateDigest());
    restored.close();
  });
});
