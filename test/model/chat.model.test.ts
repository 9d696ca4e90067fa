// Model-based tests of the chat routing actor: every shortest and simple path, replayed on the real
// actor under a SimulatedClock. The routing rules are checked on every edge of the graph, and the
// paths must show each route: leader -> propose/readIndex, follower -> forward writes and readIndex
// for reads (follower reads, served locally), leaderless -> wait, then unavailable.

import {
  type StatePath,
  adjacencyMapToArray,
  getAdjacencyMap,
  getShortestPaths,
  getSimplePaths,
} from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { chatMachine } from '../../machines/chat/chat.machine.js';
import {
  type ChatModelEvent,
  type ChatModelSnapshot,
  ChatReplay,
  LEADER_WAIT_EVENT,
  chatEvents,
  chatModelLogic,
  serializeChatCoarse,
  serializeChatEvent,
  serializeChatState,
} from './chat-model.js';
import { afterEventTypes, valueString } from './replica-model.js';

const options = {
  events: chatEvents,
  serializeState: serializeChatState,
  serializeEvent: serializeChatEvent,
};
const coarse = { ...options, serializeState: serializeChatCoarse };
type Path = StatePath<ChatModelSnapshot, ChatModelEvent>;

const effects = (list: readonly { type: string }[]) => list.map((e) => e.type).join(',');

/** The routing rules, checked on what the real actor emitted in one step. */
function checkRouting(r: ChatReplay, event: ChatModelEvent, from: string): void {
  const to = valueString(r.actor.getSnapshot().value);
  for (const e of r.emitted) {
    if (e.type === 'propose') expect(to).toBe('leader');
    // Reads are served here (ReadIndex) wherever a leader is known: as leader or as follower.
    if (e.type === 'readIndex') expect(['leader', 'follower']).toContain(to);
    if (e.type === 'forward') expect(to).toBe('follower');
    if (e.type === 'unavailable') expect([from, event.type]).toEqual(['leaderless', 'leaderWait']);
  }
}

/**
 * Replay one path on a fresh real actor: the same abstract state after every step (with the fine
 * serializer that includes the step's effects), and the routing rules on every step.
 */
function replay(path: Path, serialize: (s: ChatModelSnapshot) => string): void {
  const r = new ChatReplay();
  try {
    const trail: string[] = [];
    expect(serialize(r.snapshot())).toBe(serialize(path.steps[0].state));
    for (const step of path.steps.slice(1)) {
      trail.push(step.event.type);
      const from = valueString(r.actor.getSnapshot().value);
      r.step(step.event);
      checkRouting(r, step.event, from);
      const real = serialize(r.snapshot());
      const model = serialize(step.state);
      if (real !== model) {
        throw new Error(
          `after ${trail.join(' -> ')}\n  real:  ${real} [${effects(r.emitted)}]\n  model: ${model}`,
        );
      }
    }
    expect(r.errors).toEqual([]);
  } finally {
    r.stop();
  }
}

/** The path's route as text: "write in leader -> propose". */
function describePath(p: Path): string {
  return p.steps
    .slice(1)
    .map(
      (s) =>
        `${s.event.type} => ${valueString(s.state.chat.value)} [${s.state.emitted.map((e) => e.type).join(',')}]`,
    )
    .join('; ');
}

describe('chat actor, model-based', () => {
  it('the only timer is leaderWait in leaderless', () => {
    expect(afterEventTypes(chatMachine.root)).toEqual([LEADER_WAIT_EVENT]);
  });

  it('routing holds on every edge: propose only in leader, forward (writes only) only in follower, reads never forwarded, unavailable only after leaderWait', () => {
    const edges = adjacencyMapToArray(getAdjacencyMap(chatModelLogic, options));
    for (const t of edges) {
      const from = valueString(t.state.chat.value);
      const to = valueString(t.nextState.chat.value);
      for (const e of t.nextState.emitted) {
        if (e.type === 'propose') expect(to).toBe('leader');
        if (e.type === 'readIndex') expect(['leader', 'follower']).toContain(to);
        if (e.type === 'forward') {
          expect(to).toBe('follower');
          expect(e.leaderId).toBe('n2');
        }
        if (e.type === 'unavailable') {
          expect(from).toBe('leaderless');
          expect(t.event.type).toBe('leaderWait');
        }
      }
      // A write is never dropped: it is proposed, forwarded, or waits for a leader.
      if (t.event.type === 'write') {
        const routed = t.nextState.emitted.some((e) => e.type === 'propose' || e.type === 'forward');
        expect(routed || to === 'leaderless').toBe(true);
        if (to === 'leaderless') expect(t.nextState.emitted).toEqual([]);
      }
      // A read is never forwarded: it is served here (ReadIndex) or waits for a leader.
      if (t.event.type === 'read') {
        expect(t.nextState.emitted.map((e) => e.type)).not.toContain('forward');
        const served = t.nextState.emitted.some((e) => e.type === 'readIndex');
        expect(served || to === 'leaderless').toBe(true);
      }
    }
    expect(edges.length).toBeGreaterThan(0);
  });

  it('every shortest path replays on the real actor, and the paths show each route', () => {
    const t0 = performance.now();
    const paths = getShortestPaths(chatModelLogic, options);
    for (const p of paths) replay(p, serializeChatState);
    const keys = paths.map((p) => serializeChatState(p.state));
    // The graph reaches each routing outcome as a state of its own.
    const route = (needle: string) => {
      const i = keys.findIndex((k) => k.startsWith(needle));
      expect(i, `no path reaches "${needle}"`).toBeGreaterThanOrEqual(0);
      return describePath(paths[i]);
    };
    const leaderWrite = route('leader, leader n1, emitted [propose] on write');
    const leaderRead = route('leader, leader n1, emitted [readIndex] on read');
    const followerWrite = route('follower, leader n2, emitted [forward] on write');
    const followerRead = route('follower, leader n2, emitted [readIndex] on read');
    const refused = route('leaderless, no leader, emitted [unavailable] on leaderWait');
    const flushed = route('leader, leader n1, emitted [propose] on roleChanged(leader)');
    const handedOn = route('follower, leader n2, emitted [forward] on roleChanged(follower, leader known)');
    expect(leaderWrite).toBe('roleChanged(leader) => leader []; write => leader [propose]');
    expect(followerWrite).toBe(
      'roleChanged(follower, leader known) => follower []; write => follower [forward]',
    );
    expect(followerRead).toBe(
      'roleChanged(follower, leader known) => follower []; read => follower [readIndex]',
    );
    expect(refused).toBe(
      'write => leaderless []; leaderWait => leaderless []; leaderWait => leaderless [unavailable]',
    );
    expect(flushed).toBe('write => leaderless []; roleChanged(leader) => leader [propose]');
    console.log(
      `chat model: ${paths.length} shortest paths replayed in ${Math.round(performance.now() - t0)} ms\n` +
        `  ${[leaderWrite, leaderRead, followerWrite, followerRead, refused, flushed, handedOn].join('\n  ')}`,
    );
  });

  it('every simple path replays on the real actor', () => {
    const t0 = performance.now();
    const paths = getSimplePaths(chatModelLogic, coarse);
    for (const p of paths) replay(p, serializeChatCoarse);
    expect(paths.length).toBeGreaterThan(getShortestPaths(chatModelLogic, coarse).length);
    console.log(
      `chat model: ${paths.length} simple paths replayed in ${Math.round(performance.now() - t0)} ms`,
    );
  });
});
