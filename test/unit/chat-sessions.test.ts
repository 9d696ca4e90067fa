// Sessions (issue 13, docs/design/sessions.md): nothing reaches the log without a live session, no token
// in any entry or idempotency row, a retried Login rotates its session, idempotency rows are per method,
// and sessions expire after their TTL unless used (writes refresh in apply, reads through `touch`).
import { status } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import { ChatError } from '../../src/chat/errors.js';
import { ChatService } from '../../src/chat/service.js';
import { ChatStore, SchemaVersionError } from '../../src/chat/store.js';
import { tokenHash } from '../../src/chat/tokens.js';
import { type Stack, collect, errorOf, makeStack, userCtx } from './chat-fixture.js';

const TTL = 60 * 60 * 1000; // one hour
let s: Stack;
beforeEach(() => {
  s = makeStack(':memory:', { sessionTtlMs: TTL });
});

/** Every command the store has applied, as the JSON text of its log entry. */
function recordEntries(stack: Stack): string[] {
  const seen: string[] = [];
  const apply = stack.store.apply.bind(stack.store);
  stack.store.apply = (batch) => {
    for (const e of batch) seen.push(e.data);
    return apply(batch);
  };
  return seen;
}

const creds = { username: 'alice', password: 'password123' };

describe('no proposal without a live session', () => {
  it('writes with unknown, revoked or oversize tokens are refused before the log', async () => {
    const alice = await userCtx(s, 'alice');
    await userCtx(s, 'bob');
    const chat = await s.service.startChat({ username: 'bob' }, alice);
    const revoked = (await s.service.login(creds, {})).token;
    await s.service.logout({}, { token: revoked });
    const before = s.store.appliedIndex();
    const req = { chat_id: chat.chat_id, content: 'hi' };
    for (const token of ['garbage', revoked, 'x'.repeat(257)]) {
      for (const ctx of [{ token }, { token, idempotencyKey: `k-${token.length}` }]) {
        expect((await errorOf(s.service.sendMessage(req, ctx))).code).toBe(status.UNAUTHENTICATED);
        expect((await errorOf(s.service.logout({}, ctx))).code).toBe(status.UNAUTHENTICATED);
        expect((await errorOf(s.service.deleteAccount({ password: 'password123' }, ctx))).code).toBe(
          status.UNAUTHENTICATED,
        );
      }
    }
    expect(s.store.appliedIndex()).toBe(before);
  });

  it('oversize ids are INVALID_ARGUMENT and never reach the log', async () => {
    const alice = await userCtx(s, 'alice');
    const before = s.store.appliedIndex();
    const cases = [
      s.service.sendMessage({ chat_id: 'c'.repeat(65), content: 'hi' }, alice),
      s.service.getMessages({ chat_id: 'c'.repeat(65) }, alice),
      s.service.deleteMessages({ chat_id: 'c'.repeat(65), message_ids: [1] }, alice),
      s.service.deleteMessages(
        { chat_id: 'c1', message_ids: Array.from({ length: 1001 }, (_, i) => i) },
        alice,
      ),
      s.service.deleteMessages({ chat_id: 'c1', message_ids: [2 ** 60] }, alice),
      s.service.startChat({ username: 'b'.repeat(33) }, alice),
    ];
    for (const p of cases) expect((await errorOf(p)).code).toBe(status.INVALID_ARGUMENT);
    expect(s.store.appliedIndex()).toBe(before);
    // The limits themselves are allowed: a 64-character chat id is looked up (and not found).
    expect(
      (await errorOf(s.service.sendMessage({ chat_id: 'c'.repeat(64), content: 'x' }, alice))).code,
    ).toBe(status.NOT_FOUND);
  });

  it('a retried Logout whose session is gone is answered from its stored result, not proposed', async () => {
    const alice = await userCtx(s, 'alice');
    const ctx = { ...alice, idempotencyKey: 'logout-1' };
    await s.service.logout({}, ctx);
    const before = s.store.appliedIndex();
    expect(await s.service.logout({}, ctx)).toEqual({});
    expect(s.store.appliedIndex()).toBe(before);
  });
});

describe('tokens never at rest in clear', () => {
  it('no log entry and no idempotency row holds a token, with and without keys, retries included', async () => {
    const entries = recordEntries(s);
    await s.service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, {});
    const tokens = [
      (await s.service.login(creds, {})).token,
      (await s.service.login(creds, { idempotencyKey: 'login-k' })).token,
      (await s.service.login(creds, { idempotencyKey: 'login-k' })).token,
    ];
    expect(new Set(tokens).size).toBe(3);
    const rows = s.store.db.prepare('SELECT * FROM idempotency').all();
    const sessions = s.store.db.prepare('SELECT * FROM sessions').all();
    const atRest = JSON.stringify([entries, rows, sessions]);
    for (const t of tokens) expect(atRest).not.toContain(t);
    expect(rows).toHaveLength(1);
    // Only hashes: the live sessions are those of the first and of the last token.
    expect(sessions.map((r) => (r as { token_hash: string }).token_hash).sort()).toEqual(
      [tokenHash(tokens[0]), tokenHash(tokens[2])].sort(),
    );
  });

  it('a retried Login rotates the session: one session, the first token ends, its stream too', async () => {
    await s.service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, {});
    const first = await s.service.login(creds, { idempotencyKey: 'k' });
    const live = await collect(s, { token: first.token });
    const retry = await s.service.login(creds, { idempotencyKey: 'k' });
    expect(retry.user).toEqual(first.user);
    expect(retry.token).not.toBe(first.token);
    expect(live.revoked).toBe(true);
    expect((await errorOf(s.service.getSettings({}, { token: first.token }))).code).toBe(
      status.UNAUTHENTICATED,
    );
    expect(await s.service.getSettings({}, { token: retry.token })).toEqual({ view_limit: 6 });
    expect(s.store.db.prepare('SELECT COUNT(*) FROM sessions').pluck().get()).toBe(1);
    // A second retry rotates again, from the second token.
    const third = await s.service.login(creds, { idempotencyKey: 'k' });
    expect((await errorOf(s.service.getSettings({}, { token: retry.token }))).code).toBe(
      status.UNAUTHENTICATED,
    );
    expect(await s.service.getSettings({}, { token: third.token })).toEqual({ view_limit: 6 });
  });

  it('a retried Login still proves the password, and replays an original error', async () => {
    await s.service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, {});
    await s.service.login(creds, { idempotencyKey: 'k' });
    const wrong = await errorOf(
      s.service.login({ ...creds, password: 'not-the-password' }, { idempotencyKey: 'k' }),
    );
    expect(wrong.code).toBe(status.UNAUTHENTICATED);
    expect(s.store.db.prepare('SELECT COUNT(*) FROM sessions').pluck().get()).toBe(1);
  });

  it('a retried Login after the session ended creates none', async () => {
    await s.service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, {});
    const first = await s.service.login(creds, { idempotencyKey: 'k' });
    await s.service.logout({}, { token: first.token });
    const err = await errorOf(s.service.login(creds, { idempotencyKey: 'k' }));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(s.store.db.prepare('SELECT COUNT(*) FROM sessions').pluck().get()).toBe(0);
  });
});

describe('idempotency rows are keyed by (caller, method, key)', () => {
  it("a Signup carrying a Login's key gives ALREADY_EXISTS", async () => {
    await s.service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, {});
    await s.service.login(creds, { idempotencyKey: 'shared-key' });
    const err = await errorOf(
      s.service.signup(
        { username: 'alice', nickname: 'B', password: 'password123' },
        { idempotencyKey: 'shared-key' },
      ),
    );
    expect(err.code).toBe(status.ALREADY_EXISTS);
  });

  it('one key used for two methods by one user runs both', async () => {
    const alice = await userCtx(s, 'alice');
    await userCtx(s, 'bob');
    const ctx = { ...alice, idempotencyKey: 'same' };
    const chat = await s.service.startChat({ username: 'bob' }, ctx);
    const m = await s.service.sendMessage({ chat_id: chat.chat_id, content: 'hi' }, ctx);
    expect(m).toMatchObject({ content: 'hi', chat_id: chat.chat_id });
  });
});

describe('session expiry', () => {
  it('a session dies after its TTL without use, on reads and writes alike', async () => {
    const alice = await userCtx(s, 'alice');
    s.clock.now += TTL - 1;
    expect(await s.service.getSettings({}, alice)).toEqual({ view_limit: 6 });
    s.clock.now += TTL + 1;
    expect((await errorOf(s.service.getSettings({}, alice))).code).toBe(status.UNAUTHENTICATED);
    expect((await errorOf(s.service.updateSettings({ view_limit: 3 }, alice))).code).toBe(
      status.UNAUTHENTICATED,
    );
    await expect(collect(s, alice)).rejects.toThrow(/token/);
  });

  it('a write refreshes the session in apply: expiry is the entry time plus the TTL', async () => {
    const alice = await userCtx(s, 'alice');
    for (let i = 0; i < 4; i++) {
      s.clock.now += (TTL * 3) / 4;
      await s.service.updateSettings({ view_limit: 3 + i }, alice);
    }
    const row = s.store.authenticate(tokenHash(alice.token!), s.clock.now);
    expect(row?.expiresAt).toBe(s.clock.now + TTL);
    s.clock.now += TTL;
    expect((await errorOf(s.service.getSettings({}, alice))).code).toBe(status.UNAUTHENTICATED);
  });

  it('a session that only reads is kept alive by touch entries once its refresh is old', async () => {
    const alice = await userCtx(s, 'alice');
    const entries = recordEntries(s);
    // Fresh: reading proposes nothing.
    await s.service.listChats({}, alice);
    await new Promise((r) => setImmediate(r));
    expect(entries).toEqual([]);
    for (let i = 0; i < 4; i++) {
      s.clock.now += (TTL * 3) / 4;
      await s.service.listChats({}, alice);
      // The touch is proposed in the background; wait for it to apply (bounded).
      for (let j = 0; j < 100 && entries.length <= i; j++) await new Promise((r) => setImmediate(r));
    }
    expect(entries.map((e) => JSON.parse(e).type)).toEqual(['touch', 'touch', 'touch', 'touch']);
    expect(entries.join('')).not.toContain(alice.token!);
    expect(await s.service.getSettings({}, alice)).toEqual({ view_limit: 6 });
  });

  it('a follower that cannot propose the touch hands it to the leader, which proposes it', async () => {
    const alice = await userCtx(s, 'alice');
    const entries = recordEntries(s);
    // A follower over the same applied state: it reads, but every proposal is refused (not the leader).
    const notLeader = {
      propose: () => Promise.reject(new ChatError(status.UNAVAILABLE, 'Not the leader.')),
      read: <T>(query: () => T) => Promise.resolve(query()),
    };
    const relayed: string[] = [];
    const follower = new ChatService(s.store, notLeader, s.hub, {
      now: () => s.clock.now,
      sessionTtlMs: TTL,
      relayTouch: (actor) => {
        relayed.push(actor);
        s.service.touchRelayed(actor);
      },
    });
    s.clock.now += (TTL * 3) / 4;
    await follower.listChats({}, alice);
    for (let j = 0; j < 100 && entries.length === 0; j++) await new Promise((r) => setImmediate(r));
    expect(relayed).toEqual([tokenHash(alice.token!)]);
    expect(entries.map((e) => JSON.parse(e).type)).toEqual(['touch']);
    expect(s.store.authenticate(tokenHash(alice.token!), s.clock.now)?.expiresAt).toBe(s.clock.now + TTL);
    // The leader ignores what is not a live session's hash.
    s.service.touchRelayed('not a hash');
    s.service.touchRelayed('0'.repeat(64));
    for (let j = 0; j < 10; j++) await new Promise((r) => setImmediate(r));
    expect(entries).toHaveLength(1);
  });

  it('apply judges expiry by the entry time and ends the streams of expired sessions', async () => {
    const alice = await userCtx(s, 'alice');
    const bob = await userCtx(s, 'bob');
    const live = await collect(s, alice);
    s.clock.now += TTL / 2;
    await s.service.updateSettings({ view_limit: 2 }, bob);
    expect(live.revoked).toBe(false);
    s.clock.now += TTL - 1; // past alice's expiry, not yet bob's (refreshed at TTL / 2)
    await s.service.updateSettings({ view_limit: 3 }, bob);
    expect(live.revoked).toBe(true);
    expect(s.store.authenticate(tokenHash(alice.token!), 0)).toBeUndefined();
  });
});

describe('schema', () => {
  it('a database of chat schema version 1 is refused, untouched', () => {
    const db = new Database(':memory:');
    db.exec(`CREATE TABLE chat_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO chat_meta VALUES ('schema_version', '1');
             CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, created_at INTEGER NOT NULL);`);
    expect(() => new ChatStore(db)).toThrow(SchemaVersionError);
    expect(() => new ChatStore(db)).toThrow(/schema version 1.*version 2/);
    const cols = db.prepare("SELECT name FROM pragma_table_info('sessions')").pluck().all();
    expect(cols).toEqual(['token_hash', 'user_id', 'created_at']);
    db.close();
  });
});
