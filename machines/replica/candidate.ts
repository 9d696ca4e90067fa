// Candidate: a new term, a durable vote for itself, RequestVote to every voter. It counts its own vote
// only once that vote is durable (`persisted`), so even a one-member cluster elects itself only then.

import { replicaSetup } from './setup.js';
import { staleRule, termRule, voteTransitions } from './transitions.js';

export const candidate = replicaSetup.createStateConfig({
  entry: ['armElectionTimer', 'startElection', { type: 'announce', params: { role: 'candidate' } }],
  always: [
    { guard: 'electionWon', target: 'leader' },
    { guard: 'electionLost', target: 'follower' },
  ],
  after: {
    // Split vote: try again, through pre-vote.
    electionTimeout: { target: 'preCandidate' },
  },
  on: {
    RequestVote: [...voteTransitions('follower')],
    RequestVoteResponse: [...termRule, { guard: 'isVoteResponse', actions: 'recordVote' }],
    // Another server won this term: follow it.
    AppendEntries: [...termRule, staleRule, { target: 'follower', actions: 'handleAppend' }],
    InstallSnapshot: [...termRule, staleRule, { target: 'follower', actions: 'handleSnapshotChunk' }],
    TimeoutNow: [...termRule],
    AppendEntriesResponse: [...termRule],
    InstallSnapshotResponse: [...termRule],
    ReadIndexRequest: [...termRule, staleRule, { actions: 'refuseReadIndex' }],
    ReadIndexResponse: [...termRule],
  },
});
