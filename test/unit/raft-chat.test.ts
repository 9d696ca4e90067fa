// The chat actor routes by role: leader -> the propose / readIndex path actors, follower -> forward
// writes and serve reads here through readIndex, leaderless -> buffer for leaderWait, then UNAVAILABLE.
// The path actors are test doubles that record what they take (test/support/chat-call-doubles.ts).

import { describe, expect, it } from 'vitest';
import { SimulatedClock, createActor } from 'xstate';
import { type ChatCall, type ChatEffect, chatMachine } from '../../machines/chat/chat.machine.js';
import { pathDoubles } from '../support/chat-call-doubles.js';

type Route = { type: string; requestId: string; leaderId?: string };
/** A call as the tests name it (the machine sees only its kind). */
const c = (requestId: string, kind: ChatCall['kind']): ChatCall => ({ requestId, kind }) as ChatCall;
const idOf = (c: ChatCall) => (c as ChatCall & { requestId: string }).requestId;

function start() {
  const clock = new SimulatedClock();
  const doubles = pathDoubles();
  const actor = createActor(chatMachine.provide({ actors: doubles.actors }), {
    clock,
    input: { id: 'n1', leaderWaitMs: 100 },
  });
  const refused: Route[] = [];
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.on('*', (e) =>
    refused.push({ type: (e as ChatEffect).type, requestId: idOf((e as ChatEffect).call) }),
  );
  actor.start();
  // Every route: calls taken by a path actor (with the leader a forward goes to), then refusals.
  const routes = (): Route[] => [
    ...doubles.taken.map((t) => ({
      type: t.actor,
      requestId: idOf(t.call),
      ...(t.actor === 'forward' ? { leaderId: t.leaderId as string } : {}),
    })),
    ...refused,
  ];
  return { clock, actor, routes, errors, taken: doubles.taken };
}

describe('chat actor', () => {
  it('as leader: writes are proposed, reads go through ReadIndex', () => {
    const { actor, routes, errors } = start();
    actor.send({ type: 'roleChanged', role: 'leader', term: 1, leaderId: 'n1' });
    expect(actor.getSnapshot().value).toBe('leader');
    actor.send({ type: 'request', call: c('w', 'write') });
    actor.send({ type: 'request', call: c('r', 'read') });
    expect(routes()).toEqual([
      { type: 'propose', requestId: 'w' },
      { type: 'readIndex', requestId: 'r' },
    ]);
    expect(errors).toEqual([]);
  });

  it('as follower: writes are forwarded to the known leader, reads stay here (ReadIndex), and it follows leader changes', () => {
    const { actor, routes } = start();
    actor.send({ type: 'roleChanged', role: 'follower', term: 1, leaderId: 'n2' });
    expect(actor.getSnapshot().value).toBe('follower');
    actor.send({ type: 'request', call: c('a', 'write') });
    actor.send({ type: 'roleChanged', role: 'follower', term: 2, leaderId: 'n3' });
    actor.send({ type: 'request', call: c('b', 'read') });
    actor.send({ type: 'request', call: c('c', 'write') });
    expect(routes()).toEqual([
      { type: 'forward', requestId: 'a', leaderId: 'n2' },
      { type: 'readIndex', requestId: 'b' },
      { type: 'forward', requestId: 'c', leaderId: 'n3' },
    ]);
  });

  it('leaderless: buffered reads are served here once a leader is known elsewhere, buffered writes go to it', () => {
    const { actor, routes } = start();
    actor.send({ type: 'request', call: c('r', 'read') });
    actor.send({ type: 'request', call: c('w', 'write') });
    expect(routes()).toEqual([]);
    actor.send({ type: 'roleChanged', role: 'follower', term: 1, leaderId: 'n2' });
    // Each path keeps its calls' order; across paths there is none to keep.
    expect(routes()).toEqual(
      expect.arrayContaining([
        { type: 'readIndex', requestId: 'r' },
        { type: 'forward', requestId: 'w', leaderId: 'n2' },
      ]),
    );
    expect(routes()).toHaveLength(2);
  });

  it('leaderless: buffers, then routes the buffered calls when a leader appears', () => {
    const { actor, routes, clock } = start();
    actor.send({ type: 'request', call: c('a', 'write') });
    clock.increment(50);
    expect(routes()).toEqual([]);
    actor.send({ type: 'roleChanged', role: 'follower', term: 1, leaderId: 'n2' });
    expect(routes()).toEqual([{ type: 'forward', requestId: 'a', leaderId: 'n2' }]);
  });

  it('leaderless: refuses with UNAVAILABLE after a full leaderWait, not before', () => {
    const { actor, routes, clock } = start();
    clock.increment(60);
    actor.send({ type: 'request', call: c('a', 'read') });
    clock.increment(41); // the first period ends: 'a' has waited only 41 ms
    expect(routes()).toEqual([]);
    clock.increment(100);
    expect(routes()).toEqual([{ type: 'unavailable', requestId: 'a' }]);
  });

  it('losing leadership without a known leader makes calls wait again', () => {
    const { actor, routes } = start();
    actor.send({ type: 'roleChanged', role: 'leader', term: 1, leaderId: 'n1' });
    actor.send({ type: 'roleChanged', role: 'candidate', term: 2, leaderId: null });
    expect(actor.getSnapshot().value).toBe('leaderless');
    actor.send({ type: 'request', call: c('x', 'write') });
    expect(routes()).toEqual([]);
    actor.send({ type: 'roleChanged', role: 'leader', term: 2, leaderId: 'n1' });
    expect(routes()).toEqual([{ type: 'propose', requestId: 'x' }]);
  });

  it('each path actor exists only in its states: propose only while leading, forward only while following', () => {
    const { actor } = start();
    const paths = () =>
      Object.keys(actor.getSnapshot().children)
        .filter((k) => k !== 'roles')
        .sort();
    expect(paths()).toEqual([]);
    actor.send({ type: 'roleChanged', role: 'leader', term: 1, leaderId: 'n1' });
    expect(paths()).toEqual(['propose', 'readIndex']);
    actor.send({ type: 'roleChanged', role: 'follower', term: 2, leaderId: 'n2' });
    expect(paths()).toEqual(['forward', 'readIndex']);
    actor.send({ type: 'roleChanged', role: 'candidate', term: 3, leaderId: null });
    expect(paths()).toEqual([]);
  });

  it('a write taken while leading keeps running when leadership is lost; the next write is forwarded', () => {
    const { actor, routes, taken } = start();
    actor.send({ type: 'roleChanged', role: 'leader', term: 1, leaderId: 'n1' });
    actor.send({ type: 'request', call: c('a', 'write') });
    actor.send({ type: 'roleChanged', role: 'follower', term: 2, leaderId: 'n2' });
    actor.send({ type: 'request', call: c('b', 'write') });
    // 'a' was handed to propose once, and only once; it is not re-routed by the role change.
    expect(routes()).toEqual([
      { type: 'propose', requestId: 'a' },
      { type: 'forward', requestId: 'b', leaderId: 'n2' },
    ]);
    expect(taken.filter((t) => idOf(t.call) === 'a')).toHaveLength(1);
  });

  it('stop refuses the buffered calls and completes the actor', () => {
    const { actor, routes } = start();
    actor.send({ type: 'request', call: c('w', 'write') });
    actor.send({ type: 'stop' });
    expect(routes()).toEqual([{ type: 'unavailable', requestId: 'w' }]);
    expect(actor.getSnapshot().status).toBe('done');
  });
});
