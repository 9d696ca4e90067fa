// The chat actor: routes client calls by the replica's role, and hands each one to the actor that does
// its work. It runs in the replica's actor system (systemId `chat`, beside the replica and its
// replication actor; src/server/raft-router.ts starts it there), so the design card's sentence holds
// as written: only the `leader` state invokes the `propose` actor, the write path into replication.
//   leader     - invokes `propose` (prepare the write, propose it to the replica, which appends it and
//                hands it to its replication actor; answer once applied) and `readIndex` (ReadIndex,
//                then the query; it never proposes);
//   follower   - invokes `forward` (the whole write to the known leader) and `readIndex` (the replica
//                asks the leader for the read index, waits until it has applied through it, and serves
//                from its own tables);
//   leaderless - invokes nothing: calls are buffered for a short `leaderWait`, then refused
//                (`unavailable`, the client retries);
//   stopped    - the host shut down: what is buffered is refused, nothing more is taken.
//
// The path actors are injected by the host with `.provide({ actors })` (src/server/chat-call-actors.ts):
// the machine does no I/O, reads no clock and draws no random numbers. Each exists exactly while its
// state is active, like the replication actor in the replica's leader state, and takes calls as `call`
// events; the work it starts for a call answers that call's caller when it settles, so the host keeps
// no table of calls. A role change stops the path actors of the old state, not the work they started:
// a call taken keeps its own outcome (the proposal's, the forward's, the read's). One long-lived actor
// per path rather than one actor per call: an XState actor per call cost ~110 us of CPU per call,
// against ~8 us for the whole routing step (see docs/design/write-path.md).
// The machine learns roles from the replica's own `roleChanged` emissions, through the `roles` actor.

import { type AnyEventObject, assign, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { NodeId, Role } from '../protocol.js';

/** A client call as the chat actor sees it: its kind decides its route; the rest is the host's. */
export interface ChatCall {
  kind: 'write' | 'read';
}

/** What a path actor receives: a call to take (and, for `forward`, the leader to hand it to). */
export interface CallEvent {
  type: 'call';
  call: ChatCall;
  leaderId: NodeId | null;
}

export interface RoleChangedEvent {
  type: 'roleChanged';
  role: Role;
  term: number;
  leaderId: NodeId | null;
}

export type ChatEvent =
  | { type: 'request'; call: ChatCall }
  | RoleChangedEvent
  /** The host shuts down: refuse what waits, take nothing more. */
  | { type: 'stop' };

/** Why a call was refused: no leader became known within leaderWait, or the host stopped. */
export type UnavailableReason = 'noLeader' | 'stopped';

/** The only effect the machine emits: a call it refuses without work (the host answers UNAVAILABLE). */
export interface ChatEffect {
  type: 'unavailable';
  call: ChatCall;
  reason: UnavailableReason;
}

/** The path actors the host provides (the machine's `propose`, `readIndex` and `forward` sources). */
export const PATH_ACTORS = ['propose', 'readIndex', 'forward'] as const;
export type PathActor = (typeof PATH_ACTORS)[number];

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
  buffered: { call: ChatCall; period: number }[];
  period: number;
}

/** A path actor the host did not provide: it takes nothing (calls routed to it would hang; tests see). */
const unprovided = fromCallback<CallEvent>(() => undefined);

const callOf = (event: ChatEvent): ChatCall => (event as { call: ChatCall }).call;

export const chatMachine = setup({
  types: {
    context: {} as ChatContext,
    events: {} as ChatEvent,
    input: {} as ChatInput,
    emitted: {} as ChatEffect,
  },
  actors: {
    /** Leader only: prepare the write, propose it to the replica, answer with the applied result. */
    propose: unprovided,
    /** Leader or follower: wait for ReadIndex here, then run the query on the local tables. */
    readIndex: unprovided,
    /** Follower only: hand the whole write to the leader and answer with its answer. */
    forward: unprovided,
    /** The replica's role feed: sends `roleChanged` (the current role first, then each change). */
    roles: fromCallback<AnyEventObject>(() => undefined),
  },
  delays: {
    leaderWait: ({ context }) => context.leaderWaitMs,
  },
  guards: {
    isLeader: ({ event }) => event.type === 'roleChanged' && event.role === 'leader',
    knowsLeader: ({ event }) =>
      event.type === 'roleChanged' && event.role !== 'leader' && event.leaderId !== null,
    isWrite: ({ event }) => event.type === 'request' && event.call.kind === 'write',
  },
  actions: {
    setLeader: assign({
      leaderId: ({ event }) => (event.type === 'roleChanged' ? event.leaderId : null),
    }),
    propose: sendTo(
      'propose',
      ({ event }): CallEvent => ({ type: 'call', call: callOf(event), leaderId: null }),
    ),
    readIndex: sendTo(
      'readIndex',
      ({ event }): CallEvent => ({ type: 'call', call: callOf(event), leaderId: null }),
    ),
    forward: sendTo(
      'forward',
      ({ context, event }): CallEvent => ({
        type: 'call',
        call: callOf(event),
        leaderId: context.leaderId,
      }),
    ),
    buffer: assign({
      buffered: ({ context, event }) =>
        event.type === 'request'
          ? [...context.buffered, { call: event.call, period: context.period }]
          : context.buffered,
    }),
    /** Refuse calls that have waited at least one full leaderWait period; keep the newer ones. */
    expireBuffered: enqueueActions(({ context, enqueue }) => {
      for (const b of context.buffered) {
        if (b.period < context.period)
          enqueue.emit({ type: 'unavailable', call: b.call, reason: 'noLeader' });
      }
      enqueue.assign({
        buffered: context.buffered.filter((b) => b.period >= context.period),
        period: context.period + 1,
      });
    }),
    routeBuffered: enqueueActions(({ context, enqueue }) => {
      for (const { call } of context.buffered) {
        enqueue.sendTo(call.kind === 'write' ? 'propose' : 'readIndex', {
          type: 'call',
          call,
          leaderId: null,
        });
      }
      enqueue.assign({ buffered: [] });
    }),
    /** A leader is known elsewhere: buffered writes go to it, buffered reads are served here. */
    forwardBuffered: enqueueActions(({ context, enqueue }) => {
      const leaderId = context.leaderId;
      if (leaderId === null) return;
      for (const { call } of context.buffered) {
        enqueue.sendTo(call.kind === 'write' ? 'forward' : 'readIndex', { type: 'call', call, leaderId });
      }
      enqueue.assign({ buffered: [] });
    }),
    refuseBuffered: enqueueActions(({ context, enqueue }) => {
      for (const b of context.buffered)
        enqueue.emit({ type: 'unavailable', call: b.call, reason: 'stopped' });
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
  invoke: { id: 'roles', src: 'roles' },
  on: {
    stop: { target: '.stopped', actions: 'refuseBuffered' },
  },
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
      invoke: [
        { id: 'forward', src: 'forward' },
        { id: 'readIndex', src: 'readIndex' },
      ],
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
      invoke: [
        { id: 'propose', src: 'propose' },
        { id: 'readIndex', src: 'readIndex' },
      ],
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
    stopped: {
      // Final: the actor completes; its timer, its path actors and the role feed end.
      type: 'final',
    },
  },
});

export type ChatMachine = typeof chatMachine;
