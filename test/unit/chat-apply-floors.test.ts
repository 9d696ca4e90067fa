// Apply's shortcuts (src/chat/expiry-floors.ts, src/chat/session-cache.ts) change how much work apply
// does, never what it decides: the same commands give the same tables, results, revocations and
// sessions with the shortcuts as without, across expiries, a snapshot restore and a rolled-back apply;
// and each rule that keeps a floor or a cached row honest has a test that fails without it.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../machines/protocol.js';
import { type Command, encodeCommand } from '../../src/chat/commands.js';
import { CHAT_TABLES, writeChatSnapshot } from '../../src/chat/snapshots.js';
import { ChatStore, IDEMPOTENCY_WINDOW_MS } from '../../src/chat/store.js';
import { tokenHash } from '../../src/chat/tokens.js';
import type { AppliedBatch } from '../../src/chat/types.js';
import type { SnapshotPayload } from '../../src/raft/interfaces.js';

let dir: string;
const open: ChatStore[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qc-floors-'));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

function store(name: string, shortcuts = true): ChatStore {
  const s = new ChatStore(join(dir, `${name}.sqlite`), { shortcuts });
  open.push(s);
  return s;
}

/** Applies commands after the store's applied index; returns the results and the batch it reported. */
function run(s: ChatStore, cmds: Command[]) {
  let index = s.appliedIndex();
  const entries: Entry[] = cmds.map((c) => ({
    index: ++index,
    term: 1,
    kind: 'command',
    data: encodeCommand(c),
  }));
  const batches: AppliedBatch[] = [];
  const off = s.onApplied((b) => batches.push(b));
  try {
    const results = s.apply(entries).map((o) => o.result);
    return { results, revoked: batches.map((b) => b.revoked) };
  } finally {
    off();
  }
}

const rows = (s: ChatStore) =>
  Object.fromEntries(
    [...CHAT_TABLES].map((t) => [t, s.db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all()]),
  );

const userId = (s: ChatStore, name: string) =>
  s.db.prepare('SELECT id FROM users WHERE username_key = ?').pluck().get(name) as number;

const hash = (tag: string) => tokenHash(`token-${tag}-0123456789abcdef`);

async function snapshotOf(s: ChatStore): Promise<SnapshotPayload> {
  const file = join(dir, `snap-${s.appliedIndex()}-${Math.random().toString(36).slice(2)}.db`);
  const written = await writeChatSnapshot(s.db.name, file, { accept: () => true });
  expect(written?.index).toBe(s.appliedIndex());
  return {
    meta: { index: s.appliedIndex(), term: 1, config: { members: [] } },
    byteLength: fs.statSync(file).size,
    file,
  } as unknown as SnapshotPayload;
}

/** mulberry32: a small seeded PRNG, so each seed is one reproducible sequence. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random stream of commands over four users: logins with short TTLs (minutes to hours), their retries
 * (rotations), messages, touches, logouts, an account deleted and re-created, idempotency keys reused,
 * and time that sometimes jumps past a TTL or the whole idempotency window.
 */
function commands(seed: number, count: number, startAt: number): { cmds: Command[]; hashes: string[] } {
  const r = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const names = ['ann', 'bob', 'cy', 'dee'];
  const cmds: Command[] = [];
  const hashes: string[] = [];
  let at = startAt;
  let n = 0;
  for (const username of names) {
    cmds.push({
      type: 'signup',
      at,
      username,
      nickname: username,
      passwordHash: 'scrypt$x',
      idempotencyKey: `s-${username}`,
    });
  }
  while (cmds.length < count) {
    const jump = r();
    at +=
      jump < 0.05
        ? IDEMPOTENCY_WINDOW_MS + Math.floor(r() * HOUR)
        : jump < 0.2
          ? Math.floor(r() * 3 * HOUR)
          : Math.floor(r() * 5000);
    const key = r() < 0.7 ? `k${Math.floor(r() * 40)}` : undefined;
    const actor = hashes.length > 0 && r() < 0.9 ? pick(hashes) : hash(`unknown-${seed}`);
    const k = r();
    if (k < 0.15 || hashes.length === 0) {
      const username = pick(names);
      const tokenHash = hash(`${seed}-${n++}`);
      hashes.push(tokenHash);
      // The userId the leader verified: names are signed up in order, so ids follow (a re-created
      // account gets a new id, and its old id makes the login fail, as it should).
      cmds.push({
        type: 'login',
        at,
        username,
        userId: 1 + names.indexOf(username),
        tokenHash,
        ttlMs: pick([60_000, HOUR, 5 * HOUR]),
        idempotencyKey: r() < 0.5 ? `l-${username}-${Math.floor(r() * 3)}` : undefined,
      });
    } else if (k < 0.5) {
      cmds.push({ type: 'startChat', at, actor, username: pick(names), idempotencyKey: key });
    } else if (k < 0.8) {
      cmds.push({
        type: 'sendMessage',
        at,
        actor,
        chatId: `c${1 + Math.floor(r() * 4)}`,
        content: `m${n++}`,
        idempotencyKey: key,
      });
    } else if (k < 0.88) {
      cmds.push({ type: 'touch', at, actor });
    } else if (k < 0.93) {
      cmds.push({
        type: 'readMessages',
        at,
        actor,
        chatId: `c${1 + Math.floor(r() * 4)}`,
        idempotencyKey: key,
      });
    } else if (k < 0.98) {
      cmds.push({ type: 'logout', at, actor, idempotencyKey: key });
    } else {
      const username = pick(names);
      cmds.push({
        type: 'deleteAccount',
        at,
        actor,
        userId: 1 + names.indexOf(username),
        idempotencyKey: key,
      });
      cmds.push({ type: 'signup', at, username, nickname: username, passwordHash: 'scrypt$x' });
    }
  }
  return { cmds, hashes };
}

describe('apply with and without its shortcuts', () => {
  it('gives the same tables, results, revocations and sessions, across expiries and a restore', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const fast = store(`fast-${seed}`);
      const slow = store(`slow-${seed}`, false);
      const { cmds, hashes } = commands(seed, 400, T0);
      const half = cmds.length / 2;
      const compare = (a: ChatStore, b: ChatStore, batch: Command[]) => {
        expect(run(a, batch)).toEqual(run(b, batch));
        expect(rows(a)).toEqual(rows(b));
        const now = batch[batch.length - 1].at;
        for (const h of hashes) expect(a.authenticate(h, now)).toEqual(b.authenticate(h, now));
      };
      for (let i = 0; i < half; i += 7) compare(fast, slow, cmds.slice(i, Math.min(i + 7, half)));

      // A store whose floors knew other tables (none of these sessions or rows) takes the snapshot.
      const restored = store(`restored-${seed}`);
      run(restored, [{ type: 'signup', at: T0, username: 'zed', nickname: 'z', passwordHash: 'scrypt$x' }]);
      restored.authenticate(hashes[0], T0); // a miss now: nothing cached that the restore must drop
      restored.restore(await snapshotOf(fast));
      expect(rows(restored)).toEqual(rows(slow));
      for (let i = half; i < cmds.length; i += 7) {
        const batch = cmds.slice(i, i + 7);
        run(fast, batch);
        compare(restored, slow, batch);
      }
      expect(rows(fast)).toEqual(rows(slow));
      // The sequence did what it is for: sessions expired, rows aged out of the window.
      expect(cmds[cmds.length - 1].at - T0).toBeGreaterThan(IDEMPOTENCY_WINDOW_MS);
    }
  });
});

describe('the floors', () => {
  const login = (at: number, ttlMs: number, tag: string, key?: string): Command => ({
    type: 'login',
    at,
    username: 'ann',
    userId: 1,
    tokenHash: hash(tag),
    ttlMs,
    idempotencyKey: key,
  });
  const signup = (at: number, username: string, key?: string): Command => ({
    type: 'signup',
    at,
    username,
    nickname: username,
    passwordHash: 'scrypt$x',
    idempotencyKey: key,
  });
  const sessions = (s: ChatStore) => s.db.prepare('SELECT token_hash FROM sessions').pluck().all();
  const keys = (s: ChatStore) => s.db.prepare('SELECT key FROM idempotency ORDER BY key').pluck().all();

  it('are lowered by a new session: it is deleted once expired, though the tables had none before', () => {
    const s = store('a');
    run(s, [signup(T0, 'ann')]);
    run(s, [login(T0, 1000, 'x')]);
    const { revoked } = run(s, [signup(T0 + 5000, 'bob')]);
    expect(sessions(s)).toEqual([]);
    expect(revoked[0].tokenHashes).toEqual([hash('x')]);
  });

  it('are lowered by a new idempotency row: it is pruned once out of the window, the table empty before', () => {
    const s = store('a');
    run(s, [signup(T0, 'ann', 'k1')]);
    run(s, [signup(T0 + IDEMPOTENCY_WINDOW_MS + 1, 'bob')]);
    expect(keys(s)).toEqual([]);
  });

  it('are lowered by a rotation that shortens a session', () => {
    const s = store('a');
    run(s, [signup(T0, 'ann'), login(T0, 10 * 24 * HOUR, 'long', 'same')]);
    // The retry of that Login, on a leader with a short --session-ttl: the session takes the new hash.
    run(s, [login(T0 + 1, 1000, 'short', 'same')]);
    expect(sessions(s)).toEqual([hash('short')]);
    run(s, [signup(T0 + 5000, 'bob')]);
    expect(sessions(s)).toEqual([]);
  });

  it('are read again when an apply rolls back (a DELETE undone brings its rows back)', () => {
    const s = store('a');
    run(s, [signup(T0, 'ann', 'k1'), login(T0, 1000, 'x')]);
    const gap: Entry = { index: s.appliedIndex() + 5, term: 1, kind: 'noop', data: '' };
    const late = signup(T0 + IDEMPOTENCY_WINDOW_MS + 1, 'bob');
    const first: Entry = { index: s.appliedIndex() + 1, term: 1, kind: 'command', data: encodeCommand(late) };
    // The first entry prunes the row and deletes the session; the gap rolls both back.
    expect(() => s.apply([first, gap])).toThrow(/does not follow/);
    expect(keys(s)).toEqual(['k1']);
    expect(sessions(s)).toEqual([hash('x')]);
    run(s, [late]);
    expect(keys(s)).toEqual([]);
    expect(sessions(s)).toEqual([]);
  });

  it('are read again after a restore: rows the restored tables bring expire as they should', async () => {
    const a = store('a');
    run(a, [signup(T0, 'ann', 'k1'), login(T0, 1000, 'x')]);
    const b = store('b'); // empty tables: nothing due, ever, by its floors
    run(b, [signup(T0, 'cy')]);
    b.restore(await snapshotOf(a));
    run(b, [signup(T0 + IDEMPOTENCY_WINDOW_MS + 1, 'bob')]);
    expect(keys(b)).toEqual([]);
    expect(sessions(b)).toEqual([]);
  });
});

describe('the session cache', () => {
  const base = (s: ChatStore) => {
    run(s, [
      { type: 'signup', at: T0, username: 'ann', nickname: 'a', passwordHash: 'scrypt$x' },
      { type: 'signup', at: T0, username: 'bob', nickname: 'b', passwordHash: 'scrypt$x' },
      {
        type: 'login',
        at: T0,
        username: 'ann',
        userId: 1,
        tokenHash: hash('a1'),
        ttlMs: HOUR,
        idempotencyKey: 'l',
      },
      { type: 'login', at: T0, username: 'ann', userId: 1, tokenHash: hash('a2'), ttlMs: HOUR },
      { type: 'login', at: T0, username: 'bob', userId: 2, tokenHash: hash('b1'), ttlMs: 1000 },
    ]);
    // Every session looked up once, so each is cached.
    for (const t of ['a1', 'a2', 'b1']) expect(s.authenticate(hash(t), T0)).toBeDefined();
  };

  it('follows a refresh, and forgets a session at Logout', () => {
    const s = store('a');
    base(s);
    run(s, [{ type: 'touch', at: T0 + 10, actor: hash('a1') }]);
    expect(s.authenticate(hash('a1'), T0)?.expiresAt).toBe(T0 + 10 + HOUR);
    run(s, [{ type: 'logout', at: T0 + 20, actor: hash('a1') }]);
    expect(s.authenticate(hash('a1'), T0 + 20)).toBeUndefined();
    expect(s.authenticate(hash('a2'), T0 + 20)?.userId).toBe(1);
  });

  it('forgets a session deleted at its expiry, even asked at an earlier time', () => {
    const s = store('a');
    base(s);
    run(s, [{ type: 'touch', at: T0 + 2000, actor: hash('a1') }]); // b1 expired at T0 + 1000: deleted
    expect(s.authenticate(hash('b1'), T0 + 500)).toBeUndefined();
  });

  it('forgets the old token of a rotated session', () => {
    const s = store('a');
    base(s);
    run(s, [
      {
        type: 'login',
        at: T0 + 5,
        username: 'ann',
        userId: 1,
        tokenHash: hash('a3'),
        ttlMs: HOUR,
        idempotencyKey: 'l',
      },
    ]);
    expect(s.authenticate(hash('a1'), T0 + 5)).toBeUndefined();
    expect(s.authenticate(hash('a3'), T0 + 5)?.userId).toBe(1);
  });

  it('forgets every session of a deleted account', () => {
    const s = store('a');
    base(s);
    run(s, [{ type: 'deleteAccount', at: T0 + 5, actor: hash('a1'), userId: 1 }]);
    expect(s.authenticate(hash('a1'), T0 + 5)).toBeUndefined();
    expect(s.authenticate(hash('a2'), T0 + 5)).toBeUndefined();
    expect(s.authenticate(hash('b1'), T0 + 5)?.userId).toBe(2);
  });

  it('forgets everything at a snapshot restore', async () => {
    const other = store('other');
    run(other, [{ type: 'signup', at: T0, username: 'cy', nickname: 'c', passwordHash: 'scrypt$x' }]);
    const s = store('a');
    base(s);
    s.restore(await snapshotOf(other));
    for (const t of ['a1', 'a2', 'b1']) expect(s.authenticate(hash(t), T0)).toBeUndefined();
  });

  it('forgets a refresh that a failed apply rolled back', () => {
    const s = store('a');
    base(s);
    const touch: Entry = {
      index: s.appliedIndex() + 1,
      term: 1,
      kind: 'command',
      data: encodeCommand({ type: 'touch', at: T0 + 30 * 60_000, actor: hash('a1') }),
    };
    const gap: Entry = { index: s.appliedIndex() + 5, term: 1, kind: 'noop', data: '' };
    expect(() => s.apply([touch, gap])).toThrow(/does not follow/);
    // The refresh never happened: the session still ends an hour after its Login.
    expect(s.authenticate(hash('a1'), T0 + HOUR)).toBeUndefined();
    expect(s.authenticate(hash('a1'), T0 + HOUR - 1)?.expiresAt).toBe(T0 + HOUR);
  });
});
