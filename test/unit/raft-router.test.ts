// RaftChatRouter: the chat machine's routing carried out. Leader: the local ChatService; follower: reads
// served locally (ReadIndex), writes forwarded to the leader's address with token, key and deadline; leaderless: wait, then
// UNAVAILABLE. Fakes stand in for ChatService, the forwarder and the RaftNode's role feed; time is a
// SimulatedClock, so no test sleeps.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { ChatError } from '../../src/chat/errors.js';
import type { RoleChange } from '../../src/raft/node.js';
import type { ChatRequest } from '../../src/server/chat-router.js';
import type { ForwardCall } from '../../src/server/forwarder.js';
import { RaftChatRouter } from '../../src/server/raft-router.js';

interface Rig {
  router: RaftChatRouter;
  role(r: RoleChange): void;
  served: ChatRequest['method'][];
  forwarded: [string, ForwardCall][];
  release(): void;
  clock: SimulatedClock;
}

const routers: RaftChatRouter[] = [];
afterEach(() => {
  for (const r of routers.splice(0)) r.stop();
});

function rig(opts: { hold?: boolean; leaderWaitMs?: number; counted?: string[] } = {}): Rig {
  let listener: (r: RoleChange) => void = () => {};
  const served: ChatRequest['method'][] = [];
  const forwarded: [string, ForwardCall][] = [];
  const waiting: (() => void)[] = [];
  const clock = new SimulatedClock();
  const router = new RaftChatRouter({
    id: 'n1',
    clock,
    service: {
      handle: async (method) => {
        served.push(method as ChatRequest['method']);
        if (opts.hold) await new Promise<void>((r) => waiting.push(r));
        return { servedBy: 'local' };
      },
    },
    forwarder: {
      call: async (address, c) => {
        forwarded.push([address, c]);
        return { servedBy: address };
      },
    },
    addressOf: (id) => ({ n1: 'h:1', n2: 'h:2' })[id],
    leaderWaitMs: opts.leaderWaitMs ?? 50,
    onRoleChange: (cb) => {
      listener = cb;
      return () => {};
    },
    onForward: (method) => opts.counted?.push(method),
  });
  routers.push(router);
  return {
    router,
    role: (r) => listener(r),
    served,
    forwarded,
    clock,
    release: () => {
      for (const w of waiting.splice(0)) w();
    },
  };
}

const call = (over: Partial<ChatRequest> = {}): ChatRequest => ({
  method: 'SendMessage',
  request: { chat_id: 'c1', content: 'hi' },
  token: 'tok',
  idempotencyKey: 'k1',
  ...over,
});

/** Let promise callbacks run (no clock involved). */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ChatError);
    return (err as ChatError).code;
  }
  throw new Error('expected a rejection');
}

describe('RaftChatRouter', () => {
  it('serves calls locally while this replica leads', async () => {
    const r = rig();
    r.role({ role: 'leader', term: 2, leaderId: 'n1' });
    await expect(r.router.handle(call())).resolves.toEqual({ servedBy: 'local' });
    await expect(r.router.handle(call({ method: 'ListChats' }))).resolves.toEqual({ servedBy: 'local' });
    expect(r.served).toEqual(['SendMessage', 'ListChats']);
    expect(r.forwarded).toEqual([]);
  });

  it('forwards the whole call to the leader with token, key and deadline', async () => {
    const r = rig();
    r.role({ role: 'follower', term: 2, leaderId: 'n2' });
    const deadline = r.clock.now() + 5000;
    await expect(r.router.handle(call({ deadline }))).resolves.toEqual({ servedBy: 'h:2' });
    expect(r.served).toEqual([]);
    expect(r.forwarded).toEqual([
      [
        'h:2',
        {
          service: 'chat',
          method: 'SendMessage',
          request: { chat_id: 'c1', content: 'hi' },
          authorization: 'Bearer tok',
          idempotencyKey: 'k1',
          deadline,
        },
      ],
    ]);
  });

  it('as a follower, serves reads here (ReadIndex) and forwards only writes, counting each forward', async () => {
    const counted: string[] = [];
    const r = rig({ counted });
    r.role({ role: 'follower', term: 1, leaderId: 'n2' });
    for (const method of ['ListChats', 'ListUsers', 'GetSettings'] as const) {
      await expect(r.router.handle(call({ method, request: {} }))).resolves.toEqual({ servedBy: 'local' });
    }
    await expect(r.router.handle(call())).resolves.toEqual({ servedBy: 'h:2' });
    expect(r.served).toEqual(['ListChats', 'ListUsers', 'GetSettings']);
    expect(r.forwarded.map(([, c]) => c.method)).toEqual(['SendMessage']);
    expect(counted).toEqual(['SendMessage']);
  });

  it('never forwards a call a second time', async () => {
    const r = rig();
    r.role({ role: 'follower', term: 2, leaderId: 'n2' });
    expect(await code(r.router.handle(call({ forwarded: true })))).toBe(grpc.status.UNAVAILABLE);
    expect(r.forwarded).toEqual([]);
  });

  it('without a leader a call waits for one, and is served when one appears', async () => {
    const r = rig({ leaderWaitMs: 5000 });
    let settledEarly = false;
    const p = r.router.handle(call());
    p.finally(() => {
      settledEarly = true;
    });
    r.clock.increment(4999);
    await flushMicrotasks();
    expect(settledEarly).toBe(false);
    expect(r.served).toEqual([]);
    expect(r.forwarded).toEqual([]);
    r.role({ role: 'follower', term: 3, leaderId: 'n2' });
    await expect(p).resolves.toEqual({ servedBy: 'h:2' });
  });

  it('without a leader for the whole wait, a call is UNAVAILABLE', async () => {
    const r = rig({ leaderWaitMs: 30 });
    const p = r.router.handle(call());
    // The machine refuses a call once it waited one full leaderWait period: at most two periods.
    for (let ms = 0; ms < 60; ms++) r.clock.increment(1);
    expect(await code(p)).toBe(grpc.status.UNAVAILABLE);
  });

  it('a caller deadline that passes while waiting for a leader is DEADLINE_EXCEEDED', async () => {
    const r = rig({ leaderWaitMs: 5000 });
    const p = r.router.handle(call({ deadline: r.clock.now() + 30 }));
    r.clock.increment(30);
    expect(await code(p)).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('a retry with the same key joins the call still running instead of running it again', async () => {
    const r = rig({ hold: true });
    r.role({ role: 'leader', term: 2, leaderId: 'n1' });
    const first = r.router.handle(call());
    const retry = r.router.handle(call());
    const otherKey = r.router.handle(call({ idempotencyKey: 'k2' }));
    // Routing a call to the local service is synchronous: both distinct calls already run, the retry joined.
    await flushMicrotasks();
    expect(r.served).toEqual(['SendMessage', 'SendMessage']);
    r.release();
    await expect(Promise.all([first, retry, otherKey])).resolves.toHaveLength(3);
  });

  it('after stop() every call is UNAVAILABLE', async () => {
    const r = rig({ leaderWaitMs: 5000 });
    const waiting = r.router.handle(call());
    r.router.stop();
    expect(await code(waiting)).toBe(grpc.status.UNAVAILABLE);
    expect(await code(r.router.handle(call()))).toBe(grpc.status.UNAVAILABLE);
  });
});
