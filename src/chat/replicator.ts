// The seam between ChatService and replication. ChatService prepares a command on the leader and hands
// it to `propose`, which resolves once the entry is committed AND applied here, with apply's result.
// Reads go through `read`, which runs the query only once this replica is known to be up to date (Raft:
// ReadIndex). RaftReplicator (src/server/raft-replicator.ts) implements it on top of RaftNode; the
// single-node test double LocalReplicator lives in test/support/local-replicator.ts.
import type { Command, CommandResult } from './commands.js';
import { ChatError, status } from './errors.js';

export interface ReplicateOptions {
  /** Absolute deadline (Unix ms) of the caller; past it the call fails with DEADLINE_EXCEEDED. */
  deadline?: number;
}

export interface Replicator {
  /** Commits and applies `command`; resolves with what apply returned for it (success or error data). */
  propose(command: Command, opts?: ReplicateOptions): Promise<CommandResult>;
  /** Runs `query` against state that reflects every write acknowledged before the call (linearizable). */
  read<T>(query: () => T, opts?: ReplicateOptions): Promise<T>;
}

/** A call whose deadline has passed fails with DEADLINE_EXCEEDED before any work is done. */
export function checkDeadline(opts: ReplicateOptions | undefined, now: () => number): void {
  if (opts?.deadline !== undefined && now() >= opts.deadline) {
    throw new ChatError(status.DEADLINE_EXCEEDED, 'The deadline ran out before the request could be served.');
  }
}
