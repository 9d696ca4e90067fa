// The pure rules of Raft (Figure 2 of the extended paper, plus the usual etcd-raft refinements).
// Every function here is total and side-effect free so it can be unit-tested on its own; the machines
// only decide *when* a rule applies.

import type { AppendEntries, ClusterConfig, Entry, LogView, NodeId, Timing } from '../protocol.js';
import { type LogTerms, runStart, termAt } from './log-terms.js';

/** Votes (or acknowledgements) needed out of `n` voters. */
export function quorum(n: number): number {
  return Math.floor(n / 2) + 1;
}

export function voters(config: ClusterConfig): NodeId[] {
  return config.members.filter((m) => m.voter).map((m) => m.id);
}

export function isVoter(config: ClusterConfig, id: NodeId): boolean {
  return config.members.some((m) => m.id === id && m.voter);
}

export function isMember(config: ClusterConfig, id: NodeId): boolean {
  return config.members.some((m) => m.id === id);
}

/** §5.4.1: a candidate's log is at least as up-to-date as ours. */
export function isUpToDate(
  candLastIndex: number,
  candLastTerm: number,
  myLastIndex: number,
  myLastTerm: number,
): boolean {
  return candLastTerm > myLastTerm || (candLastTerm === myLastTerm && candLastIndex >= myLastIndex);
}

/**
 * Count votes among the voters of `config`. `votes` maps a node to granted (true) or rejected (false);
 * nodes that are not voters are ignored (a learner's vote never counts).
 */
export function tally(config: ClusterConfig, votes: Record<NodeId, boolean>): 'won' | 'lost' | 'pending' {
  const ids = voters(config);
  const need = quorum(ids.length);
  let granted = 0;
  let rejected = 0;
  for (const id of ids) {
    if (votes[id] === true) granted++;
    else if (votes[id] === false) rejected++;
  }
  if (ids.length > 0 && granted >= need) return 'won';
  if (ids.length - rejected < need) return 'lost';
  return 'pending';
}

/**
 * The highest index replicated on a quorum of voters, if it may be committed: Figure 8 says only an
 * entry of the leader's current term commits by counting replicas (earlier ones commit indirectly).
 */
export function computeCommit(
  matches: number[],
  commitIndex: number,
  term: number,
  termAt: (index: number) => number | undefined,
): number {
  if (matches.length === 0) return commitIndex;
  const sorted = [...matches].sort((a, b) => b - a);
  const candidate = sorted[quorum(matches.length) - 1];
  if (candidate > commitIndex && termAt(candidate) === term) return candidate;
  return commitIndex;
}

export type AppendPlan =
  | { ok: false; conflictIndex: number; conflictTerm: number }
  | {
      ok: true;
      /** Drop our entries from here before appending (an existing entry conflicts with a new one). */
      truncateFrom?: number;
      /** The new entries we do not have yet (consecutive). */
      append: Entry[];
      /** Index of the last entry the leader sent (what we now match through). */
      lastNew: number;
    };

/**
 * Figure 2, AppendEntries receiver rules 2-4, for a message of our current term.
 * Entries at or below our commit index are already known to match (committed entries are in every
 * later leader's log), so they are skipped; that also avoids reading a compacted prefix.
 */
export function planAppend(log: LogTerms, m: AppendEntries, commitIndex: number): AppendPlan {
  let prevIndex = m.prevLogIndex;
  let prevTerm = m.prevLogTerm;
  let entries = m.entries;
  if (prevIndex < commitIndex) {
    const skip = commitIndex - prevIndex;
    if (entries.length <= skip) return { ok: true, append: [], lastNew: commitIndex };
    prevIndex = commitIndex;
    prevTerm = entries[skip - 1].term;
    entries = entries.slice(skip);
  }
  // Rule 2: reply false if the log has no entry at prevLogIndex whose term matches prevLogTerm.
  if (termAt(log, prevIndex) !== prevTerm) {
    return { ok: false, ...conflictHint(log, prevIndex, commitIndex) };
  }
  // Rules 3-4: find the first new entry that is missing or conflicts; keep everything before it.
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const mine = termAt(log, e.index);
    if (mine === e.term) continue;
    const append = entries.slice(i);
    const lastNew = prevIndex + entries.length;
    if (mine === undefined) return { ok: true, append, lastNew };
    return { ok: true, truncateFrom: e.index, append, lastNew };
  }
  return { ok: true, append: [], lastNew: prevIndex + entries.length };
}

/**
 * Fast backtracking hint for a rejected AppendEntries (§5.3): either our log is too short
 * (conflictTerm 0, conflictIndex = our last index + 1), or the term we hold at prevLogIndex and the
 * first index we hold of that term, so the leader can skip the whole term in one round trip.
 */
export function conflictHint(
  log: LogTerms,
  prevIndex: number,
  commitIndex: number,
): { conflictIndex: number; conflictTerm: number } {
  if (prevIndex > log.lastIndex) return { conflictIndex: log.lastIndex + 1, conflictTerm: 0 };
  const term = termAt(log, prevIndex);
  if (term === undefined) return { conflictIndex: commitIndex + 1, conflictTerm: 0 };
  // The first entry of that term, but not at or below the commit index (known to match).
  const first = prevIndex === log.snapshotIndex ? prevIndex : runStart(log, prevIndex);
  return { conflictIndex: Math.min(prevIndex, Math.max(first, commitIndex + 1)), conflictTerm: term };
}

/**
 * The leader's side of fast backtracking: where to probe next after a rejection. If we hold entries
 * of conflictTerm, resume just after our last one; otherwise skip the follower's whole conflicting term.
 * Never below match + 1 (that prefix is known to agree) and always below the old nextIndex.
 */
export function nextIndexAfterReject(
  log: LogTerms,
  hint: { conflictIndex: number; conflictTerm: number },
  match: number,
  next: number,
): number {
  let candidate = hint.conflictIndex;
  if (hint.conflictTerm > 0) {
    // Skip back over our entries of later terms, a whole run at a time.
    let i = Math.min(next - 1, log.lastIndex);
    while (i > match) {
      const t = termAt(log, i);
      if (t === undefined || t <= hint.conflictTerm) break;
      i = i === log.snapshotIndex ? i - 1 : runStart(log, i) - 1;
    }
    if (i > match && termAt(log, i) === hint.conflictTerm) candidate = i + 1;
  }
  if (candidate >= next) candidate = next - 1;
  return Math.max(match + 1, candidate);
}

/** The configuration carried by a config entry. */
export function parseConfig(data: string): ClusterConfig | null {
  try {
    const value = JSON.parse(data) as ClusterConfig;
    if (!value || !Array.isArray(value.members)) return null;
    for (const m of value.members) {
      if (typeof m.id !== 'string' || typeof m.voter !== 'boolean') return null;
    }
    return value;
  } catch {
    return null;
  }
}

/** Single-server membership change (§4.1 of the thesis): at most one member added, removed or flipped. */
export function isSingleServerChange(from: ClusterConfig, to: ClusterConfig): boolean {
  const ids = new Set([...from.members.map((m) => m.id), ...to.members.map((m) => m.id)]);
  let changed = 0;
  for (const id of ids) {
    const a = from.members.find((m) => m.id === id);
    const b = to.members.find((m) => m.id === id);
    if (!a || !b || a.voter !== b.voter) changed++;
  }
  if (new Set(to.members.map((m) => m.id)).size !== to.members.length) return false;
  return changed <= 1;
}

/**
 * The last config entry at or before `index` (scanning back through the log), else null. Used at
 * start-up and when a truncation removes the config entry in effect (the config reverts).
 */
export function lastConfigAtOrBefore(
  log: LogView,
  index: number,
): { index: number; config: ClusterConfig } | null {
  const first = log.firstIndex();
  let to = Math.min(index, log.lastIndex());
  const chunk = 256;
  while (to >= first) {
    const from = Math.max(first, to - chunk + 1);
    const entries = log.entries(from, to, chunk);
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      if (e.kind !== 'config') continue;
      const config = parseConfig(e.data);
      if (config) return { index: e.index, config };
    }
    if (entries.length === 0) break;
    to = from - 1;
  }
  return null;
}

/** The last of `configs` (ascending) at or before `index`, else null. */
export function configAtOrBefore<T extends { index: number }>(
  configs: readonly T[],
  index: number,
): T | null {
  for (let i = configs.length - 1; i >= 0; i--) if (configs[i].index <= index) return configs[i];
  return null;
}

/** The config entry with the highest index among `entries`, if any. */
export function lastConfigIn(entries: Entry[]): { index: number; config: ClusterConfig } | null {
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    if (e.kind !== 'config') continue;
    const config = parseConfig(e.data);
    if (config) return { index: e.index, config };
  }
  return null;
}

/** mulberry32: a tiny seeded PRNG. Returns a value in [0, 1) and the next state. */
export function nextRandom(state: number): [number, number] {
  const s = (state + 0x6d2b79f5) | 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return [((t ^ (t >>> 14)) >>> 0) / 4294967296, s];
}

/** A randomized election timeout in [electionMinMs, electionMaxMs) and the next PRNG state. */
export function drawElectionTimeout(rng: number, timing: Timing): [number, number] {
  const [r, next] = nextRandom(rng);
  const span = Math.max(0, timing.electionMaxMs - timing.electionMinMs);
  return [timing.electionMinMs + Math.floor(r * span), next];
}
