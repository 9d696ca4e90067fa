// ClusterService's operations on a Raft replica (API.md §2 ClusterService), and the topology hints every
// response carries, both read from the live RaftNode.
//
// Membership changes are single-server changes (thesis §4), one at a time. The leader runs them; a
// follower forwards the call to it once (a forwarded call that finds no leader here gets UNAVAILABLE).
// AddMember: propose the newcomer as a learner, wait until it has applied what was committed when it
// joined (polling its GetStatus), then propose it as a voter. Each step is idempotent, so a joiner that
// retries after a lost reply or a crash simply continues where the last attempt stopped.
import type { ClusterConfig, Member, NodeId } from '../../machines/protocol.js';
import { ChatError, status } from '../chat/errors.js';
import type { ChatStore } from '../chat/store.js';
import { bearer } from '../raft/cluster-secret.js';
import {
  NodeStoppedError,
  NotLeaderError,
  ProposalRejectedError,
  type RaftNode,
  TransferFailedError,
} from '../raft/node.js';
import type { ClusterControl, ClusterStatus, ControlContext } from './cluster-handlers.js';
import type { LeaderForwarder } from './forwarder.js';
import type { Topology } from './metadata.js';

/** Budget of a membership change whose caller set no deadline (ms). */
const DEFAULT_CHANGE_MS = 60_000;
const POLL_MS = 50;

const ID = /^[A-Za-z0-9_.-]{1,64}$/;
const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

export interface MembershipOptions {
  node: RaftNode;
  store: Pick<ChatStore, 'stateDigest'>;
  forwarder: Pick<LeaderForwarder, 'call'>;
  secret: string;
  /** This replica's advertised address (known once the port is bound). */
  selfAddress: () => string;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

function addressIn(config: ClusterConfig, id: NodeId | null): string | undefined {
  if (id === null) return undefined;
  return config.members.find((m) => m.id === id)?.address;
}

export class Membership implements ClusterControl, Topology {
  private changing: string | undefined;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: MembershipOptions) {
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  // --- Topology --------------------------------------------------------------------------------------

  leaderAddress(): string | undefined {
    const s = this.opts.node.status();
    if (s.leaderId === this.opts.node.id) return this.opts.selfAddress();
    return addressIn(s.config, s.leaderId);
  }

  memberAddresses(): string[] {
    return this.opts.node
      .status()
      .config.members.filter((m) => m.voter)
      .map((m) => m.address);
  }

  /** The address of a member of the current configuration. */
  addressOf(id: NodeId): string | undefined {
    if (id === this.opts.node.id) return this.opts.selfAddress();
    return addressIn(this.opts.node.status().config, id);
  }

  // --- ClusterControl --------------------------------------------------------------------------------

  status(): ClusterStatus {
    const s = this.opts.node.status();
    return {
      node_id: s.id,
      address: this.opts.selfAddress(),
      role: s.role,
      term: s.term,
      leader_id: s.leaderId ?? '',
      leader_address: this.leaderAddress() ?? '',
      commit_index: s.commitIndex,
      last_applied: s.lastApplied,
      last_log_index: s.lastLogIndex,
      snapshot_index: s.snapshotIndex,
      members: s.config.members.map((m) => ({ id: m.id, address: m.address, voter: m.voter })),
      state_digest: this.opts.store.stateDigest(),
    };
  }

  addMember(id: string, address: string, ctx: ControlContext): Promise<ClusterStatus> {
    if (!ID.test(id)) {
      return Promise.reject(
        new ChatError(
          status.INVALID_ARGUMENT,
          "Id must be 1 to 64 characters of letters, digits, '_', '.' or '-'.",
        ),
      );
    }
    if (!ADDRESS.test(address) || Number(address.split(':').pop()) > 65535) {
      return Promise.reject(new ChatError(status.INVALID_ARGUMENT, 'The address must be HOST:PORT.'));
    }
    return this.onLeader('AddMember', { id, address }, ctx, () => this.add(id, address, ctx));
  }

  removeMember(id: string, ctx: ControlContext): Promise<ClusterStatus> {
    if (id === '') return Promise.reject(new ChatError(status.INVALID_ARGUMENT, 'The id must not be empty.'));
    return this.onLeader('RemoveMember', { id }, ctx, () => this.remove(id));
  }

  transferLeadership(toId: string, ctx: ControlContext): Promise<ClusterStatus> {
    return this.onLeader('TransferLeadership', { to_id: toId }, ctx, () => this.transfer(toId, ctx));
  }

  // --- internals -------------------------------------------------------------------------------------

  /** Runs `op` here when this replica leads (one change at a time), else forwards the call once. */
  private async onLeader(
    method: string,
    request: object,
    ctx: ControlContext,
    op: () => Promise<ClusterStatus>,
  ): Promise<ClusterStatus> {
    const s = this.opts.node.status();
    if (s.role !== 'leader') {
      const leader = addressIn(s.config, s.leaderId);
      if (ctx.forwarded || !leader) {
        throw new ChatError(status.UNAVAILABLE, 'No leader is known right now; retry.');
      }
      return (await this.opts.forwarder.call(leader, {
        service: 'cluster',
        method,
        request,
        authorization: bearer(this.opts.secret),
        deadline: ctx.deadline ?? this.now() + DEFAULT_CHANGE_MS,
      })) as ClusterStatus;
    }
    if (this.changing !== undefined) {
      throw new ChatError(
        status.FAILED_PRECONDITION,
        `Another membership change (${this.changing}) is in progress; retry when it has finished.`,
      );
    }
    this.changing = method;
    try {
      return await op();
    } finally {
      this.changing = undefined;
    }
  }

  private async add(id: string, address: string, ctx: ControlContext): Promise<ClusterStatus> {
    const deadline = ctx.deadline ?? this.now() + DEFAULT_CHANGE_MS;
    const config = this.opts.node.status().config;
    const existing = config.members.find((m) => m.id === id);
    const clash = config.members.find((m) => m.id !== id && m.address === address);
    if (clash) {
      throw new ChatError(
        status.FAILED_PRECONDITION,
        `Address ${address} already belongs to member ${clash.id}.`,
      );
    }
    if (existing && existing.address !== address) {
      throw new ChatError(
        status.FAILED_PRECONDITION,
        `Member ${id} already exists at ${existing.address}; remove it first to change its address.`,
      );
    }
    if (existing?.voter) return this.status();
    if (!existing) await this.propose(withMember(config, { id, address, voter: false }));
    await this.waitCaughtUp(id, address, deadline);
    await this.propose(withMember(this.opts.node.status().config, { id, address, voter: true }));
    return this.status();
  }

  /** Until the learner has applied everything committed when this check began (or the deadline). */
  private async waitCaughtUp(id: string, address: string, deadline: number): Promise<void> {
    const target = this.opts.node.status().commitIndex;
    for (let i = 0; i < 100_000; i++) {
      if (this.opts.node.status().role !== 'leader') {
        throw new ChatError(status.UNAVAILABLE, 'This replica lost its leadership during the change; retry.');
      }
      const left = deadline - this.now();
      if (left <= 0) break;
      try {
        const st = (await this.opts.forwarder.call(address, {
          service: 'cluster',
          method: 'GetStatus',
          request: {},
          deadline: this.now() + Math.min(left, 1000),
        })) as ClusterStatus;
        if (st.node_id === id && st.last_applied >= target) return;
      } catch {
        // Not reachable yet (starting, or busy applying): keep polling until the deadline.
      }
      await this.sleep(Math.min(POLL_MS, Math.max(0, deadline - this.now())));
    }
    throw new ChatError(
      status.DEADLINE_EXCEEDED,
      `Member ${id} did not catch up before the deadline; it stays a learner (retry AddMember to promote it).`,
    );
  }

  private async remove(id: string): Promise<ClusterStatus> {
    const config = this.opts.node.status().config;
    const member = config.members.find((m) => m.id === id);
    if (!member) throw new ChatError(status.NOT_FOUND, `There is no member ${id}.`);
    const rest = config.members.filter((m) => m.id !== id);
    if (member.voter && !rest.some((m) => m.voter)) {
      throw new ChatError(
        status.FAILED_PRECONDITION,
        `Member ${id} is the last voter; it cannot be removed.`,
      );
    }
    // Removing the leader itself: it keeps leading until the change commits, then steps down.
    await this.propose({ members: rest });
    return this.status();
  }

  private async transfer(toId: string, ctx: ControlContext): Promise<ClusterStatus> {
    const config = this.opts.node.status().config;
    if (toId !== '' && !config.members.some((m) => m.id === toId && m.voter)) {
      throw new ChatError(status.NOT_FOUND, `There is no voting member ${toId}.`);
    }
    if (toId === this.opts.node.id) return this.status();
    if (!config.members.some((m) => m.voter && m.id !== this.opts.node.id)) {
      throw new ChatError(status.FAILED_PRECONDITION, 'There is no other voter to hand leadership to.');
    }
    try {
      await this.opts.node.transferLeadership(toId === '' ? null : toId);
    } catch (err) {
      if (err instanceof TransferFailedError) {
        throw new ChatError(status.UNAVAILABLE, 'The leadership transfer did not complete in time; retry.');
      }
      throw mapRaftError(err);
    }
    // Report the new leader once this replica has heard of it (bounded by the call's deadline).
    const until = Math.min(ctx.deadline ?? Number.POSITIVE_INFINITY, this.now() + 2000);
    for (let i = 0; i < 200 && this.now() < until; i++) {
      const s = this.opts.node.status();
      if (s.leaderId !== null && s.leaderId !== this.opts.node.id) break;
      await this.sleep(10);
    }
    return this.status();
  }

  private async propose(config: ClusterConfig): Promise<void> {
    try {
      await this.opts.node.propose('config', JSON.stringify(config));
    } catch (err) {
      throw mapRaftError(err);
    }
  }
}

function withMember(config: ClusterConfig, member: Member): ClusterConfig {
  const members = config.members.filter((m) => m.id !== member.id);
  return { members: [...members, member] };
}

function mapRaftError(err: unknown): unknown {
  if (err instanceof ProposalRejectedError) {
    if (/not committed an entry of its term/.test(err.reason)) {
      return new ChatError(status.UNAVAILABLE, 'The new leader is not ready for changes yet; retry.');
    }
    return new ChatError(status.FAILED_PRECONDITION, `The change was refused: ${err.reason}.`);
  }
  if (err instanceof NotLeaderError || err instanceof NodeStoppedError) {
    return new ChatError(status.UNAVAILABLE, 'This replica lost its leadership during the change; retry.');
  }
  if (err instanceof ChatError) return err;
  if (err instanceof Error && err.name === 'ProposalDroppedError') {
    return new ChatError(status.UNAVAILABLE, 'A new leader took over before the change committed; retry.');
  }
  return err;
}
