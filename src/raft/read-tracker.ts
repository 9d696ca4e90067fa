// ReadTracker: the host's side of linearizable reads (ReadIndex), on the leader and on followers alike.
//
// A read is registered under a request id, handed to the replica machine (`readIndex`), and then
//   - the machine reports `readReady {index}`: the read may be served once the state machine has
//     applied through `index`; the tracker resolves it as soon as `applied(n)` reaches it (at once when
//     it already has) -- never earlier, so a follower never answers from a state older than the index;
//   - the machine reports `readRejected`: the read fails with ReadNotServedError (UNAVAILABLE to a client);
//   - the role or the term changes before the index is known: the answer may never come (the leader
//     that was asked is gone), so the read fails the same way and the client retries. A read whose
//     index is already known stays: that index was confirmed by a quorum round and remains a safe
//     lower bound whatever happens to leadership afterwards;
//   - nothing settles it within `timeoutMs` (a lost ReadIndexRequest or response, a replica that cannot
//     catch up): it fails the same way;
//   - the host stops: everything pending fails with the host's error.
//
// Request ids are `<prefix>:<seq>`, where the prefix names this host incarnation: a restarted replica
// must never take an answer meant for its previous life (same counter, different read) as its own.

import type { Effect, NodeId, Role } from '../../machines/protocol.js';
import type { Clock } from './interfaces.js';

/** A read this replica cannot serve now; the client retries (here or elsewhere). */
export class ReadNotServedError extends Error {
  constructor(
    readonly leaderId: NodeId | null,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'ReadNotServedError';
  }
}

export interface ReadTrackerOptions {
  /** Unique per host incarnation (see above). */
  prefix: string;
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /** How long a read may stay unserved before it fails (ms). */
  timeoutMs: number;
  /** Hand the read to the replica machine (called after the read is registered). */
  request: (requestId: string) => void;
}

interface PendingRead {
  resolve: () => void;
  reject: (e: Error) => void;
  /** The read index, once the machine reported it. */
  index: number | null;
  timer: unknown;
}

export class ReadTracker {
  private readonly reads = new Map<string, PendingRead>();
  private seq = 0;
  private applied = 0;
  private role: { role: Role; term: number } | null = null;

  constructor(private readonly opts: ReadTrackerOptions) {}

  /** Number of reads not yet settled. */
  get size(): number {
    return this.reads.size;
  }

  /** Start a read: resolves when it may be served from the local state machine. */
  read(): Promise<void> {
    return new Promise((resolve, reject) => {
      const requestId = `${this.opts.prefix}:${++this.seq}`;
      const timer = this.opts.clock.setTimeout(
        () => this.fail(requestId, new ReadNotServedError(null, 'the read could not be confirmed in time')),
        this.opts.timeoutMs,
      );
      this.reads.set(requestId, { resolve, reject, index: null, timer });
      this.opts.request(requestId);
    });
  }

  /** The machine's read effects (readReady, readRejected, roleChanged), as every host feeds them. */
  effect(e: Effect): void {
    if (e.type === 'readReady') this.ready(e.requestId, e.index);
    else if (e.type === 'readRejected') this.rejected(e.requestId, e.reason, e.leaderId);
    else if (e.type === 'roleChanged') this.roleChanged(e.role, e.term, e.leaderId);
  }

  /** The machine's `readReady`: serve once applied through `index`. */
  ready(requestId: string, index: number): void {
    const r = this.reads.get(requestId);
    if (!r || r.index !== null) return; // settled already, or a duplicate answer
    r.index = index;
    if (index <= this.applied) this.settle(requestId)?.resolve();
  }

  /** The machine's `readRejected`. */
  rejected(requestId: string, reason: string, leaderId: NodeId | null): void {
    this.fail(requestId, new ReadNotServedError(leaderId, reason));
  }

  /** The state machine has applied through `index` (a snapshot install counts). */
  appliedTo(index: number): void {
    if (index <= this.applied) return;
    this.applied = index;
    for (const [id, r] of this.reads) {
      if (r.index !== null && r.index <= index) this.settle(id)?.resolve();
    }
  }

  /** The machine's `roleChanged`: reads still waiting for their index fail on a new role or term. */
  roleChanged(role: Role, term: number, leaderId: NodeId | null): void {
    const before = this.role;
    this.role = { role, term };
    if (before === null || (before.role === role && before.term === term)) return;
    for (const [id, r] of this.reads) {
      if (r.index === null)
        this.fail(id, new ReadNotServedError(leaderId, 'the leader changed during the read'));
    }
  }

  /** Fail everything (the host stopped or failed). */
  failAll(err: Error): void {
    for (const id of [...this.reads.keys()]) this.settle(id)?.reject(err);
  }

  private fail(requestId: string, err: Error): void {
    this.settle(requestId)?.reject(err);
  }

  private settle(requestId: string): PendingRead | undefined {
    const r = this.reads.get(requestId);
    if (!r) return undefined;
    this.reads.delete(requestId);
    this.opts.clock.clearTimeout(r.timer);
    return r;
  }
}
