// The rate limits of API.md with an injected clock: failed logins per username per minute (sliding
// window, concurrent attempts included), the write token bucket, and AdmissionControl in front of a
// stand-in service (what is refused never reaches it; the refusal carries retry-after-ms).
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AdmissionControl } from '../../src/chat/admission.js';
import { ChatError, status, unauthenticated } from '../../src/chat/errors.js';
import { FailedLoginLimiter, WriteRateLimiter } from '../../src/chat/rate-limits.js';
import { RETRY_AFTER_HEADER, retryAfterOf, toStatus } from '../../src/server/metadata.js';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

function fail(l: FailedLoginLimiter, name: string): void {
  const a = l.begin(name);
  if (!a.ok) throw new Error(`${name} was refused`);
  a.ticket.done(true);
}

describe('FailedLoginLimiter', () => {
  it('allows 5 failures per username per minute, in any case, then refuses until the oldest leaves the window', () => {
    const c = clock();
    const l = new FailedLoginLimiter({ maxFailures: 5, windowMs: 60_000, now: c.now });
    for (const name of ['alice', 'ALICE', 'Alice', 'aLiCe', 'alicE']) {
      fail(l, name);
      c.t += 1000; // failures at +0, +1 s, ... +4 s
    }
    const refused = l.begin('alice');
    expect(refused).toEqual({ ok: false, retryAfterMs: 60_000 - 5000 });
    // Another name is not affected.
    expect(l.begin('bob').ok).toBe(true);
    // One ms before the first failure leaves the window: still refused; at the edge: one attempt again.
    c.t = 1_000_000 + 60_000 - 1;
    expect(l.begin('Alice').ok).toBe(false);
    c.t = 1_000_000 + 60_000;
    const again = l.begin('alice');
    expect(again.ok).toBe(true);
    if (again.ok) again.ticket.done(true);
    // That was the 5th failure of the window [+1 s, +60 s]: refused until +1 s + 60 s.
    expect(l.begin('alice')).toEqual({ ok: false, retryAfterMs: 1000 });
  });

  it('counts attempts still running, so a concurrent burst cannot exceed the allowance', () => {
    const c = clock();
    const l = new FailedLoginLimiter({ maxFailures: 5, windowMs: 60_000, now: c.now, busyRetryMs: 700 });
    const tickets = [1, 2, 3, 4, 5].map(() => l.begin('eve'));
    expect(tickets.every((t) => t.ok)).toBe(true);
    // Five running, none failed yet: the sixth waits for them.
    expect(l.begin('eve')).toEqual({ ok: false, retryAfterMs: 700 });
    // A successful attempt frees its place; a failed one keeps it for the window.
    for (const [i, t] of tickets.entries()) if (t.ok) t.ticket.done(i !== 0);
    const sixth = l.begin('eve');
    expect(sixth.ok).toBe(true);
    if (sixth.ok) sixth.ticket.done(true);
    expect(l.begin('eve').ok).toBe(false);
  });

  it('forgets a username whose window is empty (state stays bounded)', () => {
    const c = clock();
    const l = new FailedLoginLimiter({ maxFailures: 5, windowMs: 60_000, now: c.now });
    const ok = l.begin('carol');
    if (ok.ok) ok.ticket.done(false);
    expect(l.size).toBe(0);
    fail(l, 'dave');
    expect(l.size).toBe(1);
  });
});

describe('WriteRateLimiter', () => {
  it('allows a burst of 40, then 20 per second, with the wait until the next token', () => {
    const c = clock();
    const w = new WriteRateLimiter({ perSecond: 20, burst: 40, now: c.now });
    for (let i = 0; i < 40; i++) expect(w.take('u:1').ok).toBe(true);
    expect(w.take('u:1')).toEqual({ ok: false, retryAfterMs: 50 });
    // Other users have their own bucket.
    expect(w.take('u:2').ok).toBe(true);
    c.t += 20;
    expect(w.take('u:1')).toEqual({ ok: false, retryAfterMs: 30 });
    c.t += 30;
    expect(w.take('u:1').ok).toBe(true);
    expect(w.take('u:1').ok).toBe(false);
    // One second refills 20, never more than the burst.
    c.t += 1000;
    let n = 0;
    while (w.take('u:1').ok) n++;
    expect(n).toBe(20);
    c.t += 60_000;
    n = 0;
    while (w.take('u:1').ok) n++;
    expect(n).toBe(40);
  });
});

describe('AdmissionControl', () => {
  function setup(limits = { loginFailuresPerMinute: 5, writesPerSecond: 20, writeBurst: 40 }) {
    const c = clock();
    const calls: string[] = [];
    const service = {
      handle: async (method: string, request: unknown) => {
        calls.push(method);
        if (method === 'Login') {
          const r = request as { password?: string };
          if (r.password !== 'right password') throw unauthenticated('Wrong username or password.');
          return { token: 't' };
        }
        return {};
      },
    };
    const tokens: Record<string, number> = { tokA: 1, tokA2: 1, tokB: 2 };
    const a = new AdmissionControl({ service, userOf: (t) => tokens[t], limits, now: c.now });
    return { c, calls, a };
  }

  async function refusal(p: Promise<unknown>): Promise<ChatError> {
    try {
      await p;
    } catch (err) {
      if (err instanceof ChatError) return err;
      throw err;
    }
    throw new Error('expected a refusal');
  }

  it('after 5 wrong passwords, every Login for that name is RESOURCE_EXHAUSTED with retry-after, the right password too, without reaching the service', async () => {
    const { c, calls, a } = setup();
    for (let i = 0; i < 5; i++) {
      const e = await refusal(a.handle('Login', { username: 'Alice', password: `guess ${i}` }, {}));
      expect(e.code).toBe(status.UNAUTHENTICATED);
      c.t += 100;
    }
    const e = await refusal(a.handle('Login', { username: 'alice', password: 'right password' }, {}));
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.retryAfterMs).toBe(60_000 - 500);
    expect(e.message).toBe('Too many failed logins for this username; try again in 60 s.');
    expect(calls.filter((m) => m === 'Login')).toHaveLength(5);
    c.t += 60_000;
    await expect(a.handle('Login', { username: 'ALICE', password: 'right password' }, {})).resolves.toEqual({
      token: 't',
    });
  });

  it('errors other than wrong credentials are not counted as failures', async () => {
    const c = clock();
    const service = {
      handle: async () => {
        throw new ChatError(status.UNAVAILABLE, 'No leader.');
      },
    };
    const a = new AdmissionControl({ service, userOf: () => undefined, now: c.now });
    for (let i = 0; i < 10; i++) {
      expect((await refusal(a.handle('Login', { username: 'bob', password: 'x' }, {}))).code).toBe(
        status.UNAVAILABLE,
      );
    }
  });

  it('limits the writes of a user across all their tokens; reads, other users and unknown tokens are not limited here', async () => {
    const { c, calls, a } = setup({ loginFailuresPerMinute: 5, writesPerSecond: 20, writeBurst: 4 });
    for (let i = 0; i < 2; i++) await a.handle('SendMessage', {}, { token: 'tokA' });
    for (let i = 0; i < 2; i++) await a.handle('StartChat', {}, { token: 'tokA2' });
    const e = await refusal(a.handle('SendMessage', {}, { token: 'tokA' }));
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.retryAfterMs).toBe(50);
    expect(e.message).toBe('Too many writes; the limit is 20 per second. Try again in 50 ms.');
    expect(calls).toHaveLength(4);
    await a.handle('ListChats', {}, { token: 'tokA' });
    await a.handle('SendMessage', {}, { token: 'tokB' });
    await a.handle('SendMessage', {}, { token: 'unknown' });
    c.t += 50;
    await a.handle('SendMessage', {}, { token: 'tokA' });
    expect(calls).toHaveLength(8);
  });
});

describe('retry-after-ms on the wire', () => {
  it('a ChatError with a wait becomes RESOURCE_EXHAUSTED with retry-after-ms in the trailers', () => {
    const s = toStatus(new ChatError(status.RESOURCE_EXHAUSTED, 'Slow down.', 1234.2), new grpc.Metadata());
    expect(s.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(s.details).toBe('Slow down.');
    expect(s.metadata?.get(RETRY_AFTER_HEADER)).toEqual(['1235']);
    expect(retryAfterOf(s.metadata)).toBe(1235);
    const plain = toStatus(new ChatError(status.NOT_FOUND, 'No such chat.'), new grpc.Metadata());
    expect(plain.metadata?.get(RETRY_AFTER_HEADER)).toEqual([]);
  });
});
