// ChatClient against fake replicas: failover, idempotency keys, topology hints, retry policy, deadlines.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient, ChatClientError } from '../../src/client/client.js';
import { type FakeServer, closedAddress, deterministic, fail, ok } from './client-fake-server.js';
import { FakeServer as Fake } from './client-fake-server.js';

const servers: FakeServer[] = [];
const clients: ChatClient[] = [];

async function fake(...args: ConstructorParameters<typeof Fake>): Promise<FakeServer> {
  const s = await Fake.start(...args);
  servers.push(s);
  return s;
}

function client(addresses: string[], opts: ConstructorParameters<typeof ChatClient>[1] = {}): ChatClient {
  const c = new ChatClient(addresses, opts);
  clients.push(c);
  return c;
}

async function rejection(p: Promise<unknown>): Promise<ChatClientError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ChatClientError);
    return err as ChatClientError;
  }
  throw new Error('expected the call to fail');
}

const message = { message_id: 7, chat_id: 'c1', sender: 'alice', content: 'hi', sent_at: 1, read: false };

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.stop();
});

describe('ChatClient failover', () => {
  it('moves on to the next address when the first one is a closed port', async () => {
    const down = await closedAddress();
    const up = await fake(() => ok({ chats: [] }));
    const d = deterministic();
    const failovers: string[] = [];
    const c = client([down, up.address], {
      ...d.opts,
      onFailover: (from, to) => failovers.push(`${from}->${to}`),
    });
    await expect(c.listChats()).resolves.toEqual([]);
    expect(up.callsOf('ListChats')).toHaveLength(1);
    expect(failovers).toEqual([`${down}->${up.address}`]);
    expect(c.address).toBe(up.address);
  });

  it('moves on when a replica answers UNAVAILABLE, reusing the idempotency key; the next operation gets a new key', async () => {
    const a = await fake(() => fail(grpc.status.UNAVAILABLE, 'No leader is reachable.'));
    const b = await fake(() => ok(message));
    const d = deterministic();
    const c = client([a.address, b.address], d.opts);
    c.token = 'tok';
    await expect(c.sendMessage('c1', 'hi')).resolves.toMatchObject({ message_id: 7, content: 'hi' });
    const first = [...a.callsOf('SendMessage'), ...b.callsOf('SendMessage')];
    expect(first).toHaveLength(2);
    expect(first[0].idempotencyKey).toBe('key-1');
    expect(first[1].idempotencyKey).toBe('key-1');
    expect(first.every((x) => x.authorization === 'Bearer tok')).toBe(true);

    await c.sendMessage('c1', 'again');
    const second = b.callsOf('SendMessage').filter((x) => x.request.content === 'again');
    expect(second.map((x) => x.idempotencyKey)).toEqual(['key-2']);
    // One backoff sleep, for the single retry.
    expect(d.slept).toHaveLength(1);
  });

  it('retries a call whose replica dies while it is in flight, with the same key', async () => {
    const a = await fake(() => ({ hang: true }));
    const b = await fake(() => ok({ view_limit: 9 }));
    const d = deterministic();
    const c = client([a.address, b.address], d.opts);
    c.token = 'tok';
    const pending = c.updateSettings(9);
    // Kill `a` only once it holds the call, so the failure is a lost connection, not a refused one.
    for (let i = 0; i < 500 && a.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(a.calls).toHaveLength(1);
    a.stop();
    await expect(pending).resolves.toEqual({ view_limit: 9 });
    expect(b.callsOf('UpdateSettings').map((x) => x.idempotencyKey)).toEqual([a.calls[0].idempotencyKey]);
  });

  it('does not retry INVALID_ARGUMENT and surfaces the server sentence', async () => {
    const a = await fake(() =>
      fail(grpc.status.INVALID_ARGUMENT, 'The username must be 3 to 32 characters.'),
    );
    const b = await fake(() => ok({ user: { username: 'al', nickname: 'Al', view_limit: 6 } }));
    const c = client([a.address, b.address], deterministic().opts);
    const e = await rejection(c.signup('al', 'Al', 'password1'));
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.codeName).toBe('INVALID_ARGUMENT');
    expect(e.message).toBe('The username must be 3 to 32 characters.');
    expect(a.calls).toHaveLength(1);
    expect(b.calls).toHaveLength(0);
  });

  it.each([
    [grpc.status.NOT_FOUND, 'No such user.'],
    [grpc.status.UNAUTHENTICATED, 'The token is not valid.'],
    [grpc.status.PERMISSION_DENIED, 'That message is not yours.'],
    [grpc.status.ALREADY_EXISTS, 'The username is taken.'],
  ])('does not retry code %i', async (code, details) => {
    const a = await fake(() => fail(code, details));
    const b = await fake(() => ok({}));
    const c = client([a.address, b.address], deterministic().opts);
    c.token = 'tok';
    const e = await rejection(c.startChat('bob'));
    expect([e.code, e.message]).toEqual([code, details]);
    expect(b.calls).toHaveLength(0);
  });
});

describe('ChatClient transport errors', () => {
  it('says which replica could not be reached, in one sentence, once the deadline is spent', async () => {
    const down = await closedAddress();
    const c = client([down], { ...deterministic().opts, deadlineMs: 300, maxAttempts: 3 });
    const e = await rejection(c.listChats());
    expect(e.codeName).toBe('UNAVAILABLE');
    expect(e.message).toBe(`Could not reach ${down} (connection refused).`);
  });
});

describe('ChatClient topology hints', () => {
  it('prefers the leader named by x-leader and adopts x-members', async () => {
    const b = await fake(() => ok({ view_limit: 6 }));
    const a = await fake(() => ({
      response: { view_limit: 6 },
      leader: b.address,
      members: [a.address, b.address],
    }));
    const c = client([a.address], deterministic().opts);
    c.token = 'tok';
    await c.getSettings();
    expect(c.members.addresses).toEqual([a.address, b.address]);
    expect(c.members.leader).toBe(b.address);
    await c.getSettings();
    expect(a.calls).toHaveLength(1);
    expect(b.calls).toHaveLength(1);
  });

  it('reads hints from the trailers of an error too', async () => {
    const b = await fake(() => ok({ chats: [] }));
    const a = await fake(() => ({
      error: { code: grpc.status.NOT_FOUND, details: 'No such chat.' },
      leader: b.address,
      members: [b.address, a.address],
      hintsIn: 'trailers',
    }));
    const c = client([a.address], deterministic().opts);
    c.token = 'tok';
    expect((await rejection(c.sendMessage('nope', 'x'))).code).toBe(grpc.status.NOT_FOUND);
    expect(c.members.addresses).toEqual([b.address, a.address]);
    await c.listChats();
    expect(b.callsOf('ListChats')).toHaveLength(1);
  });

  it('falls back to the other members when the leader it was told about dies', async () => {
    const dead = await closedAddress();
    const a = await fake(() => ({ response: { chats: [] }, leader: dead, members: [dead, a.address] }));
    const c = client([a.address], deterministic().opts);
    c.token = 'tok';
    await c.listChats();
    expect(c.members.leader).toBe(dead);
    await expect(c.listChats()).resolves.toEqual([]);
    expect(a.callsOf('ListChats')).toHaveLength(2);
  });

  it('forgets the leader when a complete set of hints names none', async () => {
    const b = await fake(() => ok({ chats: [] }));
    const a = await fake(() => ({
      response: { chats: [] },
      leader: b.address,
      members: [a.address, b.address],
    }));
    const c = client([a.address], deterministic().opts);
    c.token = 'tok';
    await c.listChats();
    expect(c.members.leader).toBe(b.address);
    b.unary = () => ({ response: { chats: [] }, members: [a.address, b.address] });
    await c.listChats();
    expect(c.members.leader).toBeUndefined();
  });
});

describe('ChatClient deadlines and tokens', () => {
  it('gives up with the last error once the operation deadline is spent (fake clock)', async () => {
    const a = await fake(() => fail(grpc.status.UNAVAILABLE, 'No leader is reachable.'));
    const b = await fake(() => fail(grpc.status.UNAVAILABLE, 'No leader is reachable.'));
    let t = 0;
    const slept: number[] = [];
    const c = client([a.address, b.address], {
      deadlineMs: 1000,
      random: () => 1,
      now: () => t,
      sleep: async (ms) => {
        slept.push(ms);
        t += ms;
      },
      newIdempotencyKey: () => 'k',
    });
    c.token = 'tok';
    const e = await rejection(c.deleteMessages('c1', [1, 2]));
    expect(e.code).toBe(grpc.status.UNAVAILABLE);
    expect(e.message).toBe('No leader is reachable.');
    // Backoff grows 25, 50, 100, ... and the last sleep is cut to what is left of the 1000 ms.
    expect(slept.slice(0, 4)).toEqual([25, 50, 100, 200]);
    expect(slept.reduce((x, y) => x + y, 0)).toBe(1000);
    const all = [...a.calls, ...b.calls];
    expect(all.length).toBe(slept.length);
    expect(new Set(all.map((x) => x.idempotencyKey))).toEqual(new Set(['k']));
    // Attempts alternate between the two members.
    expect(a.calls.length - b.calls.length).toBeLessThanOrEqual(1);
  });

  it('abandons a hung replica after the attempt timeout and succeeds on another', async () => {
    const a = await fake(() => ({ hang: true }));
    const b = await fake(() => ok({ chats: [] }));
    const c = client([a.address, b.address], {
      ...deterministic().opts,
      attemptTimeoutMs: 200,
      deadlineMs: 5000,
    });
    c.token = 'tok';
    await expect(c.listChats()).resolves.toEqual([]);
    expect(a.calls).toHaveLength(1);
  });

  it('ends with DEADLINE_EXCEEDED when every replica hangs', async () => {
    const a = await fake(() => ({ hang: true }));
    const c = client([a.address], {
      ...deterministic().opts,
      attemptTimeoutMs: 100,
      deadlineMs: 300,
      maxAttempts: 3,
    });
    c.token = 'tok';
    const e = await rejection(c.listChats());
    expect(e.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(a.calls.length).toBeGreaterThanOrEqual(1);
    expect(a.calls.length).toBeLessThanOrEqual(3);
  });

  it('sends no token on signup and login, keeps the login token, and drops it on logout', async () => {
    const a = await fake((method) => {
      if (method === 'Login')
        return ok({ token: 'T1', user: { username: 'alice', nickname: 'A', view_limit: 6 } });
      if (method === 'Signup') return ok({ user: { username: 'alice', nickname: 'A', view_limit: 6 } });
      return ok({});
    });
    const c = client([a.address], deterministic().opts);
    await c.signup('alice', 'A', 'password1');
    const r = await c.login('alice', 'password1');
    expect(r.token).toBe('T1');
    expect(c.token).toBe('T1');
    await c.logout();
    expect(c.token).toBeUndefined();
    expect(a.calls.map((x) => [x.method, x.authorization, x.idempotencyKey])).toEqual([
      ['Signup', undefined, 'key-1'],
      ['Login', undefined, 'key-2'],
      ['Logout', 'Bearer T1', 'key-3'],
    ]);
  });

  it('sends idempotency keys on writes (ReadMessages, MarkRead, EditMessage included) and none on pure reads (GetMessages, SetTyping)', async () => {
    const a = await fake(() => ok({}));
    const c = client([a.address], deterministic().opts);
    c.token = 'tok';
    await c.listUsers({ pattern: 'a*', page: 2 });
    await c.getSettings();
    await c.listChats();
    await c.getMessages('c1', { beforeId: 9, limit: 20 });
    await c.setTyping('c1', true);
    await c.readMessages('c1');
    await c.markRead('c1', 8);
    await c.editMessage('c1', 7, 'fixed');
    await c.startChat('bob');
    expect(a.calls.map((x) => [x.method, x.idempotencyKey])).toEqual([
      ['ListUsers', undefined],
      ['GetSettings', undefined],
      ['ListChats', undefined],
      ['GetMessages', undefined],
      ['SetTyping', undefined],
      ['ReadMessages', 'key-1'],
      ['MarkRead', 'key-2'],
      ['EditMessage', 'key-3'],
      ['StartChat', 'key-4'],
    ]);
    expect(a.calls[3].request).toMatchObject({ chat_id: 'c1', before_id: 9, limit: 20 });
    expect(a.calls[6].request).toMatchObject({ chat_id: 'c1', up_to_id: 8 });
    expect(a.calls[0].request).toMatchObject({ pattern: 'a*', page: 2, page_size: 0 });
  });

  it('uses a caller-supplied idempotency key', async () => {
    const a = await fake(() => ok(message));
    const c = client([a.address], deterministic().opts);
    c.token = 'tok';
    await c.sendMessage('c1', 'hi', { idempotencyKey: 'browser-42' });
    expect(a.calls[0].idempotencyKey).toBe('browser-42');
  });
});
