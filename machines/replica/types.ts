// Context and internal events of the replica machine.

import type {
  ClusterConfig,
  Effect,
  LogView,
  NodeId,
  RaftMessage,
  ReplicaEvent,
  Role,
  Timing,
} from '../protocol.js';
import type { ReadRequest } from '../replication/progress.js';

export interface ReplicaContext {
  id: NodeId;
  /**
   * Read-only storage of the log entries (like etcd raft's Storage): read for the terms of entries
   * (matching, conflicts), the entries to replicate and config scans. Never for the last index or term,
   * which the machine keeps itself (below).
   */
  log: LogView;
  /** Index and term of this replica's last log entry (the snapshot's when the log is empty), as data. */
  lastIndex: number;
  lastTerm: number;
  timing: Timing;
  maxBatch: number;
  maxInflight: number;

  // Figure 2 persistent state (the log itself lives behind `log`).
  term: number;
  votedFor: NodeId | null;

  // Figure 2 volatile state.
  commitIndex: number;
  appliedIndex: number;
  leaderId: NodeId | null;

  /** Effective configuration: the last config entry in the log (committed or not), or the snapshot's. */
  config: ClusterConfig;
  /** Index of the entry that set `config` (0 when it came from the initial input or a snapshot). */
  configIndex: number;

  /** Highest log index known durable on this replica (from `persisted`). */
  durableIndex: number;
  /** Number of `persist` effects emitted, and how many of them are known durable. */
  persistSeq: number;
  durableSeq: number;

  /** Seeded PRNG state and the election timeout drawn from it when the timer was last armed. */
  rng: number;
  electionTimeoutMs: number;

  // Candidate / pre-candidate.
  votes: Record<NodeId, boolean>;
  /** persistSeq of the candidate's own hard-state write: its self-vote counts once that is durable. */
  selfVoteSeq: number;
  /** The next campaign was triggered by TimeoutNow: skip pre-vote, ignore leases. */
  campaignTransfer: boolean;

  // Leader.
  /** Index of the noop this leader appended; an entry of its term is committed once commit reaches it. */
  termStartIndex: number;
  /** ReadIndex requests (own and followers') handed to the replication actor and not yet answered. */
  pendingReads: ReadRequest[];
  /** Leadership transfer in progress (target may be null until the replication actor picks one). */
  transfer: { to: NodeId | null } | null;

  /** Leader that sent the snapshot being received (the InstallSnapshotResponse goes back to it). */
  snapshotFrom: NodeId | null;

  /** Last roleChanged emitted, to emit only real changes. */
  announced: { role: Role; term: number; leaderId: NodeId | null } | null;
}

/** Reports from the replication actor (sendParent) to the replica. */
export type ReplicationReport =
  | {
      type: 'replication.output';
      /** Messages to send (afterPersist=false: the leader may send while its own write is in flight). */
      messages: RaftMessage[];
      /** Peers that must be sent a snapshot. */
      snapshots: NodeId[];
      /** New commit index, when it advanced. */
      commitIndex: number | null;
      /** ReadIndex rounds confirmed by a quorum. */
      reads: { requests: ReadRequest[]; index: number }[];
    }
  /** Check-quorum failed: this leader has not heard from a quorum within an election timeout. */
  | { type: 'replication.quorumLost' }
  /** The transfer target is caught up: send it TimeoutNow. */
  | { type: 'replication.transferReady'; to: NodeId }
  /** No eligible transfer target. */
  | { type: 'replication.transferFailed' };

export type ReplicaMachineEvent = ReplicaEvent | ReplicationReport;

export type { Effect };
