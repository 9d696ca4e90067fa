// The seam between ChatService and replication. ChatService prepares a command on the leader and hands
// it to `propose`, which resolves once the entry is committed AND applied here, with apply's result.
// Reads go through `read`, which runs the query only once this replica is known to be up to date (Raft:
// ReadIndex). LocalReplicator is the single-node implementation; the Raft-backed one (next issue) only
// has to implement the same two methods on top of RaftNode.
import type { Entry } from '../../machines/protocol.js';
import { type Command, type CommandResult, encodeCommand } from './commands.js';
import { ChatError, status } from './errors.js';
import type { ChatStore } from './store.js';

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

function checkDeadline(opts: ReplicateOptions | undefined, now: () => number): void {
  if (opts?.deadline !== undefined && now() >= opts.deadline) {
    throw new ChatError(status.DEADLINE_EXCEEDED, 'The deadline ran out before the request could be served.');
  }
}

/**
 * A one-member "cluster": the entry index is applied + 1 and the entry is applied at once through the
 * same ChatStore.apply a Raft replica uses. Proposals arriving in the same tick are applied as one batch
 * (one transaction, one fsync), like Raft's group commit.
 */
export class LocalReplicator implements Replicator {
  private queue: { command: Command; resolve: (r: CommandResult) => void; reject: (e: unknown) => void }[] =
    [];
  private scheduled = false;

  constructor(
    private readonly store: ChatStore,
    private readonly opts: { term?: number; now?: () => number } = {},
  ) {}

  propose(command: Command, opts?: ReplicateOptions): Promise<CommandResult> {
    try {
      checkDeadline(opts, this.now);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ command, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  async read<T>(query: () => T, opts?: ReplicateOptions): Promise<T> {
    checkDeadline(opts, this.now);
    // A single member is always up to date: every acknowledged write is already applied here.
    return query();
  }

  private readonly now = (): number => (this.opts.now ?? Date.now)();

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const first = this.store.appliedIndex() + 1;
    const entries: Entry[] = batch.map((p, i) => ({
      index: first + i,
      term: this.opts.term ?? 1,
      kind: 'command',
      data: encodeCommand(p.command),
    }));
    try {
      const outcomes = this.store.apply(entries);
      const byIndex = new Map(outcomes.map((o) => [o.index, o.result as CommandResult]));
      batch.forEach((p, i) => {
        const result = byIndex.get(first + i);
        if (result) p.resolve(result);
        else p.reject(new ChatError(status.INTERNAL, 'The command was not applied.'));
      });
    } catch (err) {
      // The transaction failed as a whole (disk trouble): nothing was applied, every caller is told.
      for (const p of batch)
        p.reject(new ChatError(status.UNAVAILABLE, `The write failed: ${(err as Error).message}`));
    }
  }
}
