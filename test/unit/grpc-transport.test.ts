import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../machines/protocol.js';
import { services } from '../../src/proto.js';
import { bearer } from '../../src/raft/cluster-secret.js';
import { decode, encode } from '../../src/raft/codec.js';
import { GrpcTransport } from '../../src/raft/grpc-transport.js';

const SECRET = 'a'.repeat(64);

/** Poll `cond` until it holds or the deadline passes (no sleep-and-hope). */
async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (let i = 0; i < 10_000 && Date.now() < end; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function listen(server: grpc.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
}

function stop(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

const members = [
  { id: 'a', address: '127.0.0.1:1', voter: true },
  { id: 'b', address: '127.0.0.1:2', voter: false },
];

/** One message of every type, with non-default values everywhere. */
function everyType(from: string, to: string): RaftMessage[] {
  const env = { from, to, term: 7 };
  return [
    { type: 'RequestVote', ...env, lastLogIndex: 12, lastLogTerm: 6, preVote: true, transfer: true },
    { type: 'RequestVoteResponse', ...env, granted: true, preVote: true },
    {
      type: 'AppendEntries',
      ...env,
      prevLogIndex: 3,
      prevLogTerm: 2,
      entries: [
        { index: 4, term: 7, kind: 'noop', data: '' },
        { index: 5, term: 7, kind: 'command', data: '{"type":"send","content":"héllo ✓ 🚀"}' },
        { index: 6, term: 7, kind: 'config', data: JSON.stringify({ members }) },
      ],
      leaderCommit: 4,
      readRound: 9,
    },
    {
      type: 'AppendEntries',
      ...env,
      prevLogIndex: 6,
      prevLogTerm: 7,
      entries: [],
      leaderCommit: 6,
      readRound: 0,
    },
    {
      type: 'AppendEntriesResponse',
      ...env,
      success: false,
      matchIndex: 5,
      conflictIndex: 3,
      conflictTerm: 2,
      readRound: 9,
    },
    {
      type: 'InstallSnapshot',
      ...env,
      lastIncludedIndex: 100,
      lastIncludedTerm: 6,
      config: { members },
      offset: 65536,
      chunk: Buffer.from([0, 1, 2, 250, 255, 128]).toString('base64'),
      done: true,
    },
    { type: 'InstallSnapshotResponse', ...env, lastIncludedIndex: 100, nextOffset: 65542, installed: true },
    { type: 'TimeoutNow', ...env },
    { type: 'ReadIndexRequest', ...env, requestIds: ['b:Zm9v:1', 'b:Zm9v:2'] },
    { type: 'ReadIndexResponse', ...env, requestIds: ['b:Zm9v:1'], ok: true, index: 42 },
    { type: 'ReadIndexResponse', ...env, requestIds: ['b:Zm9v:2'], ok: false, index: 0 },
  ];
}

describe('codec', () => {
  it('round-trips every message type exactly through protobuf bytes', () => {
    const send = services().RaftService.service.Send;
    for (const m of everyType('a', 'b')) {
      const bytes = send.requestSerialize({ messages: [encode(m)] });
      const back = send.requestDeserialize(bytes) as { messages: unknown[] };
      expect(decode(back.messages[0])).toEqual(m);
    }
  });

  it('refuses malformed messages', () => {
    expect(() => decode({ from: 'a', to: 'b', term: 1 })).toThrow(/no body/);
    expect(() => decode({ from: '', to: 'b', term: 1, body: 'timeout_now', timeout_now: {} })).toThrow(
      /from and to/,
    );
    const gap = encode({
      type: 'AppendEntries',
      from: 'a',
      to: 'b',
      term: 1,
      prevLogIndex: 3,
      prevLogTerm: 1,
      entries: [{ index: 5, term: 1, kind: 'noop', data: '' }],
      leaderCommit: 0,
      readRound: 0,
    });
    expect(() => decode({ ...gap, body: 'append_entries' })).toThrow(/consecutive/);
    const env = { from: 'a', to: 'b', term: 1, body: 'read_index_request' };
    expect(() => decode({ ...env, read_index_request: { request_ids: [''] } })).toThrow(/bad id/);
    expect(() => decode({ ...env, read_index_request: { request_ids: ['x'.repeat(129)] } })).toThrow(
      /bad id/,
    );
    expect(() =>
      decode({ ...env, read_index_request: { request_ids: Array.from({ length: 10_001 }, () => 'x') } }),
    ).toThrow(/list of ids/);
  });
});

describe('GrpcTransport', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function node(id: string, port = 0) {
    const received: RaftMessage[] = [];
    const server = new grpc.Server();
    const transport = new GrpcTransport({ selfId: id, secret: SECRET, retryMaxMs: 100 });
    transport.attach(server);
    transport.listen((m) => received.push(m));
    const bound = await listen(server, port);
    const n = { id, server, transport, received, port: bound, address: `127.0.0.1:${bound}` };
    cleanups.push(async () => {
      transport.close();
      await stop(n.server);
    });
    return n;
  }

  it('carries every message type between two replicas, in order, batched', async () => {
    const a = await node('a');
    const b = await node('b');
    const peers = [
      { id: 'a', address: a.address, voter: true },
      { id: 'b', address: b.address, voter: true },
    ];
    a.transport.setPeers(peers);
    b.transport.setPeers(peers);
    const ab = everyType('a', 'b');
    for (const m of ab) a.transport.send(m);
    const ba = everyType('b', 'a');
    for (const m of ba) b.transport.send(m);
    await waitFor(() => b.received.length === ab.length && a.received.length === ba.length, 'delivery');
    expect(b.received).toEqual(ab);
    expect(a.received).toEqual(ba);
    // Everything sent in one tick went out as one batch on one stream.
    expect(a.transport.stats().sent).toBe(ab.length);
    expect(a.transport.stats().rpcs).toBe(1);
    expect(a.transport.stats()).toMatchObject({ sent: ab.length, dropped: 0, rpcErrors: 0 });
  });

  it('delivers every message of many ticks exactly once and in order, in batches split by size', async () => {
    const a = await node('a');
    const b = await node('b');
    const t = new GrpcTransport({ selfId: 'a', secret: SECRET, maxBatchBytes: 200 });
    cleanups.push(() => t.close());
    t.setPeers([{ id: 'b', address: b.address, voter: true }]);
    for (let tick = 0; tick < 20; tick++) {
      for (let i = 0; i < 10; i++) t.send({ type: 'TimeoutNow', from: 'a', to: 'b', term: tick * 10 + i });
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => b.received.length === 200, 'all messages');
    // One stream per peer: the order is the order of send().
    expect(b.received.map((m) => m.term)).toEqual([...Array(200).keys()]);
    expect(t.stats().rpcs).toBeGreaterThan(20); // maxBatchBytes split the ticks into several batches
    expect(t.stats()).toMatchObject({ sent: 200, dropped: 0, rpcErrors: 0 });
    expect(a.received).toEqual([]);
  });

  it('keeps one stream per peer open across ticks, instead of one call per batch', async () => {
    const a = await node('a');
    const b = await node('b');
    let streams = 0;
    const Client = services().RaftService;
    const t = new GrpcTransport({ selfId: 'a', secret: SECRET });
    cleanups.push(() => t.close());
    t.setPeers([{ id: 'b', address: b.address, voter: true }]);
    const opened = Client.prototype.Stream;
    Client.prototype.Stream = function (this: unknown, ...args: unknown[]) {
      streams++;
      return opened.apply(this, args);
    };
    try {
      for (let i = 0; i < 30; i++) {
        t.send({ type: 'TimeoutNow', from: 'a', to: 'b', term: i });
        await waitFor(() => b.received.length === i + 1, `message ${i}`);
      }
    } finally {
      Client.prototype.Stream = opened;
    }
    expect(streams).toBe(1);
    expect(t.stats().rpcs).toBe(30);
  });

  it('never throws or blocks on a down or unknown peer, and reconnects when the peer comes back', async () => {
    const a = await node('a');
    // Reserve a port, then free it: the peer is "down" at a known address.
    const probe = await node('b');
    const port = probe.port;
    probe.transport.close();
    await stop(probe.server);
    a.transport.setPeers([
      { id: 'a', address: a.address, voter: true },
      { id: 'b', address: `127.0.0.1:${port}`, voter: true },
    ]);
    const hb = (term: number): RaftMessage => ({ type: 'TimeoutNow', from: 'a', to: 'b', term });
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) a.transport.send(hb(1));
    a.transport.send({ ...hb(1), to: 'nobody' });
    expect(Date.now() - t0).toBeLessThan(1000); // generous: send() only enqueues
    await waitFor(() => a.transport.stats().rpcErrors >= 1, 'a failed RPC');

    const b = await node('b', port);
    let term = 2;
    // Keep sending (as a leader's heartbeats would) until one gets through after the back-off.
    await waitFor(
      () => {
        a.transport.send(hb(term++));
        return b.received.length > 0;
      },
      'reconnection',
      8000,
    );
    expect(b.received.every((m) => m.type === 'TimeoutNow' && m.from === 'a')).toBe(true);
    expect(a.transport.stats().dropped).toBeGreaterThan(0);
  });

  it('bounds the queue of a peer that does not answer, dropping the oldest', async () => {
    const a = await node('a');
    const t = new GrpcTransport({ selfId: 'a', secret: SECRET, maxQueue: 10, retryMinMs: 10_000 });
    cleanups.push(() => t.close());
    t.setPeers([{ id: 'b', address: '127.0.0.1:1', voter: true }]);
    t.send({ type: 'TimeoutNow', from: 'a', to: 'b', term: 0 });
    await waitFor(() => t.stats().rpcErrors === 1, 'the first stream to fail');
    for (let i = 1; i <= 25; i++) t.send({ type: 'TimeoutNow', from: 'a', to: 'b', term: i });
    // 1 lost on the stream the peer never accepted, 15 oldest dropped from the queue.
    expect(t.stats().dropped).toBe(16);
    expect(a.received).toEqual([]);
  });

  it('learns the address of an unknown sender from its batch and can answer it', async () => {
    const a = await node('a');
    const b = await node('b');
    const joiner = new GrpcTransport({ selfId: 'b', secret: SECRET, selfAddress: b.address });
    cleanups.push(() => joiner.close());
    // 'a' knows 'b' but 'b' (a joining learner) knows nobody yet.
    const leader = new GrpcTransport({ selfId: 'a', secret: SECRET, selfAddress: a.address });
    cleanups.push(() => leader.close());
    leader.setPeers([{ id: 'b', address: b.address, voter: false }]);
    leader.send({ type: 'TimeoutNow', from: 'a', to: 'b', term: 3 });
    await waitFor(() => b.received.length === 1, 'delivery to b');
    // b's transport learned a's address from the batch; without it, this reply would be dropped.
    b.transport.send({ type: 'TimeoutNow', from: 'b', to: 'a', term: 3 });
    await waitFor(() => a.received.length === 1, 'the reply to a');
    expect(a.received[0]).toMatchObject({ from: 'b', term: 3 });
  });

  it('refuses a call without the secret or with a wrong one, delivering nothing', async () => {
    const b = await node('b');
    const Client = services().RaftService;
    const client = new Client(b.address, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const batch = { messages: everyType('a', 'b').map(encode) };
    const call = (md: grpc.Metadata) =>
      new Promise<grpc.ServiceError | null>((resolve) =>
        (client as unknown as { Send: Function }).Send(batch, md, (err: grpc.ServiceError | null) =>
          resolve(err),
        ),
      );
    const none = await call(new grpc.Metadata());
    expect(none?.code).toBe(grpc.status.UNAUTHENTICATED);
    for (const wrong of [bearer('b'.repeat(64)), bearer(`${SECRET}x`), SECRET, `Bearer  ${SECRET}`]) {
      const md = new grpc.Metadata();
      md.set('authorization', wrong);
      expect((await call(md))?.code).toBe(grpc.status.UNAUTHENTICATED);
    }
    // A wrong-secret transport gets the same answer.
    const intruder = new GrpcTransport({ selfId: 'a', secret: 'wrong' });
    cleanups.push(() => intruder.close());
    intruder.setPeers([{ id: 'b', address: b.address, voter: true }]);
    intruder.send({
      type: 'RequestVote',
      from: 'a',
      to: 'b',
      term: 1e9,
      lastLogIndex: 1e9,
      lastLogTerm: 1e9,
      preVote: false,
      transfer: false,
    });
    await waitFor(() => intruder.stats().rpcErrors === 1, 'the intruder to be refused');
    expect(b.received).toEqual([]);
    // With the right secret the same batch goes through: the refusals above were about the secret.
    const md = new grpc.Metadata();
    md.set('authorization', bearer(SECRET));
    expect(await call(md)).toBeNull();
    expect(b.received).toHaveLength(batch.messages.length);
  });

  it('refuses a malformed batch as a whole', async () => {
    const b = await node('b');
    const Client = services().RaftService;
    const client = new Client(b.address, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const good = encode({ type: 'TimeoutNow', from: 'a', to: 'b', term: 1 });
    const bad = { from: 'a', to: 'b', term: 1 }; // no body
    const md = new grpc.Metadata();
    md.set('authorization', bearer(SECRET));
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      (client as unknown as { Send: Function }).Send({ messages: [good, bad] }, md, resolve),
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(b.received).toEqual([]);
  });
});
