// Random and malformed requests against a real in-process gRPC server on 127.0.0.1:0. Properties: every
// call ends with a status from API.md's table (never INTERNAL/UNKNOWN, never a hang), the server keeps
// serving, and the state stays consistent (integrity, referential invariants, and replaying the applied
// log into a fresh store gives the same digest).
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Entry } from '../../machines/protocol.js';
import { ChatStore } from '../../src/chat/store.js';
import { services } from '../../src/proto.js';
import { partialCall, rawClient, rawClientStream, rawUnary } from './raw-grpc.js';
import { type RunningNode, SECRET, metadata, rpc, startTestNode, stubs } from './server-fixture.js';

const ALLOWED = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.ALREADY_EXISTS,
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.NOT_FOUND,
  grpc.status.RESOURCE_EXHAUSTED,
]);

const METHODS = [
  'Signup',
  'Login',
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
];

let node: RunningNode;
let chat: grpc.Client;
let cluster: grpc.Client;
let aliceToken: string;
let chatId: string;
const applied: Entry[] = [];

beforeAll(async () => {
  node = await startTestNode();
  // The bootstrap entries (configuration, the leader's noop) were applied before the hook below.
  applied.push(...node.logStore.entries(1, node.store.appliedIndex(), 100));
  const apply = node.store.apply.bind(node.store);
  node.store.apply = (batch: Entry[]) => {
    applied.push(...batch);
    return apply(batch);
  };
  ({ chat, cluster } = stubs(node.address));
  for (const username of ['alice', 'bob']) {
    await rpc(chat, 'Signup', { username, nickname: username, password: 'password123' });
  }
  aliceToken = (await rpc<{ token: string }>(chat, 'Login', { username: 'alice', password: 'password123' }))
    .response!.token;
  const c = await rpc<{ chat_id: string }>(
    chat,
    'StartChat',
    { username: 'bob' },
    metadata({ authorization: `Bearer ${aliceToken}` }),
  );
  chatId = c.response!.chat_id;
  await rpc(
    chat,
    'SendMessage',
    { chat_id: chatId, content: 'seed' },
    metadata({ authorization: `Bearer ${aliceToken}` }),
  );
});

afterAll(async () => {
  chat?.close();
  cluster?.close();
  await node?.stop();
});

const edgeStrings = fc.constantFrom(
  '',
  ' ',
  '\t\n',
  '\u0000',
  '\uD800',
  '\u200B',
  'a\u0301',
  '%',
  '_',
  '*',
  '?',
  '**?*',
  'alice',
  'ALICE',
  'bob',
  '😀'.repeat(4097),
  'x'.repeat(4096),
  'y'.repeat(70_000),
  'c1',
);
const text = fc.oneof(
  fc.string(),
  fc.fullUnicodeString({ maxLength: 80 }),
  edgeStrings,
  fc.string({ minLength: 4000, maxLength: 4200 }),
);
const int32 = fc.oneof(
  fc.integer({ min: -2_147_483_648, max: 2_147_483_647 }),
  fc.constantFrom(0, -1, 1, 100, 101, 1000, 1001),
);
const uint64 = fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.constantFrom(0, 1, 2, 3));

const request = fc.record(
  {
    username: text,
    nickname: text,
    password: fc.oneof(text, fc.constant('password123')),
    pattern: text,
    page: int32,
    page_size: int32,
    view_limit: int32,
    chat_id: fc.oneof(text, fc.constant('CHAT')),
    content: text,
    message_ids: fc.array(uint64, { maxLength: 20 }),
    message_id: uint64,
    before_id: uint64,
    up_to_id: uint64,
    limit: int32,
    typing: fc.boolean(),
  },
  { requiredKeys: [] },
);

const auth = fc.oneof(
  fc.constant<string | undefined>(undefined),
  fc.constant('VALID'),
  fc.constant('Bearer'),
  fc.constant('Bearer garbage-token'),
  fc.string({ maxLength: 40 }).map((s) => `Bearer ${s.replace(/[^\x21-\x7e]/g, 'x')}`),
);
const key = fc.oneof(
  fc.constant<string | undefined>(undefined),
  fc.constantFrom('k1', 'k2', 'k'.repeat(64), 'k'.repeat(65)),
  fc.string({ maxLength: 70 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'x')),
);

/** A session for Logout to revoke: a throwaway account, so the fuzzer cannot have taken the name. */
let throwaway = 0;
async function freshToken(): Promise<string> {
  const username = `logout_${++throwaway}`;
  await rpc(chat, 'Signup', { username, nickname: 'L', password: 'password123' });
  return (await rpc<{ token: string }>(chat, 'Login', { username, password: 'password123' })).response!.token;
}

function checkInvariants(store: ChatStore): void {
  const db = store.db;
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  const count = (sql: string) => db.prepare(sql).pluck().get() as number;
  expect(
    count('SELECT COUNT(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM chats c WHERE c.id = m.chat_id)'),
  ).toBe(0);
  expect(
    count(
      'SELECT COUNT(*) FROM chats c WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_a) OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_b)',
    ),
  ).toBe(0);
  expect(
    count('SELECT COUNT(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id)'),
  ).toBe(0);
  expect(
    count('SELECT COUNT(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM settings s WHERE s.user_id = u.id)'),
  ).toBe(0);
  expect(count('SELECT COUNT(*) FROM settings WHERE view_limit < 1 OR view_limit > 1000')).toBe(0);
  expect(count("SELECT COUNT(*) FROM messages WHERE length(content) = 0 OR trim(content) = ''")).toBe(0);
}

describe('fuzz: the gRPC server under random requests', () => {
  it('structured requests with edge values always get an allowed status', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...METHODS),
        request,
        auth,
        key,
        async (method, req, authValue, idemKey) => {
          const body: Record<string, unknown> = { ...req };
          if (body.chat_id === 'CHAT') body.chat_id = chatId;
          const md = new grpc.Metadata();
          if (authValue === 'VALID') {
            md.set('authorization', `Bearer ${method === 'Logout' ? await freshToken() : aliceToken}`);
          } else if (authValue !== undefined) {
            md.set('authorization', authValue);
          }
          if (idemKey !== undefined) md.set('idempotency-key', idemKey);
          const out = await rpc(chat, method, body, md);
          const code = out.error ? out.error.code : grpc.status.OK;
          expect(ALLOWED.has(code), `${method} gave ${grpc.status[code]}: ${out.error?.details}`).toBe(true);
          if (out.error) {
            expect(out.error.details.length).toBeGreaterThan(0);
            expect(out.error.details).not.toContain('\n');
            expect(out.error.metadata.get('x-members')[0]).toBe(node.address);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('random bytes as any request always get an allowed status', async () => {
    const raw = new grpc.Client(node.address, grpc.credentials.createInsecure());
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...METHODS),
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }),
            // Oversized bodies: generating 70k random elements per run is slow, a filled buffer is not.
            fc
              .tuple(fc.integer({ min: 65_000, max: 70_000 }), fc.integer({ min: 0, max: 255 }))
              .map(([n, b]) => new Uint8Array(n).fill(b)),
          ),
          async (method, bytes) => {
            const md = metadata({
              authorization: `Bearer ${method === 'Logout' ? 'someone-else' : aliceToken}`,
            });
            const err = await new Promise<grpc.ServiceError | null>((resolve) => {
              raw.makeUnaryRequest(
                `/quorumchat.v1.ChatService/${method}`,
                (b: Buffer) => b,
                (b: Buffer) => b,
                Buffer.from(bytes),
                md,
                { deadline: Date.now() + 10_000 },
                (e) => resolve(e),
              );
            });
            const code = err ? err.code : grpc.status.OK;
            expect(ALLOWED.has(code), `${method} gave ${grpc.status[code]}: ${err?.details}`).toBe(true);
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      raw.close();
    }
  });

  it('afterwards the server still serves and the state is consistent and reproducible', async () => {
    const status = await rpc<{ state_digest: string; last_applied: number }>(cluster, 'GetStatus', {});
    expect(status.error).toBeUndefined();
    expect(status.response!.last_applied).toBe(node.store.appliedIndex());
    checkInvariants(node.store);
    const replica = new ChatStore(':memory:', { durable: false });
    replica.apply(applied);
    expect(replica.appliedIndex()).toBe(node.store.appliedIndex());
    expect(replica.stateDigest()).toBe(status.response!.state_digest);
    checkInvariants(replica);
    replica.close();
    // Alice may be gone (the fuzzer can guess her password from its pool): use a new account.
    await rpc(chat, 'Signup', { username: 'after_fuzz', nickname: 'A', password: 'password123' });
    const login = await rpc<{ token: string }>(chat, 'Login', {
      username: 'after_fuzz',
      password: 'password123',
    });
    const ok = await rpc(
      chat,
      'GetSettings',
      {},
      metadata({ authorization: `Bearer ${login.response!.token}` }),
    );
    expect(ok.response).toEqual({ view_limit: 6 });
  });
});

// Issue 13, findings 1 and 9: ClusterService and RaftService check the cluster secret from metadata
// before they decode, and answer malformed bytes with INVALID_ARGUMENT, never INTERNAL.
describe('fuzz: ClusterService and RaftService bytes', () => {
  const CLUSTER = ['GetStatus', 'AddMember', 'RemoveMember', 'TransferLeadership'];
  const GUARDED = CLUSTER.filter((m) => m !== 'GetStatus');
  /** Bytes no protobuf decoder accepts: a cut varint, wire type 7, a length past the end. */
  const MALFORMED = [[0xff], [0x07], [0x0a, 0x00, 0x0a]].map((b) => Buffer.from(b));
  const secret = () => metadata({ authorization: `Bearer ${SECRET}` });
  let raw: grpc.Client;
  beforeAll(async () => {
    raw = await rawClient(node.address);
  });
  afterAll(() => raw?.close());

  it('malformed ClusterService bytes give INVALID_ARGUMENT, or UNAUTHENTICATED without a needed secret', async () => {
    for (const bad of MALFORMED) {
      for (const method of CLUSTER) {
        const decode = services().ClusterService.service[method].requestDeserialize;
        expect(() => decode(bad), `${method} must not decode ${bad.toString('hex')}`).toThrow();
        const path = `/quorumchat.v1.ClusterService/${method}`;
        const authed = await rawUnary(raw, path, bad, secret());
        expect(authed.code, `${method} ${bad.toString('hex')}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect(authed.details).toBe(`The request is not a valid ${method} message.`);
        expect(authed.metadata.get('x-members')[0]).toBe(node.address);
        const anonymous = await rawUnary(raw, path, bad);
        const want = method === 'GetStatus' ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAUTHENTICATED;
        expect(anonymous.code, `${method} ${bad.toString('hex')} without the secret`).toBe(want);
        expect(anonymous.metadata.get('x-members')[0]).toBe(node.address);
      }
    }
  });

  it('GetStatus decodes at most 64 KiB; guarded ClusterService calls are refused before their body is read', async () => {
    const big = await rawUnary(raw, '/quorumchat.v1.ClusterService/GetStatus', Buffer.alloc(65 * 1024));
    expect(big.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Past twice the limit, calls open to anyone are refused while being read (the decoder's own
    // refusal, not the handler's): an anonymous caller cannot make the server buffer 16 MiB.
    for (const path of [
      '/quorumchat.v1.ClusterService/GetStatus',
      '/quorumchat.v1.ChatService/SendMessage',
    ]) {
      const huge = await rawUnary(raw, path, Buffer.alloc(2 << 20));
      expect(huge.code, path).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(huge.details, path).toMatch(/larger than max \(\d+ vs 131072\)/);
    }
    for (const method of GUARDED) {
      const refused = await partialCall(node.address, `/quorumchat.v1.ClusterService/${method}`, {
        claimBytes: 1 << 20,
        sendBytes: 100,
      });
      expect(refused?.status, method).toBe(grpc.status.UNAUTHENTICATED);
      expect(refused?.message).toBe(
        `${method} needs the cluster secret as 'authorization: Bearer <secret>', and none was given.`,
      );
      expect(refused?.headers['x-members']).toBe(node.address);
    }
  });

  it('malformed RaftService bytes give INVALID_ARGUMENT with the secret and UNAUTHENTICATED without', async () => {
    const applied = node.store.appliedIndex();
    const term = node.node.status().term;
    for (const bad of MALFORMED) {
      expect(() => services().RaftService.service.Send.requestDeserialize(bad)).toThrow();
      const send = '/quorumchat.v1.RaftService/Send';
      const stream = '/quorumchat.v1.RaftService/Stream';
      expect((await rawUnary(raw, send, bad, secret())).code).toBe(grpc.status.INVALID_ARGUMENT);
      expect((await rawClientStream(raw, stream, [bad], secret())).code).toBe(grpc.status.INVALID_ARGUMENT);
      expect((await rawUnary(raw, send, bad)).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await rawClientStream(raw, stream, [bad])).code).toBe(grpc.status.UNAUTHENTICATED);
    }
    expect(node.store.appliedIndex()).toBe(applied);
    expect(node.node.status().term).toBe(term);
  });

  it('random bytes without the secret never get INTERNAL from ClusterService or RaftService', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          ...CLUSTER.map((m) => `/quorumchat.v1.ClusterService/${m}`),
          '/quorumchat.v1.RaftService/Send',
          '/quorumchat.v1.RaftService/Stream',
        ),
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom<string | undefined>(undefined, 'Bearer wrong', `Bearer ${SECRET}x`, SECRET),
        async (path, bytes, auth) => {
          const md = auth === undefined ? new grpc.Metadata() : metadata({ authorization: auth });
          const out = path.endsWith('/Stream')
            ? await rawClientStream(raw, path, [Buffer.from(bytes)], md)
            : await rawUnary(raw, path, Buffer.from(bytes), md);
          const open = path.endsWith('/GetStatus');
          const allowed = open
            ? [grpc.status.OK, grpc.status.INVALID_ARGUMENT]
            : [grpc.status.UNAUTHENTICATED];
          expect(allowed, `${path} gave ${grpc.status[out.code]}: ${out.details}`).toContain(out.code);
        },
      ),
      { numRuns: 200 },
    );
  });
});
