// Leader: appends a noop of its term, invokes the replication actor (which exists only while this
// state is active), appends proposals, serves ReadIndex through the replication actor, and transfers
// leadership on request.

import type { ReplicationInput } from '../replication/progress.js';
import { replicaSetup } from './setup.js';
import { staleRule, termRule, voteTransitions } from './transitions.js';

export const leader = replicaSetup.createStateConfig({
  entry: ['becomeLeader', { type: 'announce', params: { role: 'leader' } }],
  exit: 'leaveLeadership',
  invoke: {
    id: 'replication',
    src: 'replication',
    input: ({ context }): ReplicationInput => ({
      id: context.id,
      term: context.term,
      // The log's terms as the new leader holds them (its noop included): a leader only appends
      // entries of its own term, so from here on `appended` (the last index) keeps them current.
      snapshotIndex: context.snapshotIndex,
      snapshotTerm: context.snapshotTerm,
      termRuns: context.termRuns,
      config: context.config,
      commitIndex: context.commitIndex,
      lastIndex: context.termStartIndex,
      termStartIndex: context.termStartIndex,
      selfMatch: context.durableIndex,
      timing: context.timing,
      maxBatch: context.maxBatch,
      maxInflight: context.maxInflight,
    }),
  },
  // Removing the leader: it keeps leading until the config without it commits, then steps down.
  always: { guard: 'leaderRemoved', target: 'follower' },
  initial: 'active',
  states: {
    active: {
      // The replication actor starts sending on its first `appended` (the noop, written by now).
      entry: 'kickReplication',
      on: {
        propose: { actions: 'appendProposals' },
        transferLeadership: [
          { guard: 'transferToSelf', actions: 'finishTransferAtOnce' },
          { guard: 'transferTargetInvalid', actions: 'refuseTransfer' },
          { target: 'transferring', actions: 'startTransfer' },
        ],
      },
    },
    transferring: {
      after: {
        transferTimeout: { target: 'active', actions: 'abandonTransfer' },
      },
      on: {
        // No new entries while the target catches up, or it might never be caught up.
        propose: { actions: 'rejectProposalsInTransfer' },
        transferLeadership: { actions: 'refuseTransfer' },
        'replication.transferReady': { actions: 'sendTimeoutNow' },
        'replication.transferFailed': { target: 'active', actions: 'abandonTransfer' },
      },
    },
  },
  on: {
    RequestVote: [...voteTransitions('follower')],
    AppendEntries: [...termRule, staleRule],
    InstallSnapshot: [...termRule, staleRule],
    TimeoutNow: [...termRule],
    RequestVoteResponse: [...termRule],
    AppendEntriesResponse: [...termRule, { guard: 'isStale' }, { actions: 'forwardToReplication' }],
    InstallSnapshotResponse: [...termRule, { guard: 'isStale' }, { actions: 'forwardToReplication' }],
    persisted: { actions: 'forwardPersisted' },
    logCompacted: { actions: 'forwardCompacted' },
    readIndex: { actions: 'startRead' },
    // A follower's read: confirmed by the same quorum round as the leader's own (batched with them).
    ReadIndexRequest: [...termRule, staleRule, { actions: 'startRead' }],
    ReadIndexResponse: [...termRule],
    'replication.output': { actions: 'replicationOutput' },
    'replication.quorumLost': { target: 'follower' },
  },
});
