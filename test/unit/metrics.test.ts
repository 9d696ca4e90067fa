// /metrics: prom-client's exposition is parsed back strictly (names, types, labels, histogram buckets),
// the replica metrics are read from real RaftNodes on a SimulatedClock, client RPCs are counted through
// the service wrapper, the log store's flushes are timed and slow fsyncs counted. Also gRPC health and the
// term-stamped logger, which follow the same node.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { ClusterConfig } from '../../machines/protocol.js';
import { bindHealth, canServe } from '../../src/observability/grpc-health.js';
import { createReplicaLogger, followTerm } from '../../src/observability/logging.js';
import { PausableTransport } from '../../src/observability/pausable-transport.js';
import { RaftNode } from '../../src/raft/node.js';
import { SqliteLogStore } from '../../src/raft/sqlite-log-store.js';
import { ReplicaMetrics, peerMatches } from '../../src/web/metrics.js';
import { jsonLines } from '../support/json-lines.js';
import { MemoryLogStore } from '../support/memory-log-store.js';
import { InProcessNet, LastIndexMachine } from './in-process-net.js';

// ---- a strict parser of the text format (0.0.4) ----------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  type: string;
  help: string;
  samples: Sample[];
}

function parseExposition(text: string): Map<string, Family> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, Family>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue; // prom-client separates families with a blank line
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      expect(families.has(m[1]), `${m[1]} described twice`).toBe(false);
      families.set(m[1], { type: '', help: m[2], samples: [] });
      current = m[1];
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      expect(m[1]).toBe(current);
      families.get(m[1])!.type = m[2];
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `bad sample line: ${line}`).not.toBeNull();
    const [, name, , labelText, value] = m!;
    const labels: Record<string, string> = {};
    if (labelText) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let end = 0;
      for (let lm = re.exec(labelText); lm !== null; lm = re.exec(labelText)) {
        labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
        end = re.lastIndex;
      }
      expect(end, `bad labels: ${labelText}`).toBe(labelText.length);
    }
    const family = families.get(current!)!;
    const base = family.type === 'histogram' ? name.replace(/_(bucket|sum|count)$/, '') : name;
    expect(base, `sample ${name} outside its family ${current}`).toBe(current);
    family.samples.push({ name, labels, value: value === '+Inf' ? Number.POSITIVE_INFINITY : Number(value) });
  }
  return families;
}

function value(
  f: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = f.get(name.replace(/_(bucket|sum|count)$/, '')) ?? f.get(name);
  return family?.samples.find(
    (s) =>
      s.name === name &&
      Object.keys(labels).length === Object.keys(s.labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

describe('exposition', () => {
  it('parses back, with the default process metrics: event-loop lag, GC, heap, handles', async () => {
    const m = new ReplicaMetrics({ node: fakeNode(), processMetrics: true });
    const f = parseExposition(await m.render());
    for (const name of [
      'nodejs_eventloop_lag_seconds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_active_handles_total',
      'process_resident_memory_bytes',
    ]) {
      expect(f.get(name)?.type, name).toBe('gauge');
    }
    expect(f.get('nodejs_gc_duration_seconds')?.type).toBe('histogram');
    expect(value(f, 'qc_raft_term')).toBe(1);
    expect(value(f, 'qc_chat_subscribers')).toBe(0);
    // Without them (several replicas in one test process), only the replica's own.
    const bare = parseExposition(await new ReplicaMetrics({ node: fakeNode() }).render());
    expect([...bare.keys()].every((k) => k.startsWith('qc_'))).toBe(true);
  });

  it('reports NaN for a gauge whose reader throws, and keeps the rest', async () => {
    const m = new ReplicaMetrics({ node: fakeNode() });
    m.gauge('qc_test_broken', 'x', () => {
      throw new Error('boom');
    });
    m.gauge('qc_test_fine', 'y', () => 1);
    const f = parseExposition(await m.render());
    expect(value(f, 'qc_test_broken')).toBeNaN();
    expect(value(f, 'qc_test_fine')).toBe(1);
    expect(value(f, 'qc_raft_term')).toBe(1);
  });

  it('counts a call served outside a gRPC handler (forwarded in a batch) by method and code', async () => {
    let t = 0;
    const m = new ReplicaMetrics({ node: fakeNode(), now: () => t });
    const ok = m.observeServed('SendMessage', Promise.resolve('done'));
    const refused = m.observeServed(
      'SendMessage',
      Promise.reject(Object.assign(new Error('no'), { code: 7 })),
    );
    t = 250;
    expect(await ok).toBe('done');
    await expect(refused).rejects.toThrow('no');
    const f = parseExposition(await m.render());
    expect(value(f, 'qc_grpc_server_handled_total', { method: 'SendMessage', code: 'OK' })).toBe(1);
    expect(
      value(f, 'qc_grpc_server_handled_total', { method: 'SendMessage', code: 'PERMISSION_DENIED' }),
    ).toBe(1);
  });

  it('counts fsyncs over --slow-fsync-ms, reports them, and keeps a recent p99', async () => {
    const slow: [number, number][] = [];
    const m = new ReplicaMetrics({
      node: fakeNode(),
      slowFsyncMs: 100,
      onSlowFsync: (ms, threshold) => slow.push([ms, threshold]),
    });
    for (let i = 1; i <= 98; i++) m.observeFsync(2);
    m.observeFsync(100); // not longer than the threshold
    m.observeFsync(250);
    const f = parseExposition(await m.render());
    expect(f.get('qc_raft_log_slow_fsyncs_total')!.type).toBe('counter');
    expect(value(f, 'qc_raft_log_slow_fsyncs_total')).toBe(1);
    expect(value(f, 'qc_raft_log_fsync_seconds_count')).toBe(100);
    expect(value(f, 'qc_raft_log_fsync_seconds_bucket', { le: '0.1' })).toBe(99);
    expect(slow).toEqual([[250, 100]]);
    expect(m.diskHealth()).toEqual({ fsyncP99Ms: 100, slowFsyncs: 1 });
  });
});

// ---- replica metrics on real RaftNodes ---------------------------------------------------------------

function simCluster(n: number) {
  const clock = new SimulatedClock();
  const net = new InProcessNet();
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const config: ClusterConfig = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  const stores = ids.map(() => new MemoryLogStore({ snapshot: { index: 0, term: 0, config } }));
  const transports = ids.map((id) => new PausableTransport(net.transport(id), () => clock.now()));
  const nodes = ids.map(
    (id, k) =>
      new RaftNode({
        id,
        logStore: stores[k],
        stateMachine: new LastIndexMachine(),
        transport: transports[k],
        clock,
        timing: { heartbeatMs: 50, electionMinMs: k === 0 ? 100 : 300, electionMaxMs: k === 0 ? 101 : 400 },
        seed: k + 1,
        defer: (fn) => clock.setTimeout(fn, 0),
      }),
  );
  // The metrics are built before start, as the wiring does (they time the store's flushes).
  const metrics = nodes.map(
    (node, k) => new ReplicaMetrics({ node, logStore: stores[k], now: () => clock.now() }),
  );
  const runUntil = (cond: () => boolean, maxMs = 5000) => {
    for (let t = 0; t < maxMs; t++) {
      net.flush();
      clock.increment(0);
      net.flush();
      if (cond()) return;
      clock.increment(1);
    }
    throw new Error('condition not reached');
  };
  return { clock, nodes, stores, metrics, transports, runUntil, stop: () => nodes.forEach((x) => x.stop()) };
}

describe('replica metrics', () => {
  let sim: ReturnType<typeof simCluster> | undefined;
  afterEach(() => sim?.stop());

  it('reports role, term, indexes, elections and per-peer lag on the leader', async () => {
    sim = simCluster(3);
    for (const node of sim.nodes) node.start();
    sim.runUntil(() => sim!.nodes[0].status().role === 'leader');
    const p = sim.nodes[0].propose('command', 'x');
    sim.runUntil(() => sim!.nodes.every((x) => x.status().lastApplied >= 2));
    await p;

    const leader = parseExposition(await sim.metrics[0].render());
    const s = sim.nodes[0].status();
    expect(leader.get('qc_raft_role')!.type).toBe('gauge');
    expect(value(leader, 'qc_raft_role', { role: 'leader' })).toBe(1);
    expect(value(leader, 'qc_raft_role', { role: 'follower' })).toBe(0);
    expect(value(leader, 'qc_raft_term')).toBe(s.term);
    expect(value(leader, 'qc_raft_commit_index')).toBe(s.commitIndex);
    expect(value(leader, 'qc_raft_applied_index')).toBe(s.lastApplied);
    expect(value(leader, 'qc_raft_log_entries')).toBe(s.lastLogIndex);
    expect(leader.get('qc_raft_elections_total')!.type).toBe('counter');
    expect(value(leader, 'qc_raft_elections_total')).toBe(1);
    expect(value(leader, 'qc_raft_leaderships_total')).toBe(1);
    expect(value(leader, 'qc_raft_peer_match_lag', { peer: 'n2' })).toBe(0);
    expect(value(leader, 'qc_raft_peer_match_lag', { peer: 'n3' })).toBe(0);
    expect(value(leader, 'qc_raft_log_append_seconds_count')).toBeGreaterThan(0);

    const follower = parseExposition(await sim.metrics[1].render());
    expect(value(follower, 'qc_raft_role', { role: 'follower' })).toBe(1);
    expect(value(follower, 'qc_raft_elections_total')).toBe(0);
    expect(value(follower, 'qc_raft_leader_changes_total')).toBe(1);
    expect(follower.get('qc_raft_peer_match_lag')!.samples).toEqual([]);

    // A follower cut off falls behind: the leader reports its lag.
    sim.transports[2].pause(10_000);
    const more = [sim.nodes[0].propose('command', 'y'), sim.nodes[0].propose('command', 'z')];
    sim.runUntil(() => sim!.nodes[1].status().lastApplied >= 4);
    await Promise.all(more);
    expect(peerMatches(sim.nodes[0]).get('n3')).toBe(2);
    const lagging = parseExposition(await sim.metrics[0].render());
    expect(value(lagging, 'qc_raft_peer_match_lag', { peer: 'n3' })).toBe(2);
    expect(value(lagging, 'qc_raft_peer_match_lag', { peer: 'n2' })).toBe(0);
  });
});

// ---- client RPCs through the service wrapper ---------------------------------------------------------

function fakeNode() {
  const listeners = new Set<(r: { role: 'follower'; term: number; leaderId: string | null }) => void>();
  const state = { term: 1, leaderId: null as string | null, members: [{ id: 'a', voter: true }] };
  return {
    id: 'a',
    state,
    status: () => ({
      role: 'follower' as const,
      term: state.term,
      leaderId: state.leaderId,
      commitIndex: 0,
      lastApplied: 0,
      lastLogIndex: 0,
      snapshotIndex: 0,
      config: { members: state.members },
    }),
    onRoleChange(cb: (r: { role: 'follower'; term: number; leaderId: string | null }) => void) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    change(term: number, leaderId: string | null) {
      state.term = term;
      state.leaderId = leaderId;
      for (const l of listeners) l({ role: 'follower', term, leaderId });
    },
    actor: { getSnapshot: () => ({ children: {} }) },
  };
}

describe('client RPC metrics', () => {
  it('counts and times unary calls by method and code, and open streams as subscribers', async () => {
    let t = 0;
    const m = new ReplicaMetrics({ node: fakeNode(), now: () => t });
    const impl = m.instrumentService({
      Login: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        t += 20;
        cb(null, { token: 'x' });
      },
      SendMessage: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        t += 3;
        cb({ code: grpc.status.NOT_FOUND, details: 'no such chat' } as grpc.ServiceError);
      },
      Subscribe: (() => {}) as grpc.UntypedHandleCall,
    } as grpc.UntypedServiceImplementation);
    const replies: unknown[] = [];
    const call = (name: string) =>
      (impl[name] as (c: unknown, cb: grpc.sendUnaryData<unknown>) => void)({}, (err, v) =>
        replies.push(err ?? v),
      );
    call('Login');
    call('Login');
    call('SendMessage');
    expect(replies).toEqual([
      { token: 'x' },
      { token: 'x' },
      { code: grpc.status.NOT_FOUND, details: 'no such chat' },
    ]);

    const streams = [new EventEmitter(), new EventEmitter(), new EventEmitter()];
    for (const s of streams) {
      s.on('error', () => {}); // grpc-js listens for a handler's error to send it as the status
      (impl.Subscribe as (c: unknown) => void)(s);
    }
    let f = parseExposition(await m.render());
    expect(value(f, 'qc_chat_subscribers')).toBe(3);
    streams[0].emit('cancelled');
    streams[0].emit('close'); // one end per stream, whatever follows
    streams[1].emit('error', { code: grpc.status.UNAUTHENTICATED });
    f = parseExposition(await m.render());
    expect(value(f, 'qc_chat_subscribers')).toBe(1);
    expect(value(f, 'qc_grpc_server_handled_total', { method: 'Login', code: 'OK' })).toBe(2);
    expect(value(f, 'qc_grpc_server_handled_total', { method: 'SendMessage', code: 'NOT_FOUND' })).toBe(1);
    expect(value(f, 'qc_grpc_server_handled_total', { method: 'Subscribe', code: 'CANCELLED' })).toBe(1);
    expect(value(f, 'qc_grpc_server_handled_total', { method: 'Subscribe', code: 'UNAUTHENTICATED' })).toBe(
      1,
    );
    expect(value(f, 'qc_grpc_server_handling_seconds_sum', { method: 'Login', code: 'OK' })).toBeCloseTo(
      0.04,
    );
    expect(
      value(f, 'qc_grpc_server_handling_seconds_bucket', { method: 'Login', code: 'OK', le: '0.025' }),
    ).toBe(2);
    expect(
      value(f, 'qc_grpc_server_handling_seconds_bucket', {
        method: 'SendMessage',
        code: 'NOT_FOUND',
        le: '0.001',
      }),
    ).toBe(0);
  });

  it('times each SQLite commit (one fsync) and each flush until durable', async () => {
    const db = new Database(':memory:');
    const store = new SqliteLogStore({ db, nodeId: 'a' });
    const m = new ReplicaMetrics({ node: fakeNode(), logStore: store });
    store.write({
      hardState: { term: 1, votedFor: null },
      entries: [{ index: 1, term: 1, kind: 'noop', data: '' }],
    });
    await new Promise<void>((resolve) => store.flush(resolve));
    store.flush(() => {}); // nothing staged: no fsync to count
    await new Promise<void>((resolve) => store.flush(resolve));
    const f = parseExposition(await m.render());
    expect(value(f, 'qc_raft_log_fsync_seconds_count')).toBe(store.stats().commits);
    expect(value(f, 'qc_raft_log_append_seconds_count')).toBe(3);
    expect(value(f, 'qc_raft_log_commits')).toBe(store.stats().commits);
    store.close();
    db.close();
  });
});

// ---- gRPC health and logs follow the node ---------------------------------------------------------------

describe('health and logs', () => {
  it('serves only while the replica is a member that knows a leader', () => {
    const node = fakeNode();
    const seen: string[] = [];
    const stop = bindHealth({ setStatus: (s, st) => seen.push(`${s || '*'}=${st}`) }, node, {
      services: ['', 'c'],
    });
    expect(seen).toEqual(['*=NOT_SERVING', 'c=NOT_SERVING']);
    node.change(2, 'b');
    expect(canServe(node)).toBe(true);
    expect(seen.slice(2)).toEqual(['*=SERVING', 'c=SERVING']);
    node.change(3, 'b'); // same answer: no new status
    expect(seen).toHaveLength(4);
    node.change(4, null);
    expect(seen.slice(4)).toEqual(['*=NOT_SERVING', 'c=NOT_SERVING']);
    stop();
    node.change(5, 'b');
    expect(seen).toHaveLength(6);
    node.state.members = [];
    expect(canServe(node)).toBe(false);
  });

  it('puts node_id and the current term on every log line', async () => {
    const { sink, lines } = jsonLines();
    const { logger, term } = createReplicaLogger({ nodeId: 'server3', destination: sink, pretty: false });
    const node = fakeNode();
    logger.info('before the node');
    followTerm(term, node);
    logger.info('at term 1');
    node.change(7, 'b');
    logger.child({ component: 'x' }).warn({ peer: 'b' }, 'at term 7');
    logger.info({ term: 99 }, 'explicit term wins');
    expect(lines.map((l) => [l.msg, l.node_id, l.term])).toEqual([
      ['before the node', 'server3', undefined],
      ['at term 1', 'server3', 1],
      ['at term 7', 'server3', 7],
      ['explicit term wins', 'server3', 99],
    ]);
  });
});
