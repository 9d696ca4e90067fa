// The inspector's issue-12 parts below the page: the pre-candidate role (inspector only), the log as
// term runs with the leader's match indexes in the view, the fault transport (cut, heal) and its tap,
// traffic frames streamed only while a viewer is connected, the cut/heal controls, and the page's
// view-state model (cluster-model.js, pure: merging link reports, term changes, why an election
// happened, and the frames the timeline scrubs).
import { afterEach, describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../machines/protocol.js';
import { PausableTransport, type TransportTap } from '../../src/observability/pausable-transport.js';
import type { Transport } from '../../src/raft/interfaces.js';
import { clusterRoutes } from '../../src/web/cluster-view.js';
import { type HttpServer, startHttpServer } from '../../src/web/http-server.js';
import { ReplicaInspector, type ReplicaView, inspectorRole, viewOfNode } from '../../src/web/inspector.js';
import { FakeChatApi } from './web-fake-api.js';
import { SseReader } from './web-sse-reader.js';

const heartbeat = (from: string, to: string): RaftMessage => ({
  type: 'AppendEntries',
  from,
  to,
  term: 2,
  prevLogIndex: 0,
  prevLogTerm: 0,
  entries: [],
  leaderCommit: 0,
  readRound: 0,
});

describe('the role and the log in the view', () => {
  it('names the pre-vote round pre-candidate, and leaves the other roles as GetStatus says them', () => {
    // GetStatus (API.md) reports a pre-candidate as candidate: the contract's roles stay.
    expect(inspectorRole('candidate', 'preCandidate')).toBe('pre-candidate');
    expect(inspectorRole('candidate', 'candidate')).toBe('candidate');
    expect(inspectorRole('leader', 'leader.active')).toBe('leader');
    expect(inspectorRole('follower', 'follower')).toBe('follower');
  });

  it("carries the log's term runs, and on a leader the match index of each follower", () => {
    const terms = [1, 1, 2, 2, 2];
    const log = { firstIndex: () => 1, lastIndex: () => 5, termAt: (i: number) => terms[i - 1] };
    const replication = {
      getSnapshot: () => ({ context: { peers: { n2: { match: 5 }, n3: { match: 3 } } } }),
    };
    const node = (role: string, value: unknown) => ({
      status: () => ({
        id: 'n1',
        role,
        term: 2,
        leaderId: role === 'leader' ? 'n1' : null,
        commitIndex: 4,
        lastApplied: 4,
        lastLogIndex: 5,
        snapshotIndex: 0,
      }),
      actor: { getSnapshot: () => ({ value, children: { replication } }) },
    });
    const v = viewOfNode(node('leader', { leader: 'active' }), log);
    expect(v).toMatchObject({
      role: 'leader',
      state: 'leader.active',
      firstIndex: 1,
      runs: [
        { fromIndex: 1, toIndex: 2, term: 1 },
        { fromIndex: 3, toIndex: 5, term: 2 },
      ],
      match: { n2: 5, n3: 3 },
    });
    const pre = viewOfNode(node('candidate', 'preCandidate'), log);
    expect(pre.role).toBe('pre-candidate');
    expect(pre.match).toBeUndefined();
  });
});

class RecordingTransport implements Transport {
  sent: RaftMessage[] = [];
  handler: ((m: RaftMessage) => void) | undefined;
  send(m: RaftMessage): void {
    this.sent.push(m);
  }
  listen(h: (m: RaftMessage) => void): void {
    this.handler = h;
  }
  setPeers(): void {}
  close(): void {}
}

describe('the fault transport', () => {
  it('drops messages to and from a cut peer, both ways, until healed, and taps each one', () => {
    const inner = new RecordingTransport();
    const t = new PausableTransport(inner, () => 0);
    const got: RaftMessage[] = [];
    t.listen((m) => got.push(m));
    const tapped: string[] = [];
    const tap: TransportTap = (m, dropped) => tapped.push(`${m.from}>${m.to}${dropped ? ' dropped' : ''}`);
    t.tap = tap;
    t.cut('n2');
    expect(t.cutPeers()).toEqual(['n2']);
    t.send(heartbeat('n1', 'n2'));
    t.send(heartbeat('n1', 'n3'));
    inner.handler?.(heartbeat('n2', 'n1'));
    inner.handler?.(heartbeat('n3', 'n1'));
    expect(inner.sent.map((m) => m.to)).toEqual(['n3']);
    expect(got.map((m) => m.from)).toEqual(['n3']);
    // Sent messages are tapped once (by the sender); received ones only when dropped here.
    expect(tapped).toEqual(['n1>n2 dropped', 'n1>n3', 'n2>n1 dropped']);
    t.heal();
    expect(t.cutPeers()).toEqual([]);
    t.send(heartbeat('n1', 'n2'));
    inner.handler?.(heartbeat('n2', 'n1'));
    expect(inner.sent.map((m) => m.to)).toEqual(['n3', 'n2']);
    expect(got.map((m) => m.from)).toEqual(['n3', 'n2']);
    // Without a tap (nobody watching), nothing is recorded.
    t.tap = null;
    t.send(heartbeat('n1', 'n3'));
    expect(tapped).toHaveLength(4);
  });
});

describe('traffic frames and the cut/heal controls', () => {
  let http: HttpServer | undefined;
  afterEach(async () => {
    await http?.close();
    http = undefined;
  });

  const view: ReplicaView = {
    id: 'server1',
    role: 'leader',
    state: 'leader.active',
    term: 2,
    leaderId: 'server1',
    commitIndex: 1,
    lastApplied: 1,
    lastLogIndex: 1,
    snapshotIndex: 0,
  };

  async function serve() {
    const transport = new PausableTransport(new RecordingTransport());
    const inspector = new ReplicaInspector({
      view: () => ({ ...view, faults: { cut: transport.cutPeers(), pausedMs: 0 } }),
      statusMs: 60_000,
      trafficMs: 20,
      tapTraffic: (tap) => {
        transport.tap = tap;
      },
    });
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      gateway: new FakeChatApi().asApi(),
      logger: (await import('pino')).default({ level: 'silent' }),
      extraRoutes: clusterRoutes({
        node: {
          id: 'server1',
          status: () => ({
            role: 'leader',
            config: {
              members: ['server1', 'server2', 'server3'].map((id, i) => ({
                id,
                address: `127.0.0.1:${5555 + i}`,
                voter: true,
              })),
            },
          }),
          transferLeadership: async () => {},
        },
        inspector,
        view: () => view,
        httpUrlFor: () => undefined,
        secret: 's3cret',
        dev: true,
        links: { cut: (p) => transport.cut(p), heal: () => transport.heal() },
      }),
    });
    const post = (body: object) =>
      fetch(`${http!.url}/cluster/control`, {
        method: 'POST',
        headers: { authorization: 'Bearer s3cret', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    return { transport, inspector, post, url: http.url };
  }

  it('taps the transport only while a viewer is connected, and streams its traffic frames', async () => {
    const { transport, inspector, url } = await serve();
    expect(transport.tap).toBeNull();
    const ac = new AbortController();
    const res = await fetch(`${url}/cluster/events`, { signal: ac.signal });
    const sse = new SseReader(res.body!.getReader(), () => ac.abort());
    await sse.until('snapshot');
    expect(transport.tap).not.toBeNull();
    transport.cut('server3');
    transport.send(heartbeat('server1', 'server2'));
    transport.send(heartbeat('server1', 'server3'));
    let links: { to: string; broken: boolean; perSecond: number }[] = [];
    for (let i = 0; i < 20 && links.length === 0; i++)
      links = JSON.parse((await sse.until('traffic')).data!).links;
    expect(links.find((l) => l.to === 'server2')).toMatchObject({ broken: false });
    expect(links.find((l) => l.to === 'server3')).toMatchObject({ broken: true, perSecond: 0 });
    ac.abort();
    const deadline = Date.now() + 3000;
    while (inspector.watching && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(transport.tap).toBeNull();
  });

  it('cuts the link to a member and heals all, with the secret, and refuses a cut to itself or a stranger', async () => {
    const { transport, post, url } = await serve();
    expect((await (await fetch(`${url}/cluster/status`)).json()).controls).toEqual(
      expect.arrayContaining(['cut', 'heal']),
    );
    const cut = await post({ action: 'cut', peer: 'server2' });
    expect(cut.status).toBe(200);
    expect((await cut.json()).message).toBe('The link server1 ↔ server2 is cut at server1.');
    expect(transport.cutPeers()).toEqual(['server2']);
    expect((await post({ action: 'cut', peer: 'server1' })).status).toBe(400);
    const stranger = await post({ action: 'cut', peer: 'server9' });
    expect(stranger.status).toBe(404);
    expect((await stranger.json()).error).toBe("There is no member 'server9' to cut the link to.");
    expect((await post({ action: 'heal' })).status).toBe(200);
    expect(transport.cutPeers()).toEqual([]);
  });
});

// ---- the page's model (plain JS, no DOM) ----------------------------------------------------------

interface Model {
  emptyState(at?: number): ModelState;
  applyStatus(s: ModelState, view: object, at: number): void;
  applyDown(s: ModelState, id: string, at: number): void;
  applyTraffic(s: ModelState, reporter: string, frame: object, at: number): void;
  applyTransition(s: ModelState, id: string, entry: object): void;
  linkPairs(
    s: ModelState,
  ): { a: string; b: string; broken: boolean; down: boolean; cut: boolean; perSecond: number }[];
  termChanges(feed: object[]): { term: number; id: string }[];
  whyElection(
    feed: object[],
    term: number,
  ): { text: string; id: string; cause: string; winner: string | null } | null;
  History: new (
    keepMs?: number,
  ) => {
    record(s: ModelState): void;
    at(t: number, feed?: object[]): (ModelState & { feed: object[] }) | null;
    first: number;
    last: number;
  };
}
interface ModelState {
  at: number;
  replicas: Record<string, { role: string; term: number; up: boolean }>;
  feed: { id: string; term: number }[];
  messages: object[];
}

// A variable path: the page's module is plain JS, loaded as it is served.
const modelPath = '../../src/web/static/cluster-model.js';
const model = (await import(modelPath)) as Model;

const status = (id: string, role: string, term: number, extra: object = {}) => ({
  id,
  role,
  state: role,
  term,
  leaderId: null,
  commitIndex: 0,
  lastApplied: 0,
  lastLogIndex: 0,
  snapshotIndex: 0,
  ...extra,
});
const link = (from: string, to: string, extra: object = {}) => ({
  from,
  to,
  perSecond: 20,
  dropsPerSecond: 0,
  kinds: { heartbeat: 20 },
  broken: false,
  ...extra,
});
const feedEntry = (seq: number, at: number, from: string, to: string, cause: string, term: number) => ({
  seq,
  at,
  from,
  to,
  cause,
  term,
  leaderId: null,
  commitIndex: 0,
  appliedIndex: 0,
  text: `${from} → ${to} (${cause})`,
});

describe('the page model', () => {
  it("merges both ends' link reports: the sender's rate, either end's drops, a cut or down end broken", () => {
    const s = model.emptyState(0);
    for (const id of ['a', 'b', 'c']) model.applyStatus(s, status(id, 'follower', 2), 0);
    model.applyStatus(s, status('a', 'leader', 2, { faults: { cut: ['c'], pausedMs: 0 } }), 0);
    model.applyTraffic(
      s,
      'a',
      {
        intervalMs: 250,
        links: [link('a', 'b'), link('a', 'c', { perSecond: 0, dropsPerSecond: 20, broken: true })],
        messages: [],
      },
      100,
    );
    // b reports what it sends to a; b drops nothing.
    model.applyTraffic(
      s,
      'b',
      { intervalMs: 250, links: [link('b', 'a', { perSecond: 19 })], messages: [] },
      100,
    );
    const pairs = Object.fromEntries(model.linkPairs(s).map((p) => [`${p.a}${p.b}`, p]));
    expect(pairs.ab).toMatchObject({ broken: false, perSecond: 39, cut: false });
    expect(pairs.ac).toMatchObject({ broken: true, cut: true });
    expect(pairs.bc).toMatchObject({ broken: false, perSecond: 0 });
    model.applyDown(s, 'b', 200);
    expect(model.linkPairs(s).find((p) => p.b === 'b')?.down).toBe(true);
    expect(s.replicas.b.role).toBe('unreachable');
  });

  it('finds the term changes and says why the election happened: a timeout, or a TimeoutNow', () => {
    const s = model.emptyState(0);
    model.applyTransition(
      s,
      'b',
      feedEntry(1, 1000, 'follower', 'preCandidate', 'xstate.after.electionTimeout', 2),
    );
    model.applyTransition(s, 'b', feedEntry(2, 1010, 'preCandidate', 'candidate', 'RequestVoteResponse', 3));
    model.applyTransition(s, 'c', feedEntry(1, 1015, 'follower', 'follower', 'RequestVote', 3));
    model.applyTransition(s, 'b', feedEntry(3, 1020, 'candidate', 'leader.active', 'RequestVoteResponse', 3));
    // Streams interleave: an entry that arrives late still lands in time order.
    model.applyTransition(
      s,
      'a',
      feedEntry(9, 900, 'leader.active', 'leader.active', 'AppendEntriesResponse', 2),
    );
    model.applyTransition(s, 'c', feedEntry(2, 2000, 'follower', 'candidate', 'TimeoutNow', 4));
    expect(s.feed.map((f) => f.term)).toEqual([2, 2, 3, 3, 3, 4]);
    expect(model.termChanges(s.feed).map((c) => `${c.term}:${c.id}`)).toEqual(['3:b', '4:c']);
    const why3 = model.whyElection(s.feed, 3);
    expect(why3).toMatchObject({ id: 'b', cause: 'xstate.after.electionTimeout', winner: 'b' });
    expect(why3?.text).toBe(
      'Term 3: b started an election because its election timeout fired (no heartbeat from a leader in time), won the pre-vote, and became candidate; b won it.',
    );
    expect(model.whyElection(s.feed, 4)?.text).toMatch(
      /^Term 4: c started an election because the leader asked it to take over \(TimeoutNow/,
    );
    expect(model.whyElection(s.feed, 7)).toBeNull();
  });

  it('keeps frames for the last minutes and gives the state as it was at a moment', () => {
    const h = new model.History(1000);
    const s = model.emptyState(0);
    model.applyStatus(s, status('a', 'leader', 2), 0);
    h.record(s);
    s.at = 500;
    model.applyStatus(s, status('a', 'follower', 3), 500);
    h.record(s);
    expect(h.at(499)?.replicas.a).toMatchObject({ role: 'leader', term: 2 });
    expect(h.at(700)?.replicas.a).toMatchObject({ role: 'follower', term: 3 });
    // Frames are copies: a later change does not rewrite the past.
    s.replicas.a.term = 9;
    expect(h.at(700)?.replicas.a.term).toBe(3);
    s.at = 1600;
    h.record(s);
    expect([h.first, h.last]).toEqual([1600, 1600]);
  });
});
