// The /cluster inspector: feed formatting, the switchable observer on real RaftNodes (a 3-replica
// cluster on one SimulatedClock), SSE framing, and the /cluster routes over HTTP (status, events,
// chart, controls with the secret).
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { ClusterConfig } from '../../machines/protocol.js';
import { ReplicaObservability } from '../../src/observability/replica-observability.js';
import { RaftNode } from '../../src/raft/node.js';
import { clusterRoutes, secretMatches } from '../../src/web/cluster-view.js';
import { type HttpServer, startHttpServer } from '../../src/web/http-server.js';
import {
  ReplicaInspector,
  type ReplicaView,
  describeCause,
  formatTransition,
  sseFrame,
  stateName,
  viewOfNode,
} from '../../src/web/inspector.js';
import { MemoryLogStore } from '../support/memory-log-store.js';
import { InProcessNet, LastIndexMachine } from './in-process-net.js';
import { FakeChatApi } from './web-fake-api.js';
import { SseReader } from './web-sse-reader.js';

describe('feed formatting', () => {
  it('names states with their path', () => {
    expect(stateName('follower')).toBe('follower');
    expect(stateName({ leader: 'active' })).toBe('leader.active');
    expect(stateName({ leader: { transferring: 'waiting' } })).toBe('leader.transferring.waiting');
  });

  it('shortens delayed events to their delay name', () => {
    expect(describeCause('xstate.after.electionTimeout.replica.follower')).toBe(
      'xstate.after.electionTimeout',
    );
    expect(describeCause('xstate.after.300.replica.candidate')).toBe('xstate.after.300');
    expect(describeCause('RequestVoteResponse')).toBe('RequestVoteResponse');
  });

  it('writes a transition as from → to (cause), and a new leader or term without one', () => {
    const base = { term: 3, leaderId: null, commitIndex: 0, appliedIndex: 0 };
    expect(
      formatTransition({ ...base, from: 'candidate', to: 'leader.active', cause: 'RequestVoteResponse' }),
    ).toBe('candidate → leader.active (vote reply)');
    expect(
      formatTransition(
        { ...base, from: 'follower', to: 'follower', cause: 'AppendEntries', leaderId: 'n2', term: 4 },
        { term: 3 },
      ),
    ).toBe('follower: term 4, leader n2 (append entries)');
  });

  it('frames SSE with one data line per line of JSON', () => {
    expect(sseFrame('status', { a: 1 }, 7)).toBe('event: status\nid: 7\ndata: {"a":1}\n\n');
    // JSON.stringify escapes newlines in strings, so a frame is never split by its data.
    const f = sseFrame('transition', { text: 'a\nb' });
    expect(f.split('\n\n')).toEqual(['event: transition\ndata: {"text":"a\\nb"}', '']);
  });
});

// ---- a simulated cluster of real RaftNodes ------------------------------------------------------------

function simCluster(n: number) {
  const clock = new SimulatedClock();
  const net = new InProcessNet();
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const config: ClusterConfig = {
    members: ids.map((id) => ({ id, address: `127.0.0.1:${1 + i(id)}`, voter: true })),
  };
  function i(id: string) {
    return Number(id.slice(1));
  }
  const inspectors: ReplicaInspector[] = [];
  const calls = ids.map(() => 0);
  const nodes = ids.map((id, k) => {
    const holder: { node?: RaftNode } = {};
    // As ReplicaObservability wires it: XState inspection registered only while watched, each
    // inspection event the system delivers counted.
    const inspector = new ReplicaInspector({
      view: () => viewOfNode(holder.node!),
      now: () => clock.now(),
      hook: (observer) =>
        holder.node!.setInspection(
          observer
            ? (e) => {
                calls[k]++;
                observer(e);
              }
            : null,
        ),
    });
    inspectors.push(inspector);
    holder.node = new RaftNode({
      id,
      logStore: new MemoryLogStore({ snapshot: { index: 0, term: 0, config } }),
      stateMachine: new LastIndexMachine(),
      transport: net.transport(id),
      clock,
      // n1 times out first, so it is the one that campaigns.
      timing: { heartbeatMs: 50, electionMinMs: k === 0 ? 100 : 300, electionMaxMs: k === 0 ? 101 : 400 },
      seed: k + 1,
      defer: (fn) => clock.setTimeout(fn, 0),
    });
    return holder.node;
  });
  const runUntil = (cond: () => boolean, maxMs = 3000) => {
    for (let t = 0; t < maxMs; t++) {
      net.flush();
      clock.increment(0);
      net.flush();
      if (cond()) return;
      clock.increment(1);
    }
    throw new Error('condition not reached');
  };
  return { clock, nodes, inspectors, calls, runUntil, stop: () => nodes.forEach((x) => x.stop()) };
}

describe('inspector on real replicas', () => {
  let sim: ReturnType<typeof simCluster> | undefined;
  afterEach(() => sim?.stop());

  it('records the election as transitions while watched, and nothing while not', () => {
    sim = simCluster(3);
    const seen: string[] = [];
    const off = sim.inspectors[0].subscribe((e) => seen.push(e.text));
    for (const node of sim.nodes) node.start();
    sim.runUntil(() => sim!.nodes[0].status().role === 'leader');
    sim.runUntil(() => sim!.nodes[1].status().leaderId === 'n1');

    expect(seen).toContain('follower → preCandidate (election timeout)');
    expect(seen).toContain('preCandidate → candidate (vote reply)');
    expect(seen).toContain('candidate → leader.active (vote reply)');
    const won = sim.inspectors[0].recent().find((e) => e.to === 'leader.active')!;
    expect(won.term).toBe(sim.nodes[0].status().term);
    expect(won.leaderId).toBe('n1');

    // n2 had no viewer: XState produced no inspection event for it at all, and it kept nothing.
    expect(sim.calls[0]).toBeGreaterThan(0);
    expect(sim.calls[1]).toBe(0);
    expect(sim.inspectors[1].watching).toBe(false);
    expect(sim.inspectors[1].recent()).toEqual([]);

    // Once the last viewer leaves, n1's inspection stops and its feed stops growing.
    off();
    const kept = sim.inspectors[0].recent().length;
    const inspected = sim.calls[0];
    sim.nodes[0].transferLeadership('n2').catch(() => {});
    sim.runUntil(() => sim!.nodes[1].status().role === 'leader');
    expect(sim.inspectors[0].recent().length).toBe(kept);
    expect(sim.calls[0]).toBe(inspected);
  });

  it('produces inspection events only while a viewer is subscribed, from a node started before', () => {
    sim = simCluster(3);
    for (const node of sim.nodes) node.start();
    sim.runUntil(() => sim!.nodes[1].status().leaderId === 'n1');
    // Heartbeats, elections and replies have run on every node: none was inspected.
    expect(sim.calls).toEqual([0, 0, 0]);

    const off = sim.inspectors[1].subscribe(() => {});
    const from = sim.calls[1];
    sim.runUntil(() => sim!.calls[1] > from); // the next heartbeat
    expect(sim.calls[0]).toBe(0);

    off();
    const after = sim.calls[1];
    let ms = 0;
    sim.runUntil(() => ++ms > 300); // six heartbeat intervals
    expect(sim.calls[1]).toBe(after);
    expect(sim.nodes[1].status().leaderId).toBe('n1');
  });

  it('shows a follower learning its new leader, and marks where watching resumed', () => {
    sim = simCluster(3);
    for (const node of sim.nodes) node.start();
    sim.runUntil(() => sim!.nodes[1].status().leaderId === 'n1');
    const seen: string[] = [];
    const off = sim.inspectors[1].subscribe((e) => seen.push(e.text));
    sim.nodes[0].transferLeadership('n3').catch(() => {});
    sim.runUntil(() => sim!.nodes[1].status().leaderId === 'n3');
    expect(seen).toContain('follower: leader n3 (append entries)');
    expect(seen.some((t) => /^follower: term \d+, leader unknown \(vote request\)$/.test(t))).toBe(true);
    off();
    sim.inspectors[1].subscribe(() => {});
    const last = sim.inspectors[1].recent().at(-1)!;
    expect(last.cause).toBe('viewer connected');
    expect(last.text).toBe(`watching again: follower, term ${sim.nodes[1].status().term}`);
  });
});

describe('the replica wiring (ReplicaObservability)', () => {
  it("registers the inspector with the node's actor system only while a viewer is subscribed", () => {
    const clock = new SimulatedClock();
    const net = new InProcessNet();
    const config: ClusterConfig = { members: [{ id: 'n1', address: '127.0.0.1:1', voter: true }] };
    const obs = new ReplicaObservability({ secret: 's' });
    const node = new RaftNode({
      id: 'n1',
      logStore: new MemoryLogStore({ snapshot: { index: 0, term: 0, config } }),
      stateMachine: new LastIndexMachine(),
      transport: obs.wrapTransport(net.transport('n1')),
      clock,
      timing: { heartbeatMs: 50, electionMinMs: 100, electionMaxMs: 101 },
      seed: 1,
      defer: (fn) => clock.setTimeout(fn, 0),
    });
    obs.attach({ node });
    node.start();
    try {
      const inspect = vi.spyOn(node.actor.system, 'inspect');
      for (let t = 0; t < 300 && node.status().role !== 'leader'; t++) clock.increment(1);
      expect(node.status().role).toBe('leader');
      expect(inspect).not.toHaveBeenCalled();

      const off = obs.inspector.subscribe(() => {});
      expect(inspect).toHaveBeenCalledTimes(1);
      const sub = inspect.mock.results[0].value as { unsubscribe: () => void };
      const unsubscribe = vi.spyOn(sub, 'unsubscribe');

      off();
      expect(unsubscribe).toHaveBeenCalledTimes(1);
      expect(inspect).toHaveBeenCalledTimes(1);
    } finally {
      node.stop();
      obs.close();
    }
  });
});

// ---- the /cluster routes over HTTP --------------------------------------------------------------------

const view: ReplicaView = {
  id: 'server1',
  role: 'follower',
  state: 'follower',
  term: 4,
  leaderId: 'server2',
  commitIndex: 10,
  lastApplied: 9,
  lastLogIndex: 11,
  snapshotIndex: 0,
};

describe('feed indices', () => {
  it("reports the durable commit index, not the machine's in-memory one ahead of it", () => {
    const inspector = new ReplicaInspector({ view: () => view, statusMs: 60_000 });
    const stop = inspector.subscribe(() => {});
    inspector.observe('follower', { term: 4, leaderId: 'server2', commitIndex: 12 }, 'AppendEntries');
    inspector.observe(
      'preCandidate',
      { term: 4, leaderId: null, commitIndex: 12 },
      'xstate.after.electionTimeout',
    );
    stop();
    // view.commitIndex is 10: entries 11 and 12 are committed in memory but not yet fsynced as such.
    expect(inspector.recent().at(-1)?.commitIndex).toBe(10);
  });
});

describe('/cluster routes', () => {
  let http: HttpServer | undefined;
  afterEach(async () => {
    await http?.close();
    http = undefined;
  });

  async function serve(
    opts: { dev?: boolean; role?: string; restart?: (id: string) => Promise<string> } = {},
  ) {
    const inspector = new ReplicaInspector({ view: () => view, statusMs: 60_000 });
    const actions: string[] = [];
    const node = {
      id: 'server1',
      status: () => ({
        role: opts.role ?? 'follower',
        config: {
          members: [
            { id: 'server1', address: '127.0.0.1:5555', voter: true },
            { id: 'server2', address: '127.0.0.1:5556', voter: true },
          ],
        },
      }),
      transferLeadership: async (to: string | null) => {
        actions.push(`transfer:${to}`);
      },
    };
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      gateway: new FakeChatApi().asApi(),
      logger: (await import('pino')).default({ level: 'silent' }),
      extraRoutes: clusterRoutes({
        node,
        inspector,
        view: () => view,
        httpUrlFor: (a) => `http://h:${Number(a.split(':')[1]) + 1000}`,
        secret: 's3cret',
        dev: opts.dev,
        onStop: () => actions.push('stop'),
        pause: (ms) => actions.push(`pause:${ms}`),
        restart: opts.restart,
      }),
    });
    return { inspector, actions, url: http.url };
  }

  it('serves the page, the chart and the status with every member HTTP URL', async () => {
    const { url } = await serve();
    const page = await fetch(`${url}/cluster`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/cluster.js');
    expect((await fetch(`${url}/cluster.js`)).status).toBe(200);
    // The simulator replay page: its own page, the same drawings, and no replica data.
    const replay = await fetch(`${url}/cluster/replay`);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await replay.text()).toContain('/replay.js');
    expect((await fetch(`${url}/replay.js`)).status).toBe(200);
    const chart = await fetch(`${url}/cluster/chart.svg`);
    expect(chart.headers.get('content-type')).toBe('image/svg+xml');
    expect(await chart.text()).toContain('<title>leader_active</title>');
    const status = await (await fetch(`${url}/cluster/status`)).json();
    expect(status).toMatchObject({ id: 'server1', term: 4, dev: false, controls: [] });
    expect(status.members).toEqual([
      { id: 'server1', address: '127.0.0.1:5555', voter: true, http: 'http://h:6555' },
      { id: 'server2', address: '127.0.0.1:5556', voter: true, http: 'http://h:6556' },
    ]);
  });

  it('streams a snapshot, then transitions, and switches the observer off when the page leaves', async () => {
    const { url, inspector } = await serve();
    inspector.subscribe(() => {})(); // watched once before, so the feed has history
    const ac = new AbortController();
    const res = await fetch(`${url}/cluster/events`, { signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const sse = new SseReader(res.body!.getReader(), () => ac.abort());
    const snap = await sse.until('snapshot');
    expect(JSON.parse(snap.data!).view).toEqual(view);
    expect(inspector.watching).toBe(true);
    inspector.observe(
      'preCandidate',
      { term: 4, leaderId: null },
      'xstate.after.electionTimeout.replica.follower',
    );
    const t = await sse.until('transition');
    expect(JSON.parse(t.data!).text).toBe('follower → preCandidate (election timeout)');
    // The event type itself stays in `cause` (the chart dialog matches edges by it).
    expect(JSON.parse(t.data!).cause).toBe('xstate.after.electionTimeout');
    expect(t.id).toBe(String(JSON.parse(t.data!).seq));
    ac.abort();
    const deadline = Date.now() + 3000;
    while (inspector.watching && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(inspector.watching).toBe(false);
    expect(inspector.viewers).toBe(0);
  });

  it('has no controls outside development mode', async () => {
    const { url, actions } = await serve({ dev: false });
    const res = await fetch(`${url}/cluster/control`, {
      method: 'POST',
      headers: { authorization: 'Bearer s3cret' },
      body: JSON.stringify({ action: 'stop' }),
    });
    expect(res.status).toBe(404);
    expect(actions).toEqual([]);
  });

  it('checks the secret, then pauses, transfers (on the leader only) and stops', async () => {
    const post = (url: string, body: object, secret = 's3cret') =>
      fetch(`${url}/cluster/control`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const follower = await serve({ dev: true });
    const wrong = await post(follower.url, { action: 'pause' }, 'wrong!');
    expect(wrong.status).toBe(401);
    expect((await wrong.json()).error).toMatch(/^The cluster secret given is wrong/);
    const missing = await fetch(`${follower.url}/cluster/control`, {
      method: 'POST',
      body: JSON.stringify({ action: 'pause' }),
    });
    expect(missing.status).toBe(401);
    expect((await missing.json()).error).toMatch(/need the cluster secret .* none was given\.$/);
    expect((await post(follower.url, { action: 'pause', seconds: 3 })).status).toBe(200);
    expect((await post(follower.url, { action: 'pause', seconds: 9999 })).status).toBe(400);
    expect((await post(follower.url, { action: 'reboot' })).status).toBe(400);
    expect((await post(follower.url, { action: 'transfer' })).status).toBe(409);
    expect(follower.actions).toEqual(['pause:3000']);
    await http?.close();

    const leader = await serve({ dev: true, role: 'leader' });
    expect(await (await fetch(`${leader.url}/cluster/status`)).json()).toMatchObject({
      dev: true,
      controls: ['transfer', 'pause', 'stop'],
    });
    expect((await post(leader.url, { action: 'transfer', to: 'server2' })).status).toBe(200);
    expect((await post(leader.url, { action: 'stop' })).status).toBe(202);
    const deadline = Date.now() + 3000;
    while (!leader.actions.includes('stop') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(leader.actions).toEqual(['transfer:server2', 'stop']);
  });

  it('passes a restart of itself or another member to the launcher, and says when it refuses', async () => {
    const asked: string[] = [];
    const { url } = await serve({
      dev: true,
      restart: async (id) => {
        asked.push(id);
        if (id === 'server2') throw new Error('server2 is already restarting.');
        return `${id} is restarting.`;
      },
    });
    const post = (body: object) =>
      fetch(`${url}/cluster/control`, {
        method: 'POST',
        headers: { authorization: 'Bearer s3cret', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await (await fetch(`${url}/cluster/status`)).json()).controls).toContain('restart');
    const self = await post({ action: 'restart' });
    expect(self.status).toBe(202);
    expect(await self.json()).toEqual({ ok: true, message: 'server1 is restarting.' });
    const refused = await post({ action: 'restart', id: 'server2' });
    expect(refused.status).toBe(409);
    expect((await refused.json()).error).toBe('The launcher refused: server2 is already restarting.');
    const unknown = await post({ action: 'restart', id: 'server9' });
    expect(unknown.status).toBe(404);
    expect(asked).toEqual(['server1', 'server2']);
  });

  it('offers no restart without a launcher', async () => {
    const { url } = await serve({ dev: true });
    expect((await (await fetch(`${url}/cluster/status`)).json()).controls).not.toContain('restart');
  });

  it('compares secrets in full', () => {
    expect(secretMatches('abc', 'abc')).toBe(true);
    expect(secretMatches('abd', 'abc')).toBe(false);
    expect(secretMatches('ab', 'abc')).toBe(false);
    expect(secretMatches(undefined, 'abc')).toBe(false);
    expect(secretMatches('', '')).toBe(false);
  });
});
