// Every event and timer the machines react to has plain words for the inspector's feed and the
// overview diagrams. A new event (or a new `after` timer) without an entry in
// src/diagrams/plain-names.ts fails here (and, for events, the typecheck).

import { describe, expect, it } from 'vitest';
import { allStates, chartOf } from '../../src/diagrams/chart.js';
import { MACHINES } from '../../src/diagrams/index.js';
import { EVENTS, TIMERS, plainEvent, plainTrigger } from '../../src/diagrams/plain-names.js';

/** Every trigger (event type, `after <delay>`, `always`) of every state of every machine. */
function triggersOf(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const { name, machine } of MACHINES) {
    for (const s of allStates(chartOf(machine).root))
      for (const t of s.transitions) {
        const set = out.get(t.trigger) ?? new Set<string>();
        set.add(name);
        out.set(t.trigger, set);
      }
  }
  return out;
}

describe('plain names', () => {
  it('every event type and timer of every machine has plain words', () => {
    const triggers = triggersOf();
    // The machines do react to events and timers (a broken chart reader must not pass this vacuously).
    expect(triggers.size).toBeGreaterThan(20);
    const missing: string[] = [];
    for (const [trigger, machines] of triggers) {
      if (trigger === 'always') continue;
      const known = trigger.startsWith('after ')
        ? Object.hasOwn(TIMERS, trigger.slice(6))
        : Object.hasOwn(EVENTS, trigger);
      if (!known) missing.push(`${trigger} (${[...machines].join(', ')})`);
    }
    expect(missing, 'add these to src/diagrams/plain-names.ts').toEqual([]);
  });

  it('plain words are words: lower case, no camelCase, no dotted names', () => {
    for (const words of [...Object.values(EVENTS), ...Object.values(TIMERS)]) {
      expect(words).toMatch(/^[a-z][a-z ()]*$/);
    }
  });

  it('reads XState delayed events and event types', () => {
    expect(plainEvent('xstate.after.electionTimeout.replica.follower')).toBe('election timeout');
    expect(plainEvent('xstate.after.electionTimeout')).toBe('election timeout');
    expect(plainEvent('xstate.after.heartbeat.replication.heartbeats.waiting')).toBe('heartbeat timer');
    expect(plainEvent('RequestVoteResponse')).toBe('vote reply');
    expect(plainEvent('replication.quorumLost')).toBe('quorum lost');
    expect(plainEvent('xstate.init')).toBe('start');
    // Unknown ones pass through rather than vanish.
    expect(plainEvent('somethingNew')).toBe('somethingNew');
    expect(plainEvent('xstate.after.500.replica.x')).toBe('after 500');
    expect(plainTrigger('after leaderWait')).toBe('leader wait over');
    expect(plainTrigger('AppendEntries')).toBe('append entries');
  });
});
