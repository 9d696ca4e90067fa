// The HTTP gateway against a fake ChatApi: every endpoint, metadata pass-through, error mapping, input
// checks, SSE framing and resume, extra routes, and start-up errors.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChatClientError } from '../../src/client/errors.js';
import { UserError } from '../../src/user-error.js';
import { rpcs } from '../../src/web/gateway.js';
import { type HttpServer, defaultHttpUrlFor, startHttpServer } from '../../src/web/http-server.js';
import { FakeChatApi, event } from './web-fake-api.js';
import { SseReader } from './web-sse-reader.js';

const logger = pino({ level: 'silent' });

let fake: FakeChatApi;
let http: HttpServer;

async function start(extra: Partial<Parameters<typeof startHttpServer>[0]> = {}): Promise<HttpServer> {
  return startHttpServer({ host: '127.0.0.1', port: 0, gateway: fake.asApi(), logger, ...extra });
}

beforeEach(async () => {
  fake = new FakeChatApi();
  http = await start();
});
afterEach(async () => {
  await http.close();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(http.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

const auth = { authorization: 'Bearer tok-1' };

describe('JSON endpoints', () => {
  // One row per ChatService RPC: the body sent, what the client library must receive, and the reply.
  const cases: [string, string, unknown, unknown, unknown, boolean][] = [
    [
      'Signup',
      'signup',
      { username: 'alice', nickname: 'Al', password: 'pw-123456' },
      { username: 'alice', nickname: 'Al', password: 'pw-123456' },
      { user: { username: 'alice', nickname: 'Al', view_limit: 6 } },
      false,
    ],
    [
      'Login',
      'login',
      { username: 'alice', password: 'pw-123456' },
      { username: 'alice', password: 'pw-123456' },
      { token: 't', user: { username: 'alice', nickname: 'Al', view_limit: 6 } },
      false,
    ],
    ['Logout', 'logout', {}, {}, {}, true],
    ['DeleteAccount', 'deleteAccount', { password: 'pw-123456' }, { password: 'pw-123456' }, {}, true],
    [
      'ListUsers',
      'listUsers',
      { pattern: 'b*' },
      { pattern: 'b*', page: 0, page_size: 0 },
      { users: [], page: 1, total_pages: 0, total_count: 0 },
      true,
    ],
    ['GetSettings', 'getSettings', {}, {}, { view_limit: 6 }, true],
    ['UpdateSettings', 'updateSettings', { view_limit: 3 }, { view_limit: 3 }, { view_limit: 3 }, true],
    [
      'StartChat',
      'startChat',
      { username: 'bob' },
      { username: 'bob' },
      { chat_id: 'c1', other_user: 'bob', other_nickname: 'B', unread_count: 0, last_message_at: 0 },
      true,
    ],
    ['ListChats', 'listChats', {}, {}, { chats: [] }, true],
    [
      'SendMessage',
      'sendMessage',
      { chat_id: 'c1', content: 'hi' },
      { chat_id: 'c1', content: 'hi' },
      { message_id: 7, chat_id: 'c1', sender: 'alice', content: 'hi', sent_at: 1, read: false },
      true,
    ],
    [
      'GetMessages',
      'getMessages',
      { chat_id: 'c1', before_id: '12', limit: 20 },
      { chat_id: 'c1', before_id: 12, limit: 20 },
      { messages: [], has_more: false },
      true,
    ],
    [
      'ReadMessages',
      'readMessages',
      { chat_id: 'c1' },
      { chat_id: 'c1' },
      { messages: [], unread_remaining: 2 },
      true,
    ],
    [
      'MarkRead',
      'markRead',
      { chat_id: 'c1', up_to_id: 9 },
      { chat_id: 'c1', up_to_id: 9 },
      { unread_remaining: 0 },
      true,
    ],
    [
      'EditMessage',
      'editMessage',
      { chat_id: 'c1', message_id: 7, content: 'fixed' },
      { chat_id: 'c1', message_id: 7, content: 'fixed' },
      {
        message_id: 7,
        chat_id: 'c1',
        sender: 'alice',
        content: 'fixed',
        sent_at: 1,
        read: false,
        edited_at: 2,
      },
      true,
    ],
    ['SetTyping', 'setTyping', { chat_id: 'c1', typing: true }, { chat_id: 'c1', typing: true }, {}, true],
    [
      'DeleteMessages',
      'deleteMessages',
      { chat_id: 'c1', message_ids: [7, '8'] },
      { chat_id: 'c1', message_ids: [7, 8] },
      { deleted_count: 2 },
      true,
    ],
  ];

  it('covers every RPC of the table', () => {
    expect(cases.map((c) => c[0]).sort()).toEqual(Object.keys(rpcs).sort());
  });

  for (const [rpc, method, body, forwarded, reply, needsAuth] of cases) {
    it(`POST /api/${rpc} forwards to ${method} with token and idempotency key`, async () => {
      fake.replies.set(method, reply);
      const headers: Record<string, string> = { 'idempotency-key': `key-${rpc}` };
      if (needsAuth) Object.assign(headers, auth);
      const res = await post(`/api/${rpc}`, body, headers);
      expect(res.status).toBe(200);
      expect(res.json).toEqual(reply);
      expect(fake.calls).toEqual([
        {
          method,
          req: forwarded,
          meta: { idempotencyKey: `key-${rpc}`, ...(needsAuth ? { token: 'tok-1' } : {}) },
        },
      ]);
    });
  }

  it('answers 401 without calling the backend when a token is missing', async () => {
    const res = await post('/api/ListChats', {});
    expect(res.status).toBe(401);
    expect(res.json.code).toBe('UNAUTHENTICATED');
    expect(fake.calls).toEqual([]);
  });

  it('rejects a malformed authorization header', async () => {
    const res = await post('/api/ListChats', {}, { authorization: 'Basic abc' });
    expect(res.status).toBe(401);
    expect(fake.calls).toEqual([]);
  });

  it('treats an empty body as the empty request', async () => {
    fake.replies.set('listChats', { chats: [] });
    const res = await post('/api/ListChats', '', auth);
    expect(res.status).toBe(200);
    expect(fake.calls[0].req).toEqual({});
  });
});

describe('errors', () => {
  const mapped: [number, string, number][] = [
    [3, 'INVALID_ARGUMENT', 400],
    [4, 'DEADLINE_EXCEEDED', 504],
    [5, 'NOT_FOUND', 404],
    [6, 'ALREADY_EXISTS', 409],
    [7, 'PERMISSION_DENIED', 403],
    [8, 'RESOURCE_EXHAUSTED', 429],
    [14, 'UNAVAILABLE', 503],
    [16, 'UNAUTHENTICATED', 401],
  ];
  for (const [grpcCode, name, status] of mapped) {
    it(`maps gRPC ${name} to HTTP ${status} with the server's sentence`, async () => {
      const err = Object.assign(new Error(`${grpcCode} ${name}: No such chat.`), {
        code: grpcCode,
        details: 'No such chat.',
      });
      fake.replies.set('getMessages', err);
      const res = await post('/api/GetMessages', { chat_id: 'x' }, auth);
      expect(res.status).toBe(status);
      expect(res.json).toEqual({ code: name, message: 'No such chat.' });
    });
  }

  it("passes a rate limit's retry-after-ms on as Retry-After (seconds, rounded up) and in the body", async () => {
    // What the client library throws for a refusal with a `retry-after-ms` trailer (client/errors.ts).
    fake.replies.set(
      'sendMessage',
      new ChatClientError(grpc.status.RESOURCE_EXHAUSTED, 'Too many writes.', 1500),
    );
    const res = await post('/api/SendMessage', { chat_id: 'c', content: 'hi' }, auth);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(res.headers.get('retry-after-ms')).toBe('1500');
    expect(res.json).toEqual({
      code: 'RESOURCE_EXHAUSTED',
      message: 'Too many writes.',
      retry_after_ms: 1500,
    });
  });

  it('sends no wait for a refusal without one, nor for any other code', async () => {
    fake.replies.set('sendMessage', new ChatClientError(grpc.status.RESOURCE_EXHAUSTED, 'Too big.'));
    const tooBig = await post('/api/SendMessage', { chat_id: 'c', content: 'hi' }, auth);
    expect(tooBig.status).toBe(429);
    expect(tooBig.headers.get('retry-after')).toBeNull();
    expect(tooBig.json).toEqual({ code: 'RESOURCE_EXHAUSTED', message: 'Too big.' });
    fake.replies.set('sendMessage', new ChatClientError(grpc.status.UNAVAILABLE, 'No leader.', 1500));
    const unavailable = await post('/api/SendMessage', { chat_id: 'c', content: 'hi' }, auth);
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get('retry-after')).toBeNull();
    expect(unavailable.json).toEqual({ code: 'UNAVAILABLE', message: 'No leader.' });
  });

  it('accepts code names from a library error', async () => {
    fake.replies.set('startChat', { throw: { code: 'NOT_FOUND', message: 'No user named zed.' } });
    const res = await post('/api/StartChat', { username: 'zed' }, auth);
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ code: 'NOT_FOUND', message: 'No user named zed.' });
  });

  it('hides unexpected errors behind INTERNAL', async () => {
    fake.replies.set('listChats', new TypeError('x is undefined at /secret/path.js:1'));
    const res = await post('/api/ListChats', {}, auth);
    expect(res.status).toBe(500);
    expect(res.json.code).toBe('INTERNAL');
    expect(res.json.message).not.toContain('secret');
  });

  it('rejects bad JSON, non-objects and wrong field types without calling the backend', async () => {
    for (const [body, needle] of [
      ['{nope', 'not valid JSON'],
      ['[1,2]', 'JSON object'],
      [JSON.stringify({ chat_id: 5, content: 'x' }), "'chat_id'"],
    ]) {
      const res = await post('/api/SendMessage', body, auth);
      expect(res.status).toBe(400);
      expect(res.json.code).toBe('INVALID_ARGUMENT');
      expect(res.json.message).toContain(needle);
    }
    const badInt = await post('/api/UpdateSettings', { view_limit: 2.5 }, auth);
    expect(badInt.status).toBe(400);
    const badIds = await post('/api/DeleteMessages', { chat_id: 'c', message_ids: [-1] }, auth);
    expect(badIds.status).toBe(400);
    expect(fake.calls).toEqual([]);
  });

  it('answers 413 RESOURCE_EXHAUSTED for a body over 64 KiB', async () => {
    const res = await post('/api/SendMessage', { chat_id: 'c', content: 'x'.repeat(70_000) }, auth);
    expect(res.status).toBe(413);
    expect(res.json.code).toBe('RESOURCE_EXHAUSTED');
    expect(fake.calls).toEqual([]);
  });

  it('rejects an idempotency key over 64 characters', async () => {
    const res = await post('/api/Logout', {}, { ...auth, 'idempotency-key': 'k'.repeat(65) });
    expect(res.status).toBe(400);
    expect(fake.calls).toEqual([]);
  });

  it('answers 404 for an unknown endpoint and 405 for the wrong method', async () => {
    const unknown = await post('/api/Nope', {}, auth);
    expect(unknown.status).toBe(404);
    expect(unknown.json.code).toBe('NOT_FOUND');
    const proto = await post('/api/__proto__', {}, auth);
    expect(proto.status).toBe(404);
    const get = await fetch(`${http.url}/api/ListChats`, { headers: auth });
    expect(get.status).toBe(405);
    expect((await get.json()).code).toBe('INVALID_ARGUMENT');
  });
});

describe('CORS and members', () => {
  it("answers preflight requests so other replicas' pages can call this gateway", async () => {
    const res = await fetch(`${http.url}/api/SendMessage`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:9999', 'access-control-request-method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toContain('idempotency-key');
    expect(res.headers.get('access-control-allow-headers')).toContain('authorization');
  });

  it('lists members with their HTTP URLs (gRPC port + 1000 by default)', async () => {
    const res = await fetch(`${http.url}/api/members`);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual({
      members: [
        { address: '127.0.0.1:5555', http: 'http://127.0.0.1:6555' },
        { address: '127.0.0.1:5556', http: 'http://127.0.0.1:6556' },
      ],
    });
  });

  it('uses the httpUrlFor option when given', async () => {
    const other = await start({ httpUrlFor: (a) => (a.endsWith('5555') ? 'http://h:1' : undefined) });
    try {
      const body = await (await fetch(`${other.url}/api/members`)).json();
      expect(body.members).toEqual([
        { address: '127.0.0.1:5555', http: 'http://h:1' },
        { address: '127.0.0.1:5556', http: null },
      ]);
    } finally {
      await other.close();
    }
  });

  it('defaultHttpUrlFor adds 1000 to the port', () => {
    expect(defaultHttpUrlFor('10.0.0.1:5555')).toBe('http://10.0.0.1:6555');
    expect(defaultHttpUrlFor('::1:5555')).toBe('http://[::1]:6555');
    expect(defaultHttpUrlFor('nohost')).toBeUndefined();
    expect(defaultHttpUrlFor('h:65000')).toBeUndefined();
  });
});

// ---- Server-Sent Events ----

async function openEvents(
  query = '',
  headers: Record<string, string> = auth,
): Promise<{ status: number; sse: SseReader; type: string | null }> {
  const ctl = new AbortController();
  const res = await fetch(`${http.url}/api/events${query}`, { headers, signal: ctl.signal });
  const sse = new SseReader(res.body!.getReader(), () => ctl.abort());
  return { status: res.status, sse, type: res.headers.get('content-type') };
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; !cond(); i++) {
    if (Date.now() > deadline || i > 1000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('GET /api/events', () => {
  it('frames chat events with id = log index after retry, members and ready', async () => {
    const { status, sse, type } = await openEvents();
    try {
      expect(status).toBe(200);
      expect(type).toContain('text/event-stream');
      expect(await sse.next()).toEqual({ retry: '1000' });
      const members = await sse.next();
      expect(members?.event).toBe('members');
      expect(JSON.parse(members!.data!)).toHaveLength(2);
      const ready = await sse.next();
      expect(ready).toEqual({ event: 'ready', data: JSON.stringify({ after_index: 0 }) });
      expect(fake.subscriptions).toHaveLength(1);
      expect(fake.subscriptions[0].req).toEqual({ after_index: 0 });
      expect(fake.subscriptions[0].meta.token).toBe('tok-1');

      const msg = {
        message_id: 9,
        chat_id: 'c1',
        sender: 'bob',
        content: 'line1\nline2',
        sent_at: 5,
        read: false,
        edited_at: 0,
      };
      fake.subscriptions[0].sink.onEvent(event(41, { message_received: msg }));
      fake.subscriptions[0].sink.onEvent(
        event(42, { messages_deleted: { chat_id: 'c1', message_ids: [9] } }),
      );
      const f1 = await sse.until(undefined);
      expect(f1.id).toBe('41');
      expect(JSON.parse(f1.data!)).toEqual({ index: 41, event: 'message_received', message_received: msg });
      const f2 = await sse.until(undefined);
      expect(f2.id).toBe('42');
      expect(JSON.parse(f2.data!)).toEqual({
        index: 42,
        event: 'messages_deleted',
        messages_deleted: { chat_id: 'c1', message_ids: [9] },
      });
      // v2 events; a typing event carries no id (never replayed, so Last-Event-ID must not move).
      const edited = { ...msg, content: 'fixed', edited_at: 6 };
      fake.subscriptions[0].sink.onEvent(event(43, { message_edited: edited }));
      fake.subscriptions[0].sink.onEvent(
        event(44, { messages_read: { chat_id: 'c1', reader: 'bob', up_to_id: 9 } }),
      );
      fake.subscriptions[0].sink.onEvent(
        event(44, { typing: { chat_id: 'c1', username: 'bob', typing: true } }),
      );
      const f3 = await sse.until(undefined);
      expect([f3.id, JSON.parse(f3.data!)]).toEqual([
        '43',
        { index: 43, event: 'message_edited', message_edited: edited },
      ]);
      const f4 = await sse.until(undefined);
      expect(f4.id).toBe('44');
      expect(JSON.parse(f4.data!).event).toBe('messages_read');
      const f5 = await sse.until(undefined);
      expect(f5.id).toBeUndefined();
      expect(JSON.parse(f5.data!)).toEqual({
        index: 44,
        event: 'typing',
        typing: { chat_id: 'c1', username: 'bob', typing: true },
      });
    } finally {
      sse.abort();
    }
  });

  it('waits for the backend stream before announcing ready', async () => {
    fake.autoReady = false;
    const { sse } = await openEvents();
    try {
      await sse.next(); // retry
      await waitFor(() => fake.subscriptions.length === 1, 'the subscription');
      fake.subscriptions[0].sink.onEvent(event(3, { chat_removed: { chat_id: 'c9' } }));
      const f = await sse.until(undefined);
      expect(JSON.parse(f.data!).event).toBe('chat_removed');
      fake.subscriptions[0].markReady();
      expect((await sse.until('ready')).data).toBe('{"after_index":0}');
    } finally {
      sse.abort();
    }
  });

  it('resumes from Last-Event-ID, or after_index and access_token in the query', async () => {
    const a = await openEvents('', { ...auth, 'last-event-id': '17' });
    await a.sse.until('ready');
    a.sse.abort();
    const b = await openEvents('?after_index=23&access_token=tok-q', {});
    await b.sse.until('ready');
    b.sse.abort();
    expect(fake.subscriptions.map((s) => [s.req.after_index, s.meta.token])).toEqual([
      [17, 'tok-1'],
      [23, 'tok-q'],
    ]);
  });

  it('rejects a stream without a token or with a bad index as JSON errors', async () => {
    const noToken = await fetch(`${http.url}/api/events`);
    expect(noToken.status).toBe(401);
    expect((await noToken.json()).code).toBe('UNAUTHENTICATED');
    const badIndex = await fetch(`${http.url}/api/events?after_index=-4`, { headers: auth });
    expect(badIndex.status).toBe(400);
    expect((await badIndex.json()).code).toBe('INVALID_ARGUMENT');
    expect(fake.subscriptions).toEqual([]);
  });

  it('closes the backend subscription when the page goes away', async () => {
    const { sse } = await openEvents();
    await sse.until('ready');
    sse.abort();
    await waitFor(() => fake.subscriptions[0]?.closed === true, 'the subscription to close');
  });

  it('reports a failed backend stream as a stream-error event and ends', async () => {
    const { sse } = await openEvents();
    await sse.until('ready');
    fake.subscriptions[0].sink.onError(
      Object.assign(new Error('x'), { code: 16, details: 'The token was revoked.' }),
    );
    const f = await sse.until('stream-error');
    expect(JSON.parse(f.data!)).toEqual({ code: 'UNAUTHENTICATED', message: 'The token was revoked.' });
    expect(await sse.next()).toBeUndefined();
    expect(fake.subscriptions[0].closed).toBe(true);
  });

  it('sends keepalive comments and member changes on an idle stream', async () => {
    await http.close();
    http = await start({ keepaliveMs: 20 });
    const { sse } = await openEvents();
    try {
      await sse.until('ready');
      let sawKeepalive = false;
      for (let i = 0; i < 20 && !sawKeepalive; i++)
        sawKeepalive = (await sse.next())?.comment === 'keepalive';
      expect(sawKeepalive).toBe(true);
      fake.memberList = ['127.0.0.1:5557'];
      const m = await sse.until('members');
      expect(JSON.parse(m.data!)).toEqual([{ address: '127.0.0.1:5557', http: 'http://127.0.0.1:6557' }]);
    } finally {
      sse.abort();
    }
  });

  it('ends open streams on close() so shutdown does not hang', async () => {
    const { sse } = await openEvents();
    await sse.until('ready');
    await http.close();
    expect(await sse.until('never').catch((e: Error) => e.message)).toMatch(/stream ended/);
    http = await start();
  });
});

describe('server', () => {
  it('answers /healthz 200 while serving and 503 when not healthy', async () => {
    const ok = await fetch(`${http.url}/healthz`);
    expect(ok.status).toBe(200);
    let healthy = false;
    const other = await start({ healthy: () => healthy });
    try {
      expect((await fetch(`${other.url}/healthz`)).status).toBe(503);
      healthy = true;
      expect((await fetch(`${other.url}/healthz`)).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('routes extra paths exactly, by prefix, and added later', async () => {
    const seen: string[] = [];
    const other = await start({
      extraRoutes: {
        '/metrics': (_req, res) => {
          seen.push('metrics');
          res.end('m 1\n');
        },
        '/cluster': (_req, res) => res.end('cluster page'),
        '/cluster/*': (_req, res, url) => res.end(`cluster sub ${url.pathname}`),
      },
    });
    try {
      expect(await (await fetch(`${other.url}/metrics`)).text()).toBe('m 1\n');
      expect(await (await fetch(`${other.url}/cluster`)).text()).toBe('cluster page');
      expect(await (await fetch(`${other.url}/cluster/events`)).text()).toBe('cluster sub /cluster/events');
      expect((await fetch(`${other.url}/metricsx`)).status).toBe(404);
      other.addRoute('/late', (_req, res) => res.end('late'));
      expect(await (await fetch(`${other.url}/late`)).text()).toBe('late');
      expect(seen).toEqual(['metrics']);
    } finally {
      await other.close();
    }
  });

  it('answers 500 when an extra route throws, and keeps serving', async () => {
    const other = await start({
      extraRoutes: {
        '/boom': () => {
          throw new Error('boom');
        },
      },
    });
    try {
      expect((await fetch(`${other.url}/boom`)).status).toBe(500);
      expect((await fetch(`${other.url}/healthz`)).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('serves static files with types and refuses to leave the static dir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'web-static-'));
    writeFileSync(join(dir, 'index.html'), '<h1>hi</h1>');
    writeFileSync(join(dir, 'app.js'), 'export {};');
    const other = await start({ staticDir: dir });
    try {
      const index = await fetch(`${other.url}/`);
      expect(index.headers.get('content-type')).toContain('text/html');
      expect(await index.text()).toBe('<h1>hi</h1>');
      expect((await fetch(`${other.url}/app.js`)).headers.get('content-type')).toContain('text/javascript');
      expect((await fetch(`${other.url}/missing.css`)).status).toBe(404);
      expect((await fetch(`${other.url}/%2e%2e/%2e%2e/etc/passwd`)).status).toBe(404);
      expect((await fetch(`${other.url}/..%2f..%2fetc%2fpasswd`)).status).toBe(404);
      expect((await fetch(`${other.url}/%E0%A4%A`)).status).toBe(404);
    } finally {
      await other.close();
    }
  });

  it('serves the bundled web client at /', async () => {
    const res = await fetch(`${http.url}/`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<script type="module" src="app.js">');
    for (const asset of ['app.js', 'style.css'])
      expect((await fetch(`${http.url}/${asset}`)).status).toBe(200);
  });

  it('fails to start with a one-line UserError when the port is taken', async () => {
    const err = await start({ port: http.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/already in use/);
  });
});

describe('stream baseline', () => {
  it("announces the library's starting index in ready, as the SSE id", async () => {
    fake.baselineIndex = 120;
    const { sse } = await openEvents();
    try {
      const ready = await sse.until('ready');
      expect(ready.id).toBe('120');
      expect(JSON.parse(ready.data!)).toEqual({ after_index: 120 });
    } finally {
      sse.abort();
    }
  });
});

describe('deadline wording', () => {
  it("replaces grpc-js's raw deadline text with one sentence", async () => {
    fake.replies.set('listChats', {
      throw: { code: 4, details: 'Deadline exceeded after 1.793s,LB pick: 0.001s' },
    });
    const res = await post('/api/ListChats', {}, auth);
    expect(res.status).toBe(504);
    expect(res.json).toEqual({
      code: 'DEADLINE_EXCEEDED',
      message: 'The cluster did not answer before the deadline; please retry.',
    });
  });
});
