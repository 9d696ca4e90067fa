// ProposalTracker: the host's side of proposals. A proposal is registered under a request id, batched
// with the others of the same turn (one machine event, one log write, one fsync), and then
//   - the machine reports `proposed {index, term}`: it waits for that index to be applied; it succeeds
//     if the entry applied there has its term, and fails with ProposalDroppedError if another leader's
//     entry took the index;
//   - the machine reports `proposalRejected`: NotLeaderError (retry at the leader) or
//     ProposalRejectedError (a refused config change);
//   - a snapshot covering its index is installed: its fate is inside the snapshot, unknown here;
//   - this replica is removed from the configuration and steps down: it would never learn the outcome;
//   - the host stops: everything pending fails with the host's error.

import type { Entry, NodeId, Proposal } from '../../machines/protocol.js';
import type { ApplyOutcome } from './interfaces.js';

/** This replica cannot take the call; retry at `leaderId` (null: none known). */
export class NotLeaderError extends Error {
  constructor(
    readonly leaderId: NodeId | null,
    readonly reason = 'not the leader',
  ) {
    super(`${reason}${leaderId ? ` (leader: ${leaderId})` : ''}`);
    this.name = 'NotLeaderError';
  }
}

/** The leader refused the proposal (e.g. a config change while another is in progress). */
export class ProposalRejectedError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ProposalRejectedError';
  }
}

/** The proposal was appended but another leader's entry took its index: it was not applied. */
export class ProposalDroppedError extends Error {
  constructor(readonly index: number) {
    super(`proposal at index ${index} was overwritten by another leader`);
    this.name = 'ProposalDroppedError';
  }
}

interface Pending {
  resolve: (o: ApplyOutcome) => void;
  reject: (e: Error) => void;
  index?: number;
  term?: number;
}

export interface ProposalTrackerOptions {
  /** Prefix of request ids (the replica's id). */
  prefix: string;
  /** Schedules the batch hand-off (the host's defer). */
  defer: (fn: () => void) => void;
  /** Hand a batch to the replica machine (a stopped host drops it: failAll answered its proposals). */
  submit: (proposals: Proposal[]) => void;
}

export class ProposalTracker {
  private seq = 0;
  private batch: Proposal[] = [];
  private batchScheduled = false;
  private pending = new Map<string, Pending>();
  private byIndex = new Map<number, string>();

  constructor(private readonly opts: ProposalTrackerOptions) {}

  propose(kind: 'command' | 'config', data: string): Promise<ApplyOutcome> {
    return new Promise((resolve, reject) => {
      const requestId = `${this.opts.prefix}:${++this.seq}`;
      this.pending.set(requestId, { resolve, reject });
      this.batch.push({ requestId, kind, data });
      if (!this.batchScheduled) {
        this.batchScheduled = true;
        // Many propose() calls in one tick become one event, one log write and one fsync.
        this.opts.defer(() => this.submitBatch());
      }
    });
  }

  /** The machine appended it at `index`/`term`. */
  proposed(requestId: string, index: number, term: number): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    p.index = index;
    p.term = term;
    this.byIndex.set(index, requestId);
  }

  rejected(requestId: string, reason: string, leaderId: NodeId | null): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    const notLeader = reason === 'not the leader' || reason === 'leadership transfer in progress';
    p.reject(notLeader ? new NotLeaderError(leaderId, reason) : new ProposalRejectedError(reason));
  }

  /** A batch was applied through `appliedIndex`: answer the proposals at those indexes. */
  applied(entries: Entry[], outcomes: ApplyOutcome[], appliedIndex: number): void {
    for (const o of outcomes) {
      const requestId = this.byIndex.get(o.index);
      if (requestId === undefined) continue;
      this.byIndex.delete(o.index);
      const p = this.take(requestId);
      if (!p) continue;
      if (p.term === o.term) p.resolve(o);
      else p.reject(new ProposalDroppedError(o.index));
    }
    // Proposals whose index was passed without an outcome (noop/config entries carry none).
    for (const [index, requestId] of this.byIndex) {
      if (index > appliedIndex) continue;
      this.byIndex.delete(index);
      const p = this.take(requestId);
      if (!p) continue;
      const e = entries.find((x) => x.index === index);
      if (e && e.term === p.term) p.resolve({ index, term: e.term, result: undefined });
      else p.reject(new ProposalDroppedError(index));
    }
  }

  /** Proposals this replica made as an earlier leader: their fate is inside the snapshot, unknown here. */
  snapshotInstalled(index: number, from: NodeId): void {
    for (const [i, requestId] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      this.take(requestId)?.reject(
        new NotLeaderError(from, 'snapshot installed while the proposal was pending'),
      );
    }
  }

  /**
   * A leader removed from the configuration steps down and hears from the cluster no more, so it
   * would never learn whether its uncommitted proposals committed: refuse them now (outcome unknown).
   * Clients retry on a member with the same idempotency key, which makes the retry exactly-once.
   * What is committed (through `commitIndex`: the removal itself, at least) is applied and answered.
   */
  dropOrphaned(commitIndex: number): void {
    if (this.pending.size === 0) return;
    const err = new NotLeaderError(null, 'this replica was removed from the cluster');
    const keep = new Set<string>();
    for (const [index, requestId] of this.byIndex) {
      if (index <= commitIndex) keep.add(requestId);
      else this.byIndex.delete(index);
    }
    for (const [requestId, p] of this.pending) {
      if (keep.has(requestId)) continue;
      this.pending.delete(requestId);
      p.reject(err);
    }
    // Not yet handed to the machine, and already rejected above (propose() registers them first).
    this.batch = [];
  }

  failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.byIndex.clear();
    this.batch = [];
  }

  private take(requestId: string): Pending | undefined {
    const p = this.pending.get(requestId);
    this.pending.delete(requestId);
    return p;
  }

  private submitBatch(): void {
    this.batchScheduled = false;
    const proposals = this.batch;
    this.batch = [];
    if (proposals.length > 0) this.opts.submit(proposals);
  }
}
