// Snapshots through the real RaftNode host on an in-process network under one SimulatedClock:
// compaction, InstallSnapshot to a follower behind the compaction point (flow-controlled, resumable
// after loss, restarted when the leader's snapshot changes), a crash mid-transfer, and replication
// continuing after the install.

import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { ClusterConfig, RaftMessage, SnapshotMeta } from '../../machines/protocol.js';
import type { SnapshotStore, Transport } from '../../src/raft/interfaces.js';
import { RaftNode } from '../../src/raft/node.js';
import { MemorySnapshotStore } from '../../src/raft/sim/memory-snapshot-store.js';
import { FileSnapshotStore } from '../../src/raft/snapshot-store.js';
import { BytesStateMachine } from '../support/bytes-state-machine.js';
import { MemoryLogStore } from '../support/memory-log-store.js';

const CHUNK = 64;
const WINDOW = 3;

type Filter = (m: RaftMessage) => boolean;

class Net {
  handlers = new Map<string, (m: RaftMessage) => void>();
  queue: RaftMessage[] = [];
  /** Messages for which this returns true are lost. */
  lose: Filter = () => false;
  /** Messages for which this returns true stay queued (held) until released. */
  hold: Filter = () => false;
  log: RaftMessage[] = [];
  transport(id: string): Transport {
    return {
      send: (m) => {
        this.log.push(m);
        this.queue.push(m);
      },
      listen: (h) => {
        this.handlers.set(id, h);
      },
      setPeers: () => {},
      close: () => {
        this.handlers.delete(id);
      },
    };
  }
  flush(): void {
    for (let i = 0; i < 1000 && this.queue.length > 0; i++) {
      const q = this.queue;
      this.queue = [];
      const held: RaftMessage[] = [];
      for (const m of q) {
        if (this.hold(m)) held.push(m);
        else if (!this.lose(m)) this.handlers.get(m.to)?.(m);
      }
      if (held.length === q.length) {
        this.queue = [...held, ...this.queue];
        return;
      }
      this.queue = [...held, ...this.queue];
    }
  }
}

interface Replica {
  id: string;
  node: RaftNode;
  log: MemoryLogStore;
  snaps: MemorySnapshotStore;
  /** Set when the replica keeps its snapshots in files (cluster(n, dir)); `snaps` is unused then. */
  files?: FileSnapshotStore;
  machine: BytesStateMachine;
}

interface Env {
  clock: SimulatedClock;
  net: Net;
  replicas: Replica[];
  config: ClusterConfig;
  dir?: string;
}

let env: Env;
const errors: unknown[] = [];

function makeNode(id: string, i: number, log: MemoryLogStore, snaps: SnapshotStore, m: BytesStateMachine) {
  return new RaftNode({
    id,
    logStore: log,
    stateMachine: m,
    transport: env.net.transport(id),
    clock: env.clock,
    timing: { heartbeatMs: 50, electionMinMs: i === 0 ? 100 : 300, electionMaxMs: i === 0 ? 101 : 400 },
    seed: i + 1,
    defer: (fn) => env.clock.setTimeout(fn, 0),
    onError: (e) => errors.push(e),
    snapshots: snaps,
    snapshotChunkBytes: CHUNK,
    snapshotWindow: WINDOW,
    snapshotRetransmitMs: 200,
  });
}

/** A cluster; with `dir`, every replica keeps its snapshots in a FileSnapshotStore under it. */
function cluster(n: number, dir?: string): Env {
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const config: ClusterConfig = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  env = { clock: new SimulatedClock(), net: new Net(), replicas: [], config, dir };
  for (const [i, id] of ids.entries()) {
    const log = new MemoryLogStore({ snapshot: { index: 0, term: 0, config } });
    const snaps = new MemorySnapshotStore();
    const files = dir ? new FileSnapshotStore(join(dir, id)) : undefined;
    const machine = new BytesStateMachine();
    const node = makeNode(id, i, log, files ?? snaps, machine);
    env.replicas.push({ id, log, snaps, files, machine, node });
  }
  for (const r of env.replicas) r.node.start();
  return env;
}

/** Crash replica i (keeps only durable state) and start it again. */
function crashAndRestart(i: number): void {
  const r = env.replicas[i];
  r.node.stop();
  env.net.queue = env.net.queue.filter((m) => m.to !== r.id && m.from !== r.id);
  r.log = r.log.durable();
  r.snaps = r.snaps.crash();
  r.node = makeNode(r.id, i, r.log, r.snaps, r.machine);
  r.node.start();
}

function step(): void {
  env.net.flush();
  env.clock.increment(0);
  env.net.flush();
  env.clock.increment(1);
}

function runUntil(cond: () => boolean, maxMs = 10_000): void {
  for (let i = 0; i < maxMs; i++) {
    if (cond()) return;
    step();
  }
  throw new Error('condition not reached');
}

function run(ms: number): void {
  for (let i = 0; i < ms; i++) step();
}

const r = (i: number) => env.replicas[i];
const cut =
  (id: string): Filter =>
  (m) =>
    m.to === id || m.from === id;

/** Propose `count` commands on n1 (the leader) and wait until the connected replicas applied them. */
function write(prefix: string, count: number, on: number[]): void {
  const before = r(0).log.lastIndex();
  for (let k = 0; k < count; k++)
    void r(0)
      .node.propose('command', `${prefix}${k}`)
      .catch(() => {});
  // Proposals of one tick go to the machine as one batch on the next (deferred) turn.
  runUntil(() => r(0).log.lastIndex() >= before + count);
  const target = before + count;
  runUntil(() => on.every((i) => r(i).machine.index >= target));
}

/** The leader snapshots its state and compacts its log completely behind it. */
function snapshotLeader(keep = 0): SnapshotMeta {
  const leader = r(0);
  const index = leader.machine.index;
  const meta: SnapshotMeta = { index, term: leader.log.termAt(index) ?? 0, config: env.config };
  if (leader.files) {
    const file = join(String(env.dir), `take-${index}.tmp`);
    fs.writeFileSync(file, leader.machine.encode());
    leader.files.install(meta, file);
  } else leader.snaps.put(meta, leader.machine.encode());
  leader.node.snapshotTaken(meta, keep);
  return meta;
}

const installs = (to: string) =>
  env.net.log.filter((m) => m.type === 'InstallSnapshot' && m.to === to) as Extract<
    RaftMessage,
    { type: 'InstallSnapshot' }
  >[];

afterEach(() => {
  for (const x of env?.replicas ?? []) {
    x.node.stop();
    x.files?.close();
  }
  if (env?.dir) fs.rmSync(env.dir, { recursive: true, force: true });
  expect(errors).toEqual([]);
  errors.length = 0;
});

describe('RaftNode snapshots', () => {
  it('compacts behind a snapshot, keeping the requested trailing window', () => {
    cluster(3);
    runUntil(() => r(0).node.status().role === 'leader');
    write('a', 30, [0, 1, 2]);
    const meta = snapshotLeader(10);
    expect(r(0).log.snapshot().index).toBe(meta.index - 10);
    expect(r(0).log.firstIndex()).toBe(meta.index - 9);
    expect(r(0).node.status().snapshotIndex).toBe(meta.index - 10);
    // Compaction is durable and survives a crash; the state machine keeps its state.
    crashAndRestart(0);
    expect(r(0).log.snapshot().index).toBe(meta.index - 10);
    runUntil(() => env.replicas.some((x) => x.node.status().role === 'leader'));
  });

  it('a follower behind the compaction point gets the snapshot in flow-controlled chunks, then entries', () => {
    cluster(3);
    runUntil(() => r(0).node.status().role === 'leader');
    write('a', 5, [0, 1, 2]);
    env.net.lose = cut('n3');
    write('b', 40, [0, 1]);
    const meta = snapshotLeader();
    expect(r(0).log.firstIndex()).toBeGreaterThan(r(2).log.lastIndex() + 1);

    // Watch the window: never more than WINDOW chunks beyond what n3 has acknowledged.
    let acked = 0;
    let maxAhead = 0;
    const seen = env.net.log.length;
    env.net.lose = (m) => {
      if (m.type === 'InstallSnapshotResponse' && m.from === 'n3') acked = Math.max(acked, m.nextOffset);
      if (m.type === 'InstallSnapshot' && m.to === 'n3') {
        maxAhead = Math.max(maxAhead, m.offset + Buffer.from(m.chunk, 'base64').length - acked);
      }
      return false;
    };
    runUntil(() => r(2).machine.index >= meta.index);
    const chunks = installs('n3');
    expect(chunks.length).toBeGreaterThanOrEqual(Math.ceil(r(0).snaps.byteLength() / CHUNK));
    expect(maxAhead).toBeLessThanOrEqual(WINDOW * CHUNK);
    expect(r(2).machine.data).toEqual(r(0).machine.data.slice(0, r(2).machine.data.length));
    expect(r(2).snaps.latest()).toEqual(meta);
    expect(r(2).log.snapshot().index).toBe(meta.index);
    expect(env.net.log.slice(seen).some((m) => m.type === 'InstallSnapshot' && m.offset === 0)).toBe(true);

    // Replication continues with plain entries after the install.
    const before = installs('n3').length;
    write('c', 5, [0, 1, 2]);
    expect(r(2).machine.data).toEqual(r(0).machine.data);
    expect(installs('n3').length).toBe(before);
  });

  it('resumes from the reported offset when chunks and answers are lost', () => {
    cluster(3);
    runUntil(() => r(0).node.status().role === 'leader');
    env.net.lose = cut('n3');
    write('b', 40, [0, 1]);
    const meta = snapshotLeader();
    let n = 0;
    env.net.lose = (m) =>
      (m.type === 'InstallSnapshot' && ++n % 4 === 2) ||
      (m.type === 'InstallSnapshotResponse' && n % 5 === 0);
    runUntil(() => r(2).machine.index >= meta.index, 20_000);
    env.net.lose = () => false;
    write('c', 3, [0, 1, 2]);
    expect(r(2).machine.data).toEqual(r(0).machine.data);
    // Every byte arrived at its offset: the follower's file equals the leader's.
    expect(Buffer.from(r(2).snaps.bytes()).equals(Buffer.from(r(0).snaps.bytes()))).toBe(true);
    // Lost chunks were resent from the follower's offset, not the whole file from the start each time.
    const sent = installs('n3');
    const size = r(0).snaps.byteLength();
    expect(sent.reduce((a, m) => a + Buffer.from(m.chunk, 'base64').length, 0)).toBeLessThan(4 * size);
  });

  it('restarts the transfer cleanly when the leader takes a newer snapshot meanwhile', () => {
    cluster(3);
    runUntil(() => r(0).node.status().role === 'leader');
    env.net.lose = cut('n3');
    write('b', 30, [0, 1]);
    const first = snapshotLeader();
    // Let a few chunks through, then stall n3's traffic while the leader moves on.
    env.net.lose = (m) => m.type === 'InstallSnapshot' && m.offset >= 2 * CHUNK;
    runUntil(() => r(2).snaps.received >= 2);
    expect(r(2).snaps.latest().index).toBe(0);
    env.net.lose = cut('n3');
    write('c', 20, [0, 1]);
    const second = snapshotLeader();
    expect(second.index).toBeGreaterThan(first.index);
    env.net.lose = () => false;
    runUntil(() => r(2).machine.index >= second.index);
    expect(r(2).snaps.latest()).toEqual(second);
    expect(Buffer.from(r(2).snaps.bytes()).equals(Buffer.from(r(0).snaps.bytes()))).toBe(true);
    expect(installs('n3').some((m) => m.lastIncludedIndex === second.index && m.offset === 0)).toBe(true);
  });

  it('a crash mid-transfer leaves the old state intact; after restart it converges', () => {
    cluster(3);
    runUntil(() => r(0).node.status().role === 'leader');
    write('a', 5, [0, 1, 2]);
    const old = [...r(2).machine.data];
    const oldIndex = r(2).machine.index;
    env.net.lose = cut('n3');
    write('b', 40, [0, 1]);
    const meta = snapshotLeader();
    // Only the first chunks get through before the crash.
    env.net.lose = (m) => m.type === 'InstallSnapshot' && m.offset >= 3 * CHUNK;
    runUntil(() => r(2).snaps.received >= 3);
    run(20);
    expect(r(2).snaps.latest().index).toBe(0);
    crashAndRestart(2);
    env.net.lose = () => false;
    // Nothing of the partial transfer is visible: same state, same log, no snapshot.
    expect(r(2).machine.data).toEqual(old);
    expect(r(2).machine.index).toBe(oldIndex);
    expect(r(2).snaps.latest().index).toBe(0);
    runUntil(() => r(2).machine.index >= meta.index);
    write('c', 3, [0, 1, 2]);
    expect(r(2).machine.data).toEqual(r(0).machine.data);
  });

  it('a follower within the trailing window gets entries, not a snapshot', () => {
    cluster(3);
    runUntil(() => r(0).node.status().role === 'leader');
    env.net.lose = cut('n3');
    write('b', 10, [0, 1]);
    snapshotLeader(50);
    env.net.lose = () => false;
    write('c', 2, [0, 1, 2]);
    expect(installs('n3')).toEqual([]);
    expect(r(2).machine.data).toEqual(r(0).machine.data);
  });

  it('a new leader whose log is compacted sends its own snapshot to a stale follower', () => {
    cluster(3);
    runUntil(() => r(0).node.status().role === 'leader');
    env.net.lose = cut('n3');
    write('b', 20, [0, 1]);
    // n2 takes its own snapshot and compacts; then n1 goes away and n2 must lead.
    const n2 = r(1);
    const meta: SnapshotMeta = {
      index: n2.machine.index,
      term: n2.log.termAt(n2.machine.index) ?? 0,
      config: env.config,
    };
    n2.snaps.put(meta, n2.machine.encode());
    n2.node.snapshotTaken(meta, 0);
    r(0).node.stop();
    env.net.lose = cut('n1');
    runUntil(() => n2.node.status().role === 'leader' || r(2).node.status().role === 'leader', 20_000);
    runUntil(() => r(2).machine.index >= meta.index, 20_000);
    expect(r(2).machine.data.slice(0, n2.machine.data.length)).toEqual(n2.machine.data);
  });
});

describe('RaftNode snapshots on files, as bytes only the state machine reads', () => {
  it("a follower behind the compaction point installs the leader's bytes, unchanged, from its own files", () => {
    cluster(3, fs.mkdtempSync(join(tmpdir(), 'qc-raft-snap-')));
    runUntil(() => r(0).node.status().role === 'leader');
    write('a', 5, [0, 1, 2]);
    env.net.lose = cut('n3');
    write('b\u0000\u00ff', 40, [0, 1]);
    const meta = snapshotLeader();
    env.net.lose = () => false;
    runUntil(() => r(2).machine.index >= meta.index);
    const leader = r(0).files as FileSnapshotStore;
    const follower = r(2).files as FileSnapshotStore;
    expect(follower.latest()).toEqual(meta);
    expect(follower.byteLength()).toBeGreaterThan(4 * CHUNK);
    // The bytes went through chunking and the follower's files untouched, and restored its state.
    const bytes = (s: FileSnapshotStore) => fs.readFileSync(s.payload()?.file as string);
    expect(bytes(follower).equals(bytes(leader))).toBe(true);
    expect(r(2).machine.restores).toBe(1);
    expect(r(2).log.snapshot().index).toBe(meta.index);
    write('c', 3, [0, 1, 2]);
    expect(r(2).machine.data).toEqual(r(0).machine.data);
  });
});
