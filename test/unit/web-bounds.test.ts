// The HTTP server's bounds and page headers (issue 13, finding 10): a request whose headers or body
// trickle in is closed after its timeout, while event streams (long responses) live on; connections are
// capped; one token holds a bounded number of event streams; every response carries a strict CSP,
// X-Frame-Options: DENY and nosniff.
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type HttpServer, contentSecurityPolicy, startHttpServer } from '../../src/web/http-server.js';
import { defaultStaticDir } from '../../src/web/static-files.js';
import { FakeChatApi } from './web-fake-api.js';
import { SseReader } from './web-sse-reader.js';

const logger = pino({ level: 'silent' });
let http: HttpServer | undefined;
let fake: FakeChatApi;
const sockets: net.Socket[] = [];

async function start(extra: Partial<Parameters<typeof startHttpServer>[0]> = {}): Promise<HttpServer> {
  fake = new FakeChatApi();
  http = await startHttpServer({ host: '127.0.0.1', port: 0, gateway: fake.asApi(), logger, ...extra });
  return http;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await http?.close();
  http = undefined;
});

/** A raw connection; resolves once connected. Records everything the server sends back. */
async function connect(
  port: number,
): Promise<{ socket: net.Socket; received: () => string; closed: Promise<number> }> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString();
  });
  socket.on('error', () => {});
  const t0 = Date.now();
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - t0)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => text, closed };
}

/** `p`, or a rejection after `ms`: every wait here has a deadline. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; !cond(); i++) {
    if (Date.now() > deadline || i > 1000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function openEvents(token: string): Promise<{ status: number; sse: SseReader; res: Response }> {
  const ctl = new AbortController();
  const res = await fetch(`${http!.url}/api/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: ctl.signal,
  });
  const sse = new SseReader(res.body!.getReader(), () => ctl.abort());
  return { status: res.status, sse, res };
}

describe('timeouts', () => {
  const short = { headersTimeoutMs: 200, requestTimeoutMs: 400, checkIntervalMs: 50 };

  it('closes a request whose body trickles in, once the request timeout has passed', async () => {
    const { port } = await start({ limits: short });
    const c = await connect(port);
    c.socket.write(
      'POST /api/Login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"user',
    );
    // One byte every 50 ms: never idle, never complete.
    const drip = setInterval(() => c.socket.writable && c.socket.write('a'), 50);
    try {
      const ms = await within(c.closed, 5000, 'the slow request to be closed');
      expect(ms).toBeGreaterThanOrEqual(short.requestTimeoutMs - 50);
      expect(c.received()).toMatch(/^HTTP\/1\.1 408/);
      expect(fake.calls).toEqual([]);
    } finally {
      clearInterval(drip);
    }
  });

  it('closes a connection whose headers never finish, once the headers timeout has passed', async () => {
    const { port } = await start({ limits: short });
    const c = await connect(port);
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const ms = await within(c.closed, 5000, 'the slow headers to be closed');
    expect(ms).toBeGreaterThanOrEqual(short.headersTimeoutMs - 50);
  });

  it('keeps an event stream open well past the request timeout (it bounds requests, not responses)', async () => {
    await start({ limits: short, keepaliveMs: 50 });
    const { status, sse } = await openEvents('tok-1');
    try {
      expect(status).toBe(200);
      await sse.until('ready');
      const t0 = Date.now();
      let keepalives = 0;
      for (let i = 0; i < 200 && Date.now() - t0 < 3 * short.requestTimeoutMs; i++) {
        const f = await sse.next();
        expect(f).toBeDefined(); // undefined: the stream ended
        if (f?.comment === 'keepalive') keepalives++;
      }
      expect(Date.now() - t0).toBeGreaterThanOrEqual(3 * short.requestTimeoutMs);
      expect(keepalives).toBeGreaterThan(3);
    } finally {
      sse.abort();
    }
  });
});

/** The server's count of open connections. */
function connections(): Promise<number> {
  return new Promise((resolve, reject) =>
    http!.server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
  );
}

/** Polls the connection count until it is `n` (bounded). */
async function connectionsReach(n: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await connections()) === n) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the server never had ${n} connections (it has ${await connections()})`);
}

describe('caps', () => {
  it('drops connections beyond maxConnections', async () => {
    const logged: string[] = [];
    const { port } = await start({
      limits: { maxConnections: 3 },
      logger: pino({ level: 'warn' }, { write: (line: string) => logged.push(line) }),
    });
    const held = [];
    for (let i = 0; i < 3; i++) {
      const c = await connect(port);
      c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n'); // unfinished: the connection stays busy
      held.push(c);
    }
    // The server counts a connection once it has accepted it.
    await connectionsReach(3);
    const extra = await connect(port);
    await within(extra.closed, 3000, 'the fourth connection to be dropped');
    expect(extra.received()).toBe('');
    // Said once in the log (a second drop within the minute is not).
    const again = await connect(port);
    await within(again.closed, 3000, 'the fifth connection to be dropped');
    expect(logged.filter((l) => l.includes('http connection cap reached'))).toHaveLength(1);
    // The held ones are still open, and once one goes a new connection is served.
    held[0].socket.destroy();
    await within(held[0].closed, 3000, 'the first connection to close');
    await connectionsReach(2);
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await fetch(`${http!.url}/healthz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 20));
    }
    expect(ok).toBe(true);
  });

  it('answers 429 RESOURCE_EXHAUSTED to an event stream beyond the cap per token, and frees the slot on close', async () => {
    await start({ limits: { maxStreamsPerToken: 2 } });
    const a = await openEvents('tok-1');
    const b = await openEvents('tok-1');
    try {
      expect([a.status, b.status]).toEqual([200, 200]);
      await a.sse.until('ready');
      await b.sse.until('ready');
      const third = await fetch(`${http!.url}/api/events`, { headers: { authorization: 'Bearer tok-1' } });
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toBe('5');
      expect(third.headers.get('retry-after-ms')).toBe('5000');
      const body = await third.json();
      expect(body.code).toBe('RESOURCE_EXHAUSTED');
      expect(body.retry_after_ms).toBe(5000);
      expect(body.message).toMatch(/^This session already has 2 event streams open; .*\.$/);
      expect(fake.subscriptions).toHaveLength(2);
      // Another session is not affected.
      const other = await openEvents('tok-2');
      expect(other.status).toBe(200);
      other.sse.abort();
      // Closing one of tok-1's streams frees its slot.
      a.sse.abort();
      await waitFor(() => fake.subscriptions[0].closed, 'the first stream to close');
      let again: Awaited<ReturnType<typeof openEvents>> | undefined;
      for (let i = 0; i < 50; i++) {
        again = await openEvents('tok-1');
        if (again.status === 200) break;
        await again.res.text();
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(again?.status).toBe(200);
      again?.sse.abort();
    } finally {
      a.sse.abort();
      b.sse.abort();
    }
  });
});

describe('page headers', () => {
  it('puts a strict CSP, X-Frame-Options DENY and nosniff on every response, pages first', async () => {
    await start({
      extraRoutes: {
        '/cluster': (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end('<!doctype html><title>cluster</title>');
        },
      },
      pageHosts: () => ['10.0.0.7:5555'],
    });
    const paths: [string, RequestInit?][] = [
      ['/'],
      ['/index.html'],
      ['/app.js'],
      ['/cluster.html'],
      ['/cluster'],
      ['/healthz'],
      ['/api/members'],
      ['/api/Login', { method: 'POST', body: '{' }],
      ['/no-such-page'],
    ];
    for (const [path, init] of paths) {
      const res = await fetch(`${http!.url}${path}`, init);
      await res.arrayBuffer();
      const csp = res.headers.get('content-security-policy') ?? '';
      expect({ path, csp }).toEqual({
        path,
        csp:
          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
          "connect-src 'self' 127.0.0.1:* 10.0.0.7:*; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      });
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('the bundled pages need nothing the CSP forbids: no inline script, style or event handler', () => {
    for (const page of ['index.html', 'cluster.html']) {
      const html = readFileSync(join(defaultStaticDir, page), 'utf8');
      for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\ssrc=/);
      expect(html).not.toMatch(/<script\b[^>]*>\s*(?!<\/script>)\S/);
      expect(html).not.toMatch(/\sstyle=|<style\b|\son[a-z]+=/i);
    }
  });

  it('lets the pages reach the members on any port of their hosts; IPv6 literals fall back to http: and https:', () => {
    expect(contentSecurityPolicy(['127.0.0.1:5555', 'http://db.example:6556', 'bad host'])).toContain(
      "connect-src 'self' 127.0.0.1:* db.example:*;",
    );
    expect(contentSecurityPolicy(['[::1]:5555'])).toContain("connect-src 'self' http: https:;");
  });
});
