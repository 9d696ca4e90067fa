// The replica's initial context, recovered from durable state. The input's log view is read here, once:
// its terms and config entries become plain data, and the context holds no reference to it.

import type { LogView, ReplicaInput } from '../protocol.js';
import { type ConfigEntry, termsOf } from './log-terms.js';
import { drawElectionTimeout, parseConfig } from './rules.js';
import type { ReplicaContext } from './types.js';

export function initialContext(input: ReplicaInput): ReplicaContext {
  const log = input.log;
  const terms = termsOf(log);
  const snapshot = log.snapshot();
  const configs = configEntriesOf(log);
  // Everything applied was committed; the host may also know a higher commit index it persisted
  // before the restart (never beyond the log it recovered). Either way it never goes back.
  const applied = Math.max(input.appliedIndex, snapshot.index);
  const commit = Math.max(applied, Math.min(input.commitIndex ?? applied, terms.lastIndex));
  const found = configs.length > 0 ? configs[configs.length - 1] : null;
  const [electionTimeoutMs, rng] = drawElectionTimeout(input.seed | 0, input.timing);
  const runs = terms.termRuns;
  return {
    id: input.id,
    ...terms,
    lastTerm: runs.length > 0 ? runs[runs.length - 1].term : terms.snapshotTerm,
    configs,
    // With no config entry in the log, the input's configuration is the snapshot's (its contract).
    snapshotConfig: found ? snapshot.config : input.config,
    timing: input.timing,
    maxBatch: input.maxBatch ?? 512,
    maxInflight: input.maxInflight ?? 4,
    term: input.hardState.term,
    votedFor: input.hardState.votedFor,
    commitIndex: commit,
    appliedIndex: applied,
    leaderId: null,
    config: found ? found.config : input.config,
    configIndex: found ? found.index : snapshot.index,
    // The host builds the input from its store: what it reports as the log is what it recovered.
    durableIndex: terms.lastIndex,
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

/** The config entries after the snapshot in the host's view, ascending. */
function configEntriesOf(view: LogView): ConfigEntry[] {
  const out: ConfigEntry[] = [];
  const last = view.lastIndex();
  const chunk = 1024;
  for (let from = view.firstIndex(); from <= last; from += chunk) {
    const entries = view.entries(from, Math.min(last, from + chunk - 1), chunk);
    if (entries.length === 0) break;
    for (const e of entries) {
      if (e.kind !== 'config') continue;
      const config = parseConfig(e.data);
      if (config) out.push({ index: e.index, config });
    }
  }
  return out;
}
