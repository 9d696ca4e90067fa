// Records one simulation run as a trace file (trace-format.ts) for the /cluster/replay page. It hooks
// the run only through what the simulation already exposes (the network observer, the trace ring's
// tap, the event queue's step hook, the replica factory's `inspect`), so a run without a recorder
// pays nothing and the simulation's loop knows nothing of it. Recording reads state and draws no
// random numbers: a recorded run is the same run as an unrecorded one with that seed.

import type { InspectionEvent } from 'xstate';
import type { RaftMessage } from '../../../machines/protocol.js';
import type { ReplicaFactory } from './replica-host.js';
import type { SimResult, Simulation } from './simulation.js';
import {
  type FaultRecord,
  type MessageEvent,
  type StatusRecord,
  type TraceLine,
  type TraceRole,
  headerLine,
  recordLine,
} from './trace-format.js';
import { type TraceRecord, formatMessage } from './trace.js';

/** Trace-ring records that are faults or run actions (timers, messages and role lines are not). */
const FAULTS = new Set([
  'crash',
  'restart',
  'partition',
  'isolate',
  'cut',
  'heal',
  'links',
  'transfer',
  'config',
  'install',
  'snapshot',
  'fault',
]);
/** Faults after which the set of cut links may differ. */
const CUTTING = new Set(['partition', 'isolate', 'cut', 'heal']);

interface NodeTrack {
  /** The machine's state, from the inspector (preCandidate is only visible there). */
  state: string;
  /** A leader's match index per follower, from its replication actor's snapshots. */
  match?: Record<string, number>;
  status?: StatusRecord;
}

export class TraceRecorder {
  private sim: Simulation | undefined;
  private nodes = new Map<string, NodeTrack>();
  /** Message ids sent or duplicated and not yet delivered or dropped, by the message's text. */
  private pending = new Map<string, number[]>();
  private nextId = 1;
  private records = 0;

  /** `sink` gets the file line by line (no newline); `run` describes the run in the header. */
  constructor(
    private readonly sink: (line: string) => void,
    private readonly run: Record<string, string | number | boolean> = {},
  ) {}

  /** The factory with the machine's inspection wired to this recorder (transitions, preCandidate). */
  wrapFactory(factory: ReplicaFactory): ReplicaFactory {
    return (deps) => factory({ ...deps, inspect: (e) => this.inspected(deps.id, e) });
  }

  /** Call once, right after constructing the simulation and before run(); `run` adds to the header's. */
  attach(sim: Simulation, run: Record<string, string | number | boolean> = {}): void {
    this.sim = sim;
    this.sink(headerLine({ seed: sim.seed, nodes: [...sim.ids], run: { ...this.run, ...run } }));
    for (const id of sim.ids) this.nodes.set(id, { state: '' });
    const network = sim.network.observer;
    sim.network.observer = (what, m, why) => {
      this.message(what, m, why);
      network?.(what, m, why);
    };
    sim.trace.tap = (r) => this.traced(r);
    sim.queue.onStep = () => this.snapshot();
  }

  /** Call with the run's result: writes the end record. */
  finish(result: SimResult): void {
    this.snapshot();
    this.sink(
      recordLine({
        k: 'end',
        t: result.simulatedMs,
        ok: result.ok,
        steps: result.steps,
        records: this.records,
      }),
    );
  }

  private write(r: Exclude<TraceLine, { k: 'end' }>): void {
    this.records++;
    this.sink(recordLine(r));
  }

  private now(): number {
    return round(this.sim?.now() ?? 0);
  }

  /**
   * The network copies a message when it schedules it, so a delivery is not the object that was sent:
   * sends and deliveries are joined by the message's one-line text, oldest first (two messages with
   * the same text say the same thing, so which is which does not matter).
   */
  private message(what: MessageEvent, m: RaftMessage, why?: string): void {
    const text = formatMessage(m);
    const queue = this.pending.get(text);
    let id: number;
    if (what === 'send' || what === 'duplicate') {
      id = this.nextId++;
      if (queue) queue.push(id);
      else this.pending.set(text, [id]);
    } else {
      id = queue?.shift() ?? this.nextId++;
      if (queue?.length === 0) this.pending.delete(text);
    }
    const r: Extract<TraceLine, { k: MessageEvent }> = {
      k: what,
      t: this.now(),
      id,
      from: m.from,
      to: m.to,
      type: m.type,
      term: m.term,
    };
    if (m.type === 'AppendEntries') r.entries = m.entries.length;
    if (m.type === 'RequestVote' || m.type === 'RequestVoteResponse') r.pre = m.preVote;
    if (why) r.why = why;
    if (what === 'send') r.text = text;
    this.write(r);
  }

  private traced(r: TraceRecord): void {
    if (r.what === 'FAILURE') {
      // A status change in the same step comes first: the failing state is on screen at its moment.
      this.snapshot();
      this.write({ k: 'failure', t: round(r.t), message: r.detail ?? 'failed' });
      return;
    }
    if (!FAULTS.has(r.what)) return;
    const f: FaultRecord = { k: 'fault', t: round(r.t), what: r.what };
    if (r.node) f.node = r.node;
    if (r.detail) f.detail = r.detail;
    if (CUTTING.has(r.what) && this.sim) f.cuts = this.sim.network.describeCuts();
    this.write(f);
  }

  private inspected(id: string, e: InspectionEvent): void {
    if (e.type !== '@xstate.snapshot') return;
    const track = this.nodes.get(id);
    if (!track) return;
    if (e.actorRef.sessionId !== e.rootId) {
      // The leader's replication actor: its peers' match indexes (the log strip's match marks).
      const peers = (e.snapshot as { context?: { peers?: Record<string, { match?: unknown }> } }).context
        ?.peers;
      if (peers) {
        const match: Record<string, number> = {};
        for (const [peer, p] of Object.entries(peers))
          if (typeof p?.match === 'number') match[peer] = p.match;
        track.match = match;
      }
      return;
    }
    const snap = e.snapshot as { value?: unknown; context?: { term?: number } };
    const state = stateName(snap.value);
    if (state === track.state) return;
    this.write({
      k: 'transition',
      t: this.now(),
      node: id,
      from: track.state || 'start',
      to: state,
      event: shortEvent(e.event.type),
      term: snap.context?.term ?? 0,
    });
    track.state = state;
  }

  /** After every simulated step: a status record for each replica whose state changed. */
  private snapshot(): void {
    const sim = this.sim;
    if (!sim) return;
    for (const id of sim.ids) {
      const track = this.nodes.get(id)!;
      const next = this.status(sim, id, track);
      if (track.status && sameStatus(track.status, next)) continue;
      track.status = next;
      this.write(next);
    }
  }

  private status(sim: Simulation, id: string, track: NodeTrack): StatusRecord {
    const t = this.now();
    const st = sim.isUp(id) ? sim.status(id) : undefined;
    const store = sim.replica(id).store;
    if (!st || !store) {
      track.state = '';
      const prev = track.status;
      return {
        k: 'status',
        t,
        node: id,
        role: 'down',
        state: '',
        term: prev?.term ?? 0,
        leader: null,
        commit: prev?.commit ?? 0,
        applied: prev?.applied ?? 0,
        last: prev?.last ?? 0,
        snap: prev?.snap ?? 0,
        runs: prev?.runs ?? [],
      };
    }
    const top = track.state.split('.')[0]!;
    const role: TraceRole = top === 'preCandidate' ? 'preCandidate' : st.role;
    const snap = store.snapshot().index;
    const last = store.lastIndex();
    const r: StatusRecord = {
      k: 'status',
      t,
      node: id,
      role,
      state: track.state,
      term: st.term,
      leader: st.leaderId,
      commit: st.commitIndex,
      applied: st.appliedIndex,
      last,
      snap,
      runs: termRuns(track.status, snap, last, (i) => store.termAt(i)),
    };
    if (role === 'leader' && track.match) r.match = track.match;
    return r;
  }
}

/**
 * The log after `snap` as runs of one term, reusing the previous record's runs for the prefix both
 * logs share: by Raft's log matching, once an index has the same term in both, everything before it
 * is the same, so only the new tail is read (the log is not rescanned on every append).
 */
export function termRuns(
  prev: { runs: [number, number][]; last: number } | undefined,
  snap: number,
  last: number,
  termAt: (i: number) => number | undefined,
): [number, number][] {
  let shared = snap;
  let runs: [number, number][] = [];
  if (prev && prev.runs.length > 0) {
    const before = (i: number) => {
      let term: number | undefined;
      for (const [from, t] of prev.runs) {
        if (from > i) break;
        term = t;
      }
      return term;
    };
    // Newest common index first: usually the previous last index itself.
    for (let i = Math.min(prev.last, last); i > snap; i--) {
      if (termAt(i) === before(i)) {
        shared = i;
        break;
      }
      // A long conflicting suffix is rare; bound the walk and rescan instead.
      if (Math.min(prev.last, last) - i > 64) break;
    }
    if (shared > snap) {
      runs = prev.runs.filter(([from]) => from <= shared);
      // Runs wholly behind the snapshot go; the first one left starts right after it.
      while (runs.length > 1 && runs[1]![0] <= snap + 1) runs.shift();
      runs = runs.map(([f, t]) => [Math.max(f, snap + 1), t]);
    }
  }
  for (let i = shared + 1; i <= last; i++) {
    const term = termAt(i);
    if (term === undefined) continue;
    if (runs.length === 0 || runs[runs.length - 1]![1] !== term) runs.push([i, term]);
  }
  return runs;
}

function sameStatus(a: StatusRecord, b: StatusRecord): boolean {
  return (
    a.role === b.role &&
    a.state === b.state &&
    a.term === b.term &&
    a.leader === b.leader &&
    a.commit === b.commit &&
    a.applied === b.applied &&
    a.last === b.last &&
    a.snap === b.snap &&
    JSON.stringify(a.match) === JSON.stringify(b.match) &&
    a.runs.length === b.runs.length &&
    a.runs.every(([f, t], i) => b.runs[i]![0] === f && b.runs[i]![1] === t)
  );
}

/** `'follower'`, `{ leader: 'active' }` → `'leader.active'`. */
function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object')
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => (stateName(v) === '' ? k : `${k}.${stateName(v)}`))
      .join(',');
  return '';
}

/** XState's delayed events are `xstate.after.<delay>.<state id>`: the state id repeats the transition. */
function shortEvent(type: string): string {
  return type.startsWith('xstate.after.') ? type.split('.').slice(0, 3).join('.') : type;
}

/** Simulated times to the microsecond: shorter lines, same order. */
function round(t: number): number {
  return Math.round(t * 1000) / 1000;
}
