// A stand-in for the replica actor, for tests of the chat actor's wiring (RaftChatRouter): the root
// of an actor system on a SimulatedClock that emits `roleChanged` when told to, as the replica machine
// does when its role, term or leader changes. The chat actor joins its system as RaftNode's would.
import { type Actor, SimulatedClock, createActor, emit, setup } from 'xstate';
import type { RoleChangedEvent } from '../../machines/chat/chat.machine.js';
import type { RoleChange } from '../../src/raft/node.js';
import type { ReplicaLink } from '../../src/server/raft-router.js';

const fakeReplicaMachine = setup({
  types: {
    events: {} as { type: 'setRole' } & RoleChange,
    emitted: {} as RoleChangedEvent,
  },
  actions: {
    announce: emit(({ event }) => ({
      type: 'roleChanged' as const,
      role: event.role,
      term: event.term,
      leaderId: event.leaderId,
    })),
  },
}).createMachine({ id: 'replica', on: { setRole: { actions: 'announce' } } });

export class FakeReplica implements ReplicaLink {
  readonly clock = new SimulatedClock();
  readonly actor: Actor<typeof fakeReplicaMachine>;
  private role: RoleChange = { role: 'follower', term: 0, leaderId: null };

  constructor() {
    this.actor = createActor(fakeReplicaMachine, { clock: this.clock, systemId: 'replica' });
    this.actor.start();
  }

  status(): RoleChange {
    return this.role;
  }

  /** The replica's role changes: it emits roleChanged (the chat actor hears it in the same turn). */
  setRole(r: RoleChange): void {
    this.role = r;
    this.actor.send({ type: 'setRole', ...r });
  }

  stop(): void {
    this.actor.stop();
  }
}
