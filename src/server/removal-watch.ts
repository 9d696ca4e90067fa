// A replica that was removed from the cluster often never hears of it: the leader stops replicating to
// it as soon as it appends the configuration without it, so the removed replica keeps its old
// configuration, times out and campaigns forever (pre-vote keeps it from disrupting anyone, but
// `status` lists it as a candidate). Like etcd, it should learn that it was removed and stop.
//
// The proof it waits for: while it knows no leader, it asks the members of its own configuration for
// their status (GetStatus is open). If a leader answers whose configuration does not list it, it notes
// that leader, its term and its last log index; if the same leader, in the same term, later still does
// not list it and has committed up to that noted index, then a configuration without this replica is
// committed (it was in that leader's log at the first look). Anything else (no leader answers, a leader
// that lists it, a new leader) starts over, so a partitioned member never stops itself.
import type { ClusterStatus } from '../client/types.js';

export interface RemovalWatchNode {
  readonly id: string;
  status(): {
    role: string;
    term: number;
    leaderId: string | null;
    config: { members: { id: string; address: string; voter: boolean }[] };
  };
  isMember(): boolean;
}

export interface RemovedEvidence {
  leaderId: string;
  leaderAddress: string;
  term: number;
  commitIndex: number;
}

export interface RemovalWatchOptions {
  node: RemovalWatchNode;
  /** GetStatus of a peer (rejects when it does not answer). */
  getStatus: (address: string) => Promise<ClusterStatus>;
  onRemoved: (evidence: RemovedEvidence) => void;
  /** How often to look (ms); start() only. */
  intervalMs?: number;
}

export class RemovalWatch {
  private timer: NodeJS.Timeout | undefined;
  /** Has this replica been a member during this run (a fresh joiner is not one until it is added)? */
  private wasMember = false;
  private pending: { leaderId: string; term: number; lastLogIndex: number } | undefined;
  private leaderless = 0;
  private busy = false;
  private done = false;

  constructor(private readonly opts: RemovalWatchOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look; exposed for tests. Resolves true once removal is proven (onRemoved called once). */
  async tick(): Promise<boolean> {
    if (this.done || this.busy) return this.done;
    const { node } = this.opts;
    if (node.isMember()) this.wasMember = true;
    const s = node.status();
    if (!this.wasMember || s.role === 'leader' || s.leaderId !== null) {
      this.pending = undefined;
      this.leaderless = 0;
      return false;
    }
    // Leaderless for a whole interval before asking anyone: elections take a moment.
    if (++this.leaderless < 2) return false;
    this.busy = true;
    try {
      const leader = await this.findLeader(s.config.members.filter((m) => m.id !== node.id));
      if (!leader || leader.members.some((m) => m.id === node.id)) {
        this.pending = undefined;
        return false;
      }
      const p = this.pending;
      if (
        p &&
        p.leaderId === leader.node_id &&
        p.term === leader.term &&
        leader.commit_index >= p.lastLogIndex
      ) {
        this.done = true;
        this.stop();
        this.opts.onRemoved({
          leaderId: leader.node_id,
          leaderAddress: leader.address,
          term: leader.term,
          commitIndex: leader.commit_index,
        });
        return true;
      }
      if (!p || p.leaderId !== leader.node_id || p.term !== leader.term) {
        this.pending = { leaderId: leader.node_id, term: leader.term, lastLogIndex: leader.last_log_index };
      }
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** The member that answers as leader in the highest term, if any. */
  private async findLeader(members: { id: string; address: string }[]): Promise<ClusterStatus | undefined> {
    const answers = await Promise.all(
      members.map((m) => this.opts.getStatus(m.address).catch(() => undefined)),
    );
    let best: ClusterStatus | undefined;
    for (const a of answers) if (a?.role === 'leader' && (!best || a.term > best.term)) best = a;
    return best;
  }
}
