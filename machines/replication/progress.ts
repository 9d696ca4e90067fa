// The leader's replication engine as pure functions over a draft of the replication context: per-peer
// progress (probe / pipeline / snapshot, like etcd raft's Progress), commit computation, ReadIndex
// rounds and transfer catch-up. The replication machine clones its context, runs one of these, assigns
// the result and reports the collected output to the replica.

import type {
  AppendEntries,
  AppendEntriesResponse,
  ClusterConfig,
  InstallSnapshotResponse,
  NodeId,
  Timing,
} from '../protocol.js';
import { type LogTerms, type TermRun, compactTerms, termAt } from '../replica/log-terms.js';
import { computeCommit, isVoter, nextIndexAfterReject, quorum, voters } from '../replica/rules.js';
import type { Outgoing } from '../replica/types.js';

export type PeerMode = 'probe' | 'pipeline' | 'snapshot';

export interface Progress {
  /** Next index to send. */
  next: number;
  /** Highest index known to match the leader's log. */
  match: number;
  /** probe: one message at a time until a match is found; pipeline: a window of appends; snapshot: waiting for InstallSnapshot. */
  mode: PeerMode;
  /** Probe mode: a probe is outstanding (retransmitted on the next heartbeat). */
  probeSent: boolean;
  /** Pipeline mode: last index of each AppendEntries in flight. */
  inflight: number[];
  /** Heard from since the last check-quorum tick. */
  active: boolean;
  /** Match at the previous heartbeat tick (no progress across a tick with appends in flight = lost). */
  matchAtTick: number;
  /** Heartbeat ticks spent in snapshot mode without news (a stuck transfer falls back to probing). */
  snapshotTicks: number;
}

export interface ReplicationInput {
  id: NodeId;
  term: number;
  /** The leader's log by terms (plain data; see LogTerms): the entries themselves stay with the host. */
  snapshotIndex: number;
  snapshotTerm: number;
  termRuns: TermRun[];
  config: ClusterConfig;
  commitIndex: number;
  /** Last log index, including the new leader's noop. */
  lastIndex: number;
  /** Index of the leader's noop: reads wait until it is committed. */
  termStartIndex: number;
  /** The leader's own durable index. */
  selfMatch: number;
  timing: Timing;
  maxBatch?: number;
  maxInflight?: number;
}

/** One ReadIndex request: `from` is the replica that asked (the leader itself for its own reads). */
export interface ReadRequest {
  requestId: string;
  from: NodeId;
}

export interface ReadRound {
  round: number;
  index: number;
  requests: ReadRequest[];
  acks: NodeId[];
}

export interface ReplicationContext extends LogTerms {
  id: NodeId;
  term: number;
  config: ClusterConfig;
  commitIndex: number;
  lastIndex: number;
  termStartIndex: number;
  selfMatch: number;
  timing: Timing;
  maxBatch: number;
  maxInflight: number;
  peers: Record<NodeId, Progress>;
  /** Latest ReadIndex round started (stamped on every AppendEntries, echoed in responses). */
  readRound: number;
  /** Reads waiting for the next round (or for this term's first commit). */
  readQueue: ReadRequest[];
  readInflight: ReadRound | null;
  transfer: { to: NodeId; ready: boolean } | null;
}

export interface Output {
  messages: Outgoing[];
  snapshots: NodeId[];
  commitIndex: number | null;
  reads: { requests: ReadRequest[]; index: number }[];
  transferReady: NodeId | null;
}

/** Snapshot mode gives up after this many heartbeats without news and probes again. */
const SNAPSHOT_STALL_TICKS = 100;

export function emptyOutput(): Output {
  return { messages: [], snapshots: [], commitIndex: null, reads: [], transferReady: null };
}

export function hasOutput(out: Output): boolean {
  return (
    out.messages.length > 0 || out.snapshots.length > 0 || out.commitIndex !== null || out.reads.length > 0
  );
}

function newProgress(lastIndex: number): Progress {
  return {
    next: lastIndex + 1,
    match: 0,
    mode: 'probe',
    probeSent: false,
    inflight: [],
    active: false,
    matchAtTick: 0,
    snapshotTicks: 0,
  };
}

export function initialReplicationContext(input: ReplicationInput): ReplicationContext {
  const peers: Record<NodeId, Progress> = {};
  for (const m of input.config.members) {
    // New leader: every peer starts at lastIndex + 1 (Figure 2) in probe mode; the noop is the probe.
    if (m.id !== input.id) peers[m.id] = newProgress(input.lastIndex - 1);
  }
  return {
    id: input.id,
    term: input.term,
    snapshotIndex: input.snapshotIndex,
    snapshotTerm: input.snapshotTerm,
    termRuns: input.termRuns,
    config: input.config,
    commitIndex: input.commitIndex,
    lastIndex: input.lastIndex,
    termStartIndex: input.termStartIndex,
    selfMatch: input.selfMatch,
    timing: input.timing,
    maxBatch: input.maxBatch ?? 512,
    maxInflight: input.maxInflight ?? 4,
    peers,
    readRound: 0,
    readQueue: [],
    readInflight: null,
    transfer: null,
  };
}

/** A mutable copy: the engine mutates it, the machine assigns it. */
export function draft(c: ReplicationContext): ReplicationContext {
  const peers: Record<NodeId, Progress> = {};
  for (const [id, p] of Object.entries(c.peers)) peers[id] = { ...p, inflight: [...p.inflight] };
  return {
    ...c,
    peers,
    readQueue: [...c.readQueue],
    readInflight: c.readInflight ? { ...c.readInflight, acks: [...c.readInflight.acks] } : null,
    transfer: c.transfer ? { ...c.transfer } : null,
  };
}

function appendMessage(
  c: ReplicationContext,
  to: NodeId,
  prevLogIndex: number,
  prevLogTerm: number,
  entries: AppendEntries['entries'],
): AppendEntries {
  return {
    type: 'AppendEntries',
    from: c.id,
    to,
    term: c.term,
    prevLogIndex,
    prevLogTerm,
    entries,
    leaderCommit: c.commitIndex,
    readRound: c.readRound,
  };
}

function toSnapshot(p: Progress, to: NodeId, out: Output): void {
  p.mode = 'snapshot';
  p.snapshotTicks = 0;
  p.probeSent = false;
  p.inflight = [];
  out.snapshots.push(to);
}

/** Send what the peer's mode and window allow. */
export function sendAppend(c: ReplicationContext, to: NodeId, out: Output): void {
  const p = c.peers[to];
  if (!p || p.mode === 'snapshot') return;
  for (;;) {
    if (p.mode === 'probe' && p.probeSent) return;
    if (p.mode === 'pipeline' && (p.inflight.length >= c.maxInflight || p.next > c.lastIndex)) return;
    const prev = p.next - 1;
    const prevTerm = termAt(c, prev);
    if (prevTerm === undefined || p.next <= c.snapshotIndex) {
      // The entries this peer needs are compacted away: it needs the snapshot.
      toSnapshot(p, to, out);
      return;
    }
    // The entries go by range: the executor attaches them from the log as it sends the message.
    const count = p.next <= c.lastIndex ? Math.min(c.lastIndex - prev, c.maxBatch) : 0;
    const last = prev + count;
    const message = appendMessage(c, to, prev, prevTerm, []);
    out.messages.push(
      count > 0 ? { message, entries: { from: p.next, to: last, term: termAt(c, last) ?? 0 } } : { message },
    );
    if (p.mode === 'probe') {
      p.probeSent = true;
      return;
    }
    p.inflight.push(last);
    p.next = last + 1;
  }
}

/** An empty AppendEntries at the peer's match index: always consistent, resets its election timer. */
function heartbeat(c: ReplicationContext, to: NodeId, out: Output): void {
  const p = c.peers[to];
  const prevTerm = termAt(c, p.match);
  const prev = prevTerm === undefined ? 0 : p.match;
  out.messages.push({ message: appendMessage(c, to, prev, prevTerm ?? 0, []) });
}

export function maybeCommit(c: ReplicationContext, out: Output): void {
  const matches = voters(c.config).map((id) => (id === c.id ? c.selfMatch : (c.peers[id]?.match ?? 0)));
  const next = computeCommit(matches, c.commitIndex, c.term, (i) => termAt(c, i));
  if (next > c.commitIndex) {
    c.commitIndex = next;
    out.commitIndex = next;
    maybeStartRead(c, out);
  }
}

function maybeTransfer(c: ReplicationContext, out: Output): void {
  if (!c.transfer || c.transfer.ready) return;
  const p = c.peers[c.transfer.to];
  if (p && p.match >= c.lastIndex) {
    c.transfer.ready = true;
    out.transferReady = c.transfer.to;
  }
}

export function onAppended(c: ReplicationContext, lastIndex: number, out: Output): void {
  if (lastIndex > c.lastIndex) {
    // A leader appends entries of its own term only (a compaction through the last entry may have
    // left no run to extend).
    const runs = c.termRuns;
    if (runs.length === 0 || runs[runs.length - 1].term !== c.term) {
      c.termRuns = [...runs, { index: c.lastIndex + 1, term: c.term }];
    }
    c.lastIndex = lastIndex;
  }
  for (const id of Object.keys(c.peers)) sendAppend(c, id, out);
  // A single-voter leader commits on its own durability, not here.
}

/** The host compacted the log through `index`: peers that need entries behind it get the snapshot. */
export function onCompacted(c: ReplicationContext, index: number, term: number): void {
  const next = compactTerms(c, index, term);
  c.snapshotIndex = next.snapshotIndex;
  c.snapshotTerm = next.snapshotTerm;
  c.termRuns = next.termRuns;
}

export function onSelfPersisted(c: ReplicationContext, index: number, out: Output): void {
  if (index <= c.selfMatch) return;
  c.selfMatch = index;
  maybeCommit(c, out);
}

export function onAppendResponse(c: ReplicationContext, m: AppendEntriesResponse, out: Output): void {
  const p = c.peers[m.from];
  if (!p) return;
  p.active = true;
  if (m.readRound > 0) ackRead(c, m.from, m.readRound, out);
  if (m.success) {
    if (m.matchIndex > p.match) {
      p.match = m.matchIndex;
      p.inflight = p.inflight.filter((i) => i > p.match);
    }
    if (p.mode === 'probe' && m.matchIndex >= p.next - 1) {
      p.mode = 'pipeline';
      p.probeSent = false;
      p.inflight = [];
      p.next = p.match + 1;
    } else if (p.mode === 'snapshot' && p.match >= c.snapshotIndex) {
      // The peer already has what the snapshot would give it (e.g. a lost InstallSnapshotResponse).
      p.mode = 'probe';
      p.probeSent = false;
      p.next = p.match + 1;
    }
    if (p.mode === 'pipeline') p.next = Math.max(p.next, p.match + 1);
    maybeCommit(c, out);
    maybeTransfer(c, out);
    sendAppend(c, m.from, out);
    return;
  }
  if (p.mode === 'snapshot') return;
  // Rejected: back off with the follower's hint (one round trip per conflicting term, not per entry).
  p.next = nextIndexAfterReject(c, m, p.match, p.next);
  p.mode = 'probe';
  p.probeSent = false;
  p.inflight = [];
  sendAppend(c, m.from, out);
}

export function onSnapshotResponse(c: ReplicationContext, m: InstallSnapshotResponse, out: Output): void {
  const p = c.peers[m.from];
  if (!p) return;
  p.active = true;
  if (!m.installed) {
    p.snapshotTicks = 0;
    return;
  }
  p.match = Math.max(p.match, m.lastIncludedIndex);
  p.next = p.match + 1;
  p.mode = 'probe';
  p.probeSent = false;
  p.inflight = [];
  maybeCommit(c, out);
  maybeTransfer(c, out);
  sendAppend(c, m.from, out);
}

/** Heartbeat timer: keep followers' timers reset, retransmit lost probes, detect stalled pipelines. */
export function onHeartbeatTick(c: ReplicationContext, out: Output): void {
  for (const [id, p] of Object.entries(c.peers)) {
    if (p.mode === 'pipeline' && p.inflight.length > 0 && p.match === p.matchAtTick) {
      // Nothing acknowledged for a whole heartbeat interval: assume loss, fall back to probing.
      p.mode = 'probe';
      p.next = p.match + 1;
      p.inflight = [];
      p.probeSent = false;
    }
    if (p.mode === 'probe') {
      p.probeSent = false;
      sendAppend(c, id, out);
    } else if (p.mode === 'snapshot') {
      p.snapshotTicks++;
      if (p.snapshotTicks > SNAPSHOT_STALL_TICKS) {
        p.mode = 'probe';
        p.next = p.match + 1;
        p.probeSent = false;
        sendAppend(c, id, out);
      } else {
        heartbeat(c, id, out);
      }
    } else {
      heartbeat(c, id, out);
    }
    p.matchAtTick = p.match;
  }
}

/** Check-quorum: active voters (self included when a voter) since the last tick. */
export function quorumActive(c: ReplicationContext): boolean {
  const ids = voters(c.config);
  if (ids.length === 0) return false;
  let active = 0;
  for (const id of ids) {
    if (id === c.id || c.peers[id]?.active) active++;
  }
  return active >= quorum(ids.length);
}

export function resetActivity(c: ReplicationContext): void {
  for (const p of Object.values(c.peers)) p.active = false;
}

export function onConfig(c: ReplicationContext, config: ClusterConfig, out: Output): void {
  c.config = config;
  for (const m of config.members) {
    if (m.id !== c.id && !c.peers[m.id]) {
      c.peers[m.id] = newProgress(c.lastIndex);
      sendAppend(c, m.id, out);
    }
  }
  for (const id of Object.keys(c.peers)) {
    if (!config.members.some((m) => m.id === id)) delete c.peers[id];
  }
  // The quorum changed size: both commit and pending reads may now be decided.
  maybeCommit(c, out);
  checkRead(c, out);
}

/**
 * A read from this leader or from a follower: both wait for the same kind of round, and every read
 * queued before a round starts is confirmed by it (one heartbeat round for a whole batch).
 */
export function onReadIndex(c: ReplicationContext, request: ReadRequest, out: Output): void {
  c.readQueue.push(request);
  maybeStartRead(c, out);
}

/**
 * Start a ReadIndex round when none is running and this leader has committed an entry of its term
 * (before that its commit index may lag behind what earlier leaders committed, §6.4).
 */
export function maybeStartRead(c: ReplicationContext, out: Output): void {
  if (c.readInflight || c.readQueue.length === 0 || c.commitIndex < c.termStartIndex) return;
  c.readRound++;
  c.readInflight = { round: c.readRound, index: c.commitIndex, requests: c.readQueue, acks: [] };
  c.readQueue = [];
  if (isVoter(c.config, c.id)) c.readInflight.acks.push(c.id);
  if (checkRead(c, out)) return;
  for (const id of Object.keys(c.peers)) heartbeat(c, id, out);
}

function ackRead(c: ReplicationContext, from: NodeId, round: number, out: Output): void {
  const r = c.readInflight;
  if (!r || round < r.round || r.acks.includes(from)) return;
  r.acks.push(from);
  checkRead(c, out);
}

function checkRead(c: ReplicationContext, out: Output): boolean {
  const r = c.readInflight;
  if (!r) return false;
  const ids = voters(c.config);
  const acks = r.acks.filter((id) => ids.includes(id)).length;
  if (ids.length === 0 || acks < quorum(ids.length)) return false;
  out.reads.push({ requests: r.requests, index: r.index });
  c.readInflight = null;
  maybeStartRead(c, out);
  return true;
}

/** Begin catching up a transfer target; `to` null picks the most up-to-date other voter. */
export function onTransfer(c: ReplicationContext, to: NodeId | null, out: Output): boolean {
  let target = to;
  if (target === null) {
    let best = -1;
    for (const id of voters(c.config)) {
      const p = c.peers[id];
      if (id !== c.id && p && p.match > best) {
        best = p.match;
        target = id;
      }
    }
  }
  if (target === null || !c.peers[target] || !isVoter(c.config, target)) return false;
  c.transfer = { to: target, ready: false };
  const p = c.peers[target];
  if (p.mode === 'probe') p.probeSent = false;
  if (p.mode === 'pipeline' && p.inflight.length > 0 && p.match < c.lastIndex) {
    // The transfer has only an election timeout: do not wait a heartbeat for a stalled window, probe
    // from the match now (which also switches to a snapshot at once if the target needs one).
    p.mode = 'probe';
    p.next = p.match + 1;
    p.inflight = [];
    p.probeSent = false;
  }
  maybeTransfer(c, out);
  sendAppend(c, target, out);
  return true;
}
