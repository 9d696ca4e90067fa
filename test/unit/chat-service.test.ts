// ChatService over LocalReplicator and a real (in-memory) ChatStore: every RPC's success path and the
// errors of API.md's tables.
import { status } from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CallContext } from '../../src/chat/service.js';
import { type Stack, collect, errorOf, makeStack, userCtx } from './chat-fixture.js';

let s: Stack;
beforeEach(() => {
  s = makeStack();
});

describe('Signup', () => {
  it('creates a user with the default view limit, keeping the name as typed', async () => {
    const res = await s.service.signup({ username: 'Alice', nickname: 'Al', password: 'password123' }, {});
    expect(res).toEqual({ user: { username: 'Alice', nickname: 'Al', view_limit: 6 } });
  });

  it('never stores the password in clear', async () => {
    await s.service.signup({ username: 'alice', nickname: 'Al', password: 'password123' }, {});
    const row = s.store.db.prepare('SELECT password_hash FROM users').get() as { password_hash: string };
    expect(row.password_hash).toMatch(/^scrypt\$/);
    expect(row.password_hash).not.toContain('password123');
  });

  it('rejects a taken name in any case with ALREADY_EXISTS', async () => {
    await s.service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, {});
    const err = await errorOf(
      s.service.signup({ username: 'ALICE', nickname: 'B', password: 'password123' }, {}),
    );
    expect(err.code).toBe(status.ALREADY_EXISTS);
    // Also through apply (with a key, the service skips its pre-check).
    const err2 = await errorOf(
      s.service.signup(
        { username: 'Alice', nickname: 'B', password: 'password123' },
        { idempotencyKey: 'k' },
      ),
    );
    expect(err2.code).toBe(status.ALREADY_EXISTS);
  });

  it.each([
    [{ username: 'ab', nickname: 'n', password: 'password123' }, /username/],
    [{ username: 'a'.repeat(33), nickname: 'n', password: 'password123' }, /username/],
    [{ username: 'bad name', nickname: 'n', password: 'password123' }, /username/],
    [{ username: 'bäd', nickname: 'n', password: 'password123' }, /username/],
    [{ username: 'good', nickname: '', password: 'password123' }, /nickname/],
    [{ username: 'good', nickname: '   ', password: 'password123' }, /nickname/],
    [{ username: 'good', nickname: 'x'.repeat(65), password: 'password123' }, /nickname/],
    [{ username: 'good', nickname: 'n', password: 'short' }, /password/],
    [{ username: 'good', nickname: 'n', password: 'p'.repeat(129) }, /password/],
    [{ username: 7, nickname: 'n', password: 'password123' }, /username/],
  ])('rejects %j with INVALID_ARGUMENT', async (req, msg) => {
    const err = await errorOf(s.service.signup(req as Record<string, unknown>, {}));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(msg);
  });

  it('accepts the limits exactly (3 and 32 chars, 64-char nickname in code points, 8 and 128 password)', async () => {
    await s.service.signup({ username: 'a.-', nickname: '😀'.repeat(64), password: 'p'.repeat(8) }, {});
    await s.service.signup({ username: 'b'.repeat(32), nickname: 'n', password: 'p'.repeat(128) }, {});
    expect(s.store.listUsers(0, '*', 1, 20).total_count).toBe(2);
  });
});

describe('Login and Logout', () => {
  beforeEach(async () => {
    await s.service.signup({ username: 'alice', nickname: 'Al', password: 'password123' }, {});
  });

  it('returns a token and the user; the name matches ignoring case', async () => {
    const res = await s.service.login({ username: 'ALICE', password: 'password123' }, {});
    expect(res.token.length).toBeGreaterThan(20);
    expect(res.user).toEqual({ username: 'alice', nickname: 'Al', view_limit: 6 });
    expect(await s.service.getSettings({}, { token: res.token })).toEqual({ view_limit: 6 });
  });

  it('does not fold non-ASCII look-alikes into a username', async () => {
    await s.service.signup({ username: 'kate', nickname: 'K', password: 'password123' }, {});
    const err = await errorOf(s.service.login({ username: '\u212Aate', password: 'password123' }, {}));
    expect(err.code).toBe(status.UNAUTHENTICATED);
  });

  it('stores only a hash of the token', async () => {
    const { token } = await s.service.login({ username: 'alice', password: 'password123' }, {});
    const rows = s.store.db.prepare('SELECT token_hash FROM sessions').pluck().all() as string[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).not.toBe(token);
  });

  it('gives the same UNAUTHENTICATED message for an unknown user and a wrong password', async () => {
    const a = await errorOf(s.service.login({ username: 'nobody', password: 'password123' }, {}));
    const b = await errorOf(s.service.login({ username: 'alice', password: 'wrong-password' }, {}));
    expect(a.code).toBe(status.UNAUTHENTICATED);
    expect(b.code).toBe(status.UNAUTHENTICATED);
    expect(a.message).toBe(b.message);
  });

  it('Logout revokes this token only', async () => {
    const t1 = (await s.service.login({ username: 'alice', password: 'password123' }, {})).token;
    const t2 = (await s.service.login({ username: 'alice', password: 'password123' }, {})).token;
    expect(await s.service.logout({}, { token: t1 })).toEqual({});
    expect((await errorOf(s.service.getSettings({}, { token: t1 }))).code).toBe(status.UNAUTHENTICATED);
    expect((await errorOf(s.service.logout({}, { token: t1 }))).code).toBe(status.UNAUTHENTICATED);
    expect(await s.service.getSettings({}, { token: t2 })).toEqual({ view_limit: 6 });
  });

  it('missing or bad tokens are UNAUTHENTICATED on every authenticated RPC', async () => {
    for (const ctx of [{}, { token: 'not-a-token' }] as CallContext[]) {
      for (const method of [
        'Logout',
        'DeleteAccount',
        'ListUsers',
        'GetSettings',
        'UpdateSettings',
        'StartChat',
        'ListChats',
        'SendMessage',
        'GetMessages',
        'ReadMessages',
        'MarkRead',
        'EditMessage',
        'SetTyping',
        'DeleteMessages',
      ]) {
        const req = {
          view_limit: 5,
          username: 'alice',
          chat_id: 'c1',
          content: 'hi',
          message_ids: [1],
          message_id: 1,
          up_to_id: 1,
          typing: true,
          password: 'x',
        };
        const err = await errorOf(s.service.handle(method, req, ctx));
        expect(err.code, method).toBe(status.UNAUTHENTICATED);
      }
    }
  });
});

describe('ListUsers', () => {
  let ctx: CallContext;
  beforeEach(async () => {
    ctx = await userCtx(s, 'zed');
    for (const name of ['alice', 'Alicia', 'bob', 'a_b', 'axb', 'a.b', 'carol', 'Dave']) {
      await s.service.signup({ username: name, nickname: `N ${name}`, password: 'password123' }, {});
    }
  });

  const names = async (pattern: string, page = 0, page_size = 0) =>
    (await s.service.listUsers({ pattern, page, page_size }, ctx)).users.map((u) => u.username);

  it('empty pattern lists everyone but the caller, sorted by username ignoring case', async () => {
    expect(await names('')).toEqual(['a.b', 'a_b', 'alice', 'Alicia', 'axb', 'bob', 'carol', 'Dave']);
  });

  it('is a case-insensitive glob with literal % and _', async () => {
    expect(await names('ALI*')).toEqual(['alice', 'Alicia']);
    expect(await names('a_b')).toEqual(['a_b']);
    expect(await names('a.b')).toEqual(['a.b']);
    expect(await names('a?b')).toEqual(['a.b', 'a_b', 'axb']);
    // SQL LIKE wildcards are plain characters here: no username contains them.
    expect(await names('%')).toEqual([]);
    expect(await names('a%')).toEqual([]);
    expect(await names('_')).toEqual([]);
    expect(await names('z??')).toEqual([]);
  });

  it('pages with total_pages and total_count; a page past the end is empty', async () => {
    const p1 = await s.service.listUsers({ pattern: '', page: 1, page_size: 3 }, ctx);
    expect(p1).toMatchObject({ page: 1, total_pages: 3, total_count: 8 });
    expect(p1.users.map((u) => u.username)).toEqual(['a.b', 'a_b', 'alice']);
    expect(await names('', 3, 3)).toEqual(['carol', 'Dave']);
    const past = await s.service.listUsers({ pattern: '', page: 4, page_size: 3 }, ctx);
    expect(past).toMatchObject({ users: [], page: 4, total_pages: 3, total_count: 8 });
    const none = await s.service.listUsers({ pattern: 'zzz', page: 0, page_size: 0 }, ctx);
    expect(none).toMatchObject({ users: [], page: 1, total_pages: 0, total_count: 0 });
  });

  it.each([
    [{ page: -1 }, /page/],
    [{ page_size: -1 }, /page_size/],
    [{ page_size: 101 }, /page_size/],
    [{ pattern: 5 }, /pattern/],
  ])('rejects %j with INVALID_ARGUMENT', async (req, msg) => {
    const err = await errorOf(s.service.listUsers(req, ctx));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(msg);
  });
});

describe('Settings', () => {
  it('GetSettings and UpdateSettings round-trip; the user view follows', async () => {
    const ctx = await userCtx(s, 'alice');
    expect(await s.service.updateSettings({ view_limit: 1000 }, ctx)).toEqual({ view_limit: 1000 });
    expect(await s.service.getSettings({}, ctx)).toEqual({ view_limit: 1000 });
    const login = await s.service.login({ username: 'alice', password: 'password123' }, {});
    expect(login.user.view_limit).toBe(1000);
  });

  it.each([0, -1, 1001, 2.5])('rejects view_limit %d', async (v) => {
    const ctx = await userCtx(s, 'alice');
    const err = await errorOf(s.service.updateSettings({ view_limit: v }, ctx));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(await s.service.getSettings({}, ctx)).toEqual({ view_limit: 6 });
  });
});

describe('chats and messages', () => {
  let alice: CallContext;
  let bob: CallContext;
  beforeEach(async () => {
    alice = await userCtx(s, 'alice', 'Alice A');
    bob = await userCtx(s, 'bob', 'Bob B');
  });

  it('StartChat is idempotent per pair, from either side', async () => {
    const c1 = await s.service.startChat({ username: 'BOB' }, alice);
    expect(c1).toMatchObject({
      other_user: 'bob',
      other_nickname: 'Bob B',
      unread_count: 0,
      last_message_at: 0,
    });
    const c2 = await s.service.startChat({ username: 'bob' }, alice);
    const c3 = await s.service.startChat({ username: 'alice' }, bob);
    expect(c2.chat_id).toBe(c1.chat_id);
    expect(c3.chat_id).toBe(c1.chat_id);
    expect(c3.other_user).toBe('alice');
  });

  it('StartChat: unknown user NOT_FOUND, yourself INVALID_ARGUMENT, empty INVALID_ARGUMENT', async () => {
    expect((await errorOf(s.service.startChat({ username: 'nobody' }, alice))).code).toBe(status.NOT_FOUND);
    expect((await errorOf(s.service.startChat({ username: 'ALICE' }, alice))).code).toBe(
      status.INVALID_ARGUMENT,
    );
    expect((await errorOf(s.service.startChat({ username: '' }, alice))).code).toBe(status.INVALID_ARGUMENT);
  });

  it('SendMessage assigns increasing ids and the leader time; ListChats orders by recent activity', async () => {
    const carol = await userCtx(s, 'carol');
    const ab = await s.service.startChat({ username: 'bob' }, alice);
    s.clock.now += 10;
    const ac = await s.service.startChat({ username: 'carol' }, alice);
    s.clock.now += 10;
    const m1 = await s.service.sendMessage({ chat_id: ab.chat_id, content: 'hi bob' }, alice);
    expect(m1).toMatchObject({
      chat_id: ab.chat_id,
      sender: 'alice',
      content: 'hi bob',
      sent_at: s.clock.now,
      read: false,
    });
    s.clock.now += 10;
    const m2 = await s.service.sendMessage({ chat_id: ab.chat_id, content: 'hi again' }, alice);
    expect(m2.message_id).toBeGreaterThan(m1.message_id);
    let chats = (await s.service.listChats({}, alice)).chats;
    expect(chats.map((c) => c.chat_id)).toEqual([ab.chat_id, ac.chat_id]);
    expect(chats[0]).toMatchObject({ unread_count: 0, last_message_at: m2.sent_at });
    const bobChats = (await s.service.listChats({}, bob)).chats;
    expect(bobChats).toEqual([
      {
        chat_id: ab.chat_id,
        other_user: 'alice',
        other_nickname: 'Alice A',
        unread_count: 2,
        last_message_at: m2.sent_at,
      },
    ]);
    s.clock.now += 10;
    await s.service.sendMessage({ chat_id: ac.chat_id, content: 'hi carol' }, carol);
    chats = (await s.service.listChats({}, alice)).chats;
    expect(chats.map((c) => c.chat_id)).toEqual([ac.chat_id, ab.chat_id]);
  });

  it('SendMessage: NOT_FOUND for an unknown chat or one the caller is not in; content limits', async () => {
    const carol = await userCtx(s, 'carol');
    const ab = await s.service.startChat({ username: 'bob' }, alice);
    expect((await errorOf(s.service.sendMessage({ chat_id: 'nope', content: 'x' }, alice))).code).toBe(
      status.NOT_FOUND,
    );
    expect((await errorOf(s.service.sendMessage({ chat_id: ab.chat_id, content: 'x' }, carol))).code).toBe(
      status.NOT_FOUND,
    );
    for (const content of ['', '  \n\t', 'x'.repeat(4097)]) {
      const err = await errorOf(s.service.sendMessage({ chat_id: ab.chat_id, content }, alice));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
    }
    await s.service.sendMessage({ chat_id: ab.chat_id, content: '😀'.repeat(4096) }, alice);
  });

  it('ReadMessages delivers unread messages view_limit at a time, oldest first, and marks them read', async () => {
    const ab = await s.service.startChat({ username: 'bob' }, alice);
    await s.service.updateSettings({ view_limit: 2 }, bob);
    const sent = [];
    for (let i = 1; i <= 5; i++)
      sent.push(await s.service.sendMessage({ chat_id: ab.chat_id, content: `m${i}` }, alice));
    const mine = await s.service.sendMessage({ chat_id: ab.chat_id, content: 'from bob' }, bob);

    const r1 = await s.service.readMessages({ chat_id: ab.chat_id }, bob);
    expect(r1.messages.map((m) => m.content)).toEqual(['m1', 'm2']);
    expect(r1.messages.every((m) => m.read)).toBe(true);
    expect(r1.unread_remaining).toBe(3);
    // History now shows what bob has read, and his own message.
    expect(
      (await s.service.getMessages({ chat_id: ab.chat_id }, bob)).messages.map((m) => m.content),
    ).toEqual(['m1', 'm2', 'from bob']);

    const r2 = await s.service.readMessages({ chat_id: ab.chat_id }, bob);
    expect(r2.messages.map((m) => m.content)).toEqual(['m3', 'm4']);
    expect(r2.unread_remaining).toBe(1);
    const r3 = await s.service.readMessages({ chat_id: ab.chat_id }, bob);
    expect(r3.messages.map((m) => m.content)).toEqual(['m5']);
    expect(r3.unread_remaining).toBe(0);
    expect(await s.service.readMessages({ chat_id: ab.chat_id }, bob)).toEqual({
      messages: [],
      unread_remaining: 0,
    });

    // The sender sees her own messages, now marked read; bob's one is unread for her, so not in her history.
    expect((await s.service.listChats({}, alice)).chats[0].unread_count).toBe(1);
    const ra = await s.service.getMessages({ chat_id: ab.chat_id }, alice);
    expect(ra.messages.map((m) => [m.message_id, m.read])).toEqual(sent.map((m) => [m.message_id, true]));
    const rb = await s.service.readMessages({ chat_id: ab.chat_id }, alice);
    expect(rb.messages.map((m) => m.message_id)).toEqual([mine.message_id]);
  });

  it('GetMessages: NOT_FOUND for a chat the caller is not in', async () => {
    const carol = await userCtx(s, 'carol');
    const ab = await s.service.startChat({ username: 'bob' }, alice);
    expect((await errorOf(s.service.getMessages({ chat_id: ab.chat_id }, carol))).code).toBe(
      status.NOT_FOUND,
    );
    expect((await errorOf(s.service.getMessages({ chat_id: 'c999' }, alice))).code).toBe(status.NOT_FOUND);
  });

  it('DeleteMessages: sender only, all-or-nothing, NOT_FOUND for unknown ids', async () => {
    const ab = await s.service.startChat({ username: 'bob' }, alice);
    const a1 = await s.service.sendMessage({ chat_id: ab.chat_id, content: 'a1' }, alice);
    const a2 = await s.service.sendMessage({ chat_id: ab.chat_id, content: 'a2' }, alice);
    const b1 = await s.service.sendMessage({ chat_id: ab.chat_id, content: 'b1' }, bob);

    const denied = await errorOf(
      s.service.deleteMessages({ chat_id: ab.chat_id, message_ids: [a1.message_id, b1.message_id] }, alice),
    );
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    const missing = await errorOf(
      s.service.deleteMessages({ chat_id: ab.chat_id, message_ids: [a1.message_id, 999] }, alice),
    );
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(s.store.db.prepare('SELECT COUNT(*) FROM messages').pluck().get()).toBe(3);

    const empty = await errorOf(s.service.deleteMessages({ chat_id: ab.chat_id, message_ids: [] }, alice));
    expect(empty.code).toBe(status.INVALID_ARGUMENT);
    const other = await errorOf(
      s.service.deleteMessages({ chat_id: 'c999', message_ids: [a1.message_id] }, alice),
    );
    expect(other.code).toBe(status.NOT_FOUND);

    const ok = await s.service.deleteMessages(
      { chat_id: ab.chat_id, message_ids: [a1.message_id, a2.message_id, a1.message_id] },
      alice,
    );
    expect(ok).toEqual({ deleted_count: 2 });
    expect(
      (await s.service.getMessages({ chat_id: ab.chat_id }, bob)).messages.map((m) => m.content),
    ).toEqual(['b1']);
  });
});

describe('DeleteAccount', () => {
  it('cascades, frees the name, and a new account inherits nothing', async () => {
    const alice = await userCtx(s, 'alice');
    const bob = await userCtx(s, 'bob');
    const carol = await userCtx(s, 'carol');
    const ab = await s.service.startChat({ username: 'bob' }, alice);
    const bc = await s.service.startChat({ username: 'carol' }, bob);
    await s.service.sendMessage({ chat_id: ab.chat_id, content: 'hello' }, alice);
    await s.service.sendMessage({ chat_id: bc.chat_id, content: 'hey' }, bob);
    await s.service.updateSettings({ view_limit: 42 }, alice);
    const bobEvents = collect(s, bob);
    const aliceEvents = collect(s, alice);

    expect((await errorOf(s.service.deleteAccount({ password: 'wrong-password' }, alice))).code).toBe(
      status.UNAUTHENTICATED,
    );
    expect(await s.service.deleteAccount({ password: 'password123' }, alice)).toEqual({});

    expect(bobEvents.events.map((e) => ('chat_removed' in e ? e.chat_removed.chat_id : '?'))).toEqual([
      ab.chat_id,
    ]);
    expect(aliceEvents.revoked).toBe(true);
    expect((await errorOf(s.service.getSettings({}, alice))).code).toBe(status.UNAUTHENTICATED);
    expect((await s.service.listChats({}, bob)).chats.map((c) => c.chat_id)).toEqual([bc.chat_id]);
    expect((await errorOf(s.service.getMessages({ chat_id: ab.chat_id }, bob))).code).toBe(status.NOT_FOUND);
    expect((await s.service.listUsers({}, carol)).users.map((u) => u.username)).toEqual(['bob']);
    const leftovers = s.store.db
      .prepare("SELECT COUNT(*) FROM messages WHERE content = 'hello'")
      .pluck()
      .get();
    expect(leftovers).toBe(0);

    const again = await userCtx(s, 'ALICE');
    expect(await s.service.getSettings({}, again)).toEqual({ view_limit: 6 });
    expect((await s.service.listChats({}, again)).chats).toEqual([]);
    const ab2 = await s.service.startChat({ username: 'bob' }, again);
    expect(ab2.chat_id).not.toBe(ab.chat_id);
    expect((await s.service.getMessages({ chat_id: ab2.chat_id }, again)).messages).toEqual([]);
  });
});

describe('idempotency', () => {
  it('a repeated key returns the original result and applies nothing again', async () => {
    const alice = await userCtx(s, 'alice');
    await userCtx(s, 'bob');
    const chat = await s.service.startChat({ username: 'bob' }, alice);
    const k = { ...alice, idempotencyKey: 'send-1' };
    const m1 = await s.service.sendMessage({ chat_id: chat.chat_id, content: 'once' }, k);
    s.clock.now += 1000;
    const m2 = await s.service.sendMessage({ chat_id: chat.chat_id, content: 'once' }, k);
    expect(m2).toEqual(m1);
    expect((await s.service.getMessages({ chat_id: chat.chat_id }, alice)).messages).toHaveLength(1);
  });

  it('keys are per caller, and expire after 24 hours of command time', async () => {
    const alice = await userCtx(s, 'alice');
    const bob = await userCtx(s, 'bob');
    const chat = await s.service.startChat({ username: 'bob' }, alice);
    await s.service.sendMessage({ chat_id: chat.chat_id, content: 'a' }, { ...alice, idempotencyKey: 'k' });
    await s.service.sendMessage({ chat_id: chat.chat_id, content: 'b' }, { ...bob, idempotencyKey: 'k' });
    s.clock.now += 24 * 3600 * 1000 + 1;
    await s.service.sendMessage({ chat_id: chat.chat_id, content: 'a' }, { ...alice, idempotencyKey: 'k' });
    expect(s.store.db.prepare('SELECT COUNT(*) FROM messages').pluck().get()).toBe(3);
  });

  it('replays Signup by username, Login with its original token, and errors as they were', async () => {
    const k = { idempotencyKey: 'signup-1' };
    const u1 = await s.service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, k);
    const u2 = await s.service.signup({ username: 'Alice', nickname: 'A', password: 'password123' }, k);
    expect(u2).toEqual(u1);
    const l1 = await s.service.login(
      { username: 'alice', password: 'password123' },
      { idempotencyKey: 'login-1' },
    );
    const l2 = await s.service.login(
      { username: 'alice', password: 'password123' },
      { idempotencyKey: 'login-1' },
    );
    expect(l2.token).toBe(l1.token);
    expect(s.store.db.prepare('SELECT COUNT(*) FROM sessions').pluck().get()).toBe(1);
    const ctx = { token: l1.token, idempotencyKey: 'start-1' };
    const e1 = await errorOf(s.service.startChat({ username: 'nobody' }, ctx));
    await s.service.signup({ username: 'nobody', nickname: 'N', password: 'password123' }, {});
    const e2 = await errorOf(s.service.startChat({ username: 'nobody' }, ctx));
    expect([e2.code, e2.message]).toEqual([e1.code, e1.message]);
  });

  it('a retried Logout or DeleteAccount returns {} although its session is gone', async () => {
    const alice = await userCtx(s, 'alice');
    const logoutKey = { ...alice, idempotencyKey: 'logout-1' };
    expect(await s.service.logout({}, logoutKey)).toEqual({});
    expect(await s.service.logout({}, logoutKey)).toEqual({});
    const bob = await userCtx(s, 'bob');
    const delKey = { ...bob, idempotencyKey: 'delete-1' };
    expect(await s.service.deleteAccount({ password: 'password123' }, delKey)).toEqual({});
    expect(await s.service.deleteAccount({ password: 'password123' }, delKey)).toEqual({});
    expect(
      (
        await errorOf(
          s.service.deleteAccount({ password: 'password123' }, { ...bob, idempotencyKey: 'other' }),
        )
      ).code,
    ).toBe(status.UNAUTHENTICATED);
  });

  it('rejects keys longer than 64 characters', async () => {
    const alice = await userCtx(s, 'alice');
    const err = await errorOf(
      s.service.updateSettings({ view_limit: 3 }, { ...alice, idempotencyKey: 'k'.repeat(65) }),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    await s.service.updateSettings({ view_limit: 3 }, { ...alice, idempotencyKey: 'k'.repeat(64) });
  });
});

describe('Subscribe', () => {
  it('delivers each event only to the user it concerns, and resumes after an index', async () => {
    const alice = await userCtx(s, 'alice');
    const bob = await userCtx(s, 'bob');
    const carol = await userCtx(s, 'carol');
    const bobLive = collect(s, bob);
    const carolLive = collect(s, carol);
    const aliceLive = collect(s, alice);
    const chat = await s.service.startChat({ username: 'bob' }, alice);
    const m = await s.service.sendMessage({ chat_id: chat.chat_id, content: 'hi' }, alice);
    await s.service.deleteMessages({ chat_id: chat.chat_id, message_ids: [m.message_id] }, alice);

    expect(bobLive.events.map((e) => Object.keys(e).filter((k) => k !== 'index')[0])).toEqual([
      'chat_started',
      'message_received',
      'messages_deleted',
    ]);
    const started = bobLive.events[0];
    expect('chat_started' in started && started.chat_started.other_user).toBe('alice');
    const received = bobLive.events[1];
    expect('message_received' in received && received.message_received).toEqual(m);
    expect(carolLive.events).toEqual([]);
    expect(aliceLive.events).toEqual([]);

    const indices = bobLive.events.map((e) => e.index);
    expect(indices).toEqual([...indices].sort((a, b) => a - b));
    const resumed = collect(s, bob, indices[0]);
    expect(resumed.events).toEqual(bobLive.events.slice(1));
  });

  it('ends a stream when its token is revoked; rejects a bad token', async () => {
    const alice = await userCtx(s, 'alice');
    const live = collect(s, alice);
    await s.service.logout({}, alice);
    expect(live.revoked).toBe(true);
    expect(() => collect(s, alice)).toThrow(/token/);
  });
});
