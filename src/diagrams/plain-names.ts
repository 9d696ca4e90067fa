// Plain words for the machines' events, for people learning Raft: the inspector's feed says
// "election timeout", not `xstate.after.electionTimeout`, and the overview diagrams label their edges
// with them. Pure data (type-only imports), so the server, the diagrams and the tests share it.
//
// EVENTS is typed as a Record over every event type of the three machines: a new event without a
// plain name fails the typecheck; test/unit/plain-names.test.ts also checks every trigger and timer
// the generated charts show.

import type { ChatEvent } from '../../machines/chat/chat.machine.js';
import type { ReplicaMachineEvent } from '../../machines/replica/types.js';
import type { ReplicationEvent } from '../../machines/replication/replication.machine.js';

type EventType = ReplicaMachineEvent['type'] | ReplicationEvent['type'] | ChatEvent['type'];

export const EVENTS: Record<EventType, string> = {
  // Messages between replicas.
  RequestVote: 'vote request',
  RequestVoteResponse: 'vote reply',
  AppendEntries: 'append entries',
  AppendEntriesResponse: 'append reply',
  InstallSnapshot: 'snapshot chunk',
  InstallSnapshotResponse: 'snapshot reply',
  TimeoutNow: 'timeout now (transfer)',
  ReadIndexRequest: 'read index request',
  ReadIndexResponse: 'read index reply',
  // From the replica's host.
  propose: 'client write',
  persisted: 'log saved',
  applied: 'entries applied',
  readIndex: 'client read',
  transferLeadership: 'transfer leadership',
  snapshotInstalled: 'snapshot installed',
  logCompacted: 'log compacted',
  peerLost: 'connection to a peer lost',
  // From the leader's replication actor to the replica.
  'replication.output': 'replication output',
  'replication.quorumLost': 'quorum lost',
  'replication.transferReady': 'transfer target caught up',
  'replication.transferFailed': 'transfer failed',
  // From the replica to its replication actor.
  appended: 'entries appended',
  selfPersisted: 'own log saved',
  compacted: 'log compacted',
  config: 'configuration changed',
  transfer: 'transfer leadership',
  transferAbort: 'transfer abandoned',
  // The chat router.
  request: 'client call',
  roleChanged: 'role changed',
  stop: 'shutting down',
};

/** The machines' named timers (`after: { electionTimeout: ... }`). */
export const TIMERS: Record<string, string> = {
  electionTimeout: 'election timeout',
  leaseTimeout: 'leader lease over',
  transferTimeout: 'transfer timeout',
  heartbeat: 'heartbeat timer',
  checkQuorum: 'quorum check',
  leaderWait: 'leader wait over',
};

/** XState's own events. */
const XSTATE: Record<string, string> = {
  'xstate.init': 'start',
};

const AFTER = 'xstate.after.';

/**
 * Plain words for an event type as XState reports it: `xstate.after.electionTimeout.replica.follower`
 * → "election timeout", `RequestVoteResponse` → "vote reply". An unknown type is returned as it is.
 */
export function plainEvent(type: string): string {
  if (type.startsWith(AFTER)) {
    const delay = type.slice(AFTER.length).split('.')[0] ?? '';
    return TIMERS[delay] ?? `after ${delay}`;
  }
  return (EVENTS as Record<string, string>)[type] ?? XSTATE[type] ?? type;
}

/** Plain words for a chart trigger (`after electionTimeout`, `always`, or an event type). */
export function plainTrigger(trigger: string): string {
  if (trigger === 'always') return 'condition met';
  if (trigger.startsWith('after ')) return plainEvent(`${AFTER}${trigger.slice(6)}`);
  return plainEvent(trigger);
}
