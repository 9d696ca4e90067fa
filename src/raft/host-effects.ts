// HostEffects: what a replica host does with the effects the Ready executor leaves to it (`other` in
// ready-executor.ts), in the order the machine emitted them. None of them is about durability (that is
// the executor's job); each is handed to the part it concerns:
//
//   proposed, proposalRejected    → ProposalTracker
//   read effects (readReady, ...) → ReadTracker (it sees every effect and takes its own)
//   roleChanged                   → the role status() reports, the 'role changed' log line, the
//                                   listeners; a replica that stops leading stops streaming snapshots,
//                                   and one no longer listed drops its orphaned proposals
//   configChanged                 → the transport's peers; snapshot streams to removed peers stop
//   transferFinished              → TransferTracker
//   sendSnapshot                  → SnapshotSender
//   receiveSnapshotChunk          → SnapshotInstaller; once a snapshot is installed, every part that
//                                   keeps an index moves to it (see snapshotInstalled below)
//
// One per actor life: RaftNode.start() makes it with the actor and the executor it serves.

import type {
  ClusterConfig,
  Effect,
  InstallSnapshot,
  NodeId,
  RaftMessage,
  SnapshotMeta,
} from '../../machines/protocol.js';
import type { ApplyLoop } from './apply-loop.js';
import type { Clock } from './interfaces.js';
import type { NodeListeners } from './node-listeners.js';
import type { RaftLogger, RoleChange } from './node-types.js';
import type { ProposalTracker } from './proposal-tracker.js';
import type { ReadTracker } from './read-tracker.js';
import type { ReadyExecutor } from './ready-executor.js';
import type { SnapshotInstaller } from './snapshot-installer.js';
import type { SnapshotSender } from './snapshot-sender.js';
import type { TransferTracker } from './transfer-tracker.js';

/** The parts the effects go to. */
export interface HostParts {
  proposals: Pick<ProposalTracker, 'proposed' | 'rejected' | 'dropOrphaned' | 'snapshotInstalled'>;
  reads: Pick<ReadTracker, 'effect' | 'appliedTo'>;
  transfers: Pick<TransferTracker, 'finished'>;
  listeners: Pick<NodeListeners, 'roleChanged' | 'snapshotInstalled'>;
  installer: Pick<SnapshotInstaller, 'receive'>;
  applier: Pick<ApplyLoop, 'snapshotInstalled' | 'appliedIndex'>;
  /** Streams snapshots to followers; null without a snapshot store. */
  sender: Pick<SnapshotSender, 'start' | 'cancel' | 'cancelAll' | 'active'> | null;
}

/** The rest of the host they reach. */
export interface HostWiring {
  executor: Pick<ReadyExecutor, 'commitIndex' | 'snapshotInstalled'>;
  /** Tells the replica machine that the host installed a snapshot. */
  machine: (event: { type: 'snapshotInstalled'; meta: SnapshotMeta }) => void;
  /** Whether this replica is listed (voter or learner) in its current configuration. */
  isMember: () => boolean;
  setPeers: (members: ClusterConfig['members']) => void;
  /** A snapshot could not be installed (already logged): the host cannot go on. */
  fatal: (err: unknown) => void;
  clock: Pick<Clock, 'now'>;
  logger?: RaftLogger;
}

export class HostEffects {
  private current: RoleChange;
  /** clock.now() of the last AppendEntries or InstallSnapshot received (for the campaign log line). */
  private heardFromLeaderAt: number | undefined;

  private readonly deps: HostParts & HostWiring;

  /** `term`: the durable term the replica starts in, as a follower. */
  constructor(parts: HostParts, wiring: HostWiring, term: number) {
    this.deps = { ...parts, ...wiring };
    this.current = { role: 'follower', term, leaderId: null };
  }

  /** The role the machine last announced (the replica's start as a follower before any). */
  role(): RoleChange {
    return this.current;
  }

  /** A message from a peer: one from a leader is remembered, to say why a campaign started. */
  received(m: RaftMessage): void {
    if (m.type === 'AppendEntries' || m.type === 'InstallSnapshot')
      this.heardFromLeaderAt = this.deps.clock.now();
  }

  handle(e: Effect): void {
    const { proposals, sender } = this.deps;
    this.deps.reads.effect(e);
    switch (e.type) {
      case 'proposed':
        proposals.proposed(e.requestId, e.index, e.term);
        break;
      case 'proposalRejected':
        proposals.rejected(e.requestId, e.reason, e.leaderId);
        break;
      case 'roleChanged':
        this.roleChanged(e);
        break;
      case 'configChanged':
        this.deps.setPeers(e.config.members);
        for (const to of sender?.active() ?? []) {
          if (!e.config.members.some((m) => m.id === to)) sender?.cancel(to);
        }
        break;
      case 'transferFinished':
        this.deps.transfers.finished(e.ok, e.to);
        break;
      case 'sendSnapshot':
        if (sender) sender.start(e.to, e.term);
        else
          this.deps.logger?.warn({ to: e.to }, 'peer needs a snapshot but no snapshot store is configured');
        break;
      case 'receiveSnapshotChunk':
        this.receiveSnapshotChunk(e.message);
        break;
    }
  }

  private roleChanged(e: Extract<Effect, { type: 'roleChanged' }>): void {
    const { proposals, sender, clock } = this.deps;
    if (e.role !== 'leader') sender?.cancelAll();
    if (e.role !== 'leader' && !this.deps.isMember())
      proposals.dropOrphaned(this.deps.executor.commitIndex());
    this.current = { role: e.role, term: e.term, leaderId: e.leaderId };
    this.deps.logger?.info(
      {
        role: e.role,
        term: e.term,
        leader: e.leaderId,
        // Why a campaign started: how long since a leader was last heard from (stability figures).
        ...(e.role === 'candidate' && this.heardFromLeaderAt !== undefined
          ? { heardFromLeaderMsAgo: clock.now() - this.heardFromLeaderAt }
          : {}),
      },
      'role changed',
    );
    this.deps.listeners.roleChanged(this.current);
  }

  /** A chunk from the leader; once the snapshot is installed, everything here moves to it. */
  private receiveSnapshotChunk(m: InstallSnapshot): void {
    let meta: SnapshotMeta | null;
    try {
      meta = this.deps.installer.receive(m);
    } catch (err) {
      // The file is in place; the next start retries the restore (SnapshotInstaller.recover).
      this.deps.logger?.error({ err }, 'installing a snapshot failed');
      this.deps.fatal(err);
      return;
    }
    if (meta) this.snapshotInstalled(meta, m.from);
  }

  private snapshotInstalled(meta: SnapshotMeta, from: NodeId): void {
    const { applier } = this.deps;
    applier.snapshotInstalled(meta.index);
    // The restore recorded meta.index as applied, durably: a restart starts at least there.
    this.deps.executor.snapshotInstalled(meta.index);
    this.deps.proposals.snapshotInstalled(meta.index, from);
    this.deps.machine({ type: 'snapshotInstalled', meta });
    this.deps.listeners.snapshotInstalled(meta);
    this.deps.reads.appliedTo(applier.appliedIndex());
  }
}
