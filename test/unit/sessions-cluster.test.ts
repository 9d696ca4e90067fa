// Sessions on a real three-replica cluster in one process (real gRPC on 127.0.0.1, temp data dirs):
// unauthenticated writes never reach the log on any replica, a token minted a moment ago opens a
// Subscribe on any follower at once, and no live token is in any file of any data dir (SQLite file,
// WAL, snapshots), whether the Login carried an idempotency key or not, retries included.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { joinCluster } from '../../src/server/join.js';
import { type RunningReplica, startReplica } from '../../src/server/replica.js';
import { metadata, rpc, stubs } from './server-fixture.js';

const SECRET = 'sessions-cluster-secret';
const timing = { heartbeatMs: 50, electionMinMs: 400, electionMaxMs: 800 };
const cost = { N: 1024, r: 8, p: 1 };
const PASSWORD = 'password123';

let root: string;
const replicas: RunningReplica[] = [];

async function start(id: string, peers: string[]): Promise<RunningReplica> {
  const dir = join(root, id);
  fs.mkdirSync(dir, { recursive: true });
  const r = await startReplica({
    id,
    host: '127.0.0.1',
    port: 0,
    dataDir: dir,
    peers,
    clusterSecret: SECRET,
    timing,
    scryptCost: cost,
    // Snapshots early, so that the at-rest scan covers snapshot files too.
    snapshotEvery: 20,
  });
  replicas.push(r);
  return r;
}

async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < end; i++) {
    const v = f();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const leader = () => replicas.find((r) => r.node.status().role === 'leader');
const followers = () => replicas.filter((r) => r.node.status().role === 'follower');
const auth = (token: string, extra: Record<string, string> = {}) =>
  metadata({ authorization: `Bearer ${token}`, ...extra });

/** Every replica has applied everything the leader committed. */
async function settled(): Promise<void> {
  await until('every replica to apply what the leader committed', () => {
    const lead = leader();
    if (!lead) return false;
    const { commitIndex } = lead.node.status();
    return replicas.every((r) => r.node.status().lastApplied === commitIndex);
  });
}

async function signup(chat: grpc.Client, username: string): Promise<void> {
  const out = await rpc(chat, 'Signup', { username, nickname: username, password: PASSWORD });
  expect(out.error).toBeUndefined();
}

async function login(chat: grpc.Client, username: string, key?: string): Promise<string> {
  const md = metadata(key ? { 'idempotency-key': key } : {});
  const out = await rpc<{ token: string }>(chat, 'Login', { username, password: PASSWORD }, md);
  expect(out.error).toBeUndefined();
  return out.response!.token;
}

type Subscribe = (r: unknown, m: grpc.Metadata) => grpc.ClientReadableStream<Record<string, unknown>>;
const subscribeOf = (chat: grpc.Client): Subscribe =>
  (chat as unknown as Record<string, Subscribe>).Subscribe.bind(chat);

beforeAll(async () => {
  root = fs.mkdtempSync(join(os.tmpdir(), 'qc-sessions-'));
  const a = await start('a', []);
  await until('a to lead', () => a.node.status().role === 'leader');
  for (const id of ['b', 'c']) {
    const r = await start(id, [a.address]);
    await joinCluster({ id, address: r.address, peers: [a.address], secret: SECRET, totalMs: 60_000 });
  }
  await until(
    'three voters',
    () =>
      leader()
        ?.node.status()
        .config.members.filter((m) => m.voter).length === 3,
  );
}, 120_000);

afterAll(async () => {
  for (const r of replicas) await r.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('sessions on a three-replica cluster', () => {
  it('unauthenticated writes leave last_applied unchanged on every replica', async () => {
    const lead = await until('a leader', leader);
    const chat = stubs(lead.address).chat;
    await signup(chat, 'probe_alice');
    await signup(chat, 'probe_bob');
    const token = await login(chat, 'probe_alice');
    const started = await rpc<{ chat_id: string }>(chat, 'StartChat', { username: 'probe_bob' }, auth(token));
    const chatId = started.response!.chat_id;
    await settled();
    const before = replicas.map((r) => ({
      applied: r.node.status().lastApplied,
      log: r.node.status().lastLogIndex,
    }));

    for (let i = 0; i < 20; i++) {
      const via = stubs(replicas[i % replicas.length].address).chat;
      const md = auth(
        `garbage-${i}-${randomBytes(8).toString('hex')}`,
        i % 2 ? { 'idempotency-key': `k${i}` } : {},
      );
      const out = await rpc(
        via,
        'SendMessage',
        { chat_id: i % 4 ? chatId : 'c'.repeat(64), content: 'x'.repeat(4000) },
        md,
      );
      expect(out.error?.code, `call ${i}`).toBe(grpc.status.UNAUTHENTICATED);
    }
    // A real write afterwards: once every replica applied it, anything proposed before it was applied too.
    const real = await rpc(chat, 'SendMessage', { chat_id: chatId, content: 'real' }, auth(token));
    expect(real.error).toBeUndefined();
    await settled();
    const after = replicas.map((r) => ({
      applied: r.node.status().lastApplied,
      log: r.node.status().lastLogIndex,
    }));
    expect(after).toEqual(before.map((b) => ({ applied: b.applied + 1, log: b.log + 1 })));
  });

  it('Subscribe on a follower right after Login succeeds 20 of 20 times', async () => {
    const lead = await until('a leader', leader);
    const chat = stubs(lead.address).chat;
    await signup(chat, 'poker');
    const poker = await login(chat, 'poker');
    const names = Array.from({ length: 20 }, (_, i) => `fresh_${i}`);
    for (const n of names) await signup(chat, n);
    await settled();

    let opened = 0;
    for (let i = 0; i < names.length; i++) {
      const follower = followers()[i % 2];
      expect(follower, 'a follower').toBeDefined();
      const token = await login(chat, names[i]);
      // At once, on a follower that may not have applied the Login yet.
      const stream = subscribeOf(stubs(follower.address).chat)({}, auth(token));
      const outcome = new Promise<string>((resolve) => {
        stream.on('data', (e: Record<string, unknown>) => {
          if (e.chat_started) resolve('event');
        });
        stream.on('error', (err: grpc.ServiceError) => resolve(`error ${err.code}: ${err.details}`));
      });
      // An event for this user proves the stream is open on the follower (it fails if it was refused).
      const poke = await rpc(chat, 'StartChat', { username: names[i] }, auth(poker));
      expect(poke.error).toBeUndefined();
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        outcome,
        new Promise<string>((r) => {
          timer = setTimeout(() => r('no event within 10 s'), 10_000);
        }),
      ]);
      clearTimeout(timer);
      stream.cancel();
      if (result === 'event') opened++;
      else expect.soft(result, `subscription ${i} on ${follower.id}`).toBe('event');
    }
    expect(opened).toBe(20);

    // A token the leader does not know either is refused, as final as before (not UNAVAILABLE).
    const refused = subscribeOf(stubs(followers()[0].address).chat)({}, auth('not-a-token'));
    const status = await new Promise<number>((resolve) => {
      refused.on('data', () => {});
      refused.on('error', (err: grpc.ServiceError) => resolve(err.code));
    });
    expect(status).toBe(grpc.status.UNAUTHENTICATED);
  }, 120_000);

  it('no live token appears in any file of any data dir after logins with and without keys', async () => {
    const lead = await until('a leader', leader);
    const all = replicas.map((r) => stubs(r.address).chat);
    await signup(all[0], 'rest_alice');
    await signup(all[0], 'rest_bob');
    const tokens: string[] = [];
    for (let i = 0; i < 6; i++) {
      const via = all[i % all.length]; // followers forward
      tokens.push(await login(via, 'rest_alice'));
      const key = `login-key-${i}`;
      tokens.push(await login(via, 'rest_bob', key));
      tokens.push(await login(all[(i + 1) % all.length], 'rest_bob', key)); // a retry: rotated
    }
    expect(new Set(tokens).size).toBe(tokens.length);
    // Enough entries that every replica takes a snapshot past the logins.
    const lastLogin = lead.node.status().commitIndex;
    const alice = tokens[tokens.length - 3];
    const started = await rpc<{ chat_id: string }>(
      all[0],
      'StartChat',
      { username: 'rest_bob' },
      auth(alice),
    );
    const needle = `needle-${randomBytes(6).toString('hex')}`;
    for (let i = 0; i < 30; i++) {
      const sent = await rpc(
        all[0],
        'SendMessage',
        { chat_id: started.response!.chat_id, content: `${needle} ${i}` },
        auth(alice),
      );
      expect(sent.error).toBeUndefined();
    }
    await settled();
    await until('a snapshot past the logins on every replica', () =>
      replicas.every((r) => r.node.status().snapshotIndex > lastLogin),
    );

    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) files.push(p);
      }
    };
    walk(root);
    const contents = files.map((f) => ({ f, bytes: fs.readFileSync(f) }));
    // The scan sees the data: the messages are there (in the SQLite file, the WAL or a snapshot).
    expect(contents.some((c) => c.bytes.includes(needle))).toBe(true);
    expect(files.some((f) => f.endsWith('-wal'))).toBe(true);
    expect(files.some((f) => f.includes('snapshot'))).toBe(true);
    for (const t of tokens) {
      const holders = contents.filter((c) => c.bytes.includes(t)).map((c) => c.f);
      expect(holders, `token ${t.slice(0, 6)}…`).toEqual([]);
    }
  }, 120_000);
});
