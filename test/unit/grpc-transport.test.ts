import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../machines/protocol.js';
import { services } from '../../src/proto.js';
import { bearer } from '../../src/raft/cluster-secret.js';
import { decode, encode } from '../../src/raft/codec.js';
import { GrpcTransport } from '../../src/raft/grpc-transport.js';
import { raftSecretGate } from '../../src/raft/raft-service.js';
import { partialCall, rawClient, rawClientStream, rawUnary } from './raw-grpc.js';

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

  /** A transport on its own server; `gate: false` leaves the interceptor out (the service alone). */
  async function node(id: string, port = 0, opts: { gate?: boolean } = {}) {
    const received: RaftMessage[] = [];
    const server = new grpc.Server({
      // As on a replica (grpc-server.ts): large batches for peers, the gate for everyone else.
      'grpc.max_receive_message_length': 16 << 20,
      interceptors: opts.gate === false ? [] : [raftSecretGate(SECRET)],
    });
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

  it('reports a working connection that is lost once, not each failed reconnection after it', async () => {
    const a = await node('a');
    const b = await node('b');
    const lost: string[] = [];
    a.transport.onPeerLost((id) => lost.push(id));
    a.transport.setPeers([{ id: 'b', address: b.address, voter: true }]);
    const hb = (term: number): RaftMessage => ({ type: 'TimeoutNow', from: 'a', to: 'b', term });
    a.transport.send(hb(1));
    await waitFor(() => b.received.length === 1, 'delivery');
    expect(lost).toEqual([]);
    // b dies (as on kill -9, its connections close at once).
    b.transport.close();
    b.server.forceShutdown();
    await waitFor(() => lost.length > 0, 'the lost connection');
    expect(lost).toEqual(['b']);
    // Reconnection attempts fail; they are not reported again.
    let term = 2;
    await waitFor(() => {
      a.transport.send(hb(term++));
      return a.transport.stats().rpcErrors >= 3;
    }, 'failed reconnections');
    expect(lost).toEqual(['b']);
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
    expect(none?.details).toMatch(/^Send needs the cluster secret .*none was given\.$/);
    for (const wrong of [bearer('b'.repeat(64)), bearer(`${SECRET}x`), SECRET, `Bearer  ${SECRET}`]) {
      const md = new grpc.Metadata();
      md.set('authorization', wrong);
      const err = await call(md);
      expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
      // A value that is no bearer token at all counts as missing; a bearer token that differs, as wrong.
      expect(err?.details).toMatch(
        wrong.startsWith('Bearer ') && !wrong.startsWith('Bearer  ') ? /is wrong/ : /none was given/,
      );
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

  const SEND = '/quorumchat.v1.RaftService/Send';
  const STREAM = '/quorumchat.v1.RaftService/Stream';
  const withSecret = (): grpc.Metadata => {
    const md = new grpc.Metadata();
    md.set('authorization', bearer(SECRET));
    return md;
  };
  const sendRequest = services().RaftService.service.Send.requestSerialize;

  it('refuses a call without the secret as soon as its metadata arrives, before reading its body', async () => {
    const b = await node('b');
    // A 2 MiB message of which only 1 KiB ever arrives: only a server that decides on the metadata
    // alone can answer it. The same call with the secret gets no answer: the server waits for the body.
    for (const path of [SEND, STREAM]) {
      const refused = await partialCall(b.address, path, { claimBytes: 2 << 20, sendBytes: 1024 });
      expect(refused?.status, path).toBe(grpc.status.UNAUTHENTICATED);
      expect(refused?.message).toMatch(/^(Send|Stream) needs the cluster secret as .*\.$/);
      const wrong = await partialCall(b.address, path, {
        claimBytes: 2 << 20,
        sendBytes: 1024,
        metadata: { authorization: bearer('wrong') },
      });
      expect(wrong?.status, path).toBe(grpc.status.UNAUTHENTICATED);
    }
    const waits = await partialCall(b.address, SEND, {
      claimBytes: 2 << 20,
      sendBytes: 1024,
      metadata: { authorization: bearer(SECRET) },
      waitMs: 300,
    });
    expect(waits).toBeUndefined();
    expect(b.received).toEqual([]);
  });

  it('closes a peer stream that fails authentication at once, without waiting for its messages', async () => {
    const b = await node('b');
    const client = await rawClient(b.address);
    cleanups.push(() => client.close());
    // Opened, nothing written, never half-closed: the refusal comes anyway.
    const out = await rawClientStream(client, STREAM, [], new grpc.Metadata(), false);
    expect(out.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(out.ms).toBeLessThan(2000);
  });

  it('checks the secret before decoding even without the gate, and decodes only afterwards', async () => {
    // Count the decoder's calls (installed before the service is registered, which may capture it).
    const method = services().RaftService.service.Send;
    const original = method.requestDeserialize;
    let decoded = 0;
    method.requestDeserialize = (bytes: Buffer) => {
      decoded++;
      return original(bytes);
    };
    try {
      const b = await node('b', 0, { gate: false });
      const client = await rawClient(b.address);
      cleanups.push(() => client.close());
      const bytes = sendRequest({ messages: [encode({ type: 'TimeoutNow', from: 'a', to: 'b', term: 1 })] });
      const refused = await rawUnary(client, SEND, bytes);
      expect(refused.code).toBe(grpc.status.UNAUTHENTICATED);
      const streamed = await rawClientStream(client, STREAM, [bytes]);
      expect(streamed.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(decoded).toBe(0);
      expect(b.received).toEqual([]);
      expect((await rawUnary(client, SEND, bytes, withSecret())).code).toBe(grpc.status.OK);
      expect(decoded).toBe(1);
      expect(b.received).toHaveLength(1);
    } finally {
      method.requestDeserialize = original;
    }
  });

  it('answers malformed bytes with INVALID_ARGUMENT with the secret and UNAUTHENTICATED without', async () => {
    for (const gate of [true, false]) {
      const b = await node('b', 0, { gate });
      const client = await rawClient(b.address);
      cleanups.push(() => client.close());
      for (const bad of [[0xff], [0x07], [0x0a, 0x00, 0x0a]].map((x) => Buffer.from(x))) {
        expect(() => services().RaftService.service.Send.requestDeserialize(bad)).toThrow();
        const send = await rawUnary(client, SEND, bad, withSecret());
        expect(send.code, `gate ${gate}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect(send.details).toBe('The request is not a valid Send message.');
        const stream = await rawClientStream(client, STREAM, [bad], withSecret());
        expect(stream.code, `gate ${gate}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect((await rawUnary(client, SEND, bad)).code).toBe(grpc.status.UNAUTHENTICATED);
        expect((await rawClientStream(client, STREAM, [bad])).code).toBe(grpc.status.UNAUTHENTICATED);
      }
      // A malformed message ends an open stream; the well-formed batches before it were delivered.
      const good = sendRequest({ messages: [encode({ type: 'TimeoutNow', from: 'a', to: 'b', term: 2 })] });
      const mixed = await rawClientStream(client, STREAM, [good, Buffer.from([0xff]), good], withSecret());
      expect(mixed.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(b.received.map((m) => m.term)).toEqual([2]);
    }
  });

  it('still takes large batches from authenticated peers', async () => {
    const b = await node('b');
    const client = await rawClient(b.address);
    cleanups.push(() => client.close());
    const data = 'x'.repeat(60_000);
    const entries = Array.from({ length: 40 }, (_, i) => ({
      index: i + 1,
      term: 1,
      kind: 'command' as const,
      data,
    }));
    const batch = sendRequest({
      messages: [
        encode({
          type: 'AppendEntries',
          from: 'a',
          to: 'b',
          term: 1,
          prevLogIndex: 0,
          prevLogTerm: 0,
          entries,
          leaderCommit: 0,
          readRound: 0,
        }),
      ],
    });
    expect(batch.length).toBeGreaterThan(2 << 20);
    expect((await rawUnary(client, SEND, batch, withSecret())).code).toBe(grpc.status.OK);
    expect((await rawClientStream(client, STREAM, [batch, batch], withSecret())).code).toBe(grpc.status.OK);
    expect(b.received).toHaveLength(3);
  });
});
