// A bounded model of one replica in a 3-voter cluster (n1 is the replica under test; n2 and n3 are its
// environment), for @xstate/graph path enumeration and replay on the real actor.
//
// The replica machine invokes an actor and uses `after`, which @xstate/graph's createTestModel refuses,
// so we traverse our own small ActorLogic instead: its snapshot is the real replica snapshot plus the
// environment (this replica's log as the host holds it, the peers' logs, persist/durable counters).
// Its events are ABSTRACT ("RequestVote(higher term) from n2"); each is turned into a concrete protocol
// message relative to the current context, so the same abstract path replays on the real actor.
// Timers are abstract events too: in the graph we inject the delayed event XState would raise
// (`xstate.after.<delay>.<state id>`); on replay we advance the SimulatedClock until the actor itself
// raises it. The abstract state (serializeState) keeps only what the protocol branches on, so the
// graph is finite although terms and logs grow without bound.

import {
  type ActorLogic,
  type AnyMachineSnapshot,
  type AnyStateNode,
  type InspectionEvent,
  type Snapshot,
  createActor,
  getMicrosteps,
  initialTransition,
} from 'xstate';
import type {
  AppendEntries,
  ClusterConfig,
  Effect,
  Entry,
  LogView,
  NodeId,
  RaftMessage,
  ReplicaInput,
  SnapshotMeta,
  Timing,
} from '../../machines/protocol.js';
import { replicaMachine } from '../../machines/replica/replica.machine.js';
import { isUpToDate, quorum } from '../../machines/replica/rules.js';
import type { ReplicaContext, ReplicaMachineEvent } from '../../machines/replica/types.js';
import type { LogWrite } from '../../src/raft/interfaces.js';
import { ReadyExecutor } from '../../src/raft/ready-executor.js';
import { SteppingClock } from './stepping-clock.js';

export const ME = 'n1';
export const PEERS = ['n2', 'n3'] as const;
export type PeerId = (typeof PEERS)[number];
export const TIMING: Timing = { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 };
/** Seed of the replica's election-timeout PRNG: the model is deterministic. */
export const SEED = 20240601;

function configWith(meVoter: boolean): ClusterConfig {
  return {
    members: [
      { id: ME, address: `${ME}:0`, voter: meVoter },
      ...PEERS.map((id) => ({ id, address: `${id}:0`, voter: true })),
    ],
  };
}
export const CONFIG = configWith(true);
const SNAPSHOT: SnapshotMeta = { index: 0, term: 0, config: CONFIG };

/** A LogView over an array the host replaces (never mutates) when it carries out a `persist`. */
export class ModelLog implements LogView {
  list: readonly Entry[] = [];
  lastIndex(): number {
    return this.list.length;
  }
  termAt(index: number): number | undefined {
    if (index === 0) return 0;
    return this.list[index - 1]?.term;
  }
  entries(from: number, to: number, maxEntries: number): Entry[] {
    if (from < 1) return [];
    return this.list.slice(from - 1, Math.min(to, from + maxEntries - 1));
  }
  snapshot(): SnapshotMeta {
    return SNAPSHOT;
  }
  firstIndex(): number {
    return 1;
  }
}

/** The environment of the replica: everything outside the machine that the model tracks. */
export interface Env {
  /** This replica's log as written by the host (durable or not). */
  log: readonly Entry[];
  /** persist effects carried out, and how many of them were reported durable. */
  persistSeq: number;
  durableSeq: number;
  peers: Record<PeerId, readonly Entry[]>;
}

export const INITIAL_ENV: Env = { log: [], persistSeq: 0, durableSeq: 0, peers: { n2: [], n3: [] } };

export function replicaInput(log: LogView): ReplicaInput {
  return {
    id: ME,
    hardState: { term: 0, votedFor: null },
    config: CONFIG,
    appliedIndex: 0,
    log,
    timing: TIMING,
    seed: SEED,
  };
}

/** The host's side of the effects that matter to the model: persist writes the log (at once). */
export function applyEffects(env: Env, effects: readonly Effect[]): Env {
  let next = env;
  for (const e of effects) {
    if (e.type !== 'persist') continue;
    let log = next.log;
    if (e.truncateFrom !== undefined) log = log.slice(0, e.truncateFrom - 1);
    if (e.entries && e.entries.length > 0) log = [...log, ...e.entries];
    next = { ...next, log, persistSeq: next.persistSeq + 1 };
  }
  return next;
}

// ---------------------------------------------------------------------------------------------------
// Abstract events.

export const EVENT_KINDS = [
  'electionTimeout',
  'leaseTimeout',
  'transferTimeout',
  'checkQuorumFails',
  'persisted',
  'PreVote',
  'RequestVote(higher term)',
  'RequestVote(current term)',
  'RequestVote(higher term, transfer)',
  'VoteGranted',
  'VoteRejected',
  'AppendEntries(current term)',
  'AppendEntries(higher term)',
  'AppendEntriesResponse(success)',
  'TimeoutNow',
  'propose',
  'transferLeadership',
  'configDemotesMe',
  'configPromotesMe',
  'peerAdvances',
  'readIndex',
  'ReadIndexRequest(current term)',
  'ReadIndexRequest(higher term)',
  'ReadIndexResponse(current term)',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export interface ModelEvent {
  type: EventKind;
  /** The peer the message comes from (or whose log changes). */
  peer?: PeerId;
  /** Then the host reports every write durable (a `persisted` right after, as a fast disk would). */
  sync?: boolean;
}

/** The `xstate.after.*` event types XState v5 raises for this machine's named delays. */
export const AFTER_EVENTS = {
  follower: 'xstate.after.electionTimeout.replica.follower',
  lease: 'xstate.after.leaseTimeout.replica.follower',
  preCandidate: 'xstate.after.electionTimeout.replica.preCandidate',
  candidate: 'xstate.after.electionTimeout.replica.candidate',
  learner: 'xstate.after.electionTimeout.replica.learner',
  transferring: 'xstate.after.transferTimeout.replica.leader.transferring',
} as const;

/** Every `xstate.after.*` event a machine's states listen to, read from the machine definition. */
export function afterEventTypes(root: AnyStateNode): string[] {
  const out: string[] = [];
  const walk = (n: AnyStateNode): void => {
    for (const t of n.after) out.push(t.eventType);
    for (const child of Object.values(n.states)) walk(child);
  };
  walk(root);
  return [...new Set(out)].sort();
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader' | 'learner';

export function valueString(value: unknown): string {
  if (typeof value === 'string') return value;
  const [k, sub] = Object.entries(value as Record<string, unknown>)[0];
  return `${k}.${valueString(sub)}`;
}

export function roleOf(value: unknown): Role {
  return valueString(value).split('.')[0] as Role;
}

function lastOf(log: readonly Entry[]): { lastLogIndex: number; lastLogTerm: number } {
  return { lastLogIndex: log.length, lastLogTerm: log.length > 0 ? log[log.length - 1].term : 0 };
}

/** How this replica's log compares with a peer's, by the §5.4.1 up-to-date order. */
export function logRelation(mine: readonly Entry[], theirs: readonly Entry[]): 'behind' | 'equal' | 'ahead' {
  const a = lastOf(mine);
  const b = lastOf(theirs);
  if (a.lastLogIndex === b.lastLogIndex && a.lastLogTerm === b.lastLogTerm) return 'equal';
  return isUpToDate(a.lastLogIndex, a.lastLogTerm, b.lastLogIndex, b.lastLogTerm) ? 'ahead' : 'behind';
}

/** AppendEntries from leader `from` carrying its log after the prefix we share (backtracking done). */
function appendFrom(
  from: PeerId,
  theirs: readonly Entry[],
  mine: readonly Entry[],
  term: number,
): AppendEntries {
  let k = 0;
  while (k < theirs.length && k < mine.length && theirs[k].term === mine[k].term) k++;
  return {
    type: 'AppendEntries',
    from,
    to: ME,
    term,
    prevLogIndex: k,
    prevLogTerm: k > 0 ? theirs[k - 1].term : 0,
    entries: theirs.slice(k),
    leaderCommit: 0,
    readRound: 0,
  };
}

export interface Concrete {
  env: Env;
  /** The event the replica receives, if any (timers: the delayed event XState would raise). */
  event?: ReplicaMachineEvent | { type: string };
  /** On replay: advance the clock until the replica processes this event type. */
  timer?: string;
  /** On replay, while the clock runs: peers acknowledge the leader's AppendEntries. */
  livePeers?: boolean;
}

/** Turn an abstract event into a concrete one, relative to the current context and environment. */
export function concretize(snap: AnyMachineSnapshot, env: Env, ev: ModelEvent): Concrete {
  const c = snap.context as ReplicaContext;
  const role = roleOf(snap.value);
  const p = ev.peer ?? 'n2';
  const theirs = env.peers[p];
  const vote = (term: number, preVote: boolean, transfer: boolean): Concrete => ({
    env,
    event: { type: 'RequestVote', from: p, to: ME, term, ...lastOf(theirs), preVote, transfer },
  });
  switch (ev.type) {
    case 'electionTimeout': {
      const t = AFTER_EVENTS[role as Exclude<Role, 'leader'>];
      return { env, event: { type: t }, timer: t };
    }
    case 'leaseTimeout':
      // The follower's lease on its leader ends (base election timeout), its election timer runs on.
      return { env, event: { type: AFTER_EVENTS.lease }, timer: AFTER_EVENTS.lease };
    case 'transferTimeout':
      // The peers answer heartbeats meanwhile (check-quorum holds), so they catch up.
      return {
        env: { ...env, peers: { n2: env.log, n3: env.log } },
        event: { type: AFTER_EVENTS.transferring },
        timer: AFTER_EVENTS.transferring,
        livePeers: true,
      };
    case 'checkQuorumFails':
      // The peers are silent: the replication actor reports check-quorum failure to the replica.
      return { env, event: { type: 'replication.quorumLost' }, timer: 'replication.quorumLost' };
    case 'persisted': {
      const last = lastOf(env.log);
      return {
        env: { ...env, durableSeq: env.persistSeq },
        event: { type: 'persisted', index: last.lastLogIndex, term: last.lastLogTerm, seq: env.persistSeq },
      };
    }
    case 'PreVote':
      return vote(c.term + 1, true, false);
    case 'RequestVote(higher term)':
      return vote(c.term + 1, false, false);
    case 'RequestVote(current term)':
      return vote(c.term, false, false);
    case 'RequestVote(higher term, transfer)':
      return vote(c.term + 1, false, true);
    case 'VoteGranted':
    case 'VoteRejected': {
      const granted = ev.type === 'VoteGranted';
      const preVote = role === 'preCandidate';
      // A pre-vote grant carries the proposed term; every other answer the voter's (our) term.
      const term = preVote && granted ? c.term + 1 : c.term;
      return { env, event: { type: 'RequestVoteResponse', from: p, to: ME, term, granted, preVote } };
    }
    case 'AppendEntries(current term)':
      return { env, event: appendFrom(p, theirs, env.log, c.term) };
    case 'AppendEntries(higher term)':
      return { env, event: appendFrom(p, theirs, env.log, c.term + 1) };
    case 'AppendEntriesResponse(success)':
      return {
        env: { ...env, peers: { ...env.peers, [p]: env.log } },
        event: {
          type: 'AppendEntriesResponse',
          from: p,
          to: ME,
          term: c.term,
          success: true,
          matchIndex: env.log.length,
          conflictIndex: 0,
          conflictTerm: 0,
          readRound: 0,
        },
      };
    case 'TimeoutNow':
      return { env, event: { type: 'TimeoutNow', from: p, to: ME, term: c.term } };
    case 'readIndex':
      return { env, event: { type: 'readIndex', requestId: 'read' } };
    case 'ReadIndexRequest(current term)':
    case 'ReadIndexRequest(higher term)': {
      const term = ev.type === 'ReadIndexRequest(current term)' ? c.term : c.term + 1;
      return { env, event: { type: 'ReadIndexRequest', from: p, to: ME, term, requestIds: [`${p}:1`] } };
    }
    case 'ReadIndexResponse(current term)':
      return {
        env,
        event: {
          type: 'ReadIndexResponse',
          from: p,
          to: ME,
          term: c.term,
          requestIds: ['read'],
          ok: true,
          index: 1,
        },
      };
    case 'propose':
      return {
        env,
        event: {
          type: 'propose',
          proposals: [{ requestId: `r${env.log.length + 1}`, kind: 'command', data: 'x' }],
        },
      };
    case 'transferLeadership':
      return { env, event: { type: 'transferLeadership', to: p } };
    case 'configDemotesMe':
    case 'configPromotesMe': {
      // The leader of our term appends a config entry that flips our voter flag, and replicates it.
      const entry: Entry = {
        index: theirs.length + 1,
        term: c.term,
        kind: 'config',
        data: JSON.stringify(configWith(ev.type === 'configPromotesMe')),
      };
      const log = [...theirs, entry];
      return {
        env: { ...env, peers: { ...env.peers, [p]: log } },
        event: appendFrom(p, log, env.log, c.term),
      };
    }
    case 'peerAdvances': {
      // The peer got an entry from a leader we have not heard from (its term: ours, at least 1).
      const entry: Entry = { index: theirs.length + 1, term: Math.max(1, c.term), kind: 'command', data: '' };
      return { env: { ...env, peers: { ...env.peers, [p]: [...theirs, entry] } } };
    }
  }
}

/** The bounded event alphabet enabled in a state (deterministic order). */
export function enabledEvents(snap: AnyMachineSnapshot, env: Env): ModelEvent[] {
  const c = snap.context as ReplicaContext;
  const role = roleOf(snap.value);
  const value = valueString(snap.value);
  const out: ModelEvent[] = [];
  const campaigning = role === 'preCandidate' || role === 'candidate';
  for (const peer of PEERS) {
    const rel = logRelation(env.log, env.peers[peer]);
    const add = (type: EventKind) => out.push({ type, peer });
    if (role === 'leader') {
      add('RequestVote(higher term)');
      add('RequestVote(higher term, transfer)');
      add('AppendEntries(higher term)');
      // Follower reads: a request of our term joins a round; a higher term deposes us (Figure 2).
      add('ReadIndexRequest(current term)');
      add('ReadIndexRequest(higher term)');
      if (rel !== 'equal') add('AppendEntriesResponse(success)');
      continue;
    }
    add('PreVote');
    add('RequestVote(higher term)');
    if (c.term >= 1) add('RequestVote(current term)');
    if (c.leaderId !== null) add('RequestVote(higher term, transfer)');
    if (campaigning && c.votes[peer] === undefined) {
      // A voter grants only to a log at least as up-to-date as its own.
      if (rel !== 'behind') add('VoteGranted');
      add('VoteRejected');
    }
    if (c.term >= 1 && (c.leaderId === null || c.leaderId === peer)) add('AppendEntries(current term)');
    add('AppendEntries(higher term)');
    if (role === 'follower' && c.leaderId === peer) {
      add('TimeoutNow');
      add('configDemotesMe');
    }
    if (role === 'preCandidate' && peer === 'n2' && c.term >= 1) add('TimeoutNow');
    if (role === 'learner' && c.leaderId === peer) add('configPromotesMe');
    // The leader answers a follower read; a non-leader refuses a request.
    if ((role === 'follower' || role === 'learner') && c.leaderId === peer)
      add('ReadIndexResponse(current term)');
    if (c.term >= 1 && peer === 'n2') add('ReadIndexRequest(current term)');
    // A peer gets at most one step ahead of us (keeps the concrete logs short).
    if (rel !== 'behind' && c.term >= 1) add('peerAdvances');
  }
  // A client read arrives in every state (served, asked of the leader, or refused).
  out.push({ type: 'readIndex' });
  if (role === 'leader') {
    out.push({ type: 'checkQuorumFails' }, { type: 'propose' });
    if (value === 'leader.active') out.push({ type: 'transferLeadership', peer: 'n2' });
    if (value === 'leader.transferring') out.push({ type: 'transferTimeout' });
  } else {
    out.push({ type: 'electionTimeout' });
    if (role === 'follower' && c.leaderId !== null) out.push({ type: 'leaseTimeout' });
  }
  if (env.persistSeq > env.durableSeq) out.push({ type: 'persisted' });
  return out;
}

/**
 * The abstract state: role/state value, vote in this term, votes counted against the quorum, log
 * relation to each peer, known leader, and whether every write is durable. Terms and indices are
 * left out, so the graph is finite.
 */
export function abstractKey(snap: AnyMachineSnapshot, env: Env): string {
  const c = snap.context as ReplicaContext;
  const role = roleOf(snap.value);
  const parts = [valueString(snap.value)];
  parts.push(`voted=${c.votedFor === null ? 'none' : c.votedFor === ME ? 'self' : c.votedFor}`);
  if (role === 'preCandidate' || role === 'candidate') {
    // Our own vote counts at once in pre-vote, and only once durable in a real election.
    const self =
      role === 'preCandidate' ? c.votes[ME] === true : c.votedFor === ME && c.durableSeq >= c.selfVoteSeq;
    let granted = self ? 1 : 0;
    const each = PEERS.map((p) => {
      const v = c.votes[p];
      if (v === true) granted++;
      return `${p}${v === undefined ? '?' : v ? '+' : '-'}`;
    });
    const voters = c.config.members.filter((m) => m.voter).length;
    parts.push(`votes=${granted}/${quorum(voters)}(${self ? 'self+' : 'self?'} ${each.join(' ')})`);
  }
  parts.push(`log=${PEERS.map((p) => `${p}:${logRelation(env.log, env.peers[p])}`).join(',')}`);
  parts.push(`leader=${c.leaderId === null ? 'none' : c.leaderId === ME ? 'self' : c.leaderId}`);
  parts.push(env.persistSeq > env.durableSeq ? 'unsynced' : 'synced');
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------------
// The graph side: pure transitions of the real machine definition.

export type ModelSnapshot = Snapshot<undefined> & {
  replica: AnyMachineSnapshot;
  env: Env;
  /** Role changes (microstep by microstep) made by the step that led here, as "from->to". */
  moves: string[];
};

/**
 * The LogView the graph side's replica starts from (read once, for its initial context: the machine
 * knows its log by terms after that); kept pointed at the current state's log for clarity.
 */
const graphLog = new ModelLog();

function effectsOf(actions: readonly { type: string; params?: unknown }[]): Effect[] {
  return actions.filter((a) => a.type === 'xstate.emit').map((a) => (a.params as { event: Effect }).event);
}

// Transitions are deterministic, so each traversal (adjacency map, shortest paths, simple paths) reuses
// the snapshots and transitions computed by the previous one.
let initialModelSnapshot: ModelSnapshot | null = null;
const memo = new WeakMap<ModelSnapshot, Map<string, ModelSnapshot>>();

export const replicaModelLogic: ActorLogic<ModelSnapshot, ModelEvent, undefined> = {
  getPersistedSnapshot: (s) => s,
  getInitialSnapshot: () => {
    if (initialModelSnapshot) return initialModelSnapshot;
    graphLog.list = INITIAL_ENV.log;
    const [replica, actions] = initialTransition(replicaMachine, replicaInput(graphLog));
    const initial: ModelSnapshot = {
      status: 'active' as const,
      output: undefined,
      error: undefined,
      replica,
      env: applyEffects(INITIAL_ENV, effectsOf(actions)),
      moves: [],
    };
    initialModelSnapshot = initial;
    return initial;
  },
  transition: (s, ev) => {
    let byEvent = memo.get(s);
    if (!byEvent) {
      byEvent = new Map();
      memo.set(s, byEvent);
    }
    const key = serializeModelEvent(ev);
    const hit = byEvent.get(key);
    if (hit) return hit;
    const next = step(s, ev);
    byEvent.set(key, next);
    return next;
  },
};

function step(s: ModelSnapshot, ev: ModelEvent): ModelSnapshot {
  const next = stepOnce(s, ev);
  if (!ev.sync || next.env.persistSeq === next.env.durableSeq) return next;
  const synced = stepOnce(next, { type: 'persisted' });
  return { ...synced, moves: [...next.moves, ...synced.moves] };
}

function stepOnce(s: ModelSnapshot, ev: ModelEvent): ModelSnapshot {
  const { env, event } = concretize(s.replica, s.env, ev);
  if (!event) return { ...s, env, moves: [] };
  graphLog.list = env.log;
  const e = event as ReplicaMachineEvent;
  // One macrostep, microstep by microstep: the role moves inside it (e.g. candidate -> follower ->
  // learner) are visible, and the last microstep is the next snapshot.
  const micro = getMicrosteps(replicaMachine, s.replica as never, e);
  if (micro.length === 0) return { ...s, env, moves: [] };
  const moves: string[] = [];
  const actions: { type: string; params?: unknown }[] = [];
  let prev = roleOf(s.replica.value);
  for (const [m, a] of micro) {
    const r = roleOf(m.value);
    if (r !== prev) moves.push(`${prev}->${r}`);
    prev = r;
    actions.push(...(a as { type: string; params?: unknown }[]));
  }
  const replica = micro[micro.length - 1][0] as AnyMachineSnapshot;
  return { ...s, replica, env: applyEffects(env, effectsOf(actions)), moves };
}

export const serializeModelState = (s: ModelSnapshot): string => abstractKey(s.replica, s.env);
export const serializeModelEvent = (e: ModelEvent): string =>
  `${e.type}${e.peer ? ` from ${e.peer}` : ''}${e.sync ? ' + persisted' : ''}`;

// ---------------------------------------------------------------------------------------------------
// The replay side: the real actor, under a SimulatedClock.

const MAX_TIMER_MS = 2_000;

export class ReplicaReplay {
  readonly clock = new SteppingClock();
  readonly log = new ModelLog();
  env: Env = INITIAL_ENV;
  readonly actor;
  readonly errors: unknown[] = [];
  /** Role changes observed microstep by microstep on the real actor. */
  readonly moves = new Set<string>();
  private processed: string[] = [];
  private lastRole: Role = 'follower';
  private livePeers = false;
  private replies: RaftMessage[] = [];
  /**
   * The production Ready executor carries out the actor's effects. Its flushes (and apply steps) wait
   * here until the model's `persisted` event: the model decides when the disk answers.
   */
  private readonly ready: ReadyExecutor;
  private deferred: (() => void)[] = [];

  constructor() {
    this.log.list = this.env.log;
    const actor = createActor(replicaMachine, {
      clock: this.clock,
      input: replicaInput(this.log),
      inspect: (ie: InspectionEvent) => this.inspect(ie),
    });
    this.actor = actor;
    const log = this.log;
    this.ready = new ReadyExecutor(
      {
        log: {
          write: (batch) => this.write(batch),
          flush: (done) => done(),
          lastIndex: () => log.lastIndex(),
          termAt: (i) => log.termAt(i),
          entries: (from, to, max) => log.entries(from, to, max),
        },
        send: (m) => this.sent(m),
        defer: (fn) => this.deferred.push(fn),
        persisted: (p) => actor.send({ type: 'persisted', ...p }),
        // The model tracks no state machine: nothing to apply.
        apply: (upTo) => upTo,
        other: () => {},
      },
      { durableIndex: 0, commitIndex: 0, appliedIndex: 0 },
    );
    actor.subscribe({ error: (err) => this.errors.push(err) });
    actor.on('*', (e) => this.ready.execute([e as Effect]));
    actor.start();
  }

  /** The executor writes this replica's log: the model's environment (a commit-only write is no persist). */
  private write(batch: LogWrite): void {
    if (!batch.hardState && batch.truncateFrom === undefined && !batch.entries) return;
    this.env = applyEffects(this.env, [{ type: 'persist', ...batch }]);
    this.log.list = this.env.log;
  }

  /** The disk answers: run the flushes (and apply steps) the executor deferred. */
  private sync(): void {
    const fns = this.deferred;
    this.deferred = [];
    for (const fn of fns) fn();
  }

  private inspect(ie: InspectionEvent): void {
    if (ie.actorRef !== this.actor) return;
    if (ie.type === '@xstate.event') this.processed.push(ie.event.type);
    if (ie.type === '@xstate.microstep') {
      const r = roleOf((ie.snapshot as AnyMachineSnapshot).value);
      if (r !== this.lastRole) this.moves.add(`${this.lastRole}->${r}`);
      this.lastRole = r;
    }
  }

  private sent(m: RaftMessage): void {
    if (this.livePeers && m.type === 'AppendEntries') {
      this.replies.push({
        type: 'AppendEntriesResponse',
        from: m.to,
        to: ME,
        term: m.term,
        success: true,
        matchIndex: m.prevLogIndex + m.entries.length,
        conflictIndex: 0,
        conflictTerm: 0,
        readRound: m.readRound,
      });
    }
  }

  snapshot(): AnyMachineSnapshot {
    return this.actor.getSnapshot();
  }

  key(): string {
    return abstractKey(this.snapshot(), this.env);
  }

  /** Carry out one abstract event on the real actor (then `persisted` if it asks for sync). */
  step(ev: ModelEvent): number {
    const ms = this.stepOnce(ev);
    if (ev.sync && this.env.persistSeq > this.env.durableSeq) this.stepOnce({ type: 'persisted' });
    return ms;
  }

  /** Returns the simulated ms the step took (timers only). */
  private stepOnce(ev: ModelEvent): number {
    const c = concretize(this.snapshot(), this.env, ev);
    const envPeers = c.env.peers;
    if (!c.timer) {
      this.env = { ...this.env, peers: envPeers, durableSeq: c.env.durableSeq };
      // The disk answers through the executor (which sends the machine the same `persisted`).
      if (ev.type === 'persisted') this.sync();
      else if (c.event) this.actor.send(c.event as ReplicaMachineEvent);
      return 0;
    }
    // Let time pass until the actor itself raises (or receives) the timer's event.
    this.processed = [];
    this.livePeers = c.livePeers === true;
    const start = this.clock.now();
    try {
      // Bounded in count (timers fired) and in simulated time.
      for (let i = 0; i < 1_000 && this.clock.now() - start <= MAX_TIMER_MS; i++) {
        if (!this.clock.advanceToNext()) break;
        const replies = this.replies;
        this.replies = [];
        for (const r of replies) this.actor.send(r);
        if (this.processed.includes(c.timer)) {
          this.env = { ...this.env, peers: envPeers };
          return this.clock.now() - start;
        }
      }
    } finally {
      this.livePeers = false;
      this.replies = [];
    }
    throw new Error(`${c.timer} did not happen within ${MAX_TIMER_MS} simulated ms`);
  }

  stop(): void {
    this.ready.stop();
    this.actor.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// The coarse model for simple paths. Every simple path through the fine graph would be astronomically
// many, so simple paths run over a coarser abstraction (role/state value, voted or not, each peer's
// vote and the count against the quorum, leader known or not) and an election-only alphabet in which
// every write is made durable at once (`sync`), n2 speaks for "the leader", and n2 and n3 answer
// votes. RequestVote and log-changing events are left out: with them the log relation would have to
// be part of the state, and the number of simple paths explodes (92k for 27 states).

export function coarseKey(snap: AnyMachineSnapshot): string {
  const c = snap.context as ReplicaContext;
  const role = roleOf(snap.value);
  const parts = [valueString(snap.value), c.votedFor === null ? 'not voted' : 'voted'];
  if (role === 'preCandidate' || role === 'candidate') {
    const self =
      role === 'preCandidate' ? c.votes[ME] === true : c.votedFor === ME && c.durableSeq >= c.selfVoteSeq;
    const granted = (self ? 1 : 0) + PEERS.filter((p) => c.votes[p] === true).length;
    const voters = c.config.members.filter((m) => m.voter).length;
    const each = PEERS.map((p) => `${p}${c.votes[p] === undefined ? '?' : c.votes[p] ? '+' : '-'}`);
    parts.push(`granted ${granted}/${quorum(voters)} (${each.join(' ')})`);
  }
  parts.push(c.leaderId === null ? 'no leader' : 'leader known');
  return parts.join(', ');
}

export const serializeCoarseState = (s: ModelSnapshot): string => coarseKey(s.replica);

export const COARSE_KINDS: readonly EventKind[] = [
  'electionTimeout',
  'VoteGranted',
  'VoteRejected',
  'AppendEntries(current term)',
  'AppendEntries(higher term)',
  'TimeoutNow',
  'checkQuorumFails',
  'transferLeadership',
  'transferTimeout',
];

export function coarseEvents(snap: AnyMachineSnapshot, env: Env): ModelEvent[] {
  return enabledEvents(snap, env)
    .filter(
      (e) =>
        COARSE_KINDS.includes(e.type) &&
        (e.peer === undefined || e.peer === 'n2' || e.type === 'VoteGranted' || e.type === 'VoteRejected'),
    )
    .map((e) => ({ ...e, sync: true }));
}
