// Pre-candidate (thesis §9.6): asks whether it could win before bumping its term, so a partitioned or
// rejoining node cannot disrupt a working leader by inflating terms.

import { replicaSetup } from './setup.js';
import { staleRule, termRule, voteTransitions } from './transitions.js';

export const preCandidate = replicaSetup.createStateConfig({
  entry: ['armElectionTimer', 'startPreVote', { type: 'announce', params: { role: 'candidate' } }],
  always: [
    { guard: 'preVoteWon', target: 'candidate' },
    { guard: 'preVoteLost', target: 'follower' },
  ],
  after: {
    electionTimeout: { target: 'preCandidate', reenter: true },
  },
  on: {
    RequestVote: [...voteTransitions('follower')],
    RequestVoteResponse: [...termRule, { guard: 'isPreVoteResponse', actions: 'recordVote' }],
    AppendEntries: [...termRule, staleRule, { target: 'follower', actions: 'handleAppend' }],
    InstallSnapshot: [...termRule, staleRule, { target: 'follower', actions: 'handleSnapshotChunk' }],
    TimeoutNow: [
      ...termRule,
      { guard: 'transferRequested', target: 'candidate', actions: 'markTransferCampaign' },
    ],
    AppendEntriesResponse: [...termRule],
    InstallSnapshotResponse: [...termRule],
    ReadIndexRequest: [...termRule, staleRule, { actions: 'refuseReadIndex' }],
    ReadIndexResponse: [...termRule],
  },
});
