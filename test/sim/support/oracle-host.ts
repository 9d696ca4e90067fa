// A fake replica host for testing the simulator itself: no Raft, one shared "oracle" log that every
// host copies from synchronously. It is trivially correct, so the simulator must pass it; each `bug`
// breaks one guarantee, and the simulator must then fail with the matching check.

import type { Entry } from '../../../machines/protocol.js';
import type { ApplyOutcome } from '../../../src/raft/interfaces.js';
import type {
  ReplicaDeps,
  ReplicaFactory,
  ReplicaHost,
  ReplicaStatus,
} from '../../../src/raft/sim/replica-host.js';

export type OracleBug =
  | 'none'
  /** Hosts other than the proposer apply 30 ms late, and readIndex answers at once: stale reads. */
  | 'stale-read'
  /** One proposal in 20 is acknowledged but never appended: an acknowledged write is lost. */
  | 'lose-ack'
  /** Every host claims to lead term 1. */
  | 'two-leaders'
  /** Hosts other than the proposer append a corrupted copy of the entry. */
  | 'diverge';

class Oracle {
  entries: Entry[] = [];
  hosts = new Set<OracleHost>();
  proposals = 0;
}

class OracleHost implements ReplicaHost {
  private running = false;

  constructor(
    private readonly d: ReplicaDeps,
    private readonly oracle: Oracle,
    private readonly bug: OracleBug,
  ) {}

  start(): void {
    this.running = true;
    this.oracle.hosts.add(this);
    this.d.transport.listen(() => {});
    this.reapplyLost();
    this.catchUp();
  }

  /**
   * The state machine's apply is made durable only by the next log fsync (lazy applied index), so a
   * crash may roll it back: re-apply the durable log (all of it is committed here) before anyone looks.
   */
  private reapplyLost(): void {
    const store = this.d.logStore;
    const applied = this.d.stateMachine.appliedIndex();
    if (store.lastIndex() > applied) {
      this.d.stateMachine.apply(store.entries(applied + 1, store.lastIndex(), 100_000));
    }
  }

  stop(): void {
    this.running = false;
    this.oracle.hosts.delete(this);
  }

  status(): ReplicaStatus {
    const applied = this.d.stateMachine.appliedIndex();
    const leader = this.bug === 'two-leaders' || this.d.id === 'n1';
    return {
      role: leader ? 'leader' : 'follower',
      term: 1,
      commitIndex: applied,
      appliedIndex: applied,
      leaderId: 'n1',
    };
  }

  propose(_kind: 'command' | 'config', data: string): Promise<ApplyOutcome> {
    return new Promise((resolve, reject) => {
      this.d.defer(() => {
        if (!this.running) return reject(new Error('stopped'));
        if (this.bug === 'lose-ack' && ++this.oracle.proposals % 20 === 0) {
          const value = (JSON.parse(data) as { value: string }).value;
          return resolve({ index: 0, term: 1, result: { ok: true, value, position: 0, duplicate: false } });
        }
        const entry: Entry = { index: this.oracle.entries.length + 1, term: 1, kind: 'command', data };
        this.oracle.entries.push(entry);
        for (const h of this.oracle.hosts) {
          if (h === this) {
            h.catchUp((outs) => {
              const mine = outs.find((o) => o.index === entry.index);
              if (mine) resolve(mine);
            });
          } else if (this.bug === 'stale-read') h.d.clock.setTimeout(() => h.catchUp(), 30);
          else h.catchUp();
        }
      });
    });
  }

  /** Everything this host knows is applied once its next flush completes (flushes finish in order). */
  readIndex(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.d.defer(() => {
        if (!this.running) return reject(new Error('stopped'));
        if (this.bug === 'stale-read') return resolve();
        this.catchUp(() => resolve());
      });
    });
  }

  /** Copy what the oracle has beyond this host's log; apply it once durable. */
  private catchUp(onApplied?: (outcomes: ApplyOutcome[]) => void): void {
    if (!this.running) return;
    const store = this.d.logStore;
    const from = store.lastIndex() + 1;
    const fresh = this.oracle.entries
      .slice(from - 1)
      .map((e) => (this.bug === 'diverge' && this.d.id !== 'n1' ? { ...e, data: `${e.data} ` } : e));
    if (fresh.length > 0) store.write({ entries: fresh });
    const upTo = store.lastIndex();
    store.flush(() => {
      if (!this.running) return;
      const applied = this.d.stateMachine.appliedIndex();
      const todo = upTo > applied ? store.entries(applied + 1, upTo, 100_000) : [];
      const outs = todo.length > 0 ? this.d.stateMachine.apply(todo) : [];
      onApplied?.(outs);
    });
  }
}

export function oracleFactory(bug: OracleBug = 'none'): ReplicaFactory {
  const oracle = new Oracle();
  return (deps) => new OracleHost(deps, oracle, bug);
}
