// The chat actor: routes client calls by the replica's role. Routing is structural (one state per
// situation), so the diagram shows it:
//   leader     - writes go to the replica's `propose` (the replication path), reads through ReadIndex;
//   follower   - writes are forwarded to the known leader; reads are served here through ReadIndex (the
//                replica asks the leader for the read index and waits until it has applied up to it);
//   leaderless - calls are buffered for a short `leaderWait`, then refused with UNAVAILABLE.
// It learns roles from the replica's `roleChanged` effects, which the host relays as events.

import { assign, emit, enqueueActions, setup } from 'xstate';
import type { NodeId, Role } from '../protocol.js';

export interface ChatRequest {
  requestId: string;
  kind: 'write' | 'read';
}

export type ChatEvent =
  | { type: 'request'; request: ChatRequest }
  | { type: 'roleChanged'; role: Role; term: number; leaderId: NodeId | null };

export type ChatEffect =
  /** Leader: hand the write to the replica (propose) and answer once applied. */
  | { type: 'propose'; requestId: string }
  /** Leader or follower: serve the read here once ReadIndex allows it (never forwarded). */
  | { type: 'readIndex'; requestId: string }
  /** Follower: forward the whole write to the leader. */
  | { type: 'forward'; requestId: string; leaderId: NodeId }
  /** No leader within leaderWait: answer UNAVAILABLE (the client retries). */
  | { type: 'unavailable'; requestId: string };

export interface ChatInput {
  id: NodeId;
  /** How long a call may wait for a leader to be known. */
  leaderWaitMs: number;
}

export interface ChatContext {
  id: NodeId;
  leaderWaitMs: number;
  leaderId: NodeId | null;
  /** Calls waiting for a leader, tagged with the leaderWait period they arrived in. */
  buffered: { request: ChatRequest; period: number }[];
  period: number;
}

function route(request: ChatRequest): ChatEffect {
  return request.kind === 'write'
    ? { type: 'propose', requestId: request.requestId }
    : { type: 'readIndex', requestId: request.requestId };
}

export const chatMachine = setup({
  types: {
    context: {} as ChatContext,
    events: {} as ChatEvent,
    input: {} as ChatInput,
    emitted: {} as ChatEffect,
  },
  delays: {
    leaderWait: ({ context }) => context.leaderWaitMs,
  },
  guards: {
    isLeader: ({ event }) => event.type === 'roleChanged' && event.role === 'leader',
    knowsLeader: ({ event }) =>
      event.type === 'roleChanged' && event.role !== 'leader' && event.leaderId !== null,
    isWrite: ({ event }) => event.type === 'request' && event.request.kind === 'write',
  },
  actions: {
    setLeader: assign({
      leaderId: ({ event }) => (event.type === 'roleChanged' ? event.leaderId : null),
    }),
    propose: emit(({ event }) => ({
      type: 'propose' as const,
      requestId: event.type === 'request' ? event.request.requestId : '',
    })),
    readIndex: emit(({ event }) => ({
      type: 'readIndex' as const,
      requestId: event.type === 'request' ? event.request.requestId : '',
    })),
    forward: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'request' || context.leaderId === null) return;
      enqueue.emit({ type: 'forward', requestId: event.request.requestId, leaderId: context.leaderId });
    }),
    buffer: assign({
      buffered: ({ context, event }) =>
        event.type === 'request'
          ? [...context.buffered, { request: event.request, period: context.period }]
          : context.buffered,
    }),
    /** Refuse calls that have waited at least one full leaderWait period; keep the newer ones. */
    expireBuffered: enqueueActions(({ context, enqueue }) => {
      const expired = context.buffered.filter((b) => b.period < context.period);
      for (const b of expired) enqueue.emit({ type: 'unavailable', requestId: b.request.requestId });
      enqueue.assign({
        buffered: context.buffered.filter((b) => b.period >= context.period),
        period: context.period + 1,
      });
    }),
    routeBuffered: enqueueActions(({ context, enqueue }) => {
      for (const b of context.buffered) enqueue.emit(route(b.request));
      enqueue.assign({ buffered: [] });
    }),
    /** A leader is known elsewhere: buffered writes go to it, buffered reads are served here. */
    forwardBuffered: enqueueActions(({ context, enqueue }) => {
      const leaderId = context.leaderId;
      if (leaderId === null) return;
      for (const b of context.buffered) {
        enqueue.emit(
          b.request.kind === 'read'
            ? { type: 'readIndex', requestId: b.request.requestId }
            : { type: 'forward', requestId: b.request.requestId, leaderId },
        );
      }
      enqueue.assign({ buffered: [] });
    }),
  },
}).createMachine({
  id: 'chat',
  context: ({ input }) => ({
    id: input.id,
    leaderWaitMs: input.leaderWaitMs,
    leaderId: null,
    buffered: [],
    period: 0,
  }),
  initial: 'leaderless',
  states: {
    leaderless: {
      after: {
        leaderWait: { target: 'leaderless', reenter: true, actions: 'expireBuffered' },
      },
      on: {
        request: { actions: 'buffer' },
        roleChanged: [
          { guard: 'isLeader', target: 'leader', actions: 'setLeader' },
          { guard: 'knowsLeader', target: 'follower', actions: 'setLeader' },
        ],
      },
    },
    follower: {
      entry: 'forwardBuffered',
      on: {
        request: [{ guard: 'isWrite', actions: 'forward' }, { actions: 'readIndex' }],
        roleChanged: [
          { guard: 'isLeader', target: 'leader', actions: 'setLeader' },
          { guard: 'knowsLeader', actions: 'setLeader' },
          { target: 'leaderless', actions: 'setLeader' },
        ],
      },
    },
    leader: {
      entry: 'routeBuffered',
      on: {
        request: [{ guard: 'isWrite', actions: 'propose' }, { actions: 'readIndex' }],
        roleChanged: [
          { guard: 'isLeader', actions: 'setLeader' },
          { guard: 'knowsLeader', target: 'follower', actions: 'setLeader' },
          { target: 'leaderless', actions: 'setLeader' },
        ],
      },
    },
  },
});

export type ChatMachine = typeof chatMachine;
