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
 * A snapshot as Raft sees it: metadata (the index, term and configuration it covers) and bytes that
 * only the state machine understands. Raft stores them, streams them in chunks and hands them back to
 * the state machine to restore from; it never looks inside.
 */
export interface SnapshotPayload {
  meta: SnapshotMeta;
  byteLength: number;
  /** The bytes [offset, offset + length), fewer at the end. */
  read(offset: number, length: number): Uint8Array;
  /** A file holding exactly these bytes, when the store keeps them in one (open it rather than read). */
  file?: string;
}

/** What a state machine's snapshotTo wrote: the applied index the bytes are consistent with. */
export interface SnapshotWritten {
  index: number;
  /** How the write shared the event loop (for logs and benchmarks). */
  stats?: SnapshotTakeStats;
}

export interface SnapshotTakeStats {
  totalMs: number;
  /** The longest single step: how long the write held the event loop at once. */
  maxStepMs: number;
  steps: number;
  /** Wall time of each step, and the CPU time this process used in it (wall minus CPU is time the
   *  process was not running at all: a loaded machine, not the copy). */
  stepMs: number[];
  stepCpuMs: number[];
}

export interface SnapshotToOptions {
  /**
   * Asked once, as soon as the index the snapshot will be consistent with is fixed: false abandons
   * the write (nothing is left in the file's place; snapshotTo resolves undefined).
   */
  accept(index: number): boolean;
  /** Checked between steps: true abandons the write (it rejects, and the file is removed). */
  cancelled?(): boolean;
}

/** Writes snapshots of a state machine: its side of taking one (FileSnapshotStore.takeInSteps). */
export interface SnapshotSource {
  /**
   * Write the state as of one applied index into the new file `file`, as opaque bytes that `restore`
   * reads back, and make it durable (fsync), without holding the event loop for long.
   */
  snapshotTo(file: string, opts: SnapshotToOptions): Promise<SnapshotWritten | undefined>;
}

/**
 * The replicated state machine. `apply` applies a batch of committed entries in one transaction that
 * also records the applied index, so an entry can be neither skipped nor applied twice across crashes.
 */
export interface StateMachine {
  appliedIndex(): number;
  apply(entries: Entry[]): ApplyOutcome[];
  /**
   * Replace the whole state with a snapshot's bytes (written by this kind of state machine's
   * snapshotTo, here or on another replica), in one atomic step that also sets the applied index to
   * `payload.meta.index`. Throws, changing nothing, when the bytes are not a snapshot at that index.
   * Optional: without it this replica does not install snapshots from the leader.
   */
  restore?(payload: SnapshotPayload): void;
}

/**
 * Snapshots as Raft keeps them: the latest complete one (metadata and opaque bytes), streamed in
 * chunks to followers, and received from the leader in chunks and installed all or nothing.
 */
export interface SnapshotStore {
  /** Metadata of the latest complete local snapshot (index 0 when none). */
  latest(): SnapshotMeta;
  /** Read `length` bytes of the latest snapshot from `offset` (for chunked InstallSnapshot). */
  read(offset: number, length: number): { chunk: Uint8Array; done: boolean };
  /**
   * Store a received chunk; returns the next expected offset. On the last chunk the snapshot is made
   * durable and becomes the latest before this returns (so before it is acknowledged).
   */
  receive(meta: SnapshotMeta, offset: number, chunk: Uint8Array, done: boolean): number;
  /** The latest snapshot's bytes, for StateMachine.restore (undefined when there is none). */
  payload(): SnapshotPayload | undefined;
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
