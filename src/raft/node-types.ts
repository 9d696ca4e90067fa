// The types of RaftNode's public API: its options, its status, a role change, its logger, and the error
// everything pending fails with when the replica stops. They live apart from node.ts so that the parts
// RaftNode is made of can name them without importing the class that composes them; node.ts re-exports
// them, so users import everything from there.

import type { InspectionEvent } from 'xstate';
import type { ClusterConfig, NodeId, Role, Timing } from '../../machines/protocol.js';
import type { Clock, LogStore, SnapshotStore, StateMachine, Transport } from './interfaces.js';
import type { FlushPolicy } from './ready-executor.js';

export interface RaftLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RaftNodeOptions {
  id: NodeId;
  logStore: LogStore;
  stateMachine: StateMachine;
  transport: Transport;
  /** Passed to XState's createActor: real timers in production, a SimulatedClock in the simulator. */
  clock: Clock;
  timing: Timing;
  /** Seed of the replica's election-timeout PRNG. */
  seed: number;
  /** Schedules proposal-batch, flush and apply work (default setImmediate; the simulator passes clock.setTimeout(fn, 0)). */
  defer?: (fn: () => void) => void;
  /**
   * When the log's group-commit flush runs (ready-executor.ts; --flush-delay-us, --flush-max-entries):
   * default on the next turn. A delay waits on `clock` (real timers in production, simulated ones in
   * the simulator).
   */
  flushPolicy?: FlushPolicy;
  logger?: RaftLogger;
  /**
   * XState inspection observer for the node's whole life (the simulator's trace recorder). The /cluster
   * inspector uses setInspection instead, so that it costs nothing while nobody watches.
   */
  inspect?: (event: InspectionEvent) => void;
  maxBatch?: number;
  maxInflight?: number;
  /**
   * Snapshots (metadata and opaque bytes) for InstallSnapshot; without it snapshots are neither sent
   * nor received. Received ones are installed with `stateMachine.restore` (none without it).
   */
  snapshots?: SnapshotStore;
  /** InstallSnapshot flow control: bytes per chunk, chunks in flight, resend after silence (ms). */
  snapshotChunkBytes?: number;
  snapshotWindow?: number;
  snapshotRetransmitMs?: number;
  /** Called when the actor fails (an exception in the machine): the host is dead after that. */
  onError?: (error: unknown) => void;
  /**
   * Names this process incarnation in read request ids, so that a restarted replica never takes a
   * read index meant for its previous life (default: random). The simulator passes its restart count.
   */
  incarnation?: string;
  /** A read not served within this long fails (ms; default 5 election timeouts). */
  readTimeoutMs?: number;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leaderId: NodeId | null;
  commitIndex: number;
  lastApplied: number;
  lastLogIndex: number;
  snapshotIndex: number;
  config: ClusterConfig;
}

export interface RoleChange {
  role: Role;
  term: number;
  leaderId: NodeId | null;
}

export class NodeStoppedError extends Error {
  constructor() {
    super('the replica stopped');
    this.name = 'NodeStoppedError';
  }
}
