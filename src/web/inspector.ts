// The /cluster inspector feed. The first viewer registers `observer` with the replica's actor system
// (RaftNode.setInspection, through the `hook` option) and the last one to leave removes it: while an
// observer is registered XState builds an inspection event for every event, microstep, action and
// snapshot of every actor of the replica (the chat actor's per-call work included), so with nobody
// watching there is no observer at all, which is what "costs nothing" means here. With a viewer connected
// it turns the root actor's @xstate.snapshot events into a short feed of transitions
// (`follower → preCandidate (xstate.after.electionTimeout)`) streamed over Server-Sent Events.
// A view also carries the log as term runs and the leader's match indexes (the log strip), and while a
// viewer is connected the transport's tap feeds a TrafficSampler whose frames go out as `traffic`
// events (messages in flight); with no viewer the tap is removed and the sampler forgotten.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InspectionEvent } from 'xstate';
import type { LogView } from '../../machines/protocol.js';
import { plainEvent } from '../diagrams/plain-names.js';
import type { TransportTap } from '../observability/pausable-transport.js';
import { TrafficSampler } from '../observability/traffic-sampler.js';
import type { ChartStates } from './charts.js';
import { type TermRun, termRuns } from './log-runs.js';
import { peerMatches } from './metrics.js';

/** What a card shows about one replica (also the JSON of /cluster/status). */
export interface ReplicaView {
  id: string;
  /**
   * The role the page shows: GetStatus's role, except that a replica in its pre-vote round is
   * `pre-candidate` (GetStatus reports it as `candidate`; the contract's roles stay as they are).
   */
  role: string;
  /** The machine's active state, dotted (`leader.active`). */
  state: string;
  term: number;
  leaderId: string | null;
  commitIndex: number;
  lastApplied: number;
  lastLogIndex: number;
  snapshotIndex: number;
  /** First index still in the log (snapshotIndex + 1). */
  firstIndex?: number;
  /** The log as term runs, oldest first (the newest 256 terms at most). */
  runs?: TermRun[];
  /** The leader's match index for each follower (leader only). */
  match?: Record<string, number>;
  /** Development faults in force here: peers whose links are cut, and ms left of a pause. */
  faults?: { cut: string[]; pausedMs: number };
  /** p99 event-loop delay over the last 10 s (ms): what delays the election timers. */
  loopLagP99Ms?: number;
  /** p99 of the last 1000 log fsyncs (ms). */
  fsyncP99Ms?: number;
  /** Active states of the replica, replication and chat machines (the chart dialog, src/web/charts.ts). */
  charts?: ChartStates;
}

export interface FeedEntry {
  seq: number;
  /** Unix ms. */
  at: number;
  from: string;
  to: string;
  cause: string;
  term: number;
  leaderId: string | null;
  commitIndex: number;
  appliedIndex: number;
  text: string;
}

/** `'follower'`, `{ leader: 'active' }` → `'leader.active'`. Parallel states join with `,`. */
export function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => {
        const inner = stateName(v);
        return inner === '' ? k : `${k}.${inner}`;
      })
      .join(',');
  }
  return '';
}

/**
 * The event that caused a transition, short. XState names delayed events
 * `xstate.after.<delay>.<state node id>`; the node id repeats what the feed says already.
 */
export function describeCause(type: string): string {
  const prefix = 'xstate.after.';
  if (type.startsWith(prefix)) return `${prefix}${type.slice(prefix.length).split('.')[0]}`;
  return type;
}

/**
 * One feed line: `candidate → leader (vote reply)`; without a state change, what changed. The cause is
 * in plain words (src/diagrams/plain-names.ts); `cause` itself keeps the event type.
 */
export function formatTransition(e: Omit<FeedEntry, 'text' | 'seq' | 'at'>, prev?: { term: number }): string {
  const cause = plainEvent(e.cause);
  if (e.from !== e.to) return `${e.from} → ${e.to} (${cause})`;
  const what: string[] = [];
  if (prev && prev.term !== e.term) what.push(`term ${e.term}`);
  what.push(`leader ${e.leaderId ?? 'unknown'}`);
  return `${e.to}: ${what.join(', ')} (${cause})`;
}

/** One Server-Sent Events frame. A data line may not hold a newline, so each line gets its own. */
export function sseFrame(event: string, data: unknown, id?: number): string {
  const body = JSON.stringify(data) ?? 'null';
  const lines = [`event: ${event}`];
  if (id !== undefined) lines.push(`id: ${id}`);
  for (const line of body.split('\n')) lines.push(`data: ${line}`);
  return `${lines.join('\n')}\n\n`;
}

interface SnapshotContext {
  term?: number;
  leaderId?: string | null;
  commitIndex?: number;
  appliedIndex?: number;
}

export interface InspectorOptions {
  /** The replica's current view (RaftNode.status() plus the actor's state). */
  view: () => ReplicaView;
  now?: () => number;
  /** Feed entries kept for a newly connected page. */
  capacity?: number;
  /** Viewers at once; more get 503 (each costs a timer and a socket). */
  maxViewers?: number;
  /** How often a connected page gets the replica's indexes (ms). */
  statusMs?: number;
  /**
   * Registers `observer` with the replica's actor system, or with null removes it: called as the first
   * viewer comes and the last goes (RaftNode.setInspection).
   */
  hook?: (observer: ((e: InspectionEvent) => void) | null) => void;
  /** Installs (or with null removes) the transport's tap: called as viewers come and go. */
  tapTraffic?: (tap: TransportTap | null) => void;
  /** How often a connected page gets a traffic frame (ms). */
  trafficMs?: number;
}

type Listener = (e: FeedEntry) => void;

export class ReplicaInspector {
  private readonly opts: InspectorOptions;
  private readonly now: () => number;
  private readonly capacity: number;
  private readonly listeners = new Set<Listener>();
  private readonly streams = new Set<ServerResponse>();
  private feed: FeedEntry[] = [];
  private seq = 0;
  private last: { state: string; term: number; leaderId: string | null } | null = null;
  private on = false;
  private readonly sampler = new TrafficSampler();
  private trafficTimer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: InspectorOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.capacity = opts.capacity ?? 200;
  }

  /** What `hook` registers while watched (also usable as RaftNode's `inspect` option). */
  readonly observer = (ev: InspectionEvent): void => {
    if (!this.on) return;
    if (ev.type !== '@xstate.snapshot') return;
    // Only the replica itself: its child (the leader's replication actor) has its own snapshots.
    if (ev.actorRef.sessionId !== ev.rootId) return;
    const snap = ev.snapshot as { value?: unknown; context?: SnapshotContext };
    this.observe(stateName(snap.value), snap.context ?? {}, ev.event.type);
  };

  get watching(): boolean {
    return this.on;
  }

  get viewers(): number {
    return this.streams.size;
  }

  recent(): FeedEntry[] {
    return [...this.feed];
  }

  /** Listen to feed entries; the first listener switches the observer on, the last one off. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    this.setWatching(true);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.setWatching(false);
    };
  }

  /** Feed one replica snapshot (the observer's work; public for tests without an actor). */
  observe(state: string, ctx: SnapshotContext, eventType: string): void {
    const term = ctx.term ?? 0;
    const leaderId = ctx.leaderId ?? null;
    const prev = this.last;
    this.last = { state, term, leaderId };
    if (!prev || (prev.state === state && prev.term === term && prev.leaderId === leaderId)) return;
    const base = {
      from: prev.state,
      to: state,
      cause: describeCause(eventType),
      term,
      leaderId,
      // What the replica reports (GetStatus, the cards): the durable commit, not the machine's
      // in-memory one, which may run ahead of it until the next fsync.
      commitIndex: Math.min(ctx.commitIndex ?? 0, this.opts.view().commitIndex),
      appliedIndex: ctx.appliedIndex ?? 0,
    };
    this.push({ ...base, seq: ++this.seq, at: this.now(), text: formatTransition(base, prev) });
  }

  /** GET /cluster/events: a `snapshot` frame (view and recent feed), then `transition` and `status`. */
  serveEvents(req: IncomingMessage, res: ServerResponse): void {
    if (this.streams.size >= (this.opts.maxViewers ?? 32)) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
      res.end('too many viewers\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      // Each card of the page reads another replica's feed: a different origin.
      'access-control-allow-origin': '*',
    });
    res.flushHeaders();
    this.streams.add(res);
    const unsubscribe = this.subscribe((e) => {
      res.write(sseFrame('transition', e, e.seq));
      // A transition changes the card at once, not at the next status tick.
      res.write(sseFrame('status', this.opts.view()));
    });
    res.write('retry: 1000\n\n');
    res.write(sseFrame('snapshot', { view: this.opts.view(), feed: this.recent() }));
    // Commit and applied indexes move without transitions; the ticker doubles as the keepalive.
    const ticker = setInterval(
      () => res.write(sseFrame('status', this.opts.view())),
      this.opts.statusMs ?? 500,
    );
    const done = () => {
      clearInterval(ticker);
      unsubscribe();
      this.streams.delete(res);
    };
    req.on('close', done);
    res.on('close', done);
  }

  /** Ends every event stream (server shutdown). */
  closeStreams(): void {
    clearInterval(this.trafficTimer);
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  private setWatching(on: boolean): void {
    if (on === this.on) return;
    this.on = on;
    this.opts.hook?.(on ? this.observer : null);
    this.watchTraffic(on);
    if (!on) return;
    // Pick up where the replica is now; the gap while nobody watched is marked, not guessed.
    const v = this.opts.view();
    this.last = { state: v.state, term: v.term, leaderId: v.leaderId };
    if (this.feed.length > 0) {
      const base = {
        from: v.state,
        to: v.state,
        cause: 'viewer connected',
        term: v.term,
        leaderId: v.leaderId,
        commitIndex: v.commitIndex,
        appliedIndex: v.lastApplied,
      };
      this.push({
        ...base,
        seq: ++this.seq,
        at: this.now(),
        text: `watching again: ${v.state}, term ${v.term}`,
      });
    }
  }

  /** The tap and the ticker that sends its frames, only while watched. */
  private watchTraffic(on: boolean): void {
    const tap = this.opts.tapTraffic;
    if (!tap) return;
    clearInterval(this.trafficTimer);
    this.trafficTimer = undefined;
    this.sampler.reset();
    if (!on) {
      tap(null);
      return;
    }
    tap((m, dropped) => this.sampler.record(this.now(), m, dropped));
    this.trafficTimer = setInterval(() => {
      const frame = this.sampler.flush(this.now());
      const text = sseFrame('traffic', frame);
      for (const res of this.streams) res.write(text);
    }, this.opts.trafficMs ?? 250);
    this.trafficTimer.unref?.();
  }

  private push(e: FeedEntry): void {
    this.feed.push(e);
    if (this.feed.length > this.capacity) this.feed.splice(0, this.feed.length - this.capacity);
    for (const l of this.listeners) l(e);
  }
}

/** The subset of RaftNode the inspector reads. */
export interface InspectableNode {
  status(): {
    id: string;
    role: string;
    term: number;
    leaderId: string | null;
    commitIndex: number;
    lastApplied: number;
    lastLogIndex: number;
    snapshotIndex: number;
  };
  readonly actor: { getSnapshot(): { value: unknown; children?: Record<string, unknown> } };
}

/** GetStatus's role, with the pre-vote round named (the machine state says it; the role does not). */
export function inspectorRole(role: string, state: string): string {
  return state === 'preCandidate' || state.startsWith('preCandidate.') ? 'pre-candidate' : role;
}

/**
 * The view of a RaftNode (before start, the actor is missing: state is then `stopped`). With the log,
 * it carries the log strip's term runs and, on a leader, the followers' match indexes.
 */
export function viewOfNode(
  node: InspectableNode,
  log?: Pick<LogView, 'firstIndex' | 'lastIndex' | 'termAt'>,
): ReplicaView {
  const s = node.status();
  let state = 'stopped';
  try {
    state = stateName(node.actor.getSnapshot().value);
  } catch {
    // Not started yet.
  }
  const extra: Partial<ReplicaView> = {};
  if (log) {
    extra.firstIndex = log.firstIndex();
    extra.runs = termRuns(log);
  }
  if (s.role === 'leader') {
    const m = peerMatches(node);
    if (m.size > 0) extra.match = Object.fromEntries(m);
  }
  return {
    id: s.id,
    role: inspectorRole(s.role, state),
    state,
    term: s.term,
    leaderId: s.leaderId,
    commitIndex: s.commitIndex,
    lastApplied: s.lastApplied,
    lastLogIndex: s.lastLogIndex,
    snapshotIndex: s.snapshotIndex,
    ...extra,
  };
}
