// A test double (test/support/): the single-node Replicator. Tests of the chat layer use it where a
// Raft cluster would only add noise; production always replicates through RaftReplicator.
import type { Entry } from '../../machines/protocol.js';
import { type Command, type CommandResult, encodeCommand } from '../../src/chat/commands.js';
import { ChatError, status } from '../../src/chat/errors.js';
import { type ReplicateOptions, type Replicator, checkDeadline } from '../../src/chat/replicator.js';
import type { ChatStore } from '../../src/chat/store.js';

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
