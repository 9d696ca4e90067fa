// RaftChatRouter: the chat actor, in the replica's actor system, routes by role to its path actors.
// Leader: the local ChatService (writes through propose, reads read-only); follower: reads served
// locally (ReadIndex), writes forwarded to the leader's address with token, key and deadline;
// leaderless: wait, then UNAVAILABLE. Fakes stand in for ChatService, the forwarder and the replica
// actor (test/support/fake-replica.ts, whose roleChanged the chat actor hears); time is the replica
// system's SimulatedClock, so no test sleeps.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimulatedClock } from 'xstate';
import { ChatError } from '../../src/chat/errors.js';
import type { RoleChange } from '../../src/raft/node.js';
import type { ChatRequest } from '../../src/server/chat-router.js';
import type { ForwardCall } from '../../src/server/forwarder.js';
import { RaftChatRouter } from '../../src/server/raft-router.js';
import { FakeReplica } from '../support/fake-replica.js';

interface Rig {
  router: RaftChatRouter;
  role(r: RoleChange): void;
  served: ChatRequest['method'][];
  /** Whether each local call ran read-only (the readIndex path) or not (propose). */
  readOnly: boolean[];
  replica: FakeReplica;
  forwarded: [string, ForwardCall][];
  release(): void;
  clock: SimulatedClock;
}

const routers: RaftChatRouter[] = [];
const replicas: FakeReplica[] = [];
afterEach(() => {
  for (const r of routers.splice(0)) r.stop();
  for (const r of replicas.splice(0)) r.stop();
});

function rig(
  opts: { hold?: boolean; leaderWaitMs?: number; counted?: string[]; attach?: boolean } = {},
): Rig {
  const served: ChatRequest['method'][] = [];
  const readOnly: boolean[] = [];
  const forwarded: [string, ForwardCall][] = [];
  const waiting: (() => void)[] = [];
  const replica = new FakeReplica();
  replicas.push(replica);
  const clock: SimulatedClock = replica.clock;
  const router = new RaftChatRouter({
    id: 'n1',
    clock,
    service: {
      handle: async (method, _request, ctx) => {
        served.push(method as ChatRequest['method']);
        readOnly.push(ctx.readOnly === true);
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
    onForward: (method) => opts.counted?.push(method),
  });
  routers.push(router);
  if (opts.attach !== false) router.attach(replica);
  return {
    router,
    role: (r) => replica.setRole(r),
    served,
    readOnly,
    replica,
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

  it('the chat actor is part of the replica actor system, under systemId chat', () => {
    const r = rig();
    expect(r.replica.actor.system.get('chat')).toBeDefined();
    expect(r.replica.actor.system.get('replica')).toBe(r.replica.actor);
  });

  it('as leader a write takes the propose path and a read the readIndex path, which never proposes', async () => {
    const r = rig();
    r.role({ role: 'leader', term: 2, leaderId: 'n1' });
    await r.router.handle(call());
    await r.router.handle(call({ method: 'GetMessages', request: {} }));
    expect(r.served).toEqual(['SendMessage', 'GetMessages']);
    // The readIndex path runs the service read-only: ChatService refuses to propose for it.
    expect(r.readOnly).toEqual([false, true]);
  });

  it('a call made before the replica started waits for it, then is routed', async () => {
    const r = rig({ attach: false });
    const p = r.router.handle(call());
    await flushMicrotasks();
    r.role({ role: 'leader', term: 1, leaderId: 'n1' });
    r.router.attach(r.replica);
    await expect(p).resolves.toEqual({ servedBy: 'local' });
  });

  it('no call is lost when the role changes mid-call: a write taken as leader gets its own outcome', async () => {
    const r = rig({ hold: true });
    r.role({ role: 'leader', term: 2, leaderId: 'n1' });
    const first = r.router.handle(call());
    await flushMicrotasks();
    expect(r.served).toEqual(['SendMessage']);
    // Leadership moves on while the write runs: the propose path actor stops, the write does not.
    r.role({ role: 'follower', term: 3, leaderId: 'n2' });
    const second = r.router.handle(call({ idempotencyKey: 'k2' }));
    await expect(second).resolves.toEqual({ servedBy: 'h:2' });
    r.release();
    await expect(first).resolves.toEqual({ servedBy: 'local' });
    expect(r.served).toEqual(['SendMessage']);
    expect(r.forwarded.map(([, c]) => c.idempotencyKey)).toEqual(['k2']);
  });

  it('calls waiting for a leader when the replica stops are UNAVAILABLE, and none is served', async () => {
    const r = rig({ leaderWaitMs: 5000 });
    const a = r.router.handle(call());
    const b = r.router.handle(call({ method: 'ListChats', request: {} }));
    r.router.stop();
    expect(await code(a)).toBe(grpc.status.UNAVAILABLE);
    expect(await code(b)).toBe(grpc.status.UNAVAILABLE);
    r.role({ role: 'leader', term: 1, leaderId: 'n1' });
    await flushMicrotasks();
    expect(r.served).toEqual([]);
  });
});
