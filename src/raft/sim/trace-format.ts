// The simulator's trace file (`make sim` writes one per failing seed; the /cluster/replay page plays it):
// JSON Lines. The first line is a header naming the format and its version, every other line one
// record at a simulated time (ms), in the order things happened, and the last line an `end` record,
// so a file cut short (a killed run, a partial copy) is refused instead of replayed as if complete.
// This module imports nothing: the build copies its compiled form next to the web page's files, and the
// replay page (src/web/static/replay-trace.js) reads traces with this same parseTrace.

export const TRACE_FORMAT = 'quorum-chat-sim-trace';
export const TRACE_VERSION = 1;

export interface TraceHeader {
  format: typeof TRACE_FORMAT;
  version: number;
  seed: number;
  /** Replica ids in the run (n1..n5). */
  nodes: string[];
  /** What produced the run (profile, planted bug...), for the reader; not needed to replay. */
  run: Record<string, string | number | boolean>;
}

/** follower | preCandidate | candidate | leader | learner, or down (crashed, not restarted yet). */
export type TraceRole = 'follower' | 'preCandidate' | 'candidate' | 'leader' | 'learner' | 'down';

/** A replica's state, written whenever any of it changes. */
export interface StatusRecord {
  k: 'status';
  t: number;
  node: string;
  role: TraceRole;
  /** The machine's active state, dotted (`leader.active`); '' when down. */
  state: string;
  term: number;
  leader: string | null;
  commit: number;
  applied: number;
  last: number;
  /** Index of the snapshot the log starts after (0: none). */
  snap: number;
  /** The log after the snapshot as runs of one term: [first index, term], ascending, up to `last`. */
  runs: [number, number][];
  /** A leader's match index per follower, as it sees them. */
  match?: Record<string, number>;
}

export type MessageEvent = 'send' | 'deliver' | 'drop' | 'duplicate';

/** A Raft message sent, delivered, dropped (partition or loss) or duplicated; `id` joins them. */
export interface MessageRecord {
  k: MessageEvent;
  t: number;
  id: number;
  from: string;
  to: string;
  /** RaftMessage type (AppendEntries, RequestVote...). */
  type: string;
  term: number;
  /** AppendEntries: entries carried (0: a heartbeat). */
  entries?: number;
  /** RequestVote / its response: a pre-vote. */
  pre?: boolean;
  /** Why a drop happened (partition, loss). */
  why?: string;
  /** The message in one line (on send only). */
  text?: string;
}

/**
 * A fault or a run action: crash, restart, partition, isolate, cut, heal, links, transfer, config,
 * install, snapshot, fault (a scheduled action's label). `cuts` is the set of cut links after it
 * ("n1>n2": nothing from n1 reaches n2).
 */
export interface FaultRecord {
  k: 'fault';
  t: number;
  what: string;
  node?: string;
  detail?: string;
  cuts?: string[];
}

/** A machine transition of one replica: `from` → `to` on `event`. */
export interface TransitionRecord {
  k: 'transition';
  t: number;
  node: string;
  from: string;
  to: string;
  event: string;
  term: number;
}

/** The invariant (or check) that failed, at the moment it failed. */
export interface FailureRecord {
  k: 'failure';
  t: number;
  /** The checker's sentence (`t=...ms: n1 granted its vote in term 3 to both n2 and n4`). */
  message: string;
}

export interface EndRecord {
  k: 'end';
  t: number;
  ok: boolean;
  steps: number;
  /** Records written before this one (the header not counted). */
  records: number;
}

export type TraceEvent = StatusRecord | MessageRecord | FaultRecord | TransitionRecord | FailureRecord;
export type TraceLine = TraceEvent | EndRecord;

export interface ParsedTrace {
  header: TraceHeader;
  events: TraceEvent[];
  end: EndRecord;
  /** The first failure, if the run failed. */
  failure?: FailureRecord;
}

export class TraceFormatError extends Error {
  override name = 'TraceFormatError';
}

export function headerLine(h: Omit<TraceHeader, 'format' | 'version'>): string {
  const header: TraceHeader = { format: TRACE_FORMAT, version: TRACE_VERSION, ...h };
  return JSON.stringify(header);
}

export function recordLine(r: TraceLine): string {
  return JSON.stringify(r);
}

const KINDS = new Set([
  'status',
  'send',
  'deliver',
  'drop',
  'duplicate',
  'fault',
  'transition',
  'failure',
  'end',
]);

/** Reads a whole trace file; throws TraceFormatError with one sentence naming what is wrong. */
export function parseTrace(text: string): ParsedTrace {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0 || lines[0]!.trim() === '') throw new TraceFormatError('The trace file is empty.');
  let header: TraceHeader;
  try {
    header = JSON.parse(lines[0]!);
  } catch {
    throw new TraceFormatError('This is not a simulator trace: its first line is not JSON.');
  }
  if (header?.format !== TRACE_FORMAT)
    throw new TraceFormatError(`This is not a simulator trace: its header does not name ${TRACE_FORMAT}.`);
  if (header.version !== TRACE_VERSION)
    throw new TraceFormatError(
      `This trace is version ${header.version}; this build reads version ${TRACE_VERSION} only (record it again).`,
    );
  const events: TraceEvent[] = [];
  let end: EndRecord | undefined;
  let failure: FailureRecord | undefined;
  for (let i = 1; i < lines.length; i++) {
    if (end) throw new TraceFormatError(`Line ${i + 1} comes after the end record: the file is garbled.`);
    let r: TraceLine;
    try {
      r = JSON.parse(lines[i]!);
    } catch {
      throw new TraceFormatError(
        i === lines.length - 1
          ? `The trace is truncated: its last line (${i + 1}) is cut short.`
          : `Line ${i + 1} of the trace is not JSON: the file is garbled.`,
      );
    }
    if (!r || typeof r !== 'object' || !KINDS.has(r.k) || typeof r.t !== 'number')
      throw new TraceFormatError(`Line ${i + 1} of the trace is not a trace record: the file is garbled.`);
    if (r.k === 'end') end = r;
    else {
      if (r.k === 'failure' && !failure) failure = r;
      events.push(r);
    }
  }
  if (!end)
    throw new TraceFormatError(
      `The trace is truncated: it has no end record after ${events.length} records (was the run cut short?).`,
    );
  if (end.records !== events.length)
    throw new TraceFormatError(
      `The trace is truncated: its end record counts ${end.records} records, the file holds ${events.length}.`,
    );
  return failure ? { header, events, end, failure } : { header, events, end };
}
