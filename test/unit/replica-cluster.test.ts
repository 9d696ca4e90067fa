// Three Raft replicas in one process over real gRPC on 127.0.0.1 (temp data dirs): bootstrap, join
// through --peers (learner, then voter), follower forwarding with the same results and the topology hints,
// ClusterService on followers, and a leader that hands over before it stops.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORWARDED_HEADER } from '../../src/server/forwarder.js';
import { joinCluster } from '../../src/server/join.js';
import { type RunningReplica, startReplica } from '../../src/server/replica.js';
import { metadata, rpc, stubs } from './server-fixture.js';

const SECRET = 'replica-cluster-secret';
// Generous election timeouts: the test machine may be busy, and this test is about wiring, not timing.
const timing = { heartbeatMs: 50, electionMinMs: 400, electionMaxMs: 800 };
const cost = { N: 1024, r: 8, p: 1 };

let root: string;
const replicas = new Map<string, RunningReplica>();

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
  });
  replicas.set(id, r);
  return r;
}

async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < end; i++) {
    const v = f();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function leader(): RunningReplica | undefined {
  return [...replicas.values()].find((r) => r.node.status().role === 'leader');
}

function hints(md: grpc.Metadata | undefined): { leader?: string; members?: string } {
  return {
    leader: md?.get('x-leader')[0] as string | undefined,
    members: md?.get('x-members')[0] as string | undefined,
  };
}

beforeAll(async () => {
  root = fs.mkdtempSync(join(os.tmpdir(), 'qc-replicas-'));
  const a = await start('a', []);
  expect(a.mode).toBe('bootstrap');
  await until('a to lead', () => a.node.status().role === 'leader');
  for (const id of ['b', 'c']) {
    const r = await start(id, [a.address]);
    expect(r.mode).toBe('join');
    await joinCluster({ id, address: r.address, peers: [a.address], secret: SECRET, totalMs: 60_000 });
  }
}, 120_000);

afterAll(async () => {
  for (const r of replicas.values()) await r.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('a three-replica cluster in one process', () => {
  it('joiners became voters holding the bootstrap configuration entry', async () => {
    const lead = await until('a leader', leader);
    const voters = lead.node
      .status()
      .config.members.filter((m) => m.voter)
      .map((m) => m.id)
      .sort();
    expect(voters).toEqual(['a', 'b', 'c']);
    for (const id of ['b', 'c']) {
      const r = replicas.get(id)!;
      await until(`${id} to apply the promotion`, () => r.node.status().config.members.every((m) => m.voter));
      expect(r.logStore.entries(1, 1, 1)[0]).toMatchObject({ index: 1, term: 1, kind: 'config' });
      expect(['follower', 'leader']).toContain(r.node.status().role);
    }
  });

  it('a follower forwards ChatService calls to the leader: same results, hints, exactly once per key', async () => {
    const lead = await until('a leader', leader);
    const followers = [...replicas.values()].filter((r) => r !== lead);
    const [f1, f2] = followers.map((r) => stubs(r.address).chat);
    const all = [...replicas.values()].map((r) => r.address).sort();

    const signup = await rpc(f1, 'Signup', {
      username: 'fwd_alice',
      nickname: 'Alice',
      password: 'password123',
    });
    expect(signup.error).toBeUndefined();
    expect(signup.response).toMatchObject({ user: { username: 'fwd_alice', nickname: 'Alice' } });
    expect(hints(signup.headers).leader).toBe(lead.address);
    expect(hints(signup.trailers).members?.split(',').sort()).toEqual(all);
    await rpc(f1, 'Signup', { username: 'fwd_bob', nickname: 'Bob', password: 'password123' });

    // An error answered by the leader keeps its code and carries the hints from the follower too.
    const taken = await rpc(f2, 'Signup', { username: 'FWD_ALICE', nickname: 'x', password: 'password123' });
    expect(taken.error?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(hints(taken.error?.metadata).leader).toBe(lead.address);

    const login = await rpc<{ token: string }>(f2, 'Login', {
      username: 'fwd_alice',
      password: 'password123',
    });
    const token = login.response!.token;
    const auth = { authorization: `Bearer ${token}` };
    const chat = await rpc<{ chat_id: string }>(f1, 'StartChat', { username: 'fwd_bob' }, metadata(auth));
    const chatId = chat.response!.chat_id;

    // The same idempotency key through two different followers: one message.
    const key = { ...auth, 'idempotency-key': 'fwd-key-1' };
    const first = await rpc<{ message_id: number }>(
      f1,
      'SendMessage',
      { chat_id: chatId, content: 'hello' },
      metadata(key),
    );
    const again = await rpc<{ message_id: number }>(
      f2,
      'SendMessage',
      { chat_id: chatId, content: 'hello' },
      metadata(key),
    );
    expect(again.response?.message_id).toBe(first.response?.message_id);
    const read = await rpc<{ messages: unknown[] }>(f2, 'GetMessages', { chat_id: chatId }, metadata(auth));
    expect(read.response?.messages).toHaveLength(1);

    // A read through a follower sees the acknowledged write (ReadIndex on the leader).
    const chats = await rpc<{ chats: { chat_id: string }[] }>(f2, 'ListChats', {}, metadata(auth));
    expect(chats.response?.chats.map((c) => c.chat_id)).toEqual([chatId]);
  });

  it('a call that was forwarded once is never forwarded again', async () => {
    const lead = await until('a leader', leader);
    const follower = [...replicas.values()].find((r) => r !== lead)!;
    // A write (reads are not forwarded at all: a follower serves them through ReadIndex).
    const out = await rpc(
      stubs(follower.address).chat,
      'UpdateSettings',
      { view_limit: 3 },
      metadata({ [FORWARDED_HEADER]: 'somewhere:1', authorization: 'Bearer x' }),
    );
    expect(out.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(hints(out.error?.metadata).leader).toBe(lead.address);
  });

  it('ClusterService: GetStatus is local; changes need the secret and are forwarded to the leader', async () => {
    const lead = await until('a leader', leader);
    const follower = [...replicas.values()].find((r) => r !== lead)!;
    const { cluster } = stubs(follower.address);
    const st = await rpc<Record<string, unknown>>(cluster, 'GetStatus', {});
    expect(st.response).toMatchObject({
      node_id: follower.id,
      address: follower.address,
      role: 'follower',
      leader_id: lead.id,
      leader_address: lead.address,
    });
    expect((st.response!.members as unknown[]).length).toBe(3);

    const noSecret = await rpc(cluster, 'TransferLeadership', { to_id: follower.id });
    expect(noSecret.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    const unknown = await rpc(
      cluster,
      'RemoveMember',
      { id: 'nobody' },
      metadata({ authorization: `Bearer ${SECRET}` }),
    );
    expect(unknown.error?.code).toBe(grpc.status.NOT_FOUND);

    const moved = await rpc<Record<string, unknown>>(
      cluster,
      'TransferLeadership',
      { to_id: follower.id },
      metadata({ authorization: `Bearer ${SECRET}` }),
    );
    expect(moved.error).toBeUndefined();
    await until(`${follower.id} to lead`, () => follower.node.status().role === 'leader');
  });

  it('a leader that stops hands leadership over first', async () => {
    const lead = await until('a leader', leader);
    const term = lead.node.status().term;
    const others = [...replicas.values()].filter((r) => r !== lead);
    const { handedOver } = await lead.stop({ transferMs: 5000 });
    replicas.delete(lead.id);
    expect(handedOver).toBe(true);
    const next = await until('the new leader', () => others.find((r) => r.node.status().role === 'leader'));
    expect(next.node.status().term).toBeGreaterThan(term);
    const w = await rpc(stubs(next.address).chat, 'Signup', {
      username: 'after_stop',
      nickname: 'x',
      password: 'password123',
    });
    expect(w.error).toBeUndefined();
  });

  it('RemoveMember of the leader: it commits the change, steps down, and the rest goes on', async () => {
    const lead = await until('a leader', leader);
    const other = [...replicas.values()].find((r) => r !== lead)!;
    // First the member stopped above: with it still a voter, {stopped, other} could never commit.
    const live = new Set([...replicas.keys()]);
    for (const m of lead.node.status().config.members.filter((x) => !live.has(x.id))) {
      const gone = await rpc(
        stubs(lead.address).cluster,
        'RemoveMember',
        { id: m.id },
        metadata({ authorization: `Bearer ${SECRET}` }),
      );
      expect(gone.error).toBeUndefined();
    }
    // A Subscribe stream open on the leader before it is removed: a removal is what ends it.
    const chatA = stubs(lead.address).chat;
    const creds = { username: 'subscriber', password: 'password123' };
    expect((await rpc(chatA, 'Signup', { ...creds, nickname: 's' })).error).toBeUndefined();
    const login = await rpc<{ token: string }>(chatA, 'Login', creds);
    const token = login.response?.token;
    expect(token).toBeTruthy();
    const subscribe = (chatA as unknown as Record<string, Function>).Subscribe.bind(chatA) as (
      r: unknown,
      m: grpc.Metadata,
    ) => grpc.ClientReadableStream<unknown>;
    const sub = subscribe({}, metadata({ authorization: `Bearer ${token}` }));
    const streamEnd: Promise<grpc.StatusObject> | undefined = new Promise((resolve) => {
      sub.on('status', resolve);
      sub.on('error', () => {});
    });
    const removed = await rpc<Record<string, unknown>>(
      stubs(other.address).cluster,
      'RemoveMember',
      { id: lead.id },
      metadata({ authorization: `Bearer ${SECRET}` }),
    );
    expect(removed.error).toBeUndefined();
    expect((removed.response!.members as { id: string }[]).map((m) => m.id)).toEqual([other.id]);
    await until(`${lead.id} to step down`, () => lead.node.status().role !== 'leader');
    await until(`${other.id} to lead alone`, () => other.node.status().role === 'leader');
    // The removed replica hears from no leader any more: it sends clients to the members at once
    // (no wait for a leader that will never come) and ends the streams it had open.
    expect(streamEnd).toBeDefined();
    const ended = await streamEnd!;
    expect(ended.code).toBe(grpc.status.UNAVAILABLE);
    expect(ended.details).toContain('removed from the cluster');
    const startedAt = Date.now();
    const refused = await rpc(stubs(lead.address).chat, 'Login', { username: 'x', password: 'password123' });
    expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused.error?.details).toContain('not a member of the cluster');
    expect(Date.now() - startedAt).toBeLessThan(timing.electionMinMs);
    expect(hints(refused.trailers).members).toBe(other.address);
    const w = await rpc(stubs(other.address).chat, 'Signup', {
      username: 'after_remove',
      nickname: 'x',
      password: 'password123',
    });
    expect(w.error).toBeUndefined();
  });
});
