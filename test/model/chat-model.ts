// A bounded model of the chat routing actor for @xstate/graph, and its replay on the real actor.
// The abstract state includes the routes the last step took, so the graph itself shows the routing:
// "leader, emitted propose" (a call handed to the propose path actor), "follower, emitted forward",
// "leaderless, emitted unavailable" (a refusal the machine emits). The replay provides recording
// doubles for the path actors (test/support/chat-call-doubles.ts).

import {
  type ActorLogic,
  type AnyMachineSnapshot,
  type InspectionEvent,
  type Snapshot,
  createActor,
  initialTransition,
  transition,
} from 'xstate';
import {
  type ChatCall,
  type ChatEffect,
  type ChatEvent,
  type ChatInput,
  type PathActor,
  chatMachine,
} from '../../machines/chat/chat.machine.js';
import { pathDoubles } from '../support/chat-call-doubles.js';
import { valueString } from './replica-model.js';
import { SteppingClock } from './stepping-clock.js';

export const CHAT_INPUT: ChatInput = { id: 'n1', leaderWaitMs: 100 };
export const LEADER_WAIT_EVENT = 'xstate.after.leaderWait.chat.leaderless';
/** At most this many calls wait for a leader at once (keeps the model finite). */
const MAX_BUFFERED = 2;

export const CHAT_EVENT_KINDS = [
  'write',
  'read',
  'roleChanged(leader)',
  'roleChanged(follower, leader known)',
  'roleChanged(candidate, no leader)',
  'leaderWait',
] as const;
export type ChatEventKind = (typeof CHAT_EVENT_KINDS)[number];
export interface ChatModelEvent {
  type: ChatEventKind;
}

/** Where a step sent a call: to a path actor (forward: with its leader), or refused. */
export type Route =
  | { type: Exclude<PathActor, 'forward'>; requestId: string }
  | { type: 'forward'; requestId: string; leaderId: string | null }
  | { type: 'unavailable'; requestId: string };

export type ChatModelSnapshot = Snapshot<undefined> & {
  chat: AnyMachineSnapshot;
  /** Routes taken by the step that led here, and that step's event. */
  emitted: Route[];
  cause: ChatEventKind | null;
  /** Requests made so far (request ids are r1, r2, ...). */
  requests: number;
};

export function concretizeChat(requests: number, ev: ChatModelEvent): ChatEvent | { type: string } {
  switch (ev.type) {
    case 'write':
    case 'read':
      return { type: 'request', call: { requestId: `r${requests + 1}`, kind: ev.type } as ChatCall };
    case 'roleChanged(leader)':
      return { type: 'roleChanged', role: 'leader', term: 1, leaderId: 'n1' };
    case 'roleChanged(follower, leader known)':
      return { type: 'roleChanged', role: 'follower', term: 1, leaderId: 'n2' };
    case 'roleChanged(candidate, no leader)':
      return { type: 'roleChanged', role: 'candidate', term: 1, leaderId: null };
    case 'leaderWait':
      return { type: LEADER_WAIT_EVENT };
  }
}

export function chatEvents(s: ChatModelSnapshot): ChatModelEvent[] {
  const value = valueString(s.chat.value);
  const buffered = (s.chat.context as { buffered: unknown[] }).buffered.length;
  const out: ChatModelEvent[] = [];
  if (value !== 'leaderless' || buffered < MAX_BUFFERED) out.push({ type: 'write' }, { type: 'read' });
  out.push(
    { type: 'roleChanged(leader)' },
    { type: 'roleChanged(follower, leader known)' },
    { type: 'roleChanged(candidate, no leader)' },
  );
  if (value === 'leaderless') out.push({ type: 'leaderWait' });
  return out;
}

/** Abstract state: where the actor is, what waits (and since which period), what the step emitted. */
export function chatKey(
  chat: AnyMachineSnapshot,
  emitted: readonly Route[],
  cause: ChatEventKind | null,
): string {
  const c = chat.context as {
    leaderId: string | null;
    buffered: { call: { kind: string }; period: number }[];
    period: number;
  };
  const parts = [valueString(chat.value), c.leaderId === null ? 'no leader' : `leader ${c.leaderId}`];
  if (c.buffered.length > 0) {
    // A call that has waited a full period is refused at the next leaderWait.
    const waiting = c.buffered.map((b) => `${b.call.kind}${b.period < c.period ? ' (old)' : ''}`);
    parts.push(`waiting [${waiting.join(',')}]`);
  }
  // Sorted: each path keeps its own calls' order, across paths there is no order to keep.
  if (emitted.length > 0)
    parts.push(
      `emitted [${emitted
        .map((e) => e.type)
        .sort()
        .join(',')}] on ${cause}`,
    );
  return parts.join(', ');
}

export const serializeChatState = (s: ChatModelSnapshot): string => chatKey(s.chat, s.emitted, s.cause);
/** For simple paths: without the last step's effects (those multiply the simple paths ~100-fold). */
export const serializeChatCoarse = (s: ChatModelSnapshot): string => chatKey(s.chat, [], null);
export const serializeChatEvent = (e: ChatModelEvent): string => e.type;

const idOf = (c: ChatCall): string => (c as ChatCall & { requestId: string }).requestId;

/** The routes in a step's actions: `call` events sent to a path actor, and emitted refusals. */
function emittedOf(actions: readonly { type: string; params?: unknown }[]): Route[] {
  const out: Route[] = [];
  for (const a of actions) {
    if (a.type === 'xstate.emit') {
      const e = (a.params as { event: ChatEffect }).event;
      out.push({ type: 'unavailable', requestId: idOf(e.call) });
    } else if (a.type === 'xstate.sendTo') {
      const p = a.params as { to?: { id?: string }; targetId?: string; event: { type: string } };
      if (p.event.type !== 'call') continue;
      const e = p.event as unknown as { call: ChatCall; leaderId: string | null };
      out.push(toRoute((p.to?.id ?? p.targetId) as PathActor, e.call, e.leaderId));
    }
  }
  return out;
}

function toRoute(actor: PathActor, call: ChatCall, leaderId: string | null): Route {
  return actor === 'forward'
    ? { type: 'forward', requestId: idOf(call), leaderId }
    : { type: actor, requestId: idOf(call) };
}

export const chatModelLogic: ActorLogic<ChatModelSnapshot, ChatModelEvent, undefined> = {
  getPersistedSnapshot: (s) => s,
  getInitialSnapshot: () => {
    const [chat, actions] = initialTransition(chatMachine, CHAT_INPUT);
    return {
      status: 'active' as const,
      output: undefined,
      error: undefined,
      chat,
      emitted: emittedOf(actions),
      cause: null,
      requests: 0,
    };
  },
  transition: (s, ev) => {
    const event = concretizeChat(s.requests, ev);
    const [chat, actions] = transition(chatMachine, s.chat as never, event as ChatEvent);
    const requests = ev.type === 'write' || ev.type === 'read' ? s.requests + 1 : s.requests;
    return { ...s, chat, emitted: emittedOf(actions), cause: ev.type, requests };
  },
};

export class ChatReplay {
  readonly clock = new SteppingClock();
  readonly actor;
  readonly errors: unknown[] = [];
  emitted: Route[] = [];
  private cause: ChatEventKind | null = null;
  private requests = 0;
  private processed: string[] = [];

  constructor() {
    // The path actors' doubles report each call they take as this step's route.
    const doubles = pathDoubles((t) => this.emitted.push(toRoute(t.actor, t.call, t.leaderId)));
    const actor = createActor(chatMachine.provide({ actors: doubles.actors }), {
      clock: this.clock,
      input: CHAT_INPUT,
      inspect: (ie: InspectionEvent) => {
        if (ie.type === '@xstate.event' && ie.actorRef === this.actor) this.processed.push(ie.event.type);
      },
    });
    this.actor = actor;
    actor.subscribe({ error: (err) => this.errors.push(err) });
    actor.on('*', (e) => this.emitted.push({ type: 'unavailable', requestId: idOf((e as ChatEffect).call) }));
    actor.start();
  }

  key(): string {
    return chatKey(this.actor.getSnapshot(), this.emitted, this.cause);
  }

  /** The real actor's state in the model's shape (for the model's serializers). */
  snapshot(): ChatModelSnapshot {
    return {
      status: 'active' as const,
      output: undefined,
      error: undefined,
      chat: this.actor.getSnapshot(),
      emitted: this.emitted,
      cause: this.cause,
      requests: this.requests,
    };
  }

  step(ev: ChatModelEvent): void {
    this.emitted = [];
    this.cause = ev.type;
    this.processed = [];
    if (ev.type !== 'leaderWait') {
      this.actor.send(concretizeChat(this.requests, ev) as ChatEvent);
      if (ev.type === 'write' || ev.type === 'read') this.requests++;
      return;
    }
    // Fire the leaderWait timer by letting simulated time pass (bounded).
    for (let i = 0; i < 100 && !this.processed.includes(LEADER_WAIT_EVENT); i++) {
      if (!this.clock.advanceToNext()) break;
    }
    if (!this.processed.includes(LEADER_WAIT_EVENT)) throw new Error('leaderWait did not fire');
  }

  stop(): void {
    this.actor.stop();
  }
}
