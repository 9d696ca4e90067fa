// Test doubles for the chat actor's path actors (propose, readIndex, forward): each records the calls
// it takes, so tests see which path a call took, in which state, and to which leader.
import { fromCallback } from 'xstate';
import type { CallEvent, ChatCall, PathActor } from '../../machines/chat/chat.machine.js';

export interface TakenCall {
  actor: PathActor;
  call: ChatCall;
  leaderId: string | null;
}

/** `onTake`: told of each call as it is taken (the model replay records routes per step with it). */
export function pathDoubles(onTake?: (t: TakenCall) => void) {
  const taken: TakenCall[] = [];
  const path = (actor: PathActor) =>
    fromCallback<CallEvent>(({ receive }) => {
      receive((e) => {
        const t = { actor, call: e.call, leaderId: e.leaderId };
        taken.push(t);
        onTake?.(t);
      });
    });
  const actors = { propose: path('propose'), readIndex: path('readIndex'), forward: path('forward') };
  return { actors, taken };
}
