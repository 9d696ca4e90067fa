// What the simulator needs from a replica host. RaftNode (src/raft/node.ts) provides it; the adapter
// in raft-node-host.ts maps one onto the other, and tests can plug in deliberately broken hosts.

import type { NodeId, Role, SnapshotMeta } from '../../../machines/protocol.js';
import type { ApplyOutcome } from '../interfaces.js';
import type { RaftNodeOptions } from '../node-types.js';

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

/**
 * RaftNode's options (node-types.ts) that the simulator sets, and how they differ here: `defer` and
 * `onError` are required (the simulator schedules every turn on its clock, and fails the run on an
 * internal error), and the incarnation is the node's start count. The simulator passes small snapshot
 * chunks, so that a transfer spans many messages and can be cut, and records transitions with `inspect`.
 */
export interface ReplicaDeps
  extends Pick<
    RaftNodeOptions,
    | 'id'
    | 'logStore'
    | 'stateMachine'
    | 'transport'
    | 'clock'
    | 'timing'
    | 'seed'
    | 'flushPolicy'
    | 'snapshots'
    | 'snapshotChunkBytes'
    | 'inspect'
  > {
  /** How many times this node was started (1 on the first start): names its read request ids. */
  incarnation?: number;
  defer: (fn: () => void) => void;
  onError: (error: unknown) => void;
}

export type ReplicaFactory = (deps: ReplicaDeps) => ReplicaHost;
