// Pure event handlers of the replica: (context, event) -> context patch + effects (+ events for the
// replication actor). The machine's guards choose the role transition; these compute what it does.

import type {
  AppendEntries,
  ClusterConfig,
  Effect,
  Entry,
  HardState,
  InstallSnapshot,
  NodeId,
  Proposal,
  RaftMessage,
  ReadIndexResponse,
  RequestVote,
  SnapshotMeta,
} from '../protocol.js';
import type { ReadRequest } from '../replication/progress.js';
import type { ReplicationEvent } from '../replication/replication.machine.js';
import { type ConfigEntry, compactTerms, termAt, writeTerms } from './log-terms.js';
import {
  isSingleServerChange,
  isUpToDate,
  isVoter,
  parseConfig,
  planAppend,
  tally,
  voters,
} from './rules.js';
import type { ReplicaContext, ReplicaMachineEvent, ReplicationReport } from './types.js';

export interface Step {
  patch: Partial<ReplicaContext>;
  effects: Effect[];
  toReplication: ReplicationEvent[];
}

function step(): Step {
  return { patch: {}, effects: [], toReplication: [] };
}

function hardStateOf(c: ReplicaContext, patch: Partial<ReplicaContext>): HardState {
  return { term: patch.term ?? c.term, votedFor: patch.votedFor !== undefined ? patch.votedFor : c.votedFor };
}

/** Emit a persist effect and count it (a `persisted` event with a seq >= this one covers it). */
function persist(
  c: ReplicaContext,
  s: Step,
  write: Omit<Extract<Effect, { type: 'persist' }>, 'type'>,
): number {
  const seq = (s.patch.persistSeq ?? c.persistSeq) + 1;
  s.patch.persistSeq = seq;
  // The machine keeps its log's terms and config entries as data: what it decides next (matching,
  // conflicts, commits, the index of the next entry, whether a candidate is up to date) never depends
  // on when the host writes.
  const entries = write.entries ?? [];
  if (entries.length > 0 || write.truncateFrom !== undefined) {
    const runs = s.patch.termRuns ?? c.termRuns;
    const log = {
      snapshotIndex: c.snapshotIndex,
      snapshotTerm: c.snapshotTerm,
      termRuns: runs,
      lastIndex: s.patch.lastIndex ?? c.lastIndex,
    };
    const next = writeTerms(log, write.truncateFrom, entries);
    s.patch.lastIndex = next.lastIndex;
    s.patch.lastTerm = next.lastTerm;
    if (next.termRuns !== runs) s.patch.termRuns = next.termRuns;
    const before = s.patch.configs ?? c.configs;
    const configs = writeConfigs(before, write.truncateFrom, entries);
    if (configs !== before) s.patch.configs = configs;
  }
  s.effects.push({ type: 'persist', ...write });
  return seq;
}

/** The config entries after a write (the same array when the write touches none). */
function writeConfigs(
  configs: ConfigEntry[],
  truncateFrom: number | undefined,
  entries: Entry[],
): ConfigEntry[] {
  let out = configs;
  const cut = Math.min(
    truncateFrom ?? Number.POSITIVE_INFINITY,
    entries[0]?.index ?? Number.POSITIVE_INFINITY,
  );
  if (out.length > 0 && out[out.length - 1].index >= cut) out = out.filter((x) => x.index < cut);
  for (const e of entries) {
    if (e.kind !== 'config') continue;
    const config = parseConfig(e.data);
    if (config) out = [...out, { index: e.index, config }];
  }
  return out;
}

/** The configuration in effect: the last config entry of the log, else the snapshot's. */
function configInEffect(c: ReplicaContext, configs: ConfigEntry[]): ConfigEntry {
  const last = configs[configs.length - 1];
  return last ?? { index: c.snapshotIndex, config: c.snapshotConfig };
}

/** Adopt the configuration in effect after a change of the config entries (configChanged when it changed). */
function followConfigs(c: ReplicaContext, s: Step, configs: ConfigEntry[]): void {
  const { index, config } = configInEffect(c, configs);
  if (config !== c.config) {
    s.patch.config = config;
    s.patch.configIndex = index;
    s.effects.push({ type: 'configChanged', config });
  } else if (index !== c.configIndex) {
    s.patch.configIndex = index;
  }
}

function send(s: Step, message: RaftMessage, afterPersist = true): void {
  s.effects.push({ type: 'send', message, afterPersist });
}

// ---------------------------------------------------------------------------------------------------
// The term rule (Figure 2, "all servers") and lower-term answers (as etcd raft).

/** Pre-vote requests and granted pre-vote responses carry a future term and never change ours. */
export function mustAdoptTerm(c: ReplicaContext, e: ReplicaMachineEvent): boolean {
  if (!('term' in e) || !('from' in e) || e.term <= c.term) return false;
  if (e.type === 'RequestVote' && e.preVote) return false;
  if (e.type === 'RequestVoteResponse' && e.preVote && e.granted) return false;
  return true;
}

/**
 * Leader lease (check-quorum): a (pre-)vote request for a higher term is ignored while we have heard
 * from a live leader within the base (shortest) election timeout, unless it comes from a leadership
 * transfer. `leaderId` is set only while that holds: followers clear it when their lease timer fires
 * (the base timeout, as in etcd), learners when their election timer fires, candidates have none, and a
 * leader is its own live leader (check-quorum deposes it otherwise). Only availability depends on the
 * lease: reads never rely on it (ReadIndex confirms leadership with a quorum round).
 */
export function voteInLease(c: ReplicaContext, e: ReplicaMachineEvent): boolean {
  return e.type === 'RequestVote' && e.term > c.term && !e.transfer && c.leaderId !== null;
}

export function isStale(c: ReplicaContext, e: ReplicaMachineEvent): boolean {
  return 'term' in e && 'from' in e && e.term < c.term;
}

export function adoptTerm(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (!('term' in e)) return s;
  s.patch = { term: e.term, votedFor: null, leaderId: null, votes: {}, campaignTransfer: false };
  persist(c, s, { hardState: hardStateOf(c, s.patch) });
  return s;
}

/** A stale sender learns our term from the answer (a deposed leader steps down on it). */
export function answerStale(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  switch (e.type) {
    case 'AppendEntries':
      send(s, {
        type: 'AppendEntriesResponse',
        from: c.id,
        to: e.from,
        term: c.term,
        success: false,
        matchIndex: 0,
        conflictIndex: 0,
        conflictTerm: 0,
        readRound: e.readRound,
      });
      break;
    case 'InstallSnapshot':
      send(s, {
        type: 'InstallSnapshotResponse',
        from: c.id,
        to: e.from,
        term: c.term,
        lastIncludedIndex: e.lastIncludedIndex,
        nextOffset: 0,
        installed: false,
      });
      break;
    case 'RequestVote':
      send(s, voteResponse(c, e, false, c.term));
      break;
    case 'ReadIndexRequest':
      send(s, readIndexRefusal(c, e.from, e.requestIds), false);
      break;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------
// Votes.

function voteResponse(c: ReplicaContext, m: RequestVote, granted: boolean, term: number): RaftMessage {
  return { type: 'RequestVoteResponse', from: c.id, to: m.from, term, granted, preVote: m.preVote };
}

function logUpToDate(c: ReplicaContext, m: RequestVote): boolean {
  return isUpToDate(m.lastLogIndex, m.lastLogTerm, c.lastIndex, c.lastTerm);
}

/** Figure 2 RequestVote receiver: one vote per term, only for an up-to-date log. */
export function canGrantVote(c: ReplicaContext, e: ReplicaMachineEvent): boolean {
  if (e.type !== 'RequestVote' || e.preVote || e.term !== c.term) return false;
  const free = c.votedFor === e.from || (c.votedFor === null && c.leaderId === null);
  return free && logUpToDate(c, e);
}

export function grantVote(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type !== 'RequestVote') return s;
  s.patch.votedFor = e.from;
  // Persist the vote before the grant leaves (the send waits for the persist to be durable).
  persist(c, s, { hardState: hardStateOf(c, s.patch) });
  send(s, voteResponse(c, e, true, c.term));
  return s;
}

export function rejectVote(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type === 'RequestVote') send(s, voteResponse(c, e, false, c.term));
  return s;
}

/**
 * Pre-vote (thesis §9.6): would we vote for this candidate in its next term? Grants answer with the
 * candidate's term, rejections with ours; nothing changes state.
 */
export function answerPreVote(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type !== 'RequestVote') return s;
  if (e.term < c.term) {
    send(s, voteResponse(c, e, false, c.term));
    return s;
  }
  const free = c.votedFor === e.from || (c.votedFor === null && c.leaderId === null) || e.term > c.term;
  if (free && logUpToDate(c, e)) send(s, voteResponse(c, e, true, e.term));
  else send(s, voteResponse(c, e, false, c.term));
  return s;
}

export function startPreVote(c: ReplicaContext, _e?: ReplicaMachineEvent): Step {
  const s = step();
  const votes: Record<NodeId, boolean> = {};
  // A pre-vote needs nothing durable, so our own counts at once.
  if (isVoter(c.config, c.id)) votes[c.id] = true;
  s.patch = { votes, leaderId: null };
  for (const id of voters(c.config)) {
    if (id === c.id) continue;
    send(
      s,
      {
        type: 'RequestVote',
        from: c.id,
        to: id,
        term: c.term + 1,
        lastLogIndex: c.lastIndex,
        lastLogTerm: c.lastTerm,
        preVote: true,
        transfer: false,
      },
      false,
    );
  }
  return s;
}

export function startElection(c: ReplicaContext, _e?: ReplicaMachineEvent): Step {
  const s = step();
  const term = c.term + 1;
  s.patch = { term, votedFor: c.id, leaderId: null, votes: {}, campaignTransfer: false };
  s.patch.selfVoteSeq = persist(c, s, { hardState: { term, votedFor: c.id } });
  for (const id of voters(c.config)) {
    if (id === c.id) continue;
    send(s, {
      type: 'RequestVote',
      from: c.id,
      to: id,
      term,
      lastLogIndex: c.lastIndex,
      lastLogTerm: c.lastTerm,
      preVote: false,
      transfer: c.campaignTransfer,
    });
  }
  return s;
}

export function recordVote(c: ReplicaContext, e: ReplicaMachineEvent): Partial<ReplicaContext> {
  if (e.type !== 'RequestVoteResponse') return {};
  return { votes: { ...c.votes, [e.from]: e.granted } };
}

/** A pre-vote response that belongs to the current round. */
export function isPreVoteResponse(c: ReplicaContext, e: ReplicaMachineEvent): boolean {
  if (e.type !== 'RequestVoteResponse' || !e.preVote) return false;
  return e.granted ? e.term === c.term + 1 : e.term === c.term;
}

export function isVoteResponse(c: ReplicaContext, e: ReplicaMachineEvent): boolean {
  return e.type === 'RequestVoteResponse' && !e.preVote && e.term === c.term;
}

/** The candidate counts itself only once its own vote is durable. */
export function electionTally(c: ReplicaContext): 'won' | 'lost' | 'pending' {
  const votes = { ...c.votes };
  if (c.durableSeq >= c.selfVoteSeq && c.votedFor === c.id) votes[c.id] = true;
  return tally(c.config, votes);
}

// ---------------------------------------------------------------------------------------------------
// Log replication, receiver side.

/** Figure 2 AppendEntries receiver rules 1-5 for a message of our term. */
export function handleAppend(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type !== 'AppendEntries') return s;
  const m: AppendEntries = e;
  s.patch.leaderId = m.from;
  const plan = planAppend(c, m, c.commitIndex);
  const respond = (success: boolean, matchIndex: number, conflictIndex: number, conflictTerm: number) =>
    send(s, {
      type: 'AppendEntriesResponse',
      from: c.id,
      to: m.from,
      term: c.term,
      success,
      matchIndex,
      conflictIndex,
      conflictTerm,
      readRound: m.readRound,
    });
  if (!plan.ok) {
    respond(false, 0, plan.conflictIndex, plan.conflictTerm);
    return s;
  }
  if (plan.truncateFrom !== undefined || plan.append.length > 0) {
    persist(c, s, {
      ...(plan.truncateFrom !== undefined ? { truncateFrom: plan.truncateFrom } : {}),
      entries: plan.append,
    });
    if (plan.truncateFrom !== undefined)
      s.patch.durableIndex = Math.min(c.durableIndex, plan.truncateFrom - 1);
    // Appended config entries take effect at once; a truncated one stops being in effect (the one
    // before it is again).
    if (s.patch.configs) followConfigs(c, s, s.patch.configs);
  }
  // Rule 5: commit up to min(leaderCommit, index of last new entry).
  const commit = Math.min(m.leaderCommit, plan.lastNew);
  if (commit > c.commitIndex) {
    s.patch.commitIndex = commit;
    s.effects.push({ type: 'commit', index: commit });
  }
  respond(true, plan.lastNew, 0, 0);
  return s;
}

export function handleSnapshotChunk(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type !== 'InstallSnapshot') return s;
  const m: InstallSnapshot = e;
  s.patch.leaderId = m.from;
  if (m.lastIncludedIndex <= c.commitIndex) {
    // We already have everything it covers.
    send(s, {
      type: 'InstallSnapshotResponse',
      from: c.id,
      to: m.from,
      term: c.term,
      lastIncludedIndex: m.lastIncludedIndex,
      nextOffset: m.offset + m.chunk.length,
      installed: true,
    });
    return s;
  }
  s.patch.snapshotFrom = m.from;
  s.effects.push({ type: 'receiveSnapshotChunk', message: m });
  return s;
}

export function snapshotInstalled(c: ReplicaContext, meta: SnapshotMeta): Step {
  const s = step();
  // The host reset its log to the snapshot (§7): it keeps the suffix after the snapshot only if the
  // log holds the snapshot's last entry (with its term); the machine applies the same rule to its terms.
  const kept = meta.index < c.lastIndex && termAt(c, meta.index) === meta.term;
  const terms = kept
    ? compactTerms(c, meta.index, meta.term)
    : { snapshotIndex: meta.index, snapshotTerm: meta.term, termRuns: [], lastIndex: meta.index };
  const configs = kept ? c.configs.filter((x) => x.index > meta.index) : [];
  const config = configs[configs.length - 1] ?? { index: meta.index, config: meta.config };
  s.patch = {
    ...terms,
    lastTerm: kept ? c.lastTerm : meta.term,
    configs,
    snapshotConfig: meta.config,
    commitIndex: Math.max(c.commitIndex, meta.index),
    appliedIndex: Math.max(c.appliedIndex, meta.index),
    durableIndex: Math.max(c.durableIndex, meta.index),
    config: config.config,
    configIndex: config.index,
  };
  s.effects.push({ type: 'configChanged', config: config.config });
  const to = c.snapshotFrom ?? c.leaderId;
  if (to !== null) {
    send(s, {
      type: 'InstallSnapshotResponse',
      from: c.id,
      to,
      term: c.term,
      lastIncludedIndex: meta.index,
      nextOffset: 0,
      installed: true,
    });
  }
  return s;
}

/** Storage completion: how far our own log is durable (and how many persist effects are). */
export function notePersisted(
  c: ReplicaContext,
  e: { index: number; term: number; seq?: number },
): Partial<ReplicaContext> {
  const patch: Partial<ReplicaContext> = { durableSeq: Math.max(c.durableSeq, e.seq ?? c.persistSeq) };
  if (e.index > c.durableIndex && termAt(c, e.index) === e.term) patch.durableIndex = e.index;
  return patch;
}

/** The host compacted its log through meta.index: those entries can no longer be sent (a snapshot can). */
export function logCompacted(c: ReplicaContext, meta: SnapshotMeta): Partial<ReplicaContext> {
  if (meta.index <= c.snapshotIndex || meta.index > c.lastIndex) return {};
  const { snapshotIndex, snapshotTerm, termRuns } = compactTerms(c, meta.index, meta.term);
  const configs = c.configs.some((x) => x.index <= meta.index)
    ? c.configs.filter((x) => x.index > meta.index)
    : c.configs;
  return { snapshotIndex, snapshotTerm, termRuns, configs, snapshotConfig: meta.config };
}

// ---------------------------------------------------------------------------------------------------
// Leader.

export function becomeLeader(c: ReplicaContext, _e?: ReplicaMachineEvent): Step {
  const s = step();
  const index = c.lastIndex + 1;
  // A new leader commits an entry of its own term at once (the noop): only then does it know the
  // commit index of earlier terms, which ReadIndex and config changes depend on.
  persist(c, s, { entries: [{ index, term: c.term, kind: 'noop', data: '' }] });
  s.patch = { ...s.patch, leaderId: c.id, termStartIndex: index, pendingReads: [], transfer: null };
  return s;
}

export function rejectProposals(c: ReplicaContext, proposals: Proposal[], reason: string): Step {
  const s = step();
  for (const p of proposals) {
    s.effects.push({ type: 'proposalRejected', requestId: p.requestId, reason, leaderId: c.leaderId });
  }
  return s;
}

/** Why a config proposal cannot be accepted now, or null. */
export function configRefusal(c: ReplicaContext, data: string, batchHasConfig: boolean): string | null {
  if (batchHasConfig || c.configIndex > c.commitIndex) return 'a configuration change is in progress';
  if (c.commitIndex < c.termStartIndex) return 'the leader has not committed an entry of its term yet';
  const next = parseConfig(data);
  if (!next) return 'invalid configuration';
  if (!isSingleServerChange(c.config, next)) return 'only one member may change at a time';
  return null;
}

export function appendProposals(c: ReplicaContext, proposals: Proposal[]): Step {
  const s = step();
  let index = c.lastIndex;
  const entries: Entry[] = [];
  const accepted: Proposal[] = [];
  const rejected: Effect[] = [];
  let config: ClusterConfig | null = null;
  for (const p of proposals) {
    if (p.kind === 'config') {
      const reason = configRefusal(c, p.data, config !== null);
      if (reason) {
        rejected.push({ type: 'proposalRejected', requestId: p.requestId, reason, leaderId: c.id });
        continue;
      }
      config = parseConfig(p.data);
    }
    entries.push({ index: ++index, term: c.term, kind: p.kind, data: p.data });
    accepted.push(p);
  }
  if (entries.length > 0) {
    persist(c, s, { entries });
    // Config entries take effect as soon as they are appended (thesis §4.1).
    // The replication actor learns the new last index first, so a member added by this batch starts
    // with nextIndex = last index + 1 (Figure 2).
    s.toReplication.push({ type: 'appended', lastIndex: index });
    if (config && s.patch.configs) {
      // The entry as the machine now holds it (one parsed object for both).
      const added = configInEffect(c, s.patch.configs);
      s.patch.config = added.config;
      s.patch.configIndex = added.index;
      s.effects.push({ type: 'configChanged', config: added.config });
      s.toReplication.push({ type: 'config', config: added.config });
    }
    entries.forEach((e, i) => {
      s.effects.push({ type: 'proposed', requestId: accepted[i].requestId, index: e.index, term: e.term });
    });
  }
  s.effects.push(...rejected);
  return s;
}

// ---------------------------------------------------------------------------------------------------
// ReadIndex (thesis §6.4), on the leader for its own reads and for followers' (etcd's MsgReadIndex).

function readIndexRefusal(c: ReplicaContext, to: NodeId, requestIds: string[]): ReadIndexResponse {
  return { type: 'ReadIndexResponse', from: c.id, to, term: c.term, requestIds, ok: false, index: 0 };
}

/** Leader: queue a read (its own, or a follower's ReadIndexRequest) for the next quorum round. */
export function startReads(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  let requests: ReadRequest[] = [];
  if (e.type === 'readIndex') requests = [{ requestId: e.requestId, from: c.id }];
  else if (e.type === 'ReadIndexRequest')
    requests = e.requestIds.map((requestId) => ({ requestId, from: e.from }));
  if (requests.length === 0) return s;
  s.patch.pendingReads = [...c.pendingReads, ...requests];
  for (const r of requests) s.toReplication.push({ type: 'readIndex', requestId: r.requestId, from: r.from });
  return s;
}

/** Answer reads: own ones as effects, followers' as one ReadIndexResponse per follower. */
function answerReads(c: ReplicaContext, s: Step, requests: ReadRequest[], ok: boolean, index: number): void {
  const remote = new Map<NodeId, string[]>();
  for (const r of requests) {
    if (r.from === c.id) {
      s.effects.push(
        ok
          ? { type: 'readReady', requestId: r.requestId, index }
          : { type: 'readRejected', requestId: r.requestId, reason: 'leadership lost', leaderId: null },
      );
    } else {
      const ids = remote.get(r.from) ?? [];
      ids.push(r.requestId);
      remote.set(r.from, ids);
    }
  }
  for (const [to, requestIds] of remote) {
    // Nothing of ours has to be durable for it: a read index is about what is committed already.
    send(
      s,
      ok ? { ...readIndexRefusal(c, to, requestIds), ok: true, index } : readIndexRefusal(c, to, requestIds),
      false,
    );
  }
}

/** Follower or learner: ask the leader for a read index, or refuse the read when none is known. */
export function askLeaderForRead(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type !== 'readIndex') return s;
  if (c.leaderId === null) {
    s.effects.push({
      type: 'readRejected',
      requestId: e.requestId,
      reason: 'no leader known',
      leaderId: null,
    });
    return s;
  }
  send(
    s,
    { type: 'ReadIndexRequest', from: c.id, to: c.leaderId, term: c.term, requestIds: [e.requestId] },
    false,
  );
  return s;
}

/** Not a leader: a follower's ReadIndexRequest cannot be confirmed here. */
export function refuseReadIndex(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type === 'ReadIndexRequest') send(s, readIndexRefusal(c, e.from, e.requestIds), false);
  return s;
}

/**
 * Follower or learner: the leader of our term answered. The reads may be served once this replica has
 * applied through `index` (the host waits for that); a refusal refuses them here (the client retries).
 */
export function readIndexAnswered(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type !== 'ReadIndexResponse') return s;
  for (const requestId of e.requestIds) {
    s.effects.push(
      e.ok
        ? { type: 'readReady', requestId, index: e.index }
        : {
            type: 'readRejected',
            requestId,
            reason: 'the leader refused the read index',
            leaderId: c.leaderId,
          },
    );
  }
  return s;
}

export function replicationOutput(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  if (e.type !== 'replication.output') return s;
  const out = e as Extract<ReplicationReport, { type: 'replication.output' }>;
  for (const o of out.messages) {
    s.effects.push(
      o.entries
        ? { type: 'send', message: o.message, afterPersist: false, entries: o.entries }
        : { type: 'send', message: o.message, afterPersist: false },
    );
  }
  for (const to of out.snapshots) s.effects.push({ type: 'sendSnapshot', to, term: c.term });
  if (out.commitIndex !== null && out.commitIndex > c.commitIndex) {
    s.patch.commitIndex = out.commitIndex;
    s.effects.push({ type: 'commit', index: out.commitIndex });
  }
  if (out.reads.length > 0) {
    const pending = [...c.pendingReads];
    for (const r of out.reads) {
      answerReads(c, s, r.requests, true, r.index);
      for (const q of r.requests) {
        const i = pending.findIndex((p) => p.requestId === q.requestId && p.from === q.from);
        if (i >= 0) pending.splice(i, 1);
      }
    }
    s.patch.pendingReads = pending;
  }
  return s;
}

/** Leaving leadership: reads not yet confirmed can no longer be (the replication actor is gone). */
export function leaveLeadership(c: ReplicaContext, e: ReplicaMachineEvent): Step {
  const s = step();
  // Own reads are refused here; followers get a refusal so they need not wait for a timeout.
  answerReads(c, s, c.pendingReads, false, 0);
  if (c.transfer) {
    // Deposed by a higher term while transferring: the target (or someone) took over.
    const ok = 'term' in e && e.term > c.term;
    s.effects.push({ type: 'transferFinished', to: c.transfer.to, ok });
  }
  s.patch = { pendingReads: [], transfer: null, leaderId: null, termStartIndex: Number.MAX_SAFE_INTEGER };
  return s;
}
