// RaftNode: the host that drives the pure replica machine (machines/replica/) with real or simulated
// I/O. Production and the simulator both run it, so the simulator tests this wiring, not a copy. This
// file only makes the parts a replica host is made of (each in its own file, one job each) and connects
// them (docs/design/write-path.md, "RaftNode as a composition"):
//
//   transport ─▶ replica actor ─effects─▶ ReadyExecutor (durability order) ─▶ log store, transport
//                  ▲                        ├─ apply ─▶ ApplyLoop ─▶ state machine; answers ProposalTracker,
//                  │                        │           ReadTracker, NodeListeners, the actor
//                  │                        └─ other ─▶ HostEffects ─▶ ProposalTracker, ReadTracker,
//                  │                                    TransferTracker, NodeListeners, SnapshotSender,
//                  │                                    SnapshotInstaller, the transport's peers
//   API calls ─▶ ProposalTracker, ReadTracker, TransferTracker ─▶ the actor
//
// It starts from durable state (replica-start.ts) and stops every part when it stops or fails.
//
// Public API (stable: the server wiring and the simulator depend on it; types in node-types.ts):
//
//   new RaftNode(options); start(), from durable state; stop(): stops the actor and closes the transport
//        (not the log store); everything pending fails with NodeStoppedError
//   propose(kind: 'command' | 'config', data): Promise<ApplyOutcome>   once applied here with its term at
//        its index; else NotLeaderError {leaderId}, ProposalRejectedError, ProposalDroppedError
//        (proposal-tracker.ts)
//   readIndex(): Promise<void>   once this state machine may serve a linearizable read (applied >= a
//        read index confirmed by a quorum round); else ReadNotServedError (read-tracker.ts)
//   transferLeadership(to | null): Promise<void>   once this leader handed over; else TransferFailedError
//   status(): RaftStatus   role, term, leader, config; commitIndex is what a restart would recover
//        (ready-executor.ts); lastApplied, lastLogIndex, snapshotIndex
//   isMember(), appliedIndex(), snapshotTransfers() (peers a snapshot streams to), actor (the inspector's)
//   onRoleChange(cb), onApplied(cb), onSnapshotInstalled(cb): each returns an unsubscribe function
//   snapshotTaken(meta, keep?)   a local snapshot is durable: compact the log behind it, keeping `keep`
//        entries for slightly-behind followers (log-compaction.ts)
//   setInspection(observer | null)   the /cluster inspector's hook, only while a page is open
//        (inspection-hook.ts); the `inspect` option observes for the node's whole life

import { randomBytes } from 'node:crypto';
import { type Actor, type InspectionEvent, createActor } from 'xstate';
import type { Effect, NodeId, Proposal, RaftMessage, SnapshotMeta } from '../../machines/protocol.js';
import { replicaMachine } from '../../machines/replica/replica.machine.js';
import { ApplyLoop } from './apply-loop.js';
import { HostEffects } from './host-effects.js';
import { InspectionHook } from './inspection-hook.js';
import type { ApplyOutcome } from './interfaces.js';
import { compactionAfterSnapshot } from './log-compaction.js';
import { NodeListeners } from './node-listeners.js';
import { NodeStoppedError, type RaftNodeOptions, type RaftStatus, type RoleChange } from './node-types.js';
import { ProposalTracker } from './proposal-tracker.js';
import { ReadTracker } from './read-tracker.js';
import { ReadyExecutor, clockTimer } from './ready-executor.js';
import { recoverDurableState, replicaStart } from './replica-start.js';
import { SnapshotInstaller } from './snapshot-installer.js';
import { SnapshotSender } from './snapshot-sender.js';
import { TransferTracker } from './transfer-tracker.js';

export type { RaftLogger, RaftNodeOptions, RaftStatus, RoleChange } from './node-types.js';
export { NodeStoppedError } from './node-types.js';
export { NotLeaderError, ProposalDroppedError, ProposalRejectedError } from './proposal-tracker.js';
export { ReadNotServedError } from './read-tracker.js';
export { TransferFailedError } from './transfer-tracker.js';

export class RaftNode {
  private readonly defer: (fn: () => void) => void;
  private stopped = false;
  private readonly inspection = new InspectionHook();
  private readonly proposals: ProposalTracker;
  private readonly reads: ReadTracker;
  private readonly transfers = new TransferTracker();
  private readonly listeners: NodeListeners;
  private readonly applier: ApplyLoop;
  private readonly installer: SnapshotInstaller;
  /** Streams snapshots to followers; none without a snapshot store. */
  private readonly sender: SnapshotSender | null;
  // Made by start(), for the actor's life.
  private _actor: Actor<typeof replicaMachine> | null = null;
  private ready: ReadyExecutor | null = null;
  private effects: HostEffects | null = null;

  constructor(private readonly opts: RaftNodeOptions) {
    const { id, logStore, stateMachine, clock, logger } = opts;
    this.defer = opts.defer ?? ((fn) => setImmediate(fn));
    const send = this.live((m: RaftMessage) => opts.transport.send(m));
    this.proposals = new ProposalTracker({
      prefix: id,
      defer: this.defer,
      submit: this.live((proposals: Proposal[]) => this._actor?.send({ type: 'propose', proposals })),
    });
    this.reads = new ReadTracker({
      prefix: `${id}:${opts.incarnation ?? randomBytes(6).toString('base64url')}`,
      clock,
      timeoutMs: opts.readTimeoutMs ?? 5 * opts.timing.electionMaxMs,
      request: (requestId) => this._actor?.send({ type: 'readIndex', requestId }),
      defer: this.defer,
    });
    this.listeners = new NodeListeners(logger);
    this.applier = new ApplyLoop({
      log: logStore,
      stateMachine,
      proposals: this.proposals,
      reads: this.reads,
      machine: (index) => this._actor?.send({ type: 'applied', index }),
      listeners: this.listeners,
      fatal: (err) => this.die(err),
      logger,
    });
    this.installer = new SnapshotInstaller({
      id,
      store: opts.snapshots,
      logStore,
      stateMachine,
      send,
      logger,
    });
    const { snapshots: store, snapshotChunkBytes: chunkBytes, snapshotWindow: window } = opts;
    const retransmitMs = opts.snapshotRetransmitMs ?? Math.max(200, 4 * opts.timing.heartbeatMs);
    this.sender = store
      ? new SnapshotSender({ id, store, send, clock, chunkBytes, window, retransmitMs, logger })
      : null;
  }

  get id(): NodeId {
    return this.opts.id;
  }

  get actor(): Actor<typeof replicaMachine> {
    if (!this._actor) throw new Error('RaftNode not started');
    return this._actor;
  }

  setInspection(observer: ((e: InspectionEvent) => void) | null): void {
    this.inspection.set(observer, this._actor?.system);
  }

  start(): void {
    if (this._actor) return;
    const { opts, proposals, reads, transfers, listeners, installer, applier, sender } = this;
    const { logStore, transport, clock, logger } = opts;
    const start = replicaStart(logStore, recoverDurableState({ installer, applier }), opts);
    reads.appliedTo(start.input.appliedIndex);
    const actor = this.inspection.attach(
      createActor(replicaMachine, { input: start.input, clock, inspect: opts.inspect }),
    );
    actor.subscribe({
      error: (err) => {
        logger?.error({ err }, 'replica actor failed');
        opts.onError?.(err);
        this.failAll(new NodeStoppedError());
      },
    });
    const ready = new ReadyExecutor(
      {
        log: logStore,
        send: (m) => transport.send(m),
        defer: this.defer,
        flushPolicy: opts.flushPolicy,
        timer: clockTimer(clock),
        persisted: (p) => actor.send({ type: 'persisted', ...p }),
        apply: (upTo) => applier.apply(upTo),
        other: this.live((e: Effect) => this.effects?.handle(e)),
      },
      start.executor,
    );
    const effects = new HostEffects(
      { proposals, reads, transfers, listeners, installer, applier, sender },
      {
        executor: ready,
        machine: (e) => actor.send(e),
        isMember: () => this.isMember(),
        setPeers: (members) => transport.setPeers(members),
        fatal: (err) => this.die(err),
        clock,
        logger,
      },
      start.input.hardState.term,
    );
    this._actor = actor;
    this.ready = ready;
    this.effects = effects;
    actor.on('*', (e) => ready.execute([e as Effect]));
    transport.setPeers(start.input.config.members);
    // A lost connection is a hint the machine weighs (a follower's leader: fail over soon).
    transport.onPeerLost?.(this.live((id: NodeId) => actor.send({ type: 'peerLost', id })));
    transport.listen(
      this.live((m: RaftMessage) => {
        // The sender paces the chunks; the machine still sees the response (it keeps the peer in
        // snapshot mode while chunks flow, and probes again once it is installed).
        if (m.type === 'InstallSnapshotResponse') sender?.onResponse(m);
        effects.received(m);
        actor.send(m);
      }),
    );
    actor.start();
    // Entries committed before the restart but not applied then.
    ready.resume();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.applier.stop();
    this.sender?.cancelAll();
    this.ready?.stop();
    this._actor?.stop();
    this.opts.transport.close();
    this.failAll(new NodeStoppedError());
  }

  propose(kind: 'command' | 'config', data: string): Promise<ApplyOutcome> {
    if (this.stopped || !this._actor) return Promise.reject(new NodeStoppedError());
    return this.proposals.propose(kind, data);
  }

  readIndex(): Promise<void> {
    if (this.stopped || !this._actor) return Promise.reject(new NodeStoppedError());
    return this.reads.read();
  }

  transferLeadership(to: NodeId | null): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stopped || !this._actor) return reject(new NodeStoppedError());
      this.transfers.add({ resolve, reject });
      this._actor.send({ type: 'transferLeadership', to });
    });
  }

  status(): RaftStatus {
    const { id, logStore } = this.opts;
    const ctx = this._actor?.getSnapshot().context;
    const role = this.effects?.role() ?? { role: 'follower', term: 0, leaderId: null };
    return {
      id,
      role: role.role,
      term: ctx?.term ?? role.term,
      leaderId: ctx?.leaderId ?? null,
      // Not the machine's in-memory commit: only what a restart would recover (invariant 8).
      commitIndex: Math.max(this.ready?.durableCommit() ?? 0, this.applier.appliedIndex()),
      lastApplied: this.applier.appliedIndex(),
      lastLogIndex: logStore.lastIndex(),
      snapshotIndex: logStore.snapshot().index,
      config: ctx?.config ?? logStore.config(),
    };
  }

  isMember(): boolean {
    const config = this._actor?.getSnapshot().context.config ?? this.opts.logStore.config();
    return config.members.some((m) => m.id === this.opts.id);
  }

  onRoleChange(cb: (r: RoleChange) => void): () => void {
    return this.listeners.onRoleChange(cb);
  }

  onApplied(cb: (outcomes: ApplyOutcome[]) => void): () => void {
    return this.listeners.onApplied(cb);
  }

  onSnapshotInstalled(cb: (meta: SnapshotMeta) => void): () => void {
    return this.listeners.onSnapshotInstalled(cb);
  }

  snapshotTransfers(): NodeId[] {
    return this.sender?.active() ?? [];
  }

  snapshotTaken(meta: SnapshotMeta, keep = 0): void {
    if (this.stopped) return;
    const { logStore } = this.opts;
    const compacted = compactionAfterSnapshot(logStore, meta.index, keep, this.applier.appliedIndex());
    if (!compacted) return;
    logStore.compact(compacted);
    // The machine knows its log by terms: it must learn which entries it can no longer send.
    this._actor?.send({ type: 'logCompacted', meta: compacted });
  }

  appliedIndex(): number {
    return this.applier.appliedIndex();
  }

  /** `fn`, doing nothing once the node stopped: a stopped replica sends, proposes and hears nothing. */
  private live<A>(fn: (arg: A) => void): (arg: A) => void {
    return (arg) => {
      if (!this.stopped) fn(arg);
    };
  }

  private failAll(err: Error): void {
    this.proposals.failAll(err);
    this.reads.failAll(err);
    this.transfers.failAll(err);
  }

  /** A part failed in a way the host cannot go on from (already logged): the node is dead after this. */
  private die(err: unknown): void {
    this.opts.onError?.(err);
    this.stop();
  }
}
