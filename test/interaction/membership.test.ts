// Membership and transfer edge cases: a removed server that never learnt of its removal, replacing a
// node, removing the leader with writes in flight, transfers to members that cannot lead.

import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, cfg, electN1, run, three } from './harness.js';

let c: Cluster;
afterEach(() => {
  expect(c.errors()).toEqual([]);
  c.stop();
});

const data = (id: string) =>
  c
    .node(id)
    .applied.filter((e) => e.kind === 'command')
    .map((e) => e.data);

describe('membership edge cases', () => {
  it('a removed follower that never learnt of its removal does not disrupt the cluster', () => {
    c = three();
    electN1(c);
    c.isolate('n3');
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2'])), 'config', 'remove-n3');
    run(c, 50);
    expect(c.node('n1').commitIndex).toBe(2);
    expect(c.node('n3').ctx().config).toEqual(c.config); // it still thinks it is a voter
    c.heal();
    const term = c.node('n1').term();
    run(c, 3000);
    // n3 campaigns (pre-vote) again and again, but nobody follows it: the term never moves.
    expect(c.delivered.some((l) => l.startsWith('n3->') && l.includes('preVote=true'))).toBe(true);
    expect(c.leaders()).toEqual(['n1']);
    expect(c.node('n1').term()).toBe(term);
    expect(c.node('n2').term()).toBe(term);
    expect(c.node('n3').term()).toBe(term);
    c.propose('n1', 'still-fine');
    run(c, 60);
    expect(data('n2')).toContain('still-fine');
  });

  it('replacing a node: remove a follower, add a new one, and the new quorum commits without the old', () => {
    c = three();
    electN1(c);
    c.propose('n1', 'a');
    run(c, 20);
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2'])), 'config', 'remove-n3');
    c.propose('n1', 'b');
    run(c, 60);
    c.crash('n3'); // the machine is gone for good
    c.addNode({ id: 'n4' });
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2'], ['n4'])), 'config', 'add-n4');
    c.propose('n1', 'c');
    run(c, 100);
    expect(data('n4')).toEqual(['a', 'b', 'c']);
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n4'])), 'config', 'promote-n4');
    run(c, 100);
    expect(c.node('n4').role()).toBe('follower');
    // Lose n2: n1 and n4 are a quorum of {n1, n2, n4}.
    c.crash('n2');
    c.propose('n1', 'd');
    run(c, 100);
    expect(data('n1')).toEqual(['a', 'b', 'c', 'd']);
    expect(data('n4')).toEqual(['a', 'b', 'c', 'd']);
    expect(c.node('n1').proposalsRejected).toEqual([]);
  });

  it('removing the leader with writes in flight: committed writes survive under the next leader', () => {
    c = three();
    electN1(c);
    for (let i = 0; i < 5; i++) c.propose('n1', `w${i}`);
    c.propose('n1', JSON.stringify(cfg(['n2', 'n3'])), 'config', 'remove-n1');
    c.propose('n1', 'w-after');
    run(c, 1500);
    const leaders = c.leaders();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe('n1');
    expect(c.node('n1').role()).toBe('learner');
    for (const id of ['n2', 'n3']) {
      expect(data(id).slice(0, 6)).toEqual(['w0', 'w1', 'w2', 'w3', 'w4', 'w-after']);
    }
    c.propose(leaders[0], 'new-leader-write');
    run(c, 100);
    expect(data('n2')).toContain('new-leader-write');
    expect(data('n3')).toContain('new-leader-write');
  });

  it('a transfer to a learner or to a non-member is refused at once, and writes keep flowing', () => {
    c = new Cluster({
      nodes: [{ id: 'n1', election: [100, 101] }, 'n2', 'n3', { id: 'n4', voter: false }],
      election: [300, 301],
    });
    electN1(c);
    c.node('n1').send({ type: 'transferLeadership', to: 'n4' });
    c.node('n1').send({ type: 'transferLeadership', to: 'n9' });
    expect(c.node('n1').state()).toBe('leader.active');
    expect(c.node('n1').effects.filter((e) => e.type === 'transferFinished')).toEqual([
      { type: 'transferFinished', to: 'n4', ok: false },
      { type: 'transferFinished', to: 'n9', ok: false },
    ]);
    c.propose('n1', 'x');
    run(c, 60);
    expect(data('n2')).toEqual(['x']);
  });

  it('a config change proposed during a transfer is refused; after the transfer the new leader takes it', () => {
    c = three();
    electN1(c);
    c.node('n2').store.holdFlushes(); // the target lags, so the transfer stays pending
    c.propose('n1', 'x');
    c.stabilize();
    c.node('n1').send({ type: 'transferLeadership', to: 'n2' });
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2'])), 'config', 'cc');
    expect(c.node('n1').proposalsRejected).toEqual([
      { requestId: 'cc', reason: 'leadership transfer in progress' },
    ]);
    c.node('n2').store.releaseFlushes();
    run(c, 200);
    expect(c.leaders()).toEqual(['n2']);
    run(c, 50);
    c.propose('n2', JSON.stringify(cfg(['n1', 'n2'])), 'config', 'cc2');
    run(c, 100);
    expect(c.node('n2').proposalsRejected).toEqual([]);
    expect(c.node('n3').role()).toBe('learner');
  });
});
