// Context and internal events of the replica machine.

import type {
  ClusterConfig,
  Effect,
  EntryRange,
  NodeId,
  RaftMessage,
  ReplicaEvent,
  Role,
  Timing,
} from '../protocol.js';
import type { ReadRequest } from '../replication/progress.js';
import type { ConfigEntry, LogTerms } from './log-terms.js';

/**
 * Plain, serialisable data only (a test round-trips it through JSON): the machine holds no host object
 * and reads no storage. Its log is known by terms (LogTerms: snapshotIndex/snapshotTerm, termRuns,
 * lastIndex); the entry bodies live with the host, which attaches them to the AppendEntries it sends.
 */
export interface ReplicaContext extends LogTerms {
  id: NodeId;
  /** Term of this replica's last log entry (the snapshot's when the log is empty). */
  lastTerm: number;
  /** Config entries of the log after the snapshot, ascending (a truncation may revert to an earlier one). */
  configs: ConfigEntry[];
  /** The configuration in effect at the snapshot. */
  snapshotConfig: ClusterConfig;
  timing: Timing;
  maxBatch: number;
  maxInflight: number;

  // Figure 2 persistent state (the log's terms are above; its entries are the host's).
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
      messages: Outgoing[];
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

/** A message the replication actor sends; an AppendEntries names the log entries to attach. */
export interface Outgoing {
  message: RaftMessage;
  entries?: EntryRange;
}

export type { Effect };
