// Failover after kill -9 of the leader (issue 10, deliver 5): the transport reports the lost
// connection (`peerLost`), and a follower whose leader it was campaigns after only the random part of
// its election timeout. A false alarm (the leader is alive) must cost no term.

import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, electN1, run } from './harness.js';

let c: Cluster;
afterEach(() => {
  expect(c.errors()).toEqual([]);
  c.stop();
});

const FOLLOWERS = ['n2', 'n3', 'n4', 'n5'];

/** Five voters, production timing (heartbeat 50 ms, election 150-300 ms); n1 campaigns first. */
function five(seed = 1): Cluster {
  return new Cluster({
    nodes: [{ id: 'n1', election: [100, 101] }, ...FOLLOWERS],
    election: [150, 300],
    heartbeatMs: 50,
    seed,
  });
}

/** Milliseconds until one of the followers leads (traffic delivered every millisecond). */
function msUntilNewLeader(cl: Cluster): number {
  for (let t = 0; t < 5000; t++) {
    if (cl.leaders().some((id) => id !== 'n1')) return t;
    cl.tick(1);
    cl.stabilize();
  }
  throw new Error('no new leader within 5 s');
}

describe('failover on a lost leader connection', () => {
  it('the followers elect a new leader before the base election timeout would even have run out', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      c = five(seed);
      electN1(c);
      c.crash('n1');
      c.isolate('n1'); // nothing reaches the dead process
      for (const id of FOLLOWERS) c.node(id).actor.send({ type: 'peerLost', id: 'n1' });
      // Without the hint no follower may campaign before 150 ms (its lease and base timeout).
      expect(msUntilNewLeader(c)).toBeLessThan(150);
      c.stop();
    }
    c = five();
  });

  it('without the hint, the same crash takes at least the base election timeout (the baseline)', () => {
    c = five();
    electN1(c);
    c.crash('n1');
    c.isolate('n1');
    expect(msUntilNewLeader(c)).toBeGreaterThanOrEqual(150);
  });

  it('a lost connection to a leader that is alive costs no term: the others keep its lease', () => {
    c = five();
    electN1(c);
    const term = c.node('n1').term();
    c.node('n2').actor.send({ type: 'peerLost', id: 'n1' });
    expect(c.node('n2').ctx().leaderId).toBeNull();
    run(c, 600);
    expect(c.leaders()).toEqual(['n1']);
    for (const id of ['n1', ...FOLLOWERS]) expect(c.node(id).term()).toBe(term);
    expect(c.node('n2').ctx().leaderId).toBe('n1');
  });

  it('a lost connection to a peer that is not the leader changes nothing', () => {
    c = five();
    electN1(c);
    const before = c.node('n2').ctx();
    c.node('n2').actor.send({ type: 'peerLost', id: 'n3' });
    const after = c.node('n2').ctx();
    expect(after.leaderId).toBe('n1');
    expect(after.electionTimeoutMs).toBe(before.electionTimeoutMs);
    expect(c.node('n2').role()).toBe('follower');
  });
});
