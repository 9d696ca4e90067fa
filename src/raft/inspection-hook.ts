// InspectionHook: the /cluster inspector's observer on a replica's actor system, registered only while
// a page is open (RaftNode.setInspection). While an observer is registered, XState builds and delivers
// an inspection event for every event, microstep, action and snapshot of every actor in the system (the
// replica, its replication actor, the chat actor attached to it); with none registered it builds none,
// whereas an observer that returns at once would still be called for each of them. The observer may be
// set before the actor exists: it is registered when the actor is made (attach).

import type { AnyActorRef, InspectionEvent, Subscription } from 'xstate';

type Observer = (e: InspectionEvent) => void;

export class InspectionHook {
  private observer: Observer | null = null;
  private sub: Subscription | undefined;

  /** Observe `system` (when there is one yet) with `observer` from now on, or with null stop. */
  set(observer: Observer | null, system: AnyActorRef['system'] | undefined): void {
    this.sub?.unsubscribe();
    this.observer = observer;
    this.sub = observer ? system?.inspect(observer) : undefined;
  }

  /** The actor was made: the observer set before it starts observing its system. */
  attach<A extends AnyActorRef>(actor: A): A {
    if (this.observer) this.sub = actor.system.inspect(this.observer);
    return actor;
  }
}
