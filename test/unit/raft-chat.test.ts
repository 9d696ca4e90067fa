// The chat actor routes by role: leader -> propose / ReadIndex, follower -> forward writes and serve
// reads here through ReadIndex, leaderless -> buffer for leaderWait, then UNAVAILABLE.

import { describe, expect, it } from 'vitest';
import { SimulatedClock, createActor } from 'xstate';
import { type ChatEffect, chatMachine } from '../../machines/chat/chat.machine.js';

function start() {
  const clock = new SimulatedClock();
  const actor = createActor(chatMachine, { clock, input: { id: 'n1', leaderWaitMs: 100 } });
  const out: ChatEffect[] = [];
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.on('*', (e) => out.push(e as ChatEffect));
  actor.start();
  return { clock, actor, out, errors };
}

describe('chat actor', () => {
  it('as leader: writes are proposed, reads go through ReadIndex', () => {
    const { actor, out, errors } = start();
    actor.send({ type: 'roleChanged', role: 'leader', term: 1, leaderId: 'n1' });
    expect(actor.getSnapshot().value).toBe('leader');
    actor.send({ type: 'request', request: { requestId: 'w', kind: 'write' } });
    actor.send({ type: 'request', request: { requestId: 'r', kind: 'read' } });
    expect(out).toEqual([
      { type: 'propose', requestId: 'w' },
      { type: 'readIndex', requestId: 'r' },
    ]);
    expect(errors).toEqual([]);
  });

  it('as follower: writes are forwarded to the known leader, reads stay here (ReadIndex), and it follows leader changes', () => {
    const { actor, out } = start();
    actor.send({ type: 'roleChanged', role: 'follower', term: 1, leaderId: 'n2' });
    expect(actor.getSnapshot().value).toBe('follower');
    actor.send({ type: 'request', request: { requestId: 'a', kind: 'write' } });
    actor.send({ type: 'roleChanged', role: 'follower', term: 2, leaderId: 'n3' });
    actor.send({ type: 'request', request: { requestId: 'b', kind: 'read' } });
    actor.send({ type: 'request', request: { requestId: 'c', kind: 'write' } });
    expect(out).toEqual([
      { type: 'forward', requestId: 'a', leaderId: 'n2' },
      { type: 'readIndex', requestId: 'b' },
      { type: 'forward', requestId: 'c', leaderId: 'n3' },
    ]);
  });

  it('leaderless: buffered reads are served here once a leader is known elsewhere, buffered writes go to it', () => {
    const { actor, out } = start();
    actor.send({ type: 'request', request: { requestId: 'r', kind: 'read' } });
    actor.send({ type: 'request', request: { requestId: 'w', kind: 'write' } });
    expect(out).toEqual([]);
    actor.send({ type: 'roleChanged', role: 'follower', term: 1, leaderId: 'n2' });
    expect(out).toEqual([
      { type: 'readIndex', requestId: 'r' },
      { type: 'forward', requestId: 'w', leaderId: 'n2' },
    ]);
  });

  it('leaderless: buffers, then routes the buffered calls when a leader appears', () => {
    const { actor, out, clock } = start();
    actor.send({ type: 'request', request: { requestId: 'a', kind: 'write' } });
    clock.increment(50);
    expect(out).toEqual([]);
    actor.send({ type: 'roleChanged', role: 'follower', term: 1, leaderId: 'n2' });
    expect(out).toEqual([{ type: 'forward', requestId: 'a', leaderId: 'n2' }]);
  });

  it('leaderless: refuses with UNAVAILABLE after a full leaderWait, not before', () => {
    const { actor, out, clock } = start();
    clock.increment(60);
    actor.send({ type: 'request', request: { requestId: 'a', kind: 'read' } });
    clock.increment(41); // the first period ends: 'a' has waited only 41 ms
    expect(out).toEqual([]);
    clock.increment(100);
    expect(out).toEqual([{ type: 'unavailable', requestId: 'a' }]);
  });

  it('losing leadership without a known leader makes calls wait again', () => {
    const { actor, out } = start();
    actor.send({ type: 'roleChanged', role: 'leader', term: 1, leaderId: 'n1' });
    actor.send({ type: 'roleChanged', role: 'candidate', term: 2, leaderId: null });
    expect(actor.getSnapshot().value).toBe('leaderless');
    actor.send({ type: 'request', request: { requestId: 'x', kind: 'write' } });
    expect(out).toEqual([]);
    actor.send({ type: 'roleChanged', role: 'leader', term: 2, leaderId: 'n1' });
    expect(out).toEqual([{ type: 'propose', requestId: 'x' }]);
  });
});
