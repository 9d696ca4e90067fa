// Adapter from RaftNode (src/raft/node.ts) to the simulator's ReplicaHost: the simulator runs the
// production host and machines unchanged, with simulated I/O injected.

import { RaftNode } from '../node.js';
import type { ReplicaFactory, ReplicaHost } from './replica-host.js';

export const raftNodeFactory: ReplicaFactory = (deps): ReplicaHost => {
  const node = new RaftNode({
    id: deps.id,
    logStore: deps.logStore,
    stateMachine: deps.stateMachine,
    transport: deps.transport,
    clock: deps.clock,
    timing: deps.timing,
    seed: deps.seed,
    incarnation: `i${deps.incarnation ?? 1}`,
    defer: deps.defer,
    ...(deps.flushPolicy ? { flushPolicy: deps.flushPolicy } : {}),
    onError: deps.onError,
    ...(deps.inspect ? { inspect: deps.inspect } : {}),
    ...(deps.snapshots
      ? { snapshots: deps.snapshots, snapshotChunkBytes: deps.snapshotChunkBytes, snapshotWindow: 2 }
      : {}),
  });
  return {
    start: () => node.start(),
    stop: () => node.stop(),
    propose: (kind, data) => node.propose(kind, data),
    readIndex: () => node.readIndex(),
    transferLeadership: (to) => node.transferLeadership(to),
    snapshotTaken: (meta, keep) => node.snapshotTaken(meta, keep),
    status: () => {
      const s = node.status();
      return {
        role: s.role,
        term: s.term,
        commitIndex: s.commitIndex,
        appliedIndex: s.lastApplied,
        leaderId: s.leaderId,
      };
    },
  };
};
