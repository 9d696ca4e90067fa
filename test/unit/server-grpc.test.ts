// A one-member Raft replica in process: metadata on every response, auth and idempotency-key
// parsing, the request size limit, malformed bytes, Subscribe streams, ClusterService, health, reflection.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, SECRET, metadata, rpc, startTestNode, stubs, waitFor } from './server-fixture.js';

let node: RunningNode;
let chat: grpc.Client;
let cluster: grpc.Client;
let aliceToken: string;

beforeAll(async () => {
  node = await startTestNode();
  ({ chat, cluster } = stubs(node.address));
  for (const username of ['alice', 'bob']) {
    const r = await rpc(chat, 'Signup', { username, nickname: username, password: 'password123' });
    expect(r.error).toBeUndefined();
  }
  const login = await rpc<{ token: string }>(chat, 'Login', { username: 'alice', password: 'password123' });
  aliceToken = login.response!.token;
});

afterAll(async () => {
  chat?.close();
  cluster?.close();
  await node?.stop();
});

const auth = (token = aliceToken, extra: Record<string, string> = {}) =>
  metadata({ authorization: `Bearer ${token}`, ...extra });

function hints(md: grpc.Metadata | undefined) {
  return { leader: md?.get('x-leader')[0], members: md?.get('x-members')[0] };
}

describe('ChatService over gRPC', () => {
  it('carries x-leader and x-members in headers and trailers, on success and on error', async () => {
    const ok = await rpc(chat, 'GetSettings', {}, auth());
    expect(ok.response).toEqual({ view_limit: 6 });
    const expected = { leader: node.address, members: node.address };
    expect(hints(ok.headers)).toEqual(expected);
    expect(hints(ok.trailers)).toEqual(expected);
    const bad = await rpc(chat, 'GetSettings', {});
    expect(bad.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(hints(bad.error?.metadata)).toEqual(expected);
    expect(hints(bad.headers)).toEqual(expected);
  });

  it('parses authorization: Bearer, rejecting missing, malformed and revoked tokens', async () => {
    for (const md of [
      metadata(),
      metadata({ authorization: aliceToken }),
      auth('nope'),
      metadata({ authorization: 'Basic abc' }),
    ]) {
      const r = await rpc(chat, 'ListChats', {}, md);
      expect(r.error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(r.error?.details).toMatch(/\.$/);
    }
    const login = await rpc<{ token: string }>(chat, 'Login', { username: 'bob', password: 'password123' });
    const t = login.response!.token;
    expect((await rpc(chat, 'Logout', {}, auth(t))).response).toEqual({});
    expect((await rpc(chat, 'ListChats', {}, auth(t))).error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(
      (await rpc(chat, 'ListChats', {}, metadata({ authorization: `bearer ${aliceToken}` }))).response,
    ).toEqual({
      chats: [],
    });
  });

  it('idempotency-key: up to 64 characters, replayed; longer is INVALID_ARGUMENT', async () => {
    const tooLong = await rpc(
      chat,
      'UpdateSettings',
      { view_limit: 5 },
      auth(aliceToken, { 'idempotency-key': 'k'.repeat(65) }),
    );
    expect(tooLong.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const key = { 'idempotency-key': 'x'.repeat(64) };
    const start1 = await rpc<{ chat_id: string }>(
      chat,
      'StartChat',
      { username: 'bob' },
      auth(aliceToken, key),
    );
    const m1 = await rpc(
      chat,
      'SendMessage',
      { chat_id: start1.response!.chat_id, content: 'once' },
      auth(aliceToken, { 'idempotency-key': 'm1' }),
    );
    const m2 = await rpc(
      chat,
      'SendMessage',
      { chat_id: start1.response!.chat_id, content: 'once' },
      auth(aliceToken, { 'idempotency-key': 'm1' }),
    );
    expect(m2.response).toEqual(m1.response);
  });

  it('rejects requests over 64 KiB with RESOURCE_EXHAUSTED (and hints); accepts just under', async () => {
    const big = await rpc(chat, 'Signup', {
      username: 'big',
      nickname: 'x'.repeat(70_000),
      password: 'password123',
    });
    expect(big.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(hints(big.error?.metadata).leader).toBe(node.address);
    const under = await rpc(chat, 'Signup', {
      username: 'big',
      nickname: 'x'.repeat(60_000),
      password: 'password123',
    });
    expect(under.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(under.error?.details).toMatch(/nickname/);
  });

  it('answers malformed protobuf bytes with INVALID_ARGUMENT', async () => {
    const raw = new grpc.Client(node.address, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      raw.makeUnaryRequest(
        '/quorumchat.v1.ChatService/Login',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0xff]),
        (e) => resolve(e),
      );
    });
    raw.close();
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});

describe('Subscribe over gRPC', () => {
  it('streams the caller’s events, resumes after an index, ends with UNAUTHENTICATED on logout', async () => {
    const bobLogin = await rpc<{ token: string }>(chat, 'Login', {
      username: 'bob',
      password: 'password123',
    });
    const bob = bobLogin.response!.token;
    const events: Record<string, unknown>[] = [];
    let ended: grpc.ServiceError | undefined;
    const stream = (
      chat as unknown as {
        Subscribe(r: unknown, md: grpc.Metadata): grpc.ClientReadableStream<Record<string, unknown>>;
      }
    ).Subscribe({ after_index: 0 }, auth(bob));
    let headers: grpc.Metadata | undefined;
    stream.on('metadata', (md) => {
      headers = md;
    });
    stream.on('data', (e) => events.push(e));
    stream.on('error', (e: grpc.ServiceError) => {
      ended = e;
    });
    await waitFor(() => headers !== undefined, 'stream headers');
    expect(hints(headers).leader).toBe(node.address);

    const c = await rpc<{ chat_id: string }>(chat, 'StartChat', { username: 'bob' }, auth());
    const m = await rpc<{ message_id: number }>(
      chat,
      'SendMessage',
      { chat_id: c.response!.chat_id, content: 'live' },
      auth(),
    );
    await waitFor(() => events.length >= 1, 'message event');
    expect(events[0]).toMatchObject({
      event: 'message_received',
      message_received: { content: 'live', sender: 'alice' },
    });
    expect(events[0].message_received).toMatchObject({ message_id: m.response!.message_id });

    // Resume from before that event: it is replayed.
    const replayed: Record<string, unknown>[] = [];
    const resumed = (
      chat as unknown as {
        Subscribe(r: unknown, md: grpc.Metadata): grpc.ClientReadableStream<Record<string, unknown>>;
      }
    ).Subscribe({ after_index: (events[0].index as number) - 1 }, auth(bob));
    resumed.on('data', (e) => replayed.push(e));
    resumed.on('error', () => {});
    await waitFor(() => replayed.length >= 1, 'replayed event');
    expect(replayed[0]).toEqual(events[0]);
    resumed.cancel();

    await rpc(chat, 'Logout', {}, auth(bob));
    await waitFor(() => ended !== undefined, 'stream end');
    expect(ended?.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('rejects a stream without a valid token', async () => {
    const stream = (
      chat as unknown as { Subscribe(r: unknown, md: grpc.Metadata): grpc.ClientReadableStream<unknown> }
    ).Subscribe({}, metadata());
    let err: grpc.ServiceError | undefined;
    stream.on('data', () => {});
    stream.on('error', (e: grpc.ServiceError) => {
      err = e;
    });
    await waitFor(() => err !== undefined, 'stream error');
    expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
  });
});

describe('ClusterService, health, reflection', () => {
  it('GetStatus: one leader member, indices and the state digest', async () => {
    const r = await rpc<Record<string, unknown>>(cluster, 'GetStatus', {});
    expect(r.response).toMatchObject({
      node_id: 'n1',
      address: node.address,
      role: 'leader',
      leader_id: 'n1',
      leader_address: node.address,
      members: [{ id: 'n1', address: node.address, voter: true }],
      state_digest: node.store.stateDigest(),
      last_applied: node.store.appliedIndex(),
      commit_index: node.store.appliedIndex(),
    });
    expect(hints(r.headers).members).toBe(node.address);
  });

  it('membership changes need the secret; removing an unknown member is NOT_FOUND', async () => {
    const noSecret = await rpc(cluster, 'AddMember', { id: 'n2', address: '127.0.0.1:1' });
    expect(noSecret.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    const wrong = await rpc(cluster, 'TransferLeadership', {}, metadata({ authorization: 'Bearer wrong' }));
    expect(wrong.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    // A missing secret and a wrong one read differently.
    expect(noSecret.error?.details).toBe(
      "AddMember needs the cluster secret as 'authorization: Bearer <secret>', and none was given.",
    );
    expect(wrong.error?.details).toBe(
      "The cluster secret given to TransferLeadership is wrong: it is not this cluster's (compare cluster.secret on a member).",
    );
    const withSecret = await rpc(
      cluster,
      'RemoveMember',
      { id: 'n2' },
      metadata({ authorization: `Bearer ${SECRET}` }),
    );
    expect(withSecret.error?.code).toBe(grpc.status.NOT_FOUND);
    expect(hints(withSecret.error?.metadata).leader).toBe(node.address);
  });

  it('serves grpc.health.v1.Health and server reflection', async () => {
    const health = new grpc.Client(node.address, grpc.credentials.createInsecure());
    // HealthCheckResponse{status: SERVING(1)} is the two bytes 08 01.
    const res = await new Promise<Buffer>((resolve, reject) => {
      health.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (e, r) => (e ? reject(e) : resolve(r as Buffer)),
      );
    });
    expect([...res]).toEqual([0x08, 0x01]);
    // ServerReflectionInfo with list_services: "*" (field 7).
    const list = await new Promise<string>((resolve, reject) => {
      const s = health.makeBidiStreamRequest(
        '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      s.on('data', (b: Buffer) => {
        resolve(b.toString('latin1'));
        s.end();
      });
      s.on('error', reject);
      s.write(Buffer.from([0x3a, 0x01, 0x2a]));
    });
    health.close();
    expect(list).toContain('quorumchat.v1.ChatService');
    expect(list).toContain('quorumchat.v1.ClusterService');
  });
});
