// The Replicator (src/chat/replicator.ts) on top of a RaftNode: a write becomes a `command` log entry
// and resolves with what apply returned for it once it is committed and applied here; a read waits for
// ReadIndex (leadership confirmed by a quorum, applied index caught up) before it runs the query.
// Raft's refusals become UNAVAILABLE, which clients retry on another member with the same key.
import { type Command, type CommandResult, encodeCommand } from '../chat/commands.js';
import { ChatError, status } from '../chat/errors.js';
import type { ReplicateOptions, Replicator } from '../chat/replicator.js';
import {
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalRejectedError,
  type RaftNode,
  ReadNotServedError,
} from '../raft/node.js';

/** What the replicator needs of RaftNode (a fake in unit tests). */
export type RaftProposer = Pick<RaftNode, 'propose' | 'readIndex'>;

const DEADLINE = 'the deadline ran out before the request could be served.';

/** Maps a RaftNode rejection to the ChatError a client sees. Unknown errors pass through (INTERNAL). */
export function raftError(err: unknown): unknown {
  if (err instanceof ReadNotServedError) {
    return new ChatError(
      status.UNAVAILABLE,
      'this replica could not confirm the read with the leader; retry.',
    );
  }
  if (err instanceof NotLeaderError) {
    return new ChatError(
      status.UNAVAILABLE,
      'this replica lost its leadership before the call completed; retry.',
    );
  }
  if (err instanceof ProposalDroppedError) {
    return new ChatError(status.UNAVAILABLE, 'a new leader took over before the write committed; retry.');
  }
  if (err instanceof NodeStoppedError) {
    return new ChatError(status.UNAVAILABLE, 'this replica is shutting down; retry on another member.');
  }
  if (err instanceof ProposalRejectedError) {
    return new ChatError(status.UNAVAILABLE, `the leader refused the write (${err.reason}); retry.`);
  }
  return err;
}

/** Races `p` against the caller's deadline; past it the call fails with DEADLINE_EXCEEDED. */
export function withDeadline<T>(p: Promise<T>, deadline: number | undefined, now = Date.now): Promise<T> {
  if (deadline === undefined) return p;
  const left = deadline - now();
  if (left <= 0) {
    p.catch(() => {}); // the outcome no longer has a listener
    return Promise.reject(new ChatError(status.DEADLINE_EXCEEDED, DEADLINE));
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new ChatError(status.DEADLINE_EXCEEDED, DEADLINE)), left);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

export class RaftReplicator implements Replicator {
  constructor(
    private readonly node: RaftProposer,
    private readonly now: () => number = Date.now,
  ) {}

  async propose(command: Command, opts?: ReplicateOptions): Promise<CommandResult> {
    const proposal = this.node.propose('command', encodeCommand(command)).catch((err) => {
      throw raftError(err);
    });
    const outcome = await withDeadline(proposal, opts?.deadline, this.now);
    const result = outcome.result as CommandResult | undefined;
    if (!result) throw new ChatError(status.INTERNAL, 'the command was applied without a result.');
    return result;
  }

  async read<T>(query: () => T, opts?: ReplicateOptions): Promise<T> {
    const ready = this.node.readIndex().catch((err) => {
      throw raftError(err);
    });
    await withDeadline(ready, opts?.deadline, this.now);
    return query();
  }
}
