// The gateway on top of the real client library (chatApiFromClient) against an in-process ChatService:
// tokens stay with their own browser session, idempotency keys pass through, errors keep the server's
// sentence, member hints reach /api/members, and the event stream starts from the library's baseline.
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChatClient } from '../../src/client/client.js';
import { type ClientApi, chatApiFromClient } from '../../src/web/client-api.js';
import { type HttpServer, startHttpServer } from '../../src/web/http-server.js';
import { FakeServer, fail, ok } from './client-fake-server.js';
import { SseReader } from './web-sse-reader.js';

let server: FakeServer;
let root: ChatClient;
let api: ClientApi;
let http: HttpServer;

beforeEach(async () => {
  server = await FakeServer.start((method, req) => {
    if (method === 'Login')
      return ok({
        token: `tok-${req.username}`,
        user: { username: req.username, nickname: 'N', view_limit: 6 },
      });
    if (method === 'StartChat' && req.username === 'ghost')
      return fail(grpc.status.NOT_FOUND, 'No user named ghost.');
    if (method === 'ListChats')
      return { response: { chats: [] }, members: [server.address, '127.0.0.1:7001'] };
    if (method === 'SendMessage')
      return ok({
        message_id: 1,
        chat_id: req.chat_id,
        sender: 's',
        content: req.content,
        sent_at: 1,
        read: false,
      });
    return ok({});
  });
  root = new ChatClient([server.address], { deadlineMs: 3000 });
  api = chatApiFromClient(root, { clientOptions: { deadlineMs: 3000 } });
  http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    gateway: api,
    logger: pino({ level: 'silent' }),
  });
});

afterEach(async () => {
  await http.close();
  api.close();
  root.close();
  server.stop();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(http.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('chatApiFromClient behind the gateway', () => {
  it('keeps each browser session on its own token, even when calls interleave', async () => {
    const users = ['alice', 'bob', 'carol'];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => {
        const u = users[i % users.length];
        return post(
          '/api/SendMessage',
          { chat_id: `chat-of-${u}`, content: `m${i}` },
          { authorization: `Bearer tok-${u}` },
        );
      }),
    );
    const sends = server.callsOf('SendMessage');
    expect(sends).toHaveLength(30);
    for (const c of sends) {
      const owner = String(c.request.chat_id).replace('chat-of-', '');
      expect(c.authorization).toBe(`Bearer tok-${owner}`);
    }
  });

  it('logs in without leaving a token on the shared client', async () => {
    const login = await post('/api/Login', { username: 'alice', password: 'pw-123456' });
    expect(login.json.token).toBe('tok-alice');
    await post('/api/Signup', { username: 'bob', nickname: 'B', password: 'pw-123456' });
    expect(server.callsOf('Signup')[0].authorization).toBeUndefined();
    expect(root.token).toBeUndefined();
  });

  it("passes the browser's idempotency key through, and makes one when there is none", async () => {
    const auth = { authorization: 'Bearer tok-alice' };
    await post(
      '/api/SendMessage',
      { chat_id: 'c', content: 'x' },
      { ...auth, 'idempotency-key': 'browser-key-1' },
    );
    await post('/api/SendMessage', { chat_id: 'c', content: 'y' }, auth);
    const [first, second] = server.callsOf('SendMessage');
    expect(first.idempotencyKey).toBe('browser-key-1');
    expect(second.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers the server's error with its code and sentence", async () => {
    const res = await post('/api/StartChat', { username: 'ghost' }, { authorization: 'Bearer tok-alice' });
    expect(res).toEqual({ status: 404, json: { code: 'NOT_FOUND', message: 'No user named ghost.' } });
  });

  it('learns the members from x-members for the page', async () => {
    await post('/api/ListChats', {}, { authorization: 'Bearer tok-alice' });
    const { members } = await (await fetch(`${http.url}/api/members`)).json();
    const port = Number(server.address.split(':')[1]);
    expect(members).toEqual([
      { address: server.address, http: `http://127.0.0.1:${port + 1000}` },
      { address: '127.0.0.1:7001', http: 'http://127.0.0.1:8001' },
    ]);
  });

  it('streams events from the baseline the library picked, and resumes from Last-Event-ID', async () => {
    server.lastApplied = 50;
    server.stream = (call) => {
      const after = Number(call.request.after_index);
      call.write({
        index: after + 1,
        message_received: {
          message_id: 3,
          chat_id: 'c',
          sender: 'bob',
          content: 'hi',
          sent_at: 1,
          read: false,
        },
      });
    };
    const ctl = new AbortController();
    const res = await fetch(`${http.url}/api/events`, {
      headers: { authorization: 'Bearer tok-alice' },
      signal: ctl.signal,
    });
    const sse = new SseReader(res.body!.getReader(), () => ctl.abort());
    try {
      const ready = await sse.until('ready');
      expect(JSON.parse(ready.data!).after_index).toBe(50);
      const ev = await sse.until(undefined);
      expect(ev.id).toBe('51');
      expect(JSON.parse(ev.data!)).toMatchObject({ index: 51, event: 'message_received' });
    } finally {
      sse.abort();
    }
    const ctl2 = new AbortController();
    const res2 = await fetch(`${http.url}/api/events`, {
      headers: { authorization: 'Bearer tok-alice', 'last-event-id': '70' },
      signal: ctl2.signal,
    });
    const sse2 = new SseReader(res2.body!.getReader(), () => ctl2.abort());
    try {
      expect((await sse2.until(undefined)).id).toBe('71');
    } finally {
      sse2.abort();
    }
    const streams = server.callsOf('Subscribe');
    expect(streams.map((c) => [Number(c.request.after_index), c.authorization])).toEqual([
      [50, 'Bearer tok-alice'],
      [70, 'Bearer tok-alice'],
    ]);
  });
});
