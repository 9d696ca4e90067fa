// API.md "Limits" on a real 3-replica cluster: the failed-login and write limits hold cluster-wide (calls
// spread over every replica, followers forward to the leader, the leader decides), the refusal is
// RESOURCE_EXHAUSTED with a sentence and `retry-after-ms` in the trailers (through a follower too), and
// refused calls leave no trace: every replica converges to the same state digest, holding exactly the
// writes that were acknowledged.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services } from '../../src/proto.js';
import { unary } from '../../src/server/local-cluster.js';
import { type Harness, Status, codeOf, startCluster } from './harness.js';
import { expectConverged, withReport } from './support/checks.js';

type Stub = grpc.Client;

interface Outcome<T> {
  ok?: T;
  code?: number;
  details?: string;
  retryAfter?: string;
}

/**
 * A write with an idempotency key, retried with the same key on another replica while the answer is
 * "no leader right now" (a loaded machine may see an election): the outcome is then the write's own.
 */
async function write<T>(first: number, method: string, request: object, token: string, key: string) {
  let out: Outcome<T> = {};
  for (let attempt = 0; attempt < 8; attempt++) {
    out = await call<T>(stubs[(first + attempt) % stubs.length], method, request, token, key);
    if (out.code !== Status.UNAVAILABLE && out.code !== Status.DEADLINE_EXCEEDED) return out;
  }
  return out;
}

let stubs: Stub[] = [];

/** One raw unary call, keeping the status code, the sentence and the retry-after-ms trailer. */
async function call<T>(
  stub: Stub,
  method: string,
  request: object,
  token?: string,
  key?: string,
): Promise<Outcome<T>> {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  if (key) md.set('idempotency-key', key);
  let retryAfter: string | undefined;
  try {
    const ok = await unary<T>(stub, method, request, {
      metadata: md,
      deadlineMs: 10_000,
      onMetadata: (m) => {
        const v = m.get('retry-after-ms')[0];
        if (typeof v === 'string') retryAfter = v;
      },
    });
    return { ok };
  } catch (err) {
    return { code: codeOf(err), details: (err as grpc.ServiceError).details, retryAfter };
  }
}

describe('e2e: rate limits hold cluster-wide (3 replicas)', () => {
  let h: Harness | undefined;
  beforeAll(async () => {
    h = await startCluster({ size: 3 });
    const { ChatService } = services();
    stubs = h.addresses().map((a) => new ChatService(a, grpc.credentials.createInsecure()));
  }, 120_000);
  afterAll(async () => {
    for (const s of stubs) s.close();
    await h?.destroy();
  });

  it('6 failed logins spread over 3 replicas: the sixth, and then any Login for that name, is RESOURCE_EXHAUSTED with retry-after-ms', async () => {
    await withReport(
      () => h,
      async () => {
        const signup = await call(stubs[0], 'Signup', {
          username: 'Mallory',
          nickname: 'M',
          password: 'the right password',
        });
        expect(signup.code).toBeUndefined();
        const attempts: Outcome<unknown>[] = [];
        for (let i = 0; i < 6; i++) {
          // Every replica in turn, and the name in varying case: one window per name, cluster-wide.
          const name = i % 2 === 0 ? 'mallory' : 'MALLORY';
          attempts.push(await call(stubs[i % 3], 'Login', { username: name, password: `guess number ${i}` }));
        }
        expect(attempts.slice(0, 5).map((a) => a.code)).toEqual(Array(5).fill(Status.UNAUTHENTICATED));
        const sixth = attempts[5];
        expect(sixth.code).toBe(Status.RESOURCE_EXHAUSTED);
        expect(sixth.details).toMatch(/^Too many failed logins for this username; try again in \d+ s\.$/);
        const wait = Number(sixth.retryAfter);
        expect(wait).toBeGreaterThan(30_000);
        expect(wait).toBeLessThanOrEqual(60_000);
        // The right password, on every replica, is refused too until the window has passed.
        for (const stub of stubs) {
          const right = await call(stub, 'Login', { username: 'Mallory', password: 'the right password' });
          expect(right.code).toBe(Status.RESOURCE_EXHAUSTED);
          expect(Number(right.retryAfter)).toBeGreaterThan(0);
        }
        // Another account is not affected.
        await call(stubs[1], 'Signup', { username: 'trent', nickname: 'T', password: 'trent password' });
        const other = await call<{ token: string }>(stubs[2], 'Login', {
          username: 'trent',
          password: 'trent password',
        });
        expect(other.code).toBeUndefined();
      },
    );
  }, 60_000);

  it('writes beyond the burst are RESOURCE_EXHAUSTED with retry-after-ms; refused writes apply nothing and every digest converges', async () => {
    await withReport(
      () => h,
      async () => {
        for (const [u, p] of [
          ['writer', 'writer password'],
          ['reader', 'reader password'],
        ]) {
          expect(
            (await call(stubs[0], 'Signup', { username: u, nickname: u, password: p })).code,
          ).toBeUndefined();
        }
        const login = await call<{ token: string }>(stubs[1], 'Login', {
          username: 'writer',
          password: 'writer password',
        });
        const token = login.ok?.token as string;
        const chat = await call<{ chat_id: string }>(stubs[2], 'StartChat', { username: 'reader' }, token);
        const chatId = chat.ok?.chat_id as string;
        expect(chatId).toBeTruthy();
        // 100 writes at once, spread over the 3 replicas: the burst is 40 (one token went to StartChat),
        // refilled at 20 per second while they run.
        const started = Date.now();
        const sends = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            write(i % 3, 'SendMessage', { chat_id: chatId, content: `message ${i}` }, token, `send-${i}`),
          ),
        );
        const seconds = (Date.now() - started) / 1000;
        const accepted = sends.filter((s) => s.code === undefined);
        const refused = sends.filter((s) => s.code === Status.RESOURCE_EXHAUSTED);
        const others = sends.filter((s) => s.code !== undefined && s.code !== Status.RESOURCE_EXHAUSTED);
        expect(
          others.map((s) => `${s.code} ${s.details}`),
          'every write is accepted or refused by the limit',
        ).toEqual([]);
        expect(refused.length).toBeGreaterThan(0);
        expect(accepted.length).toBeLessThanOrEqual(39 + Math.ceil(20 * seconds) + 1);
        expect(accepted.length).toBeGreaterThanOrEqual(39);
        for (const r of refused) {
          expect(r.details).toMatch(/^Too many writes; the limit is 20 per second\. Try again in \d+ ms\.$/);
          const wait = Number(r.retryAfter);
          expect(wait).toBeGreaterThan(0);
          expect(wait).toBeLessThanOrEqual(50);
        }
        // Mixed with other users' writes and reads while this one is limited.
        const readerLogin = await call<{ token: string }>(stubs[0], 'Login', {
          username: 'reader',
          password: 'reader password',
        });
        const reader = readerLogin.ok?.token as string;
        for (let i = 0; i < 5; i++) {
          const r = await call(
            stubs[i % 3],
            'SendMessage',
            { chat_id: chatId, content: `reply ${i}` },
            reader,
          );
          expect(r.code).toBeUndefined();
        }
        await expectConverged(h as Harness);
        // Exactly the acknowledged writes are in the chat, on every replica (the writer's own messages are
        // all visible to the writer).
        const page = await call<{ messages: { sender: string }[] }>(
          stubs[0],
          'GetMessages',
          { chat_id: chatId, limit: 200 },
          token,
        );
        expect(page.code).toBeUndefined();
        expect(page.ok?.messages.filter((m) => m.sender === 'writer')).toHaveLength(accepted.length);
        await expectConverged(h as Harness);
      },
    );
  }, 90_000);
});
