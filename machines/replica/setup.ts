// The typed setup() shared by the role files: events, context, effects, named delays, guards, actions.

import { enqueueActions, raise, setup } from 'xstate';
import type { Effect, ReplicaInput, Role } from '../protocol.js';
import { type ReplicationEvent, replicationMachine } from '../replication/replication.machine.js';
import { initialContext } from './context.js';
import {
  type Step,
  adoptTerm,
  answerPreVote,
  answerStale,
  appendProposals,
  askLeaderForRead,
  becomeLeader,
  canGrantVote,
  electionTally,
  grantVote,
  handleAppend,
  handleSnapshotChunk,
  isPreVoteResponse,
  isStale,
  isVoteResponse,
  leaveLeadership,
  logCompacted,
  mustAdoptTerm,
  notePersisted,
  readIndexAnswered,
  recordVote,
  refuseReadIndex,
  rejectProposals,
  rejectVote,
  replicationOutput,
  snapshotInstalled,
  startElection,
  startPreVote,
  startReads,
  voteInLease,
} from './handlers.js';
import { drawElectionTimeout, isVoter, tally } from './rules.js';
import type { ReplicaContext, ReplicaMachineEvent } from './types.js';

type Handler = (c: ReplicaContext, e: ReplicaMachineEvent) => Step;

/** The part of XState's action enqueuer a handler step needs (methods: checked bivariantly). */
interface Enqueue {
  assign(patch: Partial<ReplicaContext>): void;
  emit(effect: Effect): void;
  sendTo(to: 'replication', event: ReplicationEvent): void;
}

/** Apply a pure handler's step: assign its patch, emit its effects in order, forward to replication. */
function apply(enqueue: unknown, s: Step): void {
  const q = enqueue as Enqueue;
  if (Object.keys(s.patch).length > 0) q.assign(s.patch);
  for (const effect of s.effects) q.emit(effect);
  for (const ev of s.toReplication) q.sendTo('replication', ev);
}

export const replicaSetup = setup({
  types: {
    context: {} as ReplicaContext,
    events: {} as ReplicaMachineEvent,
    input: {} as ReplicaInput,
    emitted: {} as Effect,
    children: {} as { replication: 'replication' },
  },
  actors: {
    replication: replicationMachine,
  },
  delays: {
    /** Randomized per arming (drawn from the seeded PRNG into context by `armElectionTimer`). */
    electionTimeout: ({ context }) => context.electionTimeoutMs,
    /** A leader's lease on a follower's vote: the base (shortest) election timeout, as etcd does. */
    leaseTimeout: ({ context }) => context.timing.electionMinMs,
    /** Abandon a leadership transfer after an election timeout. */
    transferTimeout: ({ context }) => context.timing.electionMaxMs,
  },
  guards: {
    voteInLease: ({ context, event }) => voteInLease(context, event),
    mustAdoptTerm: ({ context, event }) => mustAdoptTerm(context, event),
    isStale: ({ context, event }) => isStale(context, event),
    isPreVote: ({ event }) => event.type === 'RequestVote' && event.preVote,
    canGrantVote: ({ context, event }) => canGrantVote(context, event),
    canCampaign: ({ context }) => isVoter(context.config, context.id),
    /** The lost connection is the one to the leader this follower trusts. */
    leaderLost: ({ context, event }) => event.type === 'peerLost' && event.id === context.leaderId,
    isVoter: ({ context }) => isVoter(context.config, context.id),
    notVoter: ({ context }) => !isVoter(context.config, context.id),
    isPreVoteResponse: ({ context, event }) => isPreVoteResponse(context, event),
    isVoteResponse: ({ context, event }) => isVoteResponse(context, event),
    preVoteWon: ({ context }) => tally(context.config, context.votes) === 'won',
    preVoteLost: ({ context }) => tally(context.config, context.votes) === 'lost',
    electionWon: ({ context }) => electionTally(context) === 'won',
    electionLost: ({ context }) => electionTally(context) === 'lost',
    /** TimeoutNow from the leader of our term: campaign at once (a voter only). */
    transferRequested: ({ context, event }) =>
      event.type === 'TimeoutNow' && event.term === context.term && isVoter(context.config, context.id),
    /** The committed configuration no longer lists this leader as a voter: step down. */
    leaderRemoved: ({ context }) =>
      context.configIndex <= context.commitIndex && !isVoter(context.config, context.id),
    transferToSelf: ({ context, event }) => event.type === 'transferLeadership' && event.to === context.id,
    transferTargetInvalid: ({ context, event }) =>
      event.type === 'transferLeadership' && event.to !== null && !isVoter(context.config, event.to),
  },
  actions: {
    /**
     * Draw the next election timeout; runs on entry, before the `after` timer is scheduled. Entered
     * because the leader's connection was lost (`peerLost`), the follower waits only the random part
     * of the draw (0 to max - min): the leader is very likely dead, and waiting out the base timeout
     * would only delay the failover, while the random part still staggers the followers' campaigns.
     */
    armElectionTimer: enqueueActions(({ context, event, enqueue }) => {
      const [drawn, rng] = drawElectionTimeout(context.rng, context.timing);
      const electionTimeoutMs = event.type === 'peerLost' ? drawn - context.timing.electionMinMs : drawn;
      enqueue.assign({ electionTimeoutMs, rng });
    }),
    /** Emit roleChanged when the role, the term or the known leader actually changed. */
    announce: enqueueActions(({ context, enqueue }, params: { role: Role }) => {
      const a = context.announced;
      if (a && a.role === params.role && a.term === context.term && a.leaderId === context.leaderId) return;
      const next = { role: params.role, term: context.term, leaderId: context.leaderId };
      enqueue.assign({ announced: next });
      enqueue.emit({ type: 'roleChanged', ...next });
    }),
    /** Re-deliver the current event after a state change (the term rule: adopt, then handle). */
    reraise: raise(({ event }) => event),
    forgetLeader: enqueueActions(({ enqueue }) => enqueue.assign({ leaderId: null })),
    adoptTerm: enqueueActions(({ context, event, enqueue }) => apply(enqueue, adoptTerm(context, event))),
    answerStale: enqueueActions(({ context, event, enqueue }) => apply(enqueue, answerStale(context, event))),
    answerPreVote: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, answerPreVote(context, event)),
    ),
    grantVote: enqueueActions(({ context, event, enqueue }) => apply(enqueue, grantVote(context, event))),
    rejectVote: enqueueActions(({ context, event, enqueue }) => apply(enqueue, rejectVote(context, event))),
    handleAppend: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, handleAppend(context, event)),
    ),
    handleSnapshotChunk: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, handleSnapshotChunk(context, event)),
    ),
    startPreVote: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, startPreVote(context, event)),
    ),
    startElection: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, startElection(context, event)),
    ),
    recordVote: enqueueActions(({ context, event, enqueue }) => enqueue.assign(recordVote(context, event))),
    markTransferCampaign: enqueueActions(({ enqueue }) => enqueue.assign({ campaignTransfer: true })),
    notePersisted: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === 'persisted') enqueue.assign(notePersisted(context, event));
    }),
    /** The host compacted its log (a local snapshot): forget the terms behind it. */
    noteCompacted: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === 'logCompacted') enqueue.assign(logCompacted(context, event.meta));
    }),
    /** Leader: the replication actor must send a snapshot, not entries, to a peer that needs them. */
    forwardCompacted: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'logCompacted') return;
      const patch = logCompacted(context, event.meta);
      enqueue.assign(patch);
      if (patch.snapshotIndex !== undefined)
        enqueue.sendTo('replication', { type: 'compacted', index: event.meta.index, term: event.meta.term });
    }),
    noteApplied: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'applied') return;
      if (event.index > context.appliedIndex) {
        enqueue.assign({
          appliedIndex: event.index,
          commitIndex: Math.max(context.commitIndex, event.index),
        });
      }
    }),
    snapshotInstalled: enqueueActions(({ context, event, enqueue }) =>
      apply(
        enqueue,
        ((c, e) =>
          e.type === 'snapshotInstalled'
            ? snapshotInstalled(c, e.meta)
            : { patch: {}, effects: [], toReplication: [] })(context, event),
      ),
    ),
    rejectProposals: enqueueActions(({ context, event, enqueue }) =>
      apply(
        enqueue,
        ((c, e) => rejectProposals(c, e.type === 'propose' ? e.proposals : [], 'not the leader'))(
          context,
          event,
        ),
      ),
    ),
    rejectRead: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'readIndex') return;
      enqueue.emit({
        type: 'readRejected',
        requestId: event.requestId,
        reason: 'not the leader',
        leaderId: context.leaderId,
      });
    }),
    // Follower reads (a follower or learner asks its leader; see handlers.ts).
    askLeaderForRead: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, askLeaderForRead(context, event)),
    ),
    refuseReadIndex: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, refuseReadIndex(context, event)),
    ),
    readIndexAnswered: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, readIndexAnswered(context, event)),
    ),
    refuseTransfer: enqueueActions(({ event, enqueue }) => {
      if (event.type === 'transferLeadership')
        enqueue.emit({ type: 'transferFinished', to: event.to, ok: false });
    }),
    // Leader.
    becomeLeader: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, becomeLeader(context, event)),
    ),
    leaveLeadership: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, leaveLeadership(context, event)),
    ),
    appendProposals: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, ((c, e) => appendProposals(c, e.type === 'propose' ? e.proposals : []))(context, event)),
    ),
    rejectProposalsInTransfer: enqueueActions(({ context, event, enqueue }) =>
      apply(
        enqueue,
        ((c, e) =>
          rejectProposals(c, e.type === 'propose' ? e.proposals : [], 'leadership transfer in progress'))(
          context,
          event,
        ),
      ),
    ),
    replicationOutput: enqueueActions(({ context, event, enqueue }) =>
      apply(enqueue, replicationOutput(context, event)),
    ),
    forwardToReplication: enqueueActions(({ event, enqueue }) => {
      if (event.type === 'AppendEntriesResponse' || event.type === 'InstallSnapshotResponse') {
        enqueue.sendTo('replication', event);
      }
    }),
    forwardPersisted: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'persisted') return;
      const patch = notePersisted(context, event);
      enqueue.assign(patch);
      enqueue.sendTo('replication', {
        type: 'selfPersisted',
        index: patch.durableIndex ?? context.durableIndex,
      });
    }),
    kickReplication: enqueueActions(({ context, enqueue }) => {
      enqueue.sendTo('replication', {
        type: 'appended',
        lastIndex: Math.max(context.termStartIndex, context.lastIndex),
      });
    }),
    startRead: enqueueActions(({ context, event, enqueue }) => apply(enqueue, startReads(context, event))),
    startTransfer: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'transferLeadership') return;
      enqueue.assign({ transfer: { to: event.to } });
      enqueue.sendTo('replication', { type: 'transfer', to: event.to });
    }),
    sendTimeoutNow: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'replication.transferReady') return;
      enqueue.assign({ transfer: { to: event.to } });
      enqueue.emit({
        type: 'send',
        message: { type: 'TimeoutNow', from: context.id, to: event.to, term: context.term },
        afterPersist: false,
      });
    }),
    abandonTransfer: enqueueActions(({ context, enqueue }) => {
      if (!context.transfer) return;
      enqueue.emit({ type: 'transferFinished', to: context.transfer.to, ok: false });
      enqueue.assign({ transfer: null });
      enqueue.sendTo('replication', { type: 'transferAbort' });
    }),
    finishTransferAtOnce: enqueueActions(({ event, enqueue }) => {
      if (event.type === 'transferLeadership')
        enqueue.emit({ type: 'transferFinished', to: event.to, ok: true });
    }),
  },
});

export function replicaContext(input: ReplicaInput): ReplicaContext {
  return initialContext(input);
}
