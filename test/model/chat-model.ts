// A bounded model of the chat routing actor for @xstate/graph, and its replay on the real actor.
// The abstract state includes the effects the last step emitted, so the graph itself shows the
// routing: "leader, emitted propose", "follower, emitted forward", "leaderless, emitted unavailable".

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
  type ChatEffect,
  type ChatEvent,
  type ChatInput,
  chatMachine,
} from '../../machines/chat/chat.machine.js';
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

export type ChatModelSnapshot = Snapshot<undefined> & {
  chat: AnyMachineSnapshot;
  /** Effects emitted by the step that led here, and that step's event. */
  emitted: ChatEffect[];
  cause: ChatEventKind | null;
  /** Requests made so far (request ids are r1, r2, ...). */
  requests: number;
};

export function concretizeChat(requests: number, ev: ChatModelEvent): ChatEvent | { type: string } {
  switch (ev.type) {
    case 'write':
    case 'read':
      return { type: 'request', request: { requestId: `r${requests + 1}`, kind: ev.type } };
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
  emitted: readonly ChatEffect[],
  cause: ChatEventKind | null,
): string {
  const c = chat.context as {
    leaderId: string | null;
    buffered: { request: { kind: string }; period: number }[];
    period: number;
  };
  const parts = [valueString(chat.value), c.leaderId === null ? 'no leader' : `leader ${c.leaderId}`];
  if (c.buffered.length > 0) {
    // A call that has waited a full period is refused at the next leaderWait.
    const waiting = c.buffered.map((b) => `${b.request.kind}${b.period < c.period ? ' (old)' : ''}`);
    parts.push(`waiting [${waiting.join(',')}]`);
  }
  if (emitted.length > 0) parts.push(`emitted [${emitted.map((e) => e.type).join(',')}] on ${cause}`);
  return parts.join(', ');
}

export const serializeChatState = (s: ChatModelSnapshot): string => chatKey(s.chat, s.emitted, s.cause);
/** For simple paths: without the last step's effects (those multiply the simple paths ~100-fold). */
export const serializeChatCoarse = (s: ChatModelSnapshot): string => chatKey(s.chat, [], null);
export const serializeChatEvent = (e: ChatModelEvent): string => e.type;

function emittedOf(actions: readonly { type: string; params?: unknown }[]): ChatEffect[] {
  return actions
    .filter((a) => a.type === 'xstate.emit')
    .map((a) => (a.params as { event: ChatEffect }).event);
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
  emitted: ChatEffect[] = [];
  private cause: ChatEventKind | null = null;
  private requests = 0;
  private processed: string[] = [];

  constructor() {
    const actor = createActor(chatMachine, {
      clock: this.clock,
      input: CHAT_INPUT,
      inspect: (ie: InspectionEvent) => {
        if (ie.type === '@xstate.event' && ie.actorRef === this.actor) this.processed.push(ie.event.type);
      },
    });
    this.actor = actor;
    actor.subscribe({ error: (err) => this.errors.push(err) });
    actor.on('*', (e) => this.emitted.push(e as ChatEffect));
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
