// ReadTracker: the host's side of linearizable reads (ReadIndex), on the leader and on followers alike.
//
// Reads are batched: every read that arrives while no request is being prepared joins the open batch,
// and the batch goes to the replica machine (`readIndex`) as ONE request id when the turn ends (`defer`).
// On a follower that is one ReadIndexRequest to the leader for the whole batch; on the leader, one read
// queued for its next quorum round. At most one batch waits for its index at a time: reads arriving
// while it does form the next batch, sent as soon as the first one is answered (or after `holdMs`, so a
// lost request or answer does not hold the next batch back until the timeout). Under load the reads of
// one round trip share one request, one answer and one heartbeat round, whatever their number.
//
// Why that stays linearizable: a read joins only a batch whose request has NOT been sent yet, so the
// request leaves after every read of the batch arrived, and the leader takes the index from a round it
// starts after receiving the request (its commit index then, confirmed by a quorum). Each read thus gets
// an index learnt after it arrived, and waits until the state machine applied through it. A read that
// arrives after its batch's request went out never joins it: it waits for the next batch.
//
// A batch, once sent:
//   - the machine reports `readReady {index}`: its reads may be served once the state machine has
//     applied through `index`; they resolve as soon as `applied(n)` reaches it (at once when it already
//     has) -- never earlier, so a follower never answers from a state older than the index;
//   - the machine reports `readRejected`: its reads fail with ReadNotServedError (UNAVAILABLE to a client);
//   - the role or the term changes before the index is known: the answer may never come (the leader
//     that was asked is gone), so its reads fail the same way and the clients retry. A batch whose index
//     is already known stays: that index was confirmed by a quorum round and remains a safe lower bound
//     whatever happens to leadership afterwards. Reads not sent yet are not affected: they ask whoever
//     the machine knows as leader when their batch goes out;
//   - nothing settles it within `timeoutMs` of being sent (a lost ReadIndexRequest or response, a
//     replica that cannot catch up): its reads fail the same way;
//   - the host stops: everything pending fails with the host's error.
//
// Request ids are `<prefix>:<seq>`, where the prefix names this host incarnation: a restarted replica
// must never take an answer meant for its previous life (same counter, different batch) as its own.

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
  /** How long a sent batch may stay unserved before its reads fail (ms). */
  timeoutMs: number;
  /**
   * How long the next batch waits for the one in flight to learn its index before it is sent anyway
   * (ms; default timeoutMs / 5). Only a lost message or a stuck leader makes it matter.
   */
  holdMs?: number;
  /** Hand a batch to the replica machine (called after the batch is registered). */
  request: (requestId: string) => void;
  /** Runs `fn` once the current turn's work is done (the host's defer; default setImmediate). */
  defer?: (fn: () => void) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Reads that share one request id. */
interface Batch {
  waiters: Waiter[];
  /** The read index, once the machine reported it. */
  index: number | null;
  timer: unknown;
}

export class ReadTracker {
  /** Sent batches not yet settled, by request id. */
  private readonly batches = new Map<string, Batch>();
  /** Reads arrived and not yet sent: the next batch. */
  private open: Waiter[] = [];
  private flushScheduled = false;
  /** The sent batch still waiting for its index, which holds the next one back (see the header). */
  private inFlight: string | null = null;
  private holdTimer: unknown = null;
  private seq = 0;
  private applied = 0;
  private role: { role: Role; term: number } | null = null;
  private readonly defer: (fn: () => void) => void;
  private readonly holdMs: number;

  constructor(private readonly opts: ReadTrackerOptions) {
    this.defer = opts.defer ?? ((fn) => setImmediate(fn));
    this.holdMs = opts.holdMs ?? Math.max(1, Math.floor(opts.timeoutMs / 5));
  }

  /** Number of reads not yet settled. */
  get size(): number {
    let n = this.open.length;
    for (const b of this.batches.values()) n += b.waiters.length;
    return n;
  }

  /** Start a read: resolves when it may be served from the local state machine. */
  read(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.open.push({ resolve, reject });
      this.scheduleFlush();
    });
  }

  /** The machine's read effects (readReady, readRejected, roleChanged), as every host feeds them. */
  effect(e: Effect): void {
    if (e.type === 'readReady') this.ready(e.requestId, e.index);
    else if (e.type === 'readRejected') this.rejected(e.requestId, e.reason, e.leaderId);
    else if (e.type === 'roleChanged') this.roleChanged(e.role, e.term, e.leaderId);
  }

  /** The machine's `readReady`: serve the batch once applied through `index`. */
  ready(requestId: string, index: number): void {
    const b = this.batches.get(requestId);
    if (!b || b.index !== null) return; // settled already, or a duplicate answer
    b.index = index;
    this.release(requestId);
    if (index <= this.applied) this.resolve(requestId);
  }

  /** The machine's `readRejected`. */
  rejected(requestId: string, reason: string, leaderId: NodeId | null): void {
    this.fail(requestId, new ReadNotServedError(leaderId, reason));
  }

  /** The state machine has applied through `index` (a snapshot install counts). */
  appliedTo(index: number): void {
    if (index <= this.applied) return;
    this.applied = index;
    for (const [id, b] of this.batches) {
      if (b.index !== null && b.index <= index) this.resolve(id);
    }
  }

  /** The machine's `roleChanged`: batches still waiting for their index fail on a new role or term. */
  roleChanged(role: Role, term: number, leaderId: NodeId | null): void {
    const before = this.role;
    this.role = { role, term };
    if (before === null || (before.role === role && before.term === term)) return;
    for (const [id, b] of this.batches) {
      if (b.index === null)
        this.fail(id, new ReadNotServedError(leaderId, 'the leader changed during the read'));
    }
  }

  /** Fail everything (the host stopped or failed), sent or not. */
  failAll(err: Error): void {
    const open = this.open;
    this.open = [];
    for (const w of open) w.reject(err);
    for (const id of [...this.batches.keys()]) this.fail(id, err);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.defer(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Send the open batch, unless one in flight holds it back (then it goes when that one is answered). */
  private flush(): void {
    if (this.open.length === 0) return;
    if (this.inFlight !== null) {
      this.holdTimer ??= this.opts.clock.setTimeout(() => {
        this.holdTimer = null;
        this.release(this.inFlight);
      }, this.holdMs);
      return;
    }
    const requestId = `${this.opts.prefix}:${++this.seq}`;
    const timer = this.opts.clock.setTimeout(
      () => this.fail(requestId, new ReadNotServedError(null, 'the read could not be confirmed in time')),
      this.opts.timeoutMs,
    );
    this.batches.set(requestId, { waiters: this.open, index: null, timer });
    this.open = [];
    this.inFlight = requestId;
    this.opts.request(requestId);
  }

  /** The batch in flight got its answer (or is given up on): let the next one go. */
  private release(requestId: string | null): void {
    if (requestId === null || this.inFlight !== requestId) return;
    this.inFlight = null;
    if (this.holdTimer !== null) {
      this.opts.clock.clearTimeout(this.holdTimer);
      this.holdTimer = null;
    }
    if (this.open.length > 0) this.scheduleFlush();
  }

  private resolve(requestId: string): void {
    const b = this.settle(requestId);
    if (b) for (const w of b.waiters) w.resolve();
  }

  private fail(requestId: string, err: Error): void {
    const b = this.settle(requestId);
    if (b) for (const w of b.waiters) w.reject(err);
  }

  private settle(requestId: string): Batch | undefined {
    const b = this.batches.get(requestId);
    if (!b) return undefined;
    this.batches.delete(requestId);
    this.opts.clock.clearTimeout(b.timer);
    this.release(requestId);
    return b;
  }
}
