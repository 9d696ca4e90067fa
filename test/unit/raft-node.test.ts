// RaftNode on an in-process network under one SimulatedClock: elections, replication, apply,
// proposal batching, ReadIndex and the typed errors of its public API.

import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { ClusterConfig, Entry } from '../../machines/protocol.js';
import type { ApplyOutcome, StateMachine } from '../../src/raft/interfaces.js';
import { RaftNode, ReadNotServedError } from '../../src/raft/node.js';
import { MemoryLogStore } from '../support/memory-log-store.js';
import { InProcessNet } from './in-process-net.js';

class ListMachine implements StateMachine {
  applied: Entry[] = [];
  batches = 0;
  appliedIndex(): number {
    return this.applied.length > 0 ? this.applied[this.applied.length - 1].index : 0;
  }
  apply(entries: Entry[]): ApplyOutcome[] {
    this.batches++;
    this.applied.push(...entries);
    return entries.map((e) => ({
      index: e.index,
      term: e.term,
      result: e.kind === 'command' ? `ok:${e.data}` : null,
    }));
  }
}

interface Env {
  clock: SimulatedClock;
  net: InProcessNet;
  nodes: RaftNode[];
  machines: ListMachine[];
  stores: MemoryLogStore[];
}

let env: Env;
const errors: unknown[] = [];

function cluster(n: number): Env {
  const clock = new SimulatedClock();
  const net = new InProcessNet();
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const config: ClusterConfig = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  const machines = ids.map(() => new ListMachine());
  const stores = ids.map(() => new MemoryLogStore({ snapshot: { index: 0, term: 0, config } }));
  const nodes = ids.map(
    (id, i) =>
      new RaftNode({
        id,
        logStore: stores[i],
        stateMachine: machines[i],
        transport: net.transport(id),
        clock,
        timing: { heartbeatMs: 50, electionMinMs: i === 0 ? 100 : 300, electionMaxMs: i === 0 ? 101 : 400 },
        seed: i + 1,
        defer: (fn) => clock.setTimeout(fn, 0),
        onError: (e) => errors.push(e),
      }),
  );
  for (const node of nodes) node.start();
  return { clock, net, nodes, machines, stores };
}

/** Advance time and deliver messages until `cond` holds (bounded). */
function runUntil(cond: () => boolean, maxMs = 3000): void {
  for (let i = 0; i < maxMs; i++) {
    env.net.flush();
    env.clock.increment(0);
    env.net.flush();
    if (cond()) return;
    env.clock.increment(1);
  }
  throw new Error('condition not reached');
}

async function settle<T>(p: Promise<T>, maxMs = 3000): Promise<T> {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  p.then(
    (v) => {
      done = true;
      value = v;
    },
    (e) => {
      done = true;
      error = e;
    },
  );
  for (let i = 0; i < maxMs && !done; i++) {
    runUntil(() => true);
    await Promise.resolve();
    env.clock.increment(1);
    await Promise.resolve();
  }
  if (!done) throw new Error('promise did not settle');
  if (error) throw error;
  return value as T;
}

afterEach(() => {
  for (const n of env?.nodes ?? []) n.stop();
  expect(errors).toEqual([]);
});

describe('RaftNode', () => {
  it('a one-member cluster elects itself and commits once durable', async () => {
    env = cluster(1);
    runUntil(() => env.nodes[0].status().role === 'leader');
    const out = await settle(env.nodes[0].propose('command', 'a'));
    expect(out.result).toBe('ok:a');
    expect(env.machines[0].applied.map((e) => e.kind)).toEqual(['noop', 'command']);
  });

  it('replicates, applies everywhere and answers the proposer with the apply result', async () => {
    env = cluster(3);
    runUntil(() => env.nodes[0].status().role === 'leader');
    const out = await settle(env.nodes[0].propose('command', 'hello'));
    expect(out).toMatchObject({ index: 2, term: 1, result: 'ok:hello' });
    runUntil(() => env.machines.every((m) => m.appliedIndex() === 2));
    for (const m of env.machines) expect(m.applied.map((e) => e.data)).toEqual(['', 'hello']);
  });

  it('batches proposals of one tick into one log write and one fsync (then one for the commit, none for the apply)', async () => {
    env = cluster(3);
    runUntil(() => env.nodes[0].status().role === 'leader' && env.nodes[0].status().lastApplied === 1);
    const flushesBefore = env.stores[0].flushCount;
    const ps = Array.from({ length: 50 }, (_, i) => env.nodes[0].propose('command', `m${i}`));
    const outs = await settle(Promise.all(ps));
    expect(outs.map((o) => o.index)).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
    // The entries' flush, then the commit's (the apply pays no fsync of its own: lazy applied index).
    expect(env.stores[0].flushCount - flushesBefore).toBe(2);
  });

  it('a follower refuses proposals with NotLeaderError naming the leader', async () => {
    env = cluster(3);
    runUntil(() => env.nodes[0].status().role === 'leader' && env.nodes[1].status().leaderId === 'n1');
    await expect(settle(env.nodes[1].propose('command', 'x'))).rejects.toMatchObject({
      name: 'NotLeaderError',
      leaderId: 'n1',
    });
  });

  it('readIndex on a follower resolves once it has applied the write the leader acknowledged', async () => {
    env = cluster(3);
    runUntil(() => env.nodes[0].status().role === 'leader' && env.nodes[1].status().leaderId === 'n1');
    const w = await settle(env.nodes[0].propose('command', 'w'));
    await settle(env.nodes[1].readIndex());
    expect(env.nodes[1].status().role).toBe('follower');
    expect(env.nodes[1].status().lastApplied).toBeGreaterThanOrEqual(w.index);
  });

  it('readIndex on a candidate fails with ReadNotServedError (no leader to ask)', async () => {
    env = cluster(3);
    env.net.rewrite = () => null;
    runUntil(() => env.nodes[1].status().role === 'candidate');
    await expect(settle(env.nodes[1].readIndex())).rejects.toBeInstanceOf(ReadNotServedError);
  });

  it('a leader removed from the configuration refuses its pending proposals once it steps down', async () => {
    env = cluster(3);
    runUntil(() => env.nodes[0].status().role === 'leader' && env.nodes[0].status().lastApplied === 1);
    // The followers get the removal of n1, but never the entry n1 appends after it: once n1 steps
    // down it hears from nobody, so without help it would wait for 'late' forever.
    env.net.rewrite = (m) => {
      if (m.type !== 'AppendEntries' || m.from !== 'n1') return m;
      const cut = m.entries.findIndex((e) => e.data === 'late');
      return cut < 0 ? m : { ...m, entries: m.entries.slice(0, cut) };
    };
    const without: ClusterConfig = {
      members: [
        { id: 'n2', address: 'n2', voter: true },
        { id: 'n3', address: 'n3', voter: true },
      ],
    };
    const change = env.nodes[0].propose('config', JSON.stringify(without));
    const late = env.nodes[0].propose('command', 'late');
    late.catch(() => {});
    await settle(change);
    await expect(settle(late)).rejects.toMatchObject({
      name: 'NotLeaderError',
      reason: 'this replica was removed from the cluster',
    });
    expect(env.nodes[0].status().role).not.toBe('leader');
    runUntil(() => env.nodes.slice(1).some((n) => n.status().role === 'leader'));
  });

  it('readIndex on the leader resolves after a quorum round, with the write applied', async () => {
    env = cluster(3);
    runUntil(() => env.nodes[0].status().role === 'leader');
    await settle(env.nodes[0].propose('command', 'w'));
    await settle(env.nodes[0].readIndex());
    expect(env.nodes[0].status().lastApplied).toBeGreaterThanOrEqual(2);
  });
});
