// The I/O a replica host needs. RaftNode (src/raft/node.ts) drives the pure replica machine with these;
// production provides SQLite and gRPC implementations, the simulator provides simulated ones. Keeping
// one host for both means the simulator tests the real wiring, not a copy of it.

import type {
  ClusterConfig,
  Entry,
  HardState,
  LogView,
  NodeId,
  RaftMessage,
  SnapshotMeta,
} from '../../machines/protocol.js';

/** A batch of writes from one `persist` effect. */
export interface LogWrite {
  hardState?: HardState;
  truncateFrom?: number;
  entries?: Entry[];
  /**
   * The commit index this replica has learnt (like etcd's HardState.Commit). Written so that the
   * commit index a replica reports never goes back across a restart (DESIGN.md invariant 8); it
   * never goes down, and is durable, like the rest of the batch, only once a later flush called back.
   */
  commit?: number;
}

/**
 * The Raft log and hard state. Writes show in the LogView at once (the "unstable" log); they are
 * durable only once a later `flush` has called back. A crash loses exactly the writes not yet flushed.
 */
export interface LogStore extends LogView {
  hardState(): HardState;
  /** The last commit index written (see LogWrite.commit); 0 when none. Unflushed writes are lost in a crash. */
  commitIndex(): number;
  /** The configuration of the last config entry in the log, or else the snapshot's. */
  config(): ClusterConfig;
  write(batch: LogWrite): void;
  /** One fsync for everything written so far. `done` runs when it is durable (possibly synchronously). */
  flush(done: () => void): void;
  /** Drop the log through `meta.index` after a local snapshot (never past the applied index). */
  compact(meta: SnapshotMeta): void;
  /** Replace the log with a snapshot received from the leader (keeps a suffix that matches, as §7). */
  resetToSnapshot(meta: SnapshotMeta): void;
  /** The configuration in effect at `index` (the last config entry at or before it, else the snapshot's). */
  configAt?(index: number): ClusterConfig;
  close(): void;
}

/** The outcome of applying one entry, handed to whoever proposed it (if it was proposed here). */
export interface ApplyOutcome {
  index: number;
  term: number;
  /** What the state machine returned for this entry (the chat result, or an error as data). */
  result: unknown;
}

/**
 * The replicated state machine. `apply` applies a batch of committed entries in one transaction that
 * also records the applied index, so an entry can be neither skipped nor applied twice across crashes.
 */
export interface StateMachine {
  appliedIndex(): number;
  apply(entries: Entry[]): ApplyOutcome[];
  /**
   * Replace the whole state with the snapshot the SnapshotStore has just installed at `meta`, in one
   * transaction that also sets the applied index to `meta.index` (issue 5). Optional: RaftNode's
   * `installSnapshot` option takes precedence.
   */
  restore?(meta: SnapshotMeta): void;
}

/** Snapshot files: taking, streaming and installing (issue 5). Optional until then. */
export interface SnapshotStore {
  /** Metadata of the latest complete local snapshot (index 0 when none). */
  latest(): SnapshotMeta;
  /** Read `length` bytes of the latest snapshot from `offset` (for chunked InstallSnapshot). */
  read(offset: number, length: number): { chunk: Uint8Array; done: boolean };
  /** Store a received chunk; returns the next expected offset. */
  receive(meta: SnapshotMeta, offset: number, chunk: Uint8Array, done: boolean): number;
  /** Size in bytes of the latest snapshot (optional; used for progress logs). */
  byteLength?(): number;
}

/** The network as a replica sees it. Delivery is best effort: messages may be lost, late or repeated. */
export interface Transport {
  send(message: RaftMessage): void;
  /** Called by the host once; the transport delivers every inbound message to `handler`. */
  listen(handler: (message: RaftMessage) => void): void;
  /** Learn peers' addresses as configurations change. */
  setPeers(members: ClusterConfig['members']): void;
  /**
   * Optional: `handler(id)` when a working connection to peer `id` is lost (closed or reset), a hint
   * that the peer died. Transports without connections (the simulator's network) leave it out.
   */
  onPeerLost?(handler: (id: NodeId) => void): void;
  close(): void;
}

/** A clock for XState's delayed events: real timers in production, a SimulatedClock in the simulator. */
export interface Clock {
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown;
  clearTimeout(id: unknown): void;
  now(): number;
}

export type { NodeId };
