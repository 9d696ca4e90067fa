// What the simulator needs from a replica host. RaftNode (src/raft/node.ts) provides it; the adapter
// in raft-node-host.ts maps one onto the other, and tests can plug in deliberately broken hosts.

import type { NodeId, Role, Timing } from '../../../machines/protocol.js';
import type { ApplyOutcome, Clock, LogStore, StateMachine, Transport } from '../interfaces.js';

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
}

export interface ReplicaDeps {
  id: NodeId;
  logStore: LogStore;
  stateMachine: StateMachine;
  transport: Transport;
  clock: Clock;
  timing: Timing;
  seed: number;
  defer: (fn: () => void) => void;
  /** The host reports an internal error (an actor that failed): the simulator fails the run. */
  onError: (error: unknown) => void;
}

export type ReplicaFactory = (deps: ReplicaDeps) => ReplicaHost;
