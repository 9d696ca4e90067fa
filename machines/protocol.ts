// The Raft protocol as plain data: the contract between the pure machines (machines/) and the hosts
// that give them I/O (src/raft/node.ts in production and in the simulator).
//
// Machines receive events (inbound messages, timers, storage completions, client proposals) and emit
// effects. They never read a clock, a random source, a disk or a socket: everything arrives as events
// or through the input (the durable state, read once at start, and a random seed).

export type NodeId = string;

/** One member of the configuration. Addresses travel with the configuration so every host can dial. */
export interface Member {
  id: NodeId;
  address: string;
  voter: boolean;
}

/** A cluster configuration (single-server changes: at most one member differs between two configs). */
export interface ClusterConfig {
  members: Member[];
}

export type EntryKind = 'noop' | 'command' | 'config';

/**
 * A log entry. `data` is opaque to Raft: for `command` it is the serialized chat command, for `config`
 * the JSON of a ClusterConfig, for `noop` empty (the entry a new leader appends to commit its term).
 */
export interface Entry {
  index: number;
  term: number;
  kind: EntryKind;
  data: string;
}

/** Durable per-replica state of Figure 2. Persisted (and fsynced) before any message that depends on it. */
export interface HardState {
  term: number;
  votedFor: NodeId | null;
}

/** What is covered by the latest snapshot: the log before and at `index` may be gone. */
export interface SnapshotMeta {
  index: number;
  term: number;
  config: ClusterConfig;
}

// ---------------------------------------------------------------------------------------------------
// Messages between replicas. Each is also an event type of the replica machine.

interface Envelope {
  from: NodeId;
  to: NodeId;
  term: number;
}

export interface RequestVote extends Envelope {
  type: 'RequestVote';
  lastLogIndex: number;
  lastLogTerm: number;
  /** Pre-vote round: `term` is the term the candidate would use; nobody changes state for it. */
  preVote: boolean;
  /** Sent after TimeoutNow: voters ignore their leader lease for it. */
  transfer: boolean;
}

export interface RequestVoteResponse extends Envelope {
  type: 'RequestVoteResponse';
  granted: boolean;
  preVote: boolean;
}

export interface AppendEntries extends Envelope {
  type: 'AppendEntries';
  prevLogIndex: number;
  prevLogTerm: number;
  entries: Entry[];
  leaderCommit: number;
  /** ReadIndex round this heartbeat belongs to, echoed in the response (0 when none). */
  readRound: number;
}

export interface AppendEntriesResponse extends Envelope {
  type: 'AppendEntriesResponse';
  success: boolean;
  /** On success: the index of the last entry the follower now matches (prevLogIndex + entries). */
  matchIndex: number;
  /** On failure, fast backtracking hints (Raft paper §5.3, "optimization"). */
  conflictIndex: number;
  conflictTerm: number;
  /** Echo of AppendEntries.readRound. */
  readRound: number;
}

export interface InstallSnapshot extends Envelope {
  type: 'InstallSnapshot';
  lastIncludedIndex: number;
  lastIncludedTerm: number;
  config: ClusterConfig;
  /** Byte offset of this chunk in the snapshot; chunks resume from the offset the follower reports. */
  offset: number;
  /** Base64 chunk of the snapshot file. */
  chunk: string;
  done: boolean;
}

export interface InstallSnapshotResponse extends Envelope {
  type: 'InstallSnapshotResponse';
  lastIncludedIndex: number;
  /** The next offset the follower expects (resumable transfer); equals the size when installed. */
  nextOffset: number;
  /** True when the whole snapshot is installed. */
  installed: boolean;
}

export interface TimeoutNow extends Envelope {
  type: 'TimeoutNow';
}

/**
 * Follower read (etcd's MsgReadIndex): a follower or learner asks its leader for a read index. The
 * leader answers only after a quorum round that started after the request arrived confirms it still
 * leads. `requestIds` are the asker's own ids (unique per host incarnation), echoed in the response.
 */
export interface ReadIndexRequest extends Envelope {
  type: 'ReadIndexRequest';
  requestIds: string[];
}

/**
 * The leader's answer (etcd's MsgReadIndexResp). `ok`: the reads may be served once the asker has
 * applied through `index` (the leader's commit index when its confirming round started). Not `ok`: the
 * receiver is not (or no longer) the leader; the asker refuses the reads and its client retries.
 */
export interface ReadIndexResponse extends Envelope {
  type: 'ReadIndexResponse';
  requestIds: string[];
  ok: boolean;
  index: number;
}

export type RaftMessage =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse;

// ---------------------------------------------------------------------------------------------------
// Requests from the host into the replica machine.

/** A client command to append (leader only). `requestId` is local to this host, never replicated. */
export interface Proposal {
  requestId: string;
  kind: 'command' | 'config';
  data: string;
}

export type HostEvent =
  /** Client commands, batched: one event (and one log write) per batch. */
  | { type: 'propose'; proposals: Proposal[] }
  /**
   * The log is durable through `index` (whose entry has `term`): storage completion. `seq`, when
   * given, is the number of `persist` effects (counted from the actor's start) now durable; the
   * machine uses it to know that a hard-state-only write (a candidate's own vote) is durable.
   * Without it, every persist emitted so far is taken as durable.
   */
  | { type: 'persisted'; index: number; term: number; seq?: number }
  /** The state machine has applied through `index`. */
  | { type: 'applied'; index: number }
  /**
   * A linearizable read: the leader confirms its leadership with a quorum round; a follower or learner
   * asks its leader for the index (ReadIndexRequest). Either way `readReady` reports the index the read
   * must wait for, or `readRejected` says it cannot be served here now.
   */
  | { type: 'readIndex'; requestId: string }
  /** Leadership transfer (empty `to`: the most up-to-date voter). */
  | { type: 'transferLeadership'; to: NodeId | null }
  /** The host has finished installing a snapshot received from the leader. */
  | { type: 'snapshotInstalled'; meta: SnapshotMeta }
  /**
   * The host compacted its log through `meta.index` (after a local snapshot; whose entry has
   * `meta.term`, and `meta.config` in effect there): entries at or below it can no longer be sent.
   */
  | { type: 'logCompacted'; meta: SnapshotMeta }
  /**
   * The transport lost a working connection to peer `id` (it closed or was reset: the peer's process
   * died or restarted). A hint, never proof: a follower whose leader this is stops trusting it and
   * campaigns soon (docs/design/leader-stability.md, "Failover"); everyone else ignores it.
   */
  | { type: 'peerLost'; id: NodeId };

export type ReplicaEvent = RaftMessage | HostEvent;

// ---------------------------------------------------------------------------------------------------
// Effects the replica machine emits; the host carries them out in the order emitted.
//
// Ordering contract for hosts: a `send` whose `afterPersist` is true leaves only after every `persist`
// emitted before it is durable (fsynced). This is how "persist before you answer" is guaranteed. Only
// a leader's AppendEntries/InstallSnapshot/heartbeats set it to false: a leader may send entries while it
// writes them itself, and counts itself toward a quorum only after its own `persisted` event.

export type Effect =
  | {
      type: 'persist';
      /** New hard state, when it changed. */
      hardState?: HardState;
      /** Drop every entry with index >= truncateFrom before appending (conflict truncation). */
      truncateFrom?: number;
      /** Entries to append, consecutive, after any truncation. */
      entries?: Entry[];
    }
  | {
      type: 'send';
      message: RaftMessage;
      afterPersist: boolean;
      /**
       * A leader's AppendEntries carries no entries as emitted (the machine knows its log by terms
       * only): the executor attaches the log entries of this range as it sends the message.
       */
      entries?: EntryRange;
    }
  /** Entries through `index` are committed: the host applies them in order. */
  | { type: 'commit'; index: number }
  /** A proposal was appended at `index`/`term`; it succeeds if that entry is later applied unchanged. */
  | { type: 'proposed'; requestId: string; index: number; term: number }
  /** A proposal cannot be accepted here (not leader, transfer in progress, change in progress...). */
  | { type: 'proposalRejected'; requestId: string; reason: string; leaderId: NodeId | null }
  /** A read may be served once the state machine has applied through `index`. */
  | { type: 'readReady'; requestId: string; index: number }
  /** A read cannot be served here. */
  | { type: 'readRejected'; requestId: string; reason: string; leaderId: NodeId | null }
  /** The role or the known leader changed (for the chat actor, metrics, the inspector). */
  | { type: 'roleChanged'; role: Role; term: number; leaderId: NodeId | null }
  /** The effective configuration changed (appended config entries take effect at once). */
  | { type: 'configChanged'; config: ClusterConfig }
  /** Send the snapshot to a peer (the host streams chunks; the machine tracks the peer as 'snapshot'). */
  | { type: 'sendSnapshot'; to: NodeId; term: number }
  /** Store a received snapshot chunk; install atomically when `done`, then report `snapshotInstalled`. */
  | { type: 'receiveSnapshotChunk'; message: InstallSnapshot }
  /** Leadership transfer finished or was abandoned. */
  | { type: 'transferFinished'; to: NodeId | null; ok: boolean };

export type Role = 'follower' | 'candidate' | 'leader' | 'learner';

/**
 * Log entries [from, to] to attach to an AppendEntries; `term` is the term of entry `to` as the machine
 * knows it. The executor reads them from the log (not yet durable ones included); when the log no
 * longer holds that entry with that term (compacted, or replaced after the message was emitted), it
 * drops the message, as the network may: the leader's progress tracking retries.
 */
export interface EntryRange {
  from: number;
  to: number;
  term: number;
}

// ---------------------------------------------------------------------------------------------------
// A host's read-only view of its log. The replica machine reads it once, while it builds its initial
// context from the input (the log's terms and config entries, as plain data), and never again: from
// then on it tracks its log itself, from the `persist` effects it emits.

export interface LogView {
  /** Index of the last entry (the snapshot index when the log is empty after compaction). */
  lastIndex(): number;
  /** Term of the entry at `index`; the snapshot term at the snapshot index; 0 for index 0; undefined when compacted away or beyond the end. */
  termAt(index: number): number | undefined;
  /** Entries in [from, to] inclusive, at most `maxEntries`; empty when `from` is compacted away. */
  entries(from: number, to: number, maxEntries: number): Entry[];
  /** The latest snapshot's metadata (index 0, term 0 when there is none). */
  snapshot(): SnapshotMeta;
  /** First index still in the log (snapshot.index + 1). */
  firstIndex(): number;
}

/** Timing knobs, in milliseconds; the machine reads them as named delays. */
export interface Timing {
  heartbeatMs: number;
  /** Election timeouts are drawn uniformly from [electionMinMs, electionMaxMs). */
  electionMinMs: number;
  electionMaxMs: number;
}

/** Input to the replica machine: everything it starts from, read back from durable state. */
export interface ReplicaInput {
  id: NodeId;
  hardState: HardState;
  /** The configuration in effect: the last config entry in the log, or the snapshot's. */
  config: ClusterConfig;
  /** Applied index recovered from the state machine (commitIndex starts here, never lower). */
  appliedIndex: number;
  /**
   * Commit index recovered from the log store (persisted before it was reported), so the commit index
   * does not go back across a restart. Default: appliedIndex. Clamped to [applied, last log index].
   */
  commitIndex?: number;
  /** Read only while the initial context is built (see LogView). */
  log: LogView;
  timing: Timing;
  /** Seed of the replica's own PRNG (election timeouts); the machine advances it purely. */
  seed: number;
  /** Largest number of entries per AppendEntries. */
  maxBatch?: number;
  /** AppendEntries in flight per peer in pipeline mode. */
  maxInflight?: number;
}
