// Follower: a voter that follows the leader of its term and campaigns (pre-vote first) when it has
// heard from no leader within its randomized election timeout.

import { replicaSetup } from './setup.js';
import { staleRule, termRule, voteTransitions } from './transitions.js';

export const follower = replicaSetup.createStateConfig({
  entry: ['armElectionTimer', { type: 'announce', params: { role: 'follower' } }],
  // A follower whose configuration makes it a non-voter (or removes it) is a learner: never campaigns.
  always: { guard: 'notVoter', target: 'learner' },
  after: {
    // The leader's lease ends after the base election timeout, not the randomized one: from then on
    // this follower grants pre-votes, so the first follower to time out can win at once instead of
    // being ignored until a majority has timed out too (which costs another election timeout).
    // No target: the election timer keeps running.
    leaseTimeout: { actions: 'forgetLeader' },
    electionTimeout: [
      { guard: 'canCampaign', target: 'preCandidate' },
      { target: 'follower', reenter: true, actions: 'forgetLeader' },
    ],
  },
  on: {
    RequestVote: [...voteTransitions('follower')],
    // Hearing from the leader of our term resets the election timer (re-entry re-arms `after`).
    AppendEntries: [...termRule, staleRule, { target: 'follower', reenter: true, actions: 'handleAppend' }],
    InstallSnapshot: [
      ...termRule,
      staleRule,
      { target: 'follower', reenter: true, actions: 'handleSnapshotChunk' },
    ],
    // Leadership transfer: campaign now, skipping pre-vote and ignoring leases.
    TimeoutNow: [
      ...termRule,
      { guard: 'transferRequested', target: 'candidate', actions: 'markTransferCampaign' },
    ],
    RequestVoteResponse: [...termRule],
    AppendEntriesResponse: [...termRule],
    InstallSnapshotResponse: [...termRule],
    // The connection to our leader was lost (its process died, most likely): end its lease at once,
    // so this follower grants pre-votes, and re-arm the election timer with only its random part.
    // A leader that is in fact alive keeps its other followers' leases, so their pre-votes fail and
    // its next heartbeat brings this one back: a false alarm costs no term.
    peerLost: { guard: 'leaderLost', target: 'follower', reenter: true, actions: 'forgetLeader' },
    // Follower reads: ask the known leader for a read index; its answer readies (or refuses) the read.
    readIndex: { actions: 'askLeaderForRead' },
    ReadIndexResponse: [...termRule, { guard: 'isStale' }, { actions: 'readIndexAnswered' }],
    ReadIndexRequest: [...termRule, staleRule, { actions: 'refuseReadIndex' }],
  },
});
