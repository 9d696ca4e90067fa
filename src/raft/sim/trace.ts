// The simulator's trace: a ring of the last N records, formatted only when someone reads it (a
// failure, or verbose replay), so tracing costs little on the many seeds that pass.

import type { RaftMessage } from '../../../machines/protocol.js';

export interface TraceRecord {
  t: number;
  what: string;
  node?: string;
  message?: RaftMessage;
  detail?: string;
}

export class Trace {
  private ring: (TraceRecord | undefined)[];
  private next = 0;
  total = 0;
  /** Gets every record as it is added (the trace-file recorder, trace-recorder.ts); unset: free. */
  tap: ((r: TraceRecord) => void) | undefined;

  constructor(
    size: number,
    /** Called with every formatted record as it happens (verbose replay). */
    private readonly live?: (line: string) => void,
  ) {
    this.ring = new Array(Math.max(1, size));
  }

  add(r: TraceRecord): void {
    this.ring[this.next] = r;
    this.next = (this.next + 1) % this.ring.length;
    this.total++;
    if (this.tap) this.tap(r);
    if (this.live) this.live(formatRecord(r));
  }

  /** The last records, oldest first, formatted. */
  lines(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.ring.length; i++) {
      const r = this.ring[(this.next + i) % this.ring.length];
      if (r) out.push(formatRecord(r));
    }
    return out;
  }
}

export function formatRecord(r: TraceRecord): string {
  const t = r.t.toFixed(3).padStart(10);
  const parts = [`${t}ms`, r.what.padEnd(9)];
  if (r.node) parts.push(r.node);
  if (r.message) parts.push(formatMessage(r.message));
  if (r.detail) parts.push(r.detail);
  return parts.join(' ');
}

export function formatMessage(m: RaftMessage): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'RequestVote':
      return `${head} last=${m.lastLogIndex}/t${m.lastLogTerm}${m.preVote ? ' pre' : ''}${m.transfer ? ' transfer' : ''}`;
    case 'RequestVoteResponse':
      return `${head} ${m.granted ? 'granted' : 'rejected'}${m.preVote ? ' pre' : ''}`;
    case 'AppendEntries': {
      const range =
        m.entries.length === 0
          ? 'heartbeat'
          : `entries ${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index} [${m.entries.map((e) => `t${e.term}${e.kind === 'command' ? '' : e.kind[0]}`).join(',')}]`;
      return `${head} prev=${m.prevLogIndex}/t${m.prevLogTerm} ${range} commit=${m.leaderCommit}${m.readRound ? ` read=${m.readRound}` : ''}`;
    }
    case 'AppendEntriesResponse':
      return `${head} ${m.success ? `ok match=${m.matchIndex}` : `reject conflict=${m.conflictIndex}/t${m.conflictTerm}`}${m.readRound ? ` read=${m.readRound}` : ''}`;
    case 'InstallSnapshot':
      return `${head} snap=${m.lastIncludedIndex}/t${m.lastIncludedTerm} off=${m.offset}${m.done ? ' done' : ''}`;
    case 'InstallSnapshotResponse':
      return `${head} snap=${m.lastIncludedIndex} next=${m.nextOffset}${m.installed ? ' installed' : ''}`;
    case 'TimeoutNow':
      return head;
    case 'ReadIndexRequest':
      return `${head} reads=${m.requestIds.join(',')}`;
    case 'ReadIndexResponse':
      return `${head} reads=${m.requestIds.join(',')} ${m.ok ? `index=${m.index}` : 'refused'}`;
  }
}
