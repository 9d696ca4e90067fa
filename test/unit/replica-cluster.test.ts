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
    const out = await rpc(
      stubs(follower.address).chat,
      'ListUsers',
      {},
      metadata({ [FORWARDED_HEADER]: 'somewhere:1', authorization: 'Bearer x' }),
    );
    expect(out.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(hints(out.error?.metadata).leader).toBe(lead.address);
  });

  it('SetTyping reaches the other participant on every replica within 1 s, is throttled, never replayed', async () => {
    const lead = await until('a leader', leader);
    const follower = [...replicas.values()].find((r) => r !== lead)!;
    const chat = stubs(lead.address).chat;
    const tokens: Record<string, string> = {};
    for (const name of ['ty_alice', 'ty_bob', 'ty_carol']) {
      expect(
        (await rpc(chat, 'Signup', { username: name, nickname: name, password: 'password123' })).error,
      ).toBeUndefined();
      const login = await rpc<{ token: string }>(chat, 'Login', { username: name, password: 'password123' });
      tokens[name] = login.response!.token;
    }
    const as = (name: string) => metadata({ authorization: `Bearer ${tokens[name]}` });
    const started = await rpc<{ chat_id: string }>(chat, 'StartChat', { username: 'ty_bob' }, as('ty_alice'));
    const chatId = started.response!.chat_id;

    type Ev = {
      index: number;
      typing?: { chat_id: string; username: string; typing: boolean };
      event?: string;
    };
    const open = (address: string, who: string, afterIndex = 0) => {
      const c = stubs(address).chat as unknown as Record<string, Function>;
      const call = c.Subscribe.bind(c)({ after_index: afterIndex }, as(who)) as grpc.ClientReadableStream<Ev>;
      const got: Ev[] = [];
      let ready = false;
      call.on('metadata', () => {
        ready = true;
      });
      call.on('data', (e: Ev) => got.push(e));
      call.on('error', () => {});
      return { call, got, ready: () => ready };
    };
    const bobs = [...replicas.values()].map((r) => open(r.address, 'ty_bob'));
    const alices = [...replicas.values()].map((r) => open(r.address, 'ty_alice'));
    await until('the streams to open', () => [...bobs, ...alices].every((s) => s.ready()));
    const typingOf = (s: { got: Ev[] }) => s.got.filter((e) => e.typing).map((e) => e.typing!.typing);

    // Alice types, through a follower: every one of bob's streams, whichever replica, hears it.
    const typed = await rpc(
      stubs(follower.address).chat,
      'SetTyping',
      { chat_id: chatId, typing: true },
      as('ty_alice'),
    );
    expect(typed.error).toBeUndefined();
    expect(typed.response).toEqual({});
    const sentAt = Date.now();
    await until('typing on every replica', () => bobs.every((s) => typingOf(s).length === 1), 5000);
    expect(Date.now() - sentAt).toBeLessThan(1000);
    for (const s of bobs) {
      expect(s.got.find((e) => e.typing)!.typing).toEqual({
        chat_id: chatId,
        username: 'ty_alice',
        typing: true,
      });
      expect(s.got.find((e) => e.typing)!.event).toBe('typing');
    }
    // A refresh inside the refresh interval is not passed on; the stop is.
    expect(
      (await rpc(chat, 'SetTyping', { chat_id: chatId, typing: true }, as('ty_alice'))).error,
    ).toBeUndefined();
    expect(
      (await rpc(chat, 'SetTyping', { chat_id: chatId, typing: false }, as('ty_alice'))).error,
    ).toBeUndefined();
    await until('the stop on every replica', () => bobs.every((s) => typingOf(s).length === 2), 5000);
    for (const s of bobs) expect(typingOf(s)).toEqual([true, false]);
    // The typist's own streams hear nothing of it.
    for (const s of alices) expect(typingOf(s)).toEqual([]);

    // An outsider, an unknown chat and a missing token are refused.
    const outsider = await rpc(chat, 'SetTyping', { chat_id: chatId, typing: true }, as('ty_carol'));
    expect(outsider.error?.code).toBe(grpc.status.NOT_FOUND);
    const unknown = await rpc(chat, 'SetTyping', { chat_id: 'c424242', typing: true }, as('ty_alice'));
    expect(unknown.error?.code).toBe(grpc.status.NOT_FOUND);
    const anonymous = await rpc(chat, 'SetTyping', { chat_id: chatId, typing: true });
    expect(anonymous.error?.code).toBe(grpc.status.UNAUTHENTICATED);

    // A resumed stream replays logged events after its index, never typing.
    const resumed = open(follower.address, 'ty_bob', 1);
    const sent = await rpc<{ message_id: number }>(
      chat,
      'SendMessage',
      { chat_id: chatId, content: 'hi' },
      as('ty_alice'),
    );
    await until('the message on the resumed stream', () =>
      resumed.got.some(
        (e) =>
          (e as { message_received?: { message_id: number } }).message_received?.message_id ===
          sent.response!.message_id,
      ),
    );
    expect(resumed.got.some((e) => e.event === 'chat_started')).toBe(true);
    expect(typingOf(resumed)).toEqual([]);
    for (const s of [...bobs, ...alices, resumed]) s.call.cancel();
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
