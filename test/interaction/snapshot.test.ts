// Snapshots and compaction in the pure machines: a peer behind the compaction point is switched to
// InstallSnapshot, installs it and continues with entries; lost answers, stale and redundant snapshots;
// a snapshot's configuration; a member added (or a transfer target) behind the compaction point.

import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, cfg, electN1, from, ofType, run, three, to } from './harness.js';

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

/** n3 misses `count` proposals; n1 and n2 apply them; n1 then snapshots and compacts everything. */
function leaveN3Behind(count: number) {
  c.isolate('n3');
  for (let i = 0; i < count; i++) c.propose('n1', `x${i}`);
  c.stabilize();
  c.heal();
  c.drop(); // anything queued for n3 while it was cut off is gone
  expect(c.node('n1').commitIndex).toBe(count + 1);
  return c.node('n1').takeSnapshot();
}

describe('snapshots', () => {
  it('a follower behind the compaction point gets InstallSnapshot, then entries', () => {
    c = three();
    electN1(c);
    const meta = leaveN3Behind(5);
    expect(meta).toEqual({ index: 6, term: 1, config: c.config });
    expect(c.node('n1').store.firstIndex()).toBe(7);
    const mark = c.delivered.length;
    c.propose('n1', 'after');
    run(c, 200);
    expect(c.node('n1').effects.filter((e) => e.type === 'sendSnapshot')).toEqual([
      { type: 'sendSnapshot', to: 'n3', term: 1 },
    ]);
    const n3 = c.delivered.slice(mark).filter((l) => l.includes('n3') && !l.includes('entries=[] commit=7'));
    const at = (line: string) => n3.indexOf(line);
    const install = at('n1->n3 InstallSnapshot term=1 snapshot=6/1 offset=0 done=true');
    const installed = at('n3->n1 InstallSnapshotResponse term=1 snapshot=6 installed=true');
    const next = at('n1->n3 AppendEntries term=1 prev=6/1 entries=[7/1] commit=7');
    expect(install).toBeGreaterThanOrEqual(0);
    expect(installed).toBeGreaterThan(install);
    expect(next).toBeGreaterThan(installed);
    expect(c.node('n3').store.snapshot().index).toBe(6);
    expect(data('n3')).toEqual(data('n1'));
    expect(data('n3')).toEqual(['x0', 'x1', 'x2', 'x3', 'x4', 'after']);
    expect(c.node('n3').ctx()).toMatchObject({ commitIndex: 7, appliedIndex: 7 });
  });

  it('a lost InstallSnapshotResponse: the next heartbeat answer tells the leader the snapshot is there', () => {
    c = three();
    electN1(c);
    const meta = leaveN3Behind(4);
    for (let i = 0; i < 300 && c.node('n3').store.snapshot().index < meta.index; i++) {
      c.tick(1);
      c.drop(ofType('InstallSnapshotResponse'));
      c.deliver();
    }
    expect(c.node('n3').store.snapshot().index).toBe(meta.index);
    c.drop(ofType('InstallSnapshotResponse'));
    c.propose('n1', 'z');
    run(c, 120);
    expect(data('n3')).toEqual(data('n1'));
    expect(data('n3')).toContain('z');
    // Only one snapshot was ever sent: the heartbeat answer (match=5) moved n3 out of snapshot mode.
    expect(c.node('n1').effects.filter((e) => e.type === 'sendSnapshot')).toHaveLength(1);
    expect(c.delivered.filter((l) => l.startsWith('n1->n3 InstallSnapshot'))).toHaveLength(1);
  });

  it('a snapshot the follower already covers is answered as installed and changes nothing', () => {
    c = three();
    electN1(c);
    c.propose('n1', 'a');
    c.stabilize();
    run(c, 60);
    const before = c.node('n2').store.snapshot();
    c.node('n2').send({
      type: 'InstallSnapshot',
      from: 'n1',
      to: 'n2',
      term: 1,
      lastIncludedIndex: 2,
      lastIncludedTerm: 1,
      config: c.config,
      offset: 0,
      chunk: '',
      done: true,
    });
    expect(c.pending(from('n2'))).toEqual([
      'n2->n1 InstallSnapshotResponse term=1 snapshot=2 installed=true',
    ]);
    expect(c.node('n2').effects.some((e) => e.type === 'receiveSnapshotChunk')).toBe(false);
    expect(c.node('n2').store.snapshot()).toEqual(before);
  });

  it('a stale InstallSnapshot from an old term is refused with the current term', () => {
    c = three();
    electN1(c);
    c.node('n2').send({
      type: 'InstallSnapshot',
      from: 'n3',
      to: 'n2',
      term: 0,
      lastIncludedIndex: 9,
      lastIncludedTerm: 0,
      config: c.config,
      offset: 0,
      chunk: '',
      done: true,
    });
    expect(c.pending(from('n2'))).toEqual([
      'n2->n3 InstallSnapshotResponse term=1 snapshot=9 installed=false',
    ]);
    expect(c.node('n2').effects.some((e) => e.type === 'receiveSnapshotChunk')).toBe(false);
  });

  it("the snapshot's configuration takes effect on the follower that installs it", () => {
    c = three();
    electN1(c);
    c.isolate('n3');
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3'], ['n4'])), 'config', 'add-n4');
    c.propose('n1', 'x');
    c.stabilize();
    c.heal();
    c.drop();
    const meta = c.node('n1').takeSnapshot();
    expect(meta.config).toEqual(cfg(['n1', 'n2', 'n3'], ['n4']));
    run(c, 120);
    expect(c.node('n3').store.snapshot().index).toBe(meta.index);
    expect(c.node('n3').ctx().config).toEqual(cfg(['n1', 'n2', 'n3'], ['n4']));
    expect(
      c
        .node('n3')
        .effects.filter((e) => e.type === 'configChanged')
        .at(-1),
    ).toEqual({
      type: 'configChanged',
      config: cfg(['n1', 'n2', 'n3'], ['n4']),
    });
  });

  it('a member added after compaction starts from the snapshot, then gets the config entry', () => {
    c = three();
    electN1(c);
    for (let i = 0; i < 4; i++) c.propose('n1', `x${i}`);
    c.stabilize();
    run(c, 60);
    const meta = c.node('n1').takeSnapshot();
    c.addNode({ id: 'n4' });
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3'], ['n4'])), 'config', 'add-n4');
    run(c, 200);
    expect(c.node('n1').effects).toContainEqual({ type: 'sendSnapshot', to: 'n4', term: 1 });
    expect(c.node('n4').store.snapshot().index).toBe(meta.index);
    expect(data('n4')).toEqual(data('n1'));
    expect(c.node('n4').ctx().config).toEqual(cfg(['n1', 'n2', 'n3'], ['n4']));
    expect(c.node('n4').role()).toBe('learner');
    // Promotion after catching up.
    c.propose('n1', JSON.stringify(cfg(['n1', 'n2', 'n3', 'n4'])), 'config', 'promote');
    run(c, 200);
    expect(c.node('n4').role()).toBe('follower');
  });

  it('a leadership transfer to a target behind the compaction point catches it up by snapshot first', () => {
    c = three();
    electN1(c);
    leaveN3Behind(6);
    c.node('n1').send({ type: 'transferLeadership', to: 'n3' });
    expect(c.node('n1').state()).toBe('leader.transferring');
    run(c, 80);
    expect(c.node('n1').effects).toContainEqual({ type: 'sendSnapshot', to: 'n3', term: 1 });
    expect(c.delivered).toContain('n1->n3 TimeoutNow term=1');
    expect(c.leaders()).toEqual(['n3']);
    expect(c.node('n1').effects).toContainEqual({ type: 'transferFinished', to: 'n3', ok: true });
    c.propose('n3', 'from-n3');
    run(c, 60);
    expect(data('n1')).toEqual(data('n3'));
  });

  it('a follower that restarts after installing keeps the snapshot and its applied state', () => {
    c = three();
    electN1(c);
    const meta = leaveN3Behind(3);
    run(c, 120);
    expect(c.node('n3').store.snapshot().index).toBe(meta.index);
    c.crash('n3');
    c.restart('n3');
    expect(c.node('n3').ctx()).toMatchObject({ commitIndex: meta.index, appliedIndex: meta.index });
    c.propose('n1', 'later');
    run(c, 120);
    expect(data('n3')).toEqual(data('n1'));
    expect(c.pending(ofType('InstallSnapshot'))).toEqual([]);
  });
});
