// `bench --stability` (`make bench-stability`, issue 10 deliver 5): steady write load on a busy machine
// and no fault at all, counting what should stay 0: term moves and leader changes. Busy means CPU hogs
// (busy-loop processes, stopped by pid) competing for the same cores as the replicas and the driver.
import { type ChildProcess, spawn } from 'node:child_process';
import type { LocalCluster } from '../server/local-cluster.js';
import { killAll } from './processes.js';

/** What one member says: its term and the leader it knows ('' or undefined when none). */
export interface MemberView {
  term: number;
  leader?: string;
}

/** Every member's view of a Quorum Chat cluster (a member that does not answer is left out). */
export function chatViews(cluster: LocalCluster, ids: string[]): () => Promise<MemberView[]> {
  return async () => {
    const seen = await Promise.all(ids.map((id) => cluster.status(id, 1000).catch(() => undefined)));
    return seen.filter((s) => s !== undefined).map((s) => ({ term: s.term, leader: s.leader_id }));
  };
}

/** Start `n` busy-loop processes; returns a function that kills them (by pid). */
export function startHogs(n: number): () => Promise<void> {
  const procs: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    procs.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  }
  return async () => {
    await killAll(procs);
  };
}

/** Polls every member's view until `stop()`; counts term moves and leader changes (any system). */
export class LeadershipWatch {
  private running = true;
  private loop: Promise<void>;
  private firstTerm = -1;
  private lastTerm = -1;
  private leader: string | undefined;
  readonly leaders: string[] = [];
  changes = 0;
  polls = 0;

  constructor(
    private readonly views: () => Promise<MemberView[]>,
    private readonly intervalMs = 200,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    for (let i = 0; this.running && i < 10_000_000; i++) {
      const seen = await this.views().catch(() => []);
      this.polls++;
      let top: { term: number; leader: string } | undefined;
      for (const s of seen) {
        if (!top || s.term > top.term) top = { term: s.term, leader: s.leader ?? '' };
      }
      if (top) {
        if (this.firstTerm < 0) this.firstTerm = top.term;
        this.lastTerm = Math.max(this.lastTerm, top.term);
        if (top.leader && top.leader !== this.leader) {
          if (this.leader !== undefined) this.changes++;
          this.leader = top.leader;
          this.leaders.push(`${top.leader}@${top.term}`);
        }
      }
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
  }

  async stop(): Promise<{ termMoves: number; leaderChanges: number; leaders: string[]; polls: number }> {
    this.running = false;
    await this.loop;
    return {
      termMoves: Math.max(0, this.lastTerm - this.firstTerm),
      leaderChanges: this.changes,
      leaders: this.leaders,
      polls: this.polls,
    };
  }
}
