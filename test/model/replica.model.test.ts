// Model-based tests of the replica machine: @xstate/graph enumerates every shortest path (fine
// abstraction, full alphabet) and every simple path (coarse abstraction, election alphabet) of a
// 3-voter cluster seen from n1; each path is replayed on the real actor under a SimulatedClock, and
// the abstract state after every step must equal the path's.

import {
  type StatePath,
  adjacencyMapToArray,
  getAdjacencyMap,
  getShortestPaths,
  getSimplePaths,
} from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { replicaMachine } from '../../machines/replica/replica.machine.js';
import {
  AFTER_EVENTS,
  type ModelEvent,
  type ModelSnapshot,
  ReplicaReplay,
  afterEventTypes,
  coarseEvents,
  coarseKey,
  enabledEvents,
  replicaModelLogic,
  roleOf,
  serializeCoarseState,
  serializeModelEvent,
  serializeModelState,
} from './replica-model.js';

/**
 * Every role change the design allows, and no other (DESIGN.md, machines/replica/*):
 * - follower -> preCandidate: election timeout (pre-vote first);
 * - follower -> candidate: TimeoutNow from the leader (transfer skips pre-vote);
 * - follower -> learner / learner -> follower: a config entry removes / restores our vote (also via
 *   the term rule, which always lands in follower first);
 * - preCandidate -> candidate: pre-vote won (or TimeoutNow); preCandidate -> follower: pre-vote lost,
 *   a leader's AppendEntries, or a higher term;
 * - candidate -> leader: election won with a durable self-vote; candidate -> follower: lost, a leader
 *   of the term, or a higher term; candidate -> preCandidate: split vote, retry through pre-vote;
 * - leader -> follower: higher term or check-quorum failure.
 * Never: follower -> leader, preCandidate -> leader, leader -> candidate, learner -> any campaign.
 */
const EXPECTED_MOVES = [
  'candidate->follower',
  'candidate->leader',
  'candidate->preCandidate',
  'follower->candidate',
  'follower->learner',
  'follower->preCandidate',
  'leader->follower',
  'learner->follower',
  'preCandidate->candidate',
  'preCandidate->follower',
];

/** The subset the coarse (election-only, no config change) model can reach. */
const EXPECTED_COARSE_MOVES = EXPECTED_MOVES.filter((m) => !m.includes('learner'));

type Path = StatePath<ModelSnapshot, ModelEvent>;

const fine = {
  events: (s: ModelSnapshot) => enabledEvents(s.replica, s.env),
  serializeState: serializeModelState,
  serializeEvent: serializeModelEvent,
};
const coarse = {
  events: (s: ModelSnapshot) => coarseEvents(s.replica, s.env),
  serializeState: serializeCoarseState,
  serializeEvent: serializeModelEvent,
};

function graphMoves(options: typeof fine): { states: number; edges: number; moves: string[] } {
  const adj = getAdjacencyMap(replicaModelLogic, options);
  const edges = adjacencyMapToArray(adj);
  const moves = new Set(edges.flatMap((e) => e.nextState.moves));
  return { states: Object.keys(adj).length, edges: edges.length, moves: [...moves].sort() };
}

/** Replay one path on a fresh real actor; returns the role moves it made. */
function replay(path: Path, key: (r: ReplicaReplay) => string, serialize: (s: ModelSnapshot) => string) {
  const r = new ReplicaReplay();
  try {
    const trail: string[] = [];
    expect(key(r)).toBe(serialize(path.steps[0].state));
    for (const step of path.steps.slice(1)) {
      trail.push(serializeModelEvent(step.event));
      r.step(step.event);
      const expected = serialize(step.state);
      if (key(r) !== expected) {
        throw new Error(`after ${trail.join(' -> ')}\n  real:  ${key(r)}\n  model: ${expected}`);
      }
      expect(r.snapshot().value).toEqual(step.state.replica.value);
    }
    expect(r.errors).toEqual([]);
    return r.moves;
  } finally {
    r.stop();
  }
}

describe('replica machine, model-based', () => {
  it('injects exactly the xstate.after events the machine defines', () => {
    // The graph side raises these itself (pure transitions run no timers); a renamed delay or state
    // would otherwise silently drop a branch from the model.
    expect(afterEventTypes(replicaMachine.root)).toEqual(Object.values(AFTER_EVENTS).sort());
  });

  it('every shortest path (fine abstraction) replays on the real actor; role moves are exactly the design', () => {
    const t0 = performance.now();
    const graph = graphMoves(fine);
    expect(graph.moves).toEqual(EXPECTED_MOVES);
    const paths = getShortestPaths(replicaModelLogic, fine);
    expect(paths.length).toBe(graph.states);
    const seen = new Set<string>();
    const roles = new Set<string>();
    for (const p of paths) {
      for (const m of replay(p, (r) => r.key(), serializeModelState)) seen.add(m);
      roles.add(roleOf(p.state.replica.value));
    }
    // Shortest paths reach every abstract state, so every role; the real actor moved only as allowed.
    expect([...roles].sort()).toEqual(['candidate', 'follower', 'leader', 'learner', 'preCandidate']);
    for (const m of seen) expect(EXPECTED_MOVES).toContain(m);
    const steps = paths.reduce((n, p) => n + p.steps.length - 1, 0);
    console.log(
      `replica model: ${paths.length} shortest paths (${steps} steps) over ${graph.states} abstract states / ` +
        `${graph.edges} edges replayed in ${Math.round(performance.now() - t0)} ms; real-actor role moves: ${[...seen].sort().join(', ')}`,
    );
  });

  it('reads never move the role: on every edge, a read, a follower read request of our term or its answer keeps the state', () => {
    const edges = adjacencyMapToArray(getAdjacencyMap(replicaModelLogic, fine));
    const reads = edges.filter((e) =>
      ['readIndex', 'ReadIndexRequest(current term)', 'ReadIndexResponse(current term)'].includes(
        e.event.type,
      ),
    );
    expect(reads.length).toBeGreaterThan(0);
    for (const e of reads) {
      expect(e.nextState.moves, serializeModelEvent(e.event)).toEqual([]);
      expect(serializeModelState(e.nextState)).toBe(serializeModelState(e.state));
    }
    // A follower read request of a higher term deposes a leader (Figure 2), like any higher-term message.
    const deposed = edges.filter((e) => e.event.type === 'ReadIndexRequest(higher term)');
    expect(deposed.length).toBeGreaterThan(0);
    for (const e of deposed) expect(e.nextState.moves).toEqual(['leader->follower']);
  });

  it('every simple path (coarse abstraction) replays on the real actor', () => {
    const t0 = performance.now();
    const graph = graphMoves(coarse);
    expect(graph.moves).toEqual(EXPECTED_COARSE_MOVES);
    const paths = getSimplePaths(replicaModelLogic, coarse);
    const seen = new Set<string>();
    for (const p of paths) {
      for (const m of replay(p, (r) => coarseKey(r.snapshot()), serializeCoarseState)) seen.add(m);
    }
    // Simple paths use every edge that leads anywhere new, so the real actor makes every move.
    expect([...seen].sort()).toEqual(EXPECTED_COARSE_MOVES);
    const steps = paths.reduce((n, p) => n + p.steps.length - 1, 0);
    console.log(
      `replica model: ${paths.length} simple paths (${steps} steps) over ${graph.states} abstract states / ` +
        `${graph.edges} edges replayed in ${Math.round(performance.now() - t0)} ms`,
    );
  });
});
