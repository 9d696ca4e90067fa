// The safety invariants of DESIGN.md (1-4 and 8), checked by the simulator after every step.
// Every check is incremental (each log entry, committed index and applied entry is looked at a
// bounded number of times), so checking after every event stays cheap on long runs.
//
// - Election safety: at most one leader per term over the whole run; and, what it rests on, no voter
//   grants two different candidates a (real, not pre-) vote in the same term, even across restarts.
// - Log matching: a global map (index, term) -> (kind, data, term at index-1). If every log holding
//   (i, t) agrees on the entry and on the previous term, then by induction two logs that share (i, t)
//   are identical up to i. Exact, no hashing.
// - Leader completeness: an entry first seen committed while the highest term of any node observing
//   the commit was T must be in the log of every leader of a term > T.
// - State machine safety: every applied entry equals every other applied entry at that index, and
//   the committed entry there.
// - Snapshots: a log compacted behind a snapshot is checked over the entries still present, and its
//   snapshot's (index, term) must be the committed entry there. Every snapshot taken or installed at
//   index i must be the same state (the encoded database), and installing one never takes a node's
//   applied index back (state machine safety for the entries it skips).
// - Monotonicity: term, commitIndex and applied never decrease within an incarnation; across a
//   restart, applied never decreases, term is at least the durable term at the crash, commitIndex is
//   at least the applied index at the crash (see `strictCommitAcrossRestarts`); and the term on the
//   messages a node sends never decreases, across restarts too (it persists before it speaks).

import type { Entry, LogView, NodeId, RaftMessage, Role } from '../../../machines/protocol.js';

export interface NodeObservation {
  id: NodeId;
  /** Increments on every restart of the node. */
  incarnation: number;
  role: Role;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  /** The node's log, durable plus unstable. */
  log: LogView;
  /** Lowest log index that may have changed since the previous observation (Infinity: none). */
  logDirtyFrom: number;
}

export interface InvariantOptions {
  /** Demand that commitIndex after a restart is at least the commitIndex before the crash. */
  strictCommitAcrossRestarts?: boolean;
}

interface LogKey {
  kind: Entry['kind'];
  data: string;
  prevTerm: number | undefined;
  node: NodeId;
}

interface NodeTrack {
  incarnation: number;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  /** Committed prefix already compared with the global committed log, in this incarnation. */
  commitChecked: number;
  /** Terms in which this incarnation was seen as leader (completeness is checked once per term). */
  leaderTerm: number;
  /** Durable term and applied index at the last crash (-1: none). */
  crashTerm: number;
  crashApplied: number;
  crashCommit: number;
  maxSentTerm: number;
}

export class InvariantChecker {
  /** The first violation found (the simulator stops there); later ones are kept for context. */
  readonly violations: string[] = [];
  private leaders = new Map<number, NodeId>();
  private votes = new Map<string, NodeId>();
  private logKeys = new Map<number, Map<number, LogKey>>();
  /** committed[i]: term of the committed entry at i; commitTerm[i]: term of its first observation. */
  private committedTerm: number[] = [0];
  private commitTerm: number[] = [0];
  private applied: ({ term: number; kind: Entry['kind']; data: string; node: NodeId } | undefined)[] = [];
  private nodes = new Map<NodeId, NodeTrack>();
  /** The encoded state machine at index i, from the first snapshot taken or installed there. */
  private snapshotStates = new Map<number, { text: string; node: NodeId }>();
  now = 0;

  constructor(private readonly options: InvariantOptions = {}) {}

  get failed(): boolean {
    return this.violations.length > 0;
  }

  /** Highest index known committed. */
  committedIndex(): number {
    return this.committedTerm.length - 1;
  }

  fail(message: string): void {
    this.violations.push(`t=${this.now.toFixed(3)}ms: ${message}`);
  }

  /** After every step: the state of every node that is up. */
  observe(nodes: readonly NodeObservation[]): void {
    for (const n of nodes) this.observeNode(n);
    this.observeCommits(nodes);
  }

  /** A node crashed; `durableTerm` is the term in its fsynced hard state. */
  crashed(id: NodeId, durableTerm: number, appliedIndex: number): void {
    const t = this.nodes.get(id);
    if (!t) return;
    t.crashTerm = durableTerm;
    t.crashApplied = appliedIndex;
    t.crashCommit = t.commitIndex;
  }

  /** Every message a node sends (before the network can lose it). */
  sent(m: RaftMessage): void {
    const preVote = (m.type === 'RequestVote' || m.type === 'RequestVoteResponse') && m.preVote;
    if (!preVote) {
      const t = this.track(m.from);
      if (m.term < t.maxSentTerm) {
        this.fail(
          `${m.from} sent ${m.type} with term ${m.term} after sending term ${t.maxSentTerm} (term not persisted before speaking?)`,
        );
      }
      t.maxSentTerm = Math.max(t.maxSentTerm, m.term);
    }
    if (m.type === 'RequestVoteResponse' && m.granted && !m.preVote) {
      const key = `${m.term}:${m.from}`;
      const prev = this.votes.get(key);
      if (prev !== undefined && prev !== m.to) {
        this.fail(`${m.from} granted its vote in term ${m.term} to both ${prev} and ${m.to}`);
      }
      this.votes.set(key, m.to);
    }
  }

  /** A state machine applied `entries` (state machine safety). */
  appliedEntries(id: NodeId, entries: readonly Entry[]): void {
    for (const e of entries) {
      const prev = this.applied[e.index];
      if (prev) {
        if (prev.term !== e.term || prev.kind !== e.kind || prev.data !== e.data) {
          this.fail(
            `state machine safety: ${id} applied ${describe(e)} at ${e.index}, ${prev.node} applied ${describe(prev)}`,
          );
        }
      } else {
        this.applied[e.index] = { term: e.term, kind: e.kind, data: e.data, node: id };
      }
      const ct = this.committedTerm[e.index];
      if (ct !== undefined && ct !== e.term) {
        this.fail(
          `${id} applied index ${e.index} with term ${e.term}, but the committed entry has term ${ct}`,
        );
      }
    }
  }

  /** `id` took a snapshot of its state machine at `index` (`text`: the encoded state). */
  snapshotTaken(id: NodeId, index: number, text: string): void {
    this.sameSnapshotState(id, index, text, 'took');
  }

  /** `id` replaced its state with a snapshot received at `index` (`text`: the encoded state). */
  snapshotRestored(id: NodeId, index: number, term: number, text: string): void {
    const ct = this.committedTerm[index];
    if (ct !== undefined && ct !== term) {
      this.fail(
        `${id} installed a snapshot at ${index} with term ${term}, but term ${ct} was committed there`,
      );
    }
    this.sameSnapshotState(id, index, text, 'installed');
  }

  private sameSnapshotState(id: NodeId, index: number, text: string, how: string): void {
    const known = this.snapshotStates.get(index);
    if (!known) {
      this.snapshotStates.set(index, { text, node: id });
    } else if (known.text !== text) {
      this.fail(
        `state machine safety: ${id} ${how} a snapshot at ${index} that differs from ${known.node}'s (${clip(text)} vs ${clip(known.text)})`,
      );
    }
  }

  private track(id: NodeId): NodeTrack {
    let t = this.nodes.get(id);
    if (!t) {
      t = {
        incarnation: -1,
        term: 0,
        commitIndex: 0,
        appliedIndex: 0,
        commitChecked: 0,
        leaderTerm: -1,
        crashTerm: -1,
        crashApplied: -1,
        crashCommit: -1,
        maxSentTerm: 0,
      };
      this.nodes.set(id, t);
    }
    return t;
  }

  private observeNode(n: NodeObservation): void {
    const t = this.track(n.id);
    // Monotonicity.
    if (n.incarnation === t.incarnation) {
      if (n.term < t.term) this.fail(`${n.id}: term went back from ${t.term} to ${n.term}`);
      if (n.commitIndex < t.commitIndex) {
        this.fail(`${n.id}: commitIndex went back from ${t.commitIndex} to ${n.commitIndex}`);
      }
      if (n.appliedIndex < t.appliedIndex) {
        this.fail(`${n.id}: applied index went back from ${t.appliedIndex} to ${n.appliedIndex}`);
      }
    } else {
      if (t.crashTerm >= 0 && n.term < t.crashTerm) {
        this.fail(`${n.id}: restarted with term ${n.term}, below its durable term ${t.crashTerm}`);
      }
      if (t.crashApplied >= 0 && n.appliedIndex < t.crashApplied) {
        this.fail(`${n.id}: restarted with applied ${n.appliedIndex}, below ${t.crashApplied} at the crash`);
      }
      const floor = this.options.strictCommitAcrossRestarts ? t.crashCommit : t.crashApplied;
      if (floor >= 0 && n.commitIndex < floor) {
        this.fail(`${n.id}: restarted with commitIndex ${n.commitIndex}, below ${floor} before the crash`);
      }
      t.incarnation = n.incarnation;
      t.commitChecked = 0;
      t.leaderTerm = -1;
    }
    t.term = n.term;
    t.commitIndex = n.commitIndex;
    t.appliedIndex = n.appliedIndex;
    if (n.appliedIndex > n.commitIndex) {
      this.fail(`${n.id}: applied ${n.appliedIndex} beyond commitIndex ${n.commitIndex}`);
    }
    if (n.commitIndex > n.log.lastIndex()) {
      this.fail(`${n.id}: commitIndex ${n.commitIndex} beyond its last log index ${n.log.lastIndex()}`);
    }

    // Election safety.
    if (n.role === 'leader') {
      const other = this.leaders.get(n.term);
      if (other !== undefined && other !== n.id) {
        this.fail(`election safety: ${n.id} and ${other} are both leaders of term ${n.term}`);
      }
      this.leaders.set(n.term, n.id);
    }

    // A compacted log: the snapshot stands for the committed entry at its index.
    const snap = n.log.snapshot();
    if (snap.index > 0) {
      const ct = this.committedTerm[snap.index];
      if (ct !== undefined && ct !== snap.term) {
        this.fail(
          `${n.id}: log snapshot at ${snap.index} has term ${snap.term}, but term ${ct} was committed there`,
        );
      }
      if (snap.index > n.commitIndex) {
        this.fail(`${n.id}: log snapshot at ${snap.index} beyond commitIndex ${n.commitIndex}`);
      }
    }

    // Log matching, for the part of the log that changed.
    this.checkLogFrom(n, n.logDirtyFrom);
  }

  private checkLogFrom(n: NodeObservation, from: number): void {
    const log = n.log;
    const last = log.lastIndex();
    const start = Math.max(from, log.firstIndex());
    if (start > last) return;
    // Walk in chunks so that a large log is not copied at once.
    for (let lo = start; lo <= last; lo += 1024) {
      const chunk = log.entries(lo, Math.min(last, lo + 1023), 1024);
      for (const e of chunk) {
        const prevTerm = log.termAt(e.index - 1);
        let byTerm = this.logKeys.get(e.index);
        if (!byTerm) {
          byTerm = new Map();
          this.logKeys.set(e.index, byTerm);
        }
        const known = byTerm.get(e.term);
        if (!known) {
          byTerm.set(e.term, { kind: e.kind, data: e.data, prevTerm, node: n.id });
          continue;
        }
        if (known.kind !== e.kind || known.data !== e.data) {
          this.fail(
            `log matching: entry (${e.index}, term ${e.term}) differs between ${known.node} (${known.kind} ${clip(known.data)}) and ${n.id} (${e.kind} ${clip(e.data)})`,
          );
        } else if (known.prevTerm !== undefined && prevTerm !== undefined && known.prevTerm !== prevTerm) {
          this.fail(
            `log matching: ${known.node} and ${n.id} both hold (${e.index}, term ${e.term}) but differ at ${e.index - 1} (terms ${known.prevTerm} vs ${prevTerm})`,
          );
        }
      }
    }
  }

  private observeCommits(nodes: readonly NodeObservation[]): void {
    const before = this.committedIndex();
    let maxTerm = 0;
    for (const n of nodes) if (n.commitIndex > before) maxTerm = Math.max(maxTerm, n.term);
    // Extend the global committed log, then compare every node's committed prefix with it.
    for (const n of nodes) {
      const t = this.track(n.id);
      const from = t.commitChecked + 1;
      for (let i = Math.max(from, n.log.firstIndex()); i <= n.commitIndex; i++) {
        const term = n.log.termAt(i);
        if (term === undefined) break;
        const known = this.committedTerm[i];
        if (known === undefined) {
          if (i !== this.committedTerm.length) break; // a gap: wait for the earlier ones
          this.committedTerm.push(term);
          this.commitTerm.push(maxTerm || n.term);
          const a = this.applied[i];
          if (a && a.term !== term) {
            this.fail(
              `index ${i} was applied with term ${a.term} by ${a.node}, but ${n.id} committed term ${term}`,
            );
          }
        } else if (known !== term) {
          this.fail(`${n.id} has committed term ${term} at ${i}, but term ${known} was committed there`);
        }
      }
      t.commitChecked = Math.max(t.commitChecked, n.commitIndex);
    }
    // Leader completeness: new leaders against all earlier commits; sitting leaders against new ones.
    for (const n of nodes) {
      if (n.role !== 'leader') continue;
      const t = this.track(n.id);
      const from = t.leaderTerm === n.term ? before + 1 : 1;
      t.leaderTerm = n.term;
      for (let i = Math.max(from, n.log.firstIndex()); i <= this.committedIndex(); i++) {
        if (this.commitTerm[i]! >= n.term) continue;
        const have = n.log.termAt(i);
        if (have !== this.committedTerm[i]) {
          this.fail(
            `leader completeness: ${n.id}, leader of term ${n.term}, has ${have === undefined ? 'no entry' : `term ${have}`} at ${i}, where term ${this.committedTerm[i]} was committed in term ${this.commitTerm[i]}`,
          );
          return;
        }
      }
    }
  }
}

function describe(e: { term: number; kind: string; data: string }): string {
  return `(term ${e.term}, ${e.kind} ${clip(e.data)})`;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
