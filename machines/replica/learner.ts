// Learner: not a voter in its configuration (a new member catching up, or a removed one). It
// replicates like a follower but never campaigns, and candidates never count its vote.

import { replicaSetup } from './setup.js';
import { staleRule, termRule, voteTransitions } from './transitions.js';

export const learner = replicaSetup.createStateConfig({
  entry: ['armElectionTimer', { type: 'announce', params: { role: 'learner' } }],
  always: { guard: 'isVoter', target: 'follower' },
  after: {
    // No campaign: the timer only expires the leader's lease (so higher-term votes are heard again).
    electionTimeout: { target: 'learner', reenter: true, actions: 'forgetLeader' },
  },
  on: {
    // A learner may still answer votes (etcd: it may have been promoted without knowing yet); a
    // candidate counts only the voters of its own configuration.
    RequestVote: [...voteTransitions('learner')],
    AppendEntries: [...termRule, staleRule, { target: 'learner', reenter: true, actions: 'handleAppend' }],
    InstallSnapshot: [
      ...termRule,
      staleRule,
      { target: 'learner', reenter: true, actions: 'handleSnapshotChunk' },
    ],
    TimeoutNow: [...termRule],
    RequestVoteResponse: [...termRule],
    AppendEntriesResponse: [...termRule],
    InstallSnapshotResponse: [...termRule],
    // Follower reads: ask the known leader for a read index; its answer readies (or refuses) the read.
    readIndex: { actions: 'askLeaderForRead' },
    ReadIndexResponse: [...termRule, { guard: 'isStale' }, { actions: 'readIndexAnswered' }],
    ReadIndexRequest: [...termRule, staleRule, { actions: 'refuseReadIndex' }],
  },
});
