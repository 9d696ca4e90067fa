// The replica's initial context, recovered from durable state.

import type { ReplicaInput } from '../protocol.js';
import { drawElectionTimeout, lastConfigAtOrBefore, lastTermOf } from './rules.js';
import type { ReplicaContext } from './types.js';

export function initialContext(input: ReplicaInput): ReplicaContext {
  const log = input.log;
  // Everything applied was committed; the host may also know a higher commit index it persisted
  // before the restart (never beyond the log it recovered). Either way it never goes back.
  const applied = Math.max(input.appliedIndex, log.snapshot().index);
  const commit = Math.max(applied, Math.min(input.commitIndex ?? applied, log.lastIndex()));
  const found = lastConfigAtOrBefore(log, log.lastIndex());
  const [electionTimeoutMs, rng] = drawElectionTimeout(input.seed | 0, input.timing);
  return {
    id: input.id,
    log,
    timing: input.timing,
    maxBatch: input.maxBatch ?? 512,
    maxInflight: input.maxInflight ?? 4,
    lastIndex: log.lastIndex(),
    lastTerm: lastTermOf(log),
    term: input.hardState.term,
    votedFor: input.hardState.votedFor,
    commitIndex: commit,
    appliedIndex: applied,
    leaderId: null,
    config: found ? found.config : input.config,
    configIndex: found ? found.index : log.snapshot().index,
    // The host builds the input from its store: what it reports as the log is what it recovered.
    durableIndex: log.lastIndex(),
    persistSeq: 0,
    durableSeq: 0,
    rng,
    electionTimeoutMs,
    votes: {},
    selfVoteSeq: 0,
    campaignTransfer: false,
    termStartIndex: Number.MAX_SAFE_INTEGER,
    pendingReads: [],
    transfer: null,
    snapshotFrom: null,
    announced: null,
  };
}
