// The simulator's replicated state machine: named append-only lists. A command appends one value to
// one list; it carries the client's identity (client, seq) so a retried request applies once. The
// SimDatabase models the chat database with a lazy applied index (src/chat/store.ts): apply() commits
// a whole batch (and the applied index) at once but pays no fsync, so the batch becomes durable only
// with the node's next log fsync; a crash rolls the state back to the last durable one, and the node
// re-applies the lost tail from its durable log.

import type { Entry, SnapshotMeta } from '../../../machines/protocol.js';
import type { ApplyOutcome, SnapshotPayload, StateMachine } from '../interfaces.js';

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
  /** The durable state (encoded) while applies not yet fsynced exist; undefined: all is durable. */
  private durable: string | undefined;
  /** The state last staged for an fsync (encoded), and whether an apply changed it since. */
  private staged: string | undefined;
  private dirty = false;
  private stages = 0;
  /** Bumped by a crash or a restore: an fsync staged before must not make its state durable after. */
  private epoch = 0;

  /** An apply is about to commit without an fsync: keep the durable state it may lose. */
  touched(): void {
    if (this.durable === undefined) {
      this.durable = encodeDatabase(this);
      this.staged = undefined;
    }
    this.dirty = true;
  }

  /** A write that is durable at once (a snapshot restore): it is the durable state now. */
  synced(): void {
    this.epoch++;
    this.durable = undefined;
    this.staged = undefined;
    this.dirty = false;
  }

  /**
   * An fsync of the node's file is issued: it will make the state as it is now durable. Returns what
   * to call when that fsync completes.
   */
  stage(): () => void {
    if (this.durable === undefined) return () => undefined;
    if (this.dirty || this.staged === undefined) this.staged = encodeDatabase(this);
    this.dirty = false;
    const text = this.staged;
    const epoch = this.epoch;
    const seq = ++this.stages;
    return () => {
      if (this.epoch !== epoch) return;
      if (seq === this.stages && !this.dirty) {
        this.durable = undefined;
        this.staged = undefined;
      } else this.durable = text;
    };
  }

  /** A crash: every apply not made durable by an fsync is lost. Returns how many entries were. */
  crash(): number {
    const durable = this.durable;
    const before = this.applied;
    this.synced();
    if (durable === undefined) return 0;
    decodeDatabaseInto(this, durable);
    return before - this.applied;
  }
}

/** The whole durable state as one canonical string (keys sorted): the snapshot's content. */
export function encodeDatabase(db: SimDatabase): string {
  const byKey = <V>(m: Map<string, V>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({ applied: db.applied, lists: byKey(db.lists), sessions: byKey(db.sessions) });
}

/** Replace `db`'s state with an encoded one, in place (the slot keeps the same durable object). */
export function decodeDatabaseInto(db: SimDatabase, text: string): void {
  const s = JSON.parse(text) as {
    applied: number;
    lists: [string, string[]][];
    sessions: [string, { seq: number; result: AppendResult }][];
  };
  db.applied = s.applied;
  db.lists = new Map(s.lists);
  db.sessions = new Map(s.sessions);
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
    /** Sees every restore (the simulator checks the restored state against the one taken there). */
    private readonly onRestore?: (meta: SnapshotMeta, text: string) => void,
  ) {}

  /**
   * Replace the state with a snapshot's bytes (an encoded database); the SimDatabase is durable, so
   * this is the one transaction that also moves the applied index to meta.index.
   */
  restore(payload: SnapshotPayload): void {
    const { meta } = payload;
    const text = new TextDecoder().decode(payload.read(0, payload.byteLength));
    let restored: SimDatabase;
    try {
      restored = new SimDatabase();
      decodeDatabaseInto(restored, text);
    } catch {
      const msg = `snapshot at ${meta.index} is not an encoded database`;
      this.onViolation?.(msg);
      throw new Error(msg);
    }
    if (restored.applied !== meta.index) {
      const msg = `snapshot at ${meta.index} holds a state applied through ${restored.applied}`;
      this.onViolation?.(msg);
      throw new Error(msg);
    }
    decodeDatabaseInto(this.db, text);
    this.db.synced();
    // The state as restored (not the bytes received): the check compares what the node now holds.
    this.onRestore?.(meta, encodeDatabase(this.db));
  }

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
    if (entries.length > 0) db.touched();
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
