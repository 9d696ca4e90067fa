// The simulator's replicated state machine: named append-only lists. A command appends one value to
// one list; it carries the client's identity (client, seq) so a retried request applies once. The
// SimDatabase is the durable part: apply() commits a whole batch (and the applied index) at once, so
// a crash keeps exactly the batches applied before it.

import type { Entry } from '../../../machines/protocol.js';
import type { ApplyOutcome, StateMachine } from '../interfaces.js';

/** An append command as carried in Entry.data (JSON). */
export interface AppendCommand {
  op: 'append';
  key: string;
  value: string;
  client: string;
  seq: number;
}

export type AppendResult =
  | { ok: true; value: string; position: number; duplicate: boolean }
  | { ok: false; error: string };

export function encodeAppend(cmd: Omit<AppendCommand, 'op'>): string {
  return JSON.stringify({ op: 'append', key: cmd.key, value: cmd.value, client: cmd.client, seq: cmd.seq });
}

export class SimDatabase {
  applied = 0;
  lists = new Map<string, string[]>();
  /** Per client: the last seq applied and its result (clients have one request outstanding). */
  sessions = new Map<string, { seq: number; result: AppendResult }>();
}

export interface AppliedRecord {
  index: number;
  term: number;
  kind: Entry['kind'];
  data: string;
}

export class SimStateMachine implements StateMachine {
  constructor(
    readonly db: SimDatabase,
    /** Sees every applied batch (for the state-machine-safety check). */
    private readonly onApply?: (entries: readonly Entry[]) => void,
    private readonly onViolation?: (message: string) => void,
  ) {}

  appliedIndex(): number {
    return this.db.applied;
  }

  apply(entries: Entry[]): ApplyOutcome[] {
    const db = this.db;
    for (let i = 0; i < entries.length; i++) {
      if (entries[i]!.index !== db.applied + 1 + i) {
        const msg = `apply of index ${entries[i]!.index} where ${db.applied + 1 + i} was expected (skip or double apply)`;
        this.onViolation?.(msg);
        throw new Error(msg);
      }
    }
    const outcomes: ApplyOutcome[] = [];
    for (const e of entries) {
      outcomes.push({
        index: e.index,
        term: e.term,
        result: e.kind === 'command' ? this.applyCommand(e.data) : null,
      });
      db.applied = e.index;
    }
    this.onApply?.(entries);
    return outcomes;
  }

  /** The current value of list `key` (a copy). */
  read(key: string): string[] {
    return [...(this.db.lists.get(key) ?? [])];
  }

  private applyCommand(data: string): AppendResult {
    let cmd: AppendCommand;
    try {
      cmd = JSON.parse(data) as AppendCommand;
    } catch {
      return { ok: false, error: 'malformed command' };
    }
    if (cmd.op !== 'append' || typeof cmd.key !== 'string' || typeof cmd.value !== 'string') {
      return { ok: false, error: 'unknown command' };
    }
    const session = this.db.sessions.get(cmd.client);
    if (session && cmd.seq <= session.seq) {
      // A retry of a request already applied: answer as the first time, change nothing.
      if (cmd.seq === session.seq && session.result.ok) return { ...session.result, duplicate: true };
      if (cmd.seq === session.seq) return session.result;
      return { ok: false, error: 'stale request' };
    }
    let list = this.db.lists.get(cmd.key);
    if (!list) {
      list = [];
      this.db.lists.set(cmd.key, list);
    }
    list.push(cmd.value);
    const result: AppendResult = { ok: true, value: cmd.value, position: list.length - 1, duplicate: false };
    this.db.sessions.set(cmd.client, { seq: cmd.seq, result });
    return result;
  }
}
