// What the simulator needs from a replica host. RaftNode (src/raft/node.ts) provides it; the adapter
// in raft-node-host.ts maps one onto the other, and tests can plug in deliberately broken hosts.

import type { InspectionEvent } from 'xstate';
import type { NodeId, Role, SnapshotMeta, Timing } from '../../../machines/protocol.js';
import type { ApplyOutcome, Clock, LogStore, SnapshotStore, StateMachine, Transport } from '../interfaces.js';
import type { FlushPolicy } from '../ready-executor.js';

export interface ReplicaStatus {
  role: Role;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  leaderId: NodeId | null;
}

export interface ReplicaHost {
  start(): void;
  stop(): void;
  propose(kind: 'command' | 'config', data: string): Promise<ApplyOutcome>;
  /** Resolves when the local state machine may serve a linearizable read. */
  readIndex(): Promise<void>;
  /** Hand leadership to `to` (null: the most up-to-date voter); optional for fake hosts. */
  transferLeadership?(to: NodeId | null): Promise<void>;
  status(): ReplicaStatus;
  /** A local snapshot through meta.index is in the snapshot store: compact behind it, keeping `keep`. */
  snapshotTaken?(meta: SnapshotMeta, keep: number): void;
}

export interface ReplicaDeps {
  id: NodeId;
  logStore: LogStore;
  stateMachine: StateMachine;
  transport: Transport;
  clock: Clock;
  timing: Timing;
  seed: number;
  /** How many times this node was started (1 on the first start): names its read request ids. */
  incarnation?: number;
  defer: (fn: () => void) => void;
  /** The group-commit policy (ready-executor.ts); default: flush on the next turn. */
  flushPolicy?: FlushPolicy;
  /** The host reports an internal error (an actor that failed): the simulator fails the run. */
  onError: (error: unknown) => void;
  /** Snapshots (taking, streaming, installing); absent when the run does not use them. */
  snapshots?: SnapshotStore;
  /** InstallSnapshot chunk size in bytes (small, so a transfer spans many messages and can be cut). */
  snapshotChunkBytes?: number;
  /** XState inspection of the replica machine (the trace-file recorder: transitions, preCandidate). */
  inspect?: (event: InspectionEvent) => void;
}

export type ReplicaFactory = (deps: ReplicaDeps) => ReplicaHost;
