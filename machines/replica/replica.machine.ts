// The replica machine: one Raft server as a pure XState v5 machine. Its states are the roles (each in
// its own file); it is driven only by events (messages, timers, storage completions, client calls) and
// its effects leave only through emit() of the Effect union (machines/protocol.ts).

import { candidate } from './candidate.js';
import { initialContext } from './context.js';
import { follower } from './follower.js';
import { leader } from './leader.js';
import { learner } from './learner.js';
import { preCandidate } from './pre-candidate.js';
import { replicaSetup } from './setup.js';

export const replicaMachine = replicaSetup.createMachine({
  id: 'replica',
  context: ({ input }) => initialContext(input),
  initial: 'follower',
  states: { follower, learner, preCandidate, candidate, leader },
  on: {
    persisted: { actions: 'notePersisted' },
    applied: { actions: 'noteApplied' },
    snapshotInstalled: { actions: 'snapshotInstalled' },
    logCompacted: { actions: 'noteCompacted' },
    // Non-leaders refuse client calls with the leader they know (the chat layer forwards).
    propose: { actions: 'rejectProposals' },
    readIndex: { actions: 'rejectRead' },
    transferLeadership: { actions: 'refuseTransfer' },
  },
});

export type ReplicaMachine = typeof replicaMachine;
