// Pipelining on the real event loop (issue 10, Deliver 4): a leader's AppendEntries reaches its peer's
// stream BEFORE the leader's own flush (fsync) starts, so replication overlaps the leader's fsync.
//
// The parts are wired as RaftNode.start wires them: the ReadyExecutor with `defer` = setImmediate, its
// `send` the production GrpcTransport. Only the gRPC stream is a fake that records each write (what
// the transport hands to HTTP/2), and the log store records when its flush is called: production's
// SQLite store fsyncs synchronously inside flush() (flushMode 'sync'), blocking the loop, so a write
// that comes after that call reaches the socket only after the fsync. With the transport's old
// setImmediate pump, the flush (scheduled when the entries were written, before they were sent) ran
// first and these tests fail.

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Effect, Entry, RaftMessage } from '../../machines/protocol.js';
import { services } from '../../src/proto.js';
import { GrpcTransport } from '../../src/raft/grpc-transport.js';
import { ReadyExecutor } from '../../src/raft/ready-executor.js';
import { MemoryLogStore } from '../support/memory-log-store.js';
import { notingLog } from '../support/noting-log.js';

const SECRET = 'a'.repeat(64);

const entry = (index: number): Entry => ({ index, term: 1, kind: 'command', data: `e${index}` });

const append: RaftMessage = {
  type: 'AppendEntries',
  from: 'a',
  to: 'b',
  term: 1,
  prevLogIndex: 0,
  prevLogTerm: 0,
  entries: [],
  leaderCommit: 0,
  readRound: 0,
};

const ack: RaftMessage = {
  type: 'AppendEntriesResponse',
  from: 'a',
  to: 'b',
  term: 1,
  success: true,
  matchIndex: 1,
  conflictIndex: 0,
  conflictTerm: 0,
  readRound: 0,
};

/** Poll `cond` on the event loop until it holds or the deadline passes. */
async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** The oneof field of an encoded message (its type), with the entries an AppendEntries carries. */
function bodyOf(wire: Record<string, unknown>): string {
  const body = Object.keys(wire).find((k) => !['from', 'to', 'term'].includes(k)) ?? '?';
  const entries = (wire[body] as { entries?: unknown[] }).entries;
  return entries ? `${body}(${entries.length})` : body;
}

function rig() {
  const events: string[] = [];
  // The peer's stream: every batch the transport writes is recorded with the bodies it carries.
  const fakeStream = {
    write(request: { messages: Record<string, unknown>[] }) {
      events.push(`write ${request.messages.map(bodyOf).join(',')}`);
      return true;
    },
    on: () => fakeStream,
    once: () => fakeStream,
    cancel: () => {},
  };
  const Client = services().RaftService;
  vi.spyOn(Client.prototype as unknown as { Stream: () => unknown }, 'Stream').mockImplementation(
    () => fakeStream,
  );
  const transport = new GrpcTransport({ selfId: 'a', secret: SECRET });
  transport.setPeers([{ id: 'b', address: '127.0.0.1:1', voter: true }]);
  const store = new MemoryLogStore();
  const ready = new ReadyExecutor(
    {
      log: notingLog(store, (what) => events.push(what)),
      send: (m) => transport.send(m),
      defer: (fn) => setImmediate(fn),
      persisted: () => {},
      apply: (upTo) => upTo,
      other: () => {},
    },
    { durableIndex: 0, commitIndex: 0, appliedIndex: 0 },
  );
  /** Carry out `effects` in a turn of their own, as the machine emits them (a proposal batch runs in a
   *  setImmediate of ProposalTracker). */
  const step = (effects: Effect[]) =>
    new Promise<void>((resolve) =>
      setImmediate(() => {
        ready.execute(effects);
        resolve();
      }),
    );
  return { events, store, transport, step };
}

describe('pipelined AppendEntries on the event loop', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("writes a leader's AppendEntries to the peer's stream before its own fsync starts", async () => {
    const { events, transport, step } = rig();
    await step([
      { type: 'persist', entries: [entry(1)] },
      { type: 'send', message: append, afterPersist: false, entries: { from: 1, to: 1, term: 1 } },
    ]);
    await waitFor(() => events.includes('flush done') && events.some((e) => e.startsWith('write')), 'both');
    expect(events).toEqual(['write append_entries(1)', 'flush starts', 'flush done']);
    transport.close();
  });

  it('still writes it first when the fsync completes later (a slow disk)', async () => {
    const { events, store, transport, step } = rig();
    store.holdFlushes();
    await step([
      { type: 'persist', entries: [entry(1)] },
      { type: 'send', message: append, afterPersist: false, entries: { from: 1, to: 1, term: 1 } },
    ]);
    await waitFor(() => events.includes('flush starts') && events.some((e) => e.startsWith('write')), 'both');
    expect(events).toEqual(['write append_entries(1)', 'flush starts']);
    store.releaseFlushes();
    expect(events).toEqual(['write append_entries(1)', 'flush starts', 'flush done']);
    transport.close();
  });

  it('writes an acknowledgement only after the fsync it promises, then at once', async () => {
    const { events, store, transport, step } = rig();
    store.holdFlushes();
    await step([
      { type: 'persist', entries: [entry(1)] },
      { type: 'send', message: ack, afterPersist: true },
    ]);
    await waitFor(() => events.includes('flush starts'), 'the flush');
    // The executor holds the ack: nothing reached the transport, whenever it writes.
    expect(events).toEqual(['flush starts']);
    store.releaseFlushes();
    // Released by the flush; the transport writes it in a microtask of the same callback.
    expect(events).toEqual(['flush starts', 'flush done']);
    await Promise.resolve();
    expect(events).toEqual(['flush starts', 'flush done', 'write append_entries_response']);
    transport.close();
  });
});
