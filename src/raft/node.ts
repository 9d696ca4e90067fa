// RaftNode: the host that drives the pure replica machine with real (or simulated) I/O. Production and
// the simulator share it, so the simulator tests this wiring, not a copy of it. It is a composition of
// named parts (docs/design/write-path.md): the ReadyExecutor carries out the machine's effects in the
// durability order, the ApplyLoop applies committed entries (and re-applies a crash's lost tail at
// start), ProposalTracker / ReadTracker answer proposals and reads, SnapshotInstaller and
// SnapshotSender move snapshots, NodeListeners holds the users' callbacks. What stays here: building
// the machine's input from durable state, the actor's lifecycle, the dispatch of the effects the
// executor leaves to the host, leadership transfer promises, and status().
//
// Public API (stable; the server wiring and the simulator depend on it):
//
//   new RaftNode({ id, logStore, stateMachine, transport, clock, timing, seed,
//                  defer?, flushPolicy?, logger?, inspect?, maxBatch?, maxInflight?, snapshots?,
//                  onError? })
//   start(): void                      builds the replica from durable state and starts it
//   stop(): void                       stops the actor, closes the transport (not the log store),
//                                      rejects everything pending with NodeStoppedError
//   propose(kind: 'command' | 'config', data: string): Promise<ApplyOutcome>
//        resolves once the entry is applied here with the same term at its index; rejects with
//        NotLeaderError {leaderId} when this replica cannot accept it (not leader, transfer running),
//        ProposalRejectedError {reason} for a refused config change, ProposalDroppedError when the
//        entry was overwritten by another leader's.
//   readIndex(): Promise<void>         resolves when the local state machine may serve a linearizable
//                                      read (leadership confirmed by a quorum round of the leader, asked
//                                      by a follower or learner; applied >= read index); rejects with
//                                      ReadNotServedError (see read-tracker.ts)
//   transferLeadership(to: NodeId | null): Promise<void>   resolves when this leader handed over
//   isMember(): boolean                listed (voter or learner) in its current configuration
//   status(): RaftStatus               { id, role, term, leaderId, commitIndex, lastApplied,
//                                        lastLogIndex, snapshotIndex, config }
//   onRoleChange(cb): () => void       cb({ role, term, leaderId }); returns an unsubscribe function
//   onApplied(cb): () => void          cb(outcomes) after each applied batch
//   onSnapshotInstalled(cb): () => void  cb(meta) after a snapshot from the leader replaced the state
//   snapshotTaken(meta, keep?): void   a local snapshot through meta.index is durable: compact the log
//                                      behind it, keeping `keep` entries for slightly-behind followers
//   actor                              the replica actor (for the inspector)
//   setInspection(observer | null)     observes the actor system's inspection events from now on, or
//                                      stops (the /cluster inspector, only while a page is open); the
//                                      `inspect` option instead observes for the node's whole life
//
// Ordering contract (machines/protocol.ts), carried out by src/raft/ready-executor.ts, the only copy:
// `persist` effects are written at once and flushed (one fsync per batch, coalesced with `defer`); a
// `send` with afterPersist waits until every earlier persist is durable; after each flush the machine
// gets `persisted {index, term, seq}`. Committed entries are applied only once durable here.
//
// The commit index (DESIGN.md invariant 8: never back, even across a restart). A `commit` effect is
// written to the log store (LogWrite.commit, like etcd's HardState.Commit) and schedules a flush,
// shared with every other write of the turn. Unlike etcd, a commit learnt alone (a heartbeat on a
// follower, an acknowledgement on the leader) does cost that flush, because entries are applied only
// up to the DURABLE commit (test/unit/raft-commit-durable.test.ts). The apply transaction pays no
// fsync either (the lazy applied index, docs/design/lazy-applied-index.md), so after a crash the
// recovered commit must cover everything applied before it. status().commitIndex reports only what a
// restart would recover: max(durable commit, applied). After a restart the replica starts from
// max(applied, persisted commit), clamped to the recovered log, and re-applies up to it before the
// machine starts (ApplyLoop.recover, apply-loop.ts).

import { randomBytes } from 'node:crypto';
import { type Actor, type InspectionEvent, type Subscription, createActor } from 'xstate';
import type {
  ClusterConfig,
  Effect,
  InstallSnapshot,
  NodeId,
  Proposal,
  RaftMessage,
  ReplicaInput,
  Role,
  SnapshotMeta,
  Timing,
} from '../../machines/protocol.js';
import { replicaMachine } from '../../machines/replica/replica.machine.js';
import { lastConfigAtOrBefore } from '../../machines/replica/rules.js';
import { ApplyLoop } from './apply-loop.js';
import type { ApplyOutcome, Clock, LogStore, SnapshotStore, StateMachine, Transport } from './interfaces.js';
import { NodeListeners } from './node-listeners.js';
import {
  NotLeaderError,
  ProposalDroppedError,
  ProposalRejectedError,
  ProposalTracker,
} from './proposal-tracker.js';
import { ReadNotServedError, ReadTracker } from './read-tracker.js';
import { type FlushPolicy, ReadyExecutor } from './ready-executor.js';
import { SnapshotInstaller } from './snapshot-installer.js';
import { SnapshotSender } from './snapshot-sender.js';

export { NotLeaderError, ProposalDroppedError, ProposalRejectedError, ReadNotServedError };

export interface RaftLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RaftNodeOptions {
  id: NodeId;
  logStore: LogStore;
  stateMachine: StateMachine;
  transport: Transport;
  /** Passed to XState's createActor: real timers in production, a SimulatedClock in the simulator. */
  clock: Clock;
  timing: Timing;
  /** Seed of the replica's election-timeout PRNG. */
  seed: number;
  /** Schedules proposal-batch, flush and apply work (default setImmediate; the simulator passes clock.setTimeout(fn, 0)). */
  defer?: (fn: () => void) => void;
  /**
   * When the log's group-commit flush runs (ready-executor.ts; --flush-delay-us, --flush-max-entries):
   * default on the next turn. A delay waits on `clock` (real timers in production, simulated ones in
   * the simulator).
   */
  flushPolicy?: FlushPolicy;
  logger?: RaftLogger;
  /**
   * XState inspection observer for the node's whole life (the simulator's trace recorder). The /cluster
   * inspector uses setInspection instead, so that it costs nothing while nobody watches.
   */
  inspect?: (event: InspectionEvent) => void;
  maxBatch?: number;
  maxInflight?: number;
  /**
   * Snapshots (metadata and opaque bytes) for InstallSnapshot; without it snapshots are neither sent
   * nor received. Received ones are installed with `stateMachine.restore` (none without it).
   */
  snapshots?: SnapshotStore;
  /** InstallSnapshot flow control: bytes per chunk, chunks in flight, resend after silence (ms). */
  snapshotChunkBytes?: number;
  snapshotWindow?: number;
  snapshotRetransmitMs?: number;
  /** Called when the actor fails (an exception in the machine): the host is dead after that. */
  onError?: (error: unknown) => void;
  /**
   * Names this process incarnation in read request ids, so that a restarted replica never takes a
   * read index meant for its previous life (default: random). The simulator passes its restart count.
   */
  incarnation?: string;
  /** A read not served within this long fails (ms; default 5 election timeouts). */
  readTimeoutMs?: number;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leaderId: NodeId | null;
  commitIndex: number;
  lastApplied: number;
  lastLogIndex: number;
  snapshotIndex: number;
  config: ClusterConfig;
}

export interface RoleChange {
  role: Role;
  term: number;
  leaderId: NodeId | null;
}

export class NodeStoppedError extends Error {
  constructor() {
    super('the replica stopped');
    this.name = 'NodeStoppedError';
  }
}

export class TransferFailedError extends Error {
  constructor(readonly to: NodeId | null) {
    super(`leadership transfer${to ? ` to ${to}` : ''} did not complete`);
    this.name = 'TransferFailedError';
  }
}

export class RaftNode {
  private readonly opts: RaftNodeOptions;
  private readonly defer: (fn: () => void) => void;
  private _actor: Actor<typeof replicaMachine> | null = null;
  private stopped = false;
  /** setInspection's observer, and its registration with the actor system once the actor exists. */
  private inspection: { observer: (e: InspectionEvent) => void; sub: Subscription | undefined } | null = null;

  private readonly proposals: ProposalTracker;
  private readonly reads: ReadTracker;
  private readonly installer: SnapshotInstaller;
  private readonly applier: ApplyLoop;
  private readonly listeners: NodeListeners;
  private transfers: { resolve: () => void; reject: (e: Error) => void }[] = [];

  /** Carries out the machine's effects in the durability order (ready-executor.ts); made by start(). */
  private ready: ReadyExecutor | null = null;

  private role: RoleChange = { role: 'follower', term: 0, leaderId: null };
  private sender: SnapshotSender | null = null;
  /** clock.now() of the last AppendEntries or InstallSnapshot received (for the campaign log line). */
  private heardFromLeaderAt: number | undefined;

  constructor(opts: RaftNodeOptions) {
    this.opts = opts;
    this.defer = opts.defer ?? ((fn) => setImmediate(fn));
    this.proposals = new ProposalTracker({
      prefix: opts.id,
      defer: this.defer,
      submit: (proposals) => {
        if (!this.stopped) this._actor?.send({ type: 'propose', proposals });
      },
    });
    this.installer = new SnapshotInstaller({
      id: opts.id,
      store: opts.snapshots,
      logStore: opts.logStore,
      stateMachine: opts.stateMachine,
      send: (m) => {
        if (!this.stopped) opts.transport.send(m);
      },
      logger: opts.logger,
    });
    this.reads = new ReadTracker({
      prefix: `${opts.id}:${opts.incarnation ?? randomBytes(6).toString('base64url')}`,
      clock: opts.clock,
      timeoutMs: opts.readTimeoutMs ?? 5 * opts.timing.electionMaxMs,
      request: (requestId) => this._actor?.send({ type: 'readIndex', requestId }),
      defer: this.defer,
    });
    this.listeners = new NodeListeners(opts.logger);
    this.applier = new ApplyLoop({
      log: opts.logStore,
      stateMachine: opts.stateMachine,
      proposals: this.proposals,
      reads: this.reads,
      machine: (index) => this._actor?.send({ type: 'applied', index }),
      listeners: this.listeners,
      fatal: (err) => this.die(err),
      logger: opts.logger,
    });
  }

  get id(): NodeId {
    return this.opts.id;
  }

  get actor(): Actor<typeof replicaMachine> {
    if (!this._actor) throw new Error('RaftNode not started');
    return this._actor;
  }

  /**
   * Registers `observer` with the actor system (the replica, its replication actor, and the chat actor
   * attached to it), or with null removes it. While an observer is registered, XState builds and
   * delivers an inspection event for every event, microstep, action and snapshot of every actor in the
   * system; with none registered it builds none, so the /cluster inspector hooks in only while a page
   * is open (an observer that returns at once would still be called for each of them).
   */
  setInspection(observer: ((e: InspectionEvent) => void) | null): void {
    this.inspection?.sub?.unsubscribe();
    this.inspection = observer ? { observer, sub: this._actor?.system.inspect(observer) } : null;
  }

  start(): void {
    if (this._actor) return;
    const { logStore, transport } = this.opts;
    this.installer.recover();
    const commitIndex = this.applier.recover();
    const config = logStore.config();
    const input: ReplicaInput = {
      id: this.opts.id,
      hardState: logStore.hardState(),
      config,
      appliedIndex: this.applier.appliedIndex(),
      commitIndex,
      log: logStore,
      timing: this.opts.timing,
      seed: this.opts.seed,
      maxBatch: this.opts.maxBatch,
      maxInflight: this.opts.maxInflight,
    };
    this.role = { role: 'follower', term: input.hardState.term, leaderId: null };
    this.reads.appliedTo(this.applier.appliedIndex());
    const actor = createActor(replicaMachine, {
      input,
      clock: this.opts.clock,
      ...(this.opts.inspect ? { inspect: this.opts.inspect } : {}),
    });
    if (this.inspection) this.inspection.sub = actor.system.inspect(this.inspection.observer);
    actor.subscribe({
      error: (err) => {
        this.opts.logger?.error({ err }, 'replica actor failed');
        this.opts.onError?.(err);
        this.failAll(new NodeStoppedError());
      },
    });
    const ready = new ReadyExecutor(
      {
        log: logStore,
        send: (m) => transport.send(m),
        defer: this.defer,
        flushPolicy: this.opts.flushPolicy,
        timer: (fn, delayUs) => {
          const { clock } = this.opts;
          const handle = clock.setTimeout(fn, delayUs / 1000);
          return () => clock.clearTimeout(handle);
        },
        persisted: (p) => actor.send({ type: 'persisted', ...p }),
        apply: (upTo) => this.applier.apply(upTo),
        other: (e) => this.effect(e),
      },
      // Everything the store holds after a restart is durable (a crash lost the rest).
      { durableIndex: logStore.lastIndex(), commitIndex, appliedIndex: this.applier.appliedIndex() },
    );
    this.ready = ready;
    actor.on('*', (e) => ready.execute([e as Effect]));
    this._actor = actor;
    transport.setPeers(config.members);
    if (this.opts.snapshots) {
      this.sender = new SnapshotSender({
        id: this.opts.id,
        store: this.opts.snapshots,
        send: (m) => {
          if (!this.stopped) transport.send(m);
        },
        clock: this.opts.clock,
        chunkBytes: this.opts.snapshotChunkBytes,
        window: this.opts.snapshotWindow,
        retransmitMs: this.opts.snapshotRetransmitMs ?? Math.max(200, 4 * this.opts.timing.heartbeatMs),
        logger: this.opts.logger,
      });
    }
    // A lost connection is a hint the machine weighs (a follower's leader: fail over soon).
    transport.onPeerLost?.((id) => {
      if (!this.stopped) actor.send({ type: 'peerLost', id });
    });
    transport.listen((m) => {
      if (this.stopped) return;
      // The sender paces the chunks; the machine still sees the response (it keeps the peer in
      // snapshot mode while chunks flow, and probes again once it is installed).
      if (m.type === 'InstallSnapshotResponse') this.sender?.onResponse(m);
      if (m.type === 'AppendEntries' || m.type === 'InstallSnapshot')
        this.heardFromLeaderAt = this.opts.clock.now();
      actor.send(m);
    });
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
      if (this.stopped || !this._actor) {
        reject(new NodeStoppedError());
        return;
      }
      this.transfers.push({ resolve, reject });
      this._actor.send({ type: 'transferLeadership', to });
    });
  }

  status(): RaftStatus {
    const { logStore } = this.opts;
    const ctx = this._actor?.getSnapshot().context;
    return {
      id: this.opts.id,
      role: this.role.role,
      term: ctx?.term ?? this.role.term,
      leaderId: ctx?.leaderId ?? null,
      // Not the machine's in-memory commit: only what a restart would recover (invariant 8).
      commitIndex: Math.max(this.ready?.durableCommit() ?? 0, this.applier.appliedIndex()),
      lastApplied: this.applier.appliedIndex(),
      lastLogIndex: logStore.lastIndex(),
      snapshotIndex: logStore.snapshot().index,
      config: ctx?.config ?? logStore.config(),
    };
  }

  /** Whether this replica is listed (as voter or learner) in its current configuration. */
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

  /** cb(meta) after a snapshot received from the leader replaced the state machine's state. */
  onSnapshotInstalled(cb: (meta: SnapshotMeta) => void): () => void {
    return this.listeners.onSnapshotInstalled(cb);
  }

  /** Peers a snapshot is being streamed to (leader only). */
  snapshotTransfers(): NodeId[] {
    return this.sender?.active() ?? [];
  }

  /**
   * A local snapshot through `meta.index` is durable in the snapshot store: compact the log behind it.
   * `keep` entries before the snapshot index stay, so a follower slightly behind still gets entries
   * rather than the whole snapshot. Never compacts past what is applied here.
   */
  snapshotTaken(meta: SnapshotMeta, keep = 0): void {
    if (this.stopped) return;
    const log = this.opts.logStore;
    const through = Math.min(meta.index - Math.max(0, keep), this.applier.appliedIndex());
    if (through > log.snapshot().index) {
      const term = log.termAt(through);
      if (term !== undefined) {
        const compacted = { index: through, term, config: configAt(log, through) };
        log.compact(compacted);
        // The machine knows its log by terms: it must learn which entries it can no longer send.
        this._actor?.send({ type: 'logCompacted', meta: compacted });
      }
    }
  }

  /** The applied index (what a snapshot taken now would cover). */
  appliedIndex(): number {
    return this.applier.appliedIndex();
  }

  // -------------------------------------------------------------------------------------------------

  /** The effects the Ready executor leaves to the host (proposals, reads, roles, config, snapshots). */
  private effect(e: Effect): void {
    if (this.stopped) return;
    this.reads.effect(e);
    switch (e.type) {
      case 'proposed':
        this.proposals.proposed(e.requestId, e.index, e.term);
        break;
      case 'proposalRejected':
        this.proposals.rejected(e.requestId, e.reason, e.leaderId);
        break;
      case 'roleChanged':
        if (e.role !== 'leader') this.sender?.cancelAll();
        if (e.role !== 'leader' && !this.isMember())
          this.proposals.dropOrphaned(this.ready?.commitIndex() ?? 0);
        this.role = { role: e.role, term: e.term, leaderId: e.leaderId };
        this.opts.logger?.info(
          {
            role: e.role,
            term: e.term,
            leader: e.leaderId,
            // Why a campaign started: how long since a leader was last heard from (stability figures).
            ...(e.role === 'candidate' && this.heardFromLeaderAt !== undefined
              ? { heardFromLeaderMsAgo: this.opts.clock.now() - this.heardFromLeaderAt }
              : {}),
          },
          'role changed',
        );
        this.listeners.roleChanged(this.role);
        break;
      case 'configChanged':
        this.opts.transport.setPeers(e.config.members);
        for (const to of this.sender?.active() ?? []) {
          if (!e.config.members.some((m) => m.id === to)) this.sender?.cancel(to);
        }
        break;
      case 'transferFinished': {
        const pending = this.transfers;
        this.transfers = [];
        for (const t of pending) {
          if (e.ok) t.resolve();
          else t.reject(new TransferFailedError(e.to));
        }
        break;
      }
      case 'sendSnapshot':
        this.sendSnapshot(e.to, e.term);
        break;
      case 'receiveSnapshotChunk':
        this.receiveSnapshotChunk(e.message);
        break;
    }
  }

  private sendSnapshot(to: NodeId, term: number): void {
    if (!this.sender) {
      this.opts.logger?.warn({ to }, 'peer needs a snapshot but no snapshot store is configured');
      return;
    }
    this.sender.start(to, term);
  }

  /** A chunk from the leader; once the snapshot is installed, everything here moves to it. */
  private receiveSnapshotChunk(m: InstallSnapshot): void {
    let meta: SnapshotMeta | null;
    try {
      meta = this.installer.receive(m);
    } catch (err) {
      // The file is in place; the next start retries the restore (SnapshotInstaller.recover).
      this.opts.logger?.error({ err }, 'installing a snapshot failed');
      this.die(err);
      return;
    }
    if (!meta) return;
    this.applier.snapshotInstalled(meta.index);
    // The restore recorded meta.index as applied, durably: a restart starts at least there.
    this.ready?.snapshotInstalled(meta.index);
    this.proposals.snapshotInstalled(meta.index, m.from);
    this._actor?.send({ type: 'snapshotInstalled', meta });
    this.listeners.snapshotInstalled(meta);
    this.reads.appliedTo(this.applier.appliedIndex());
  }

  private failAll(err: Error): void {
    this.proposals.failAll(err);
    this.reads.failAll(err);
    for (const t of this.transfers) t.reject(err);
    this.transfers = [];
  }

  /** A part failed in a way the host cannot go on from (already logged): the node is dead after this. */
  private die(err: unknown): void {
    this.opts.onError?.(err);
    this.stop();
  }
}

/** The configuration in effect at `index` of the log. */
function configAt(log: LogStore, index: number): ClusterConfig {
  if (log.configAt) return log.configAt(index);
  return lastConfigAtOrBefore(log, index)?.config ?? log.snapshot().config;
}
