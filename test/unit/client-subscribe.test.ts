// ChatClient.subscribe against fake replicas: resume with after_index after a break, no duplicates, no gaps.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient, type ChatClientError, type ChatEvent } from '../../src/client/client.js';
import {
  FakeServer,
  type StreamScript,
  deterministic,
  hintMetadata,
  ok,
  waitFor,
} from './client-fake-server.js';

const servers: FakeServer[] = [];
const clients: ChatClient[] = [];

async function fake(stream: StreamScript): Promise<FakeServer> {
  const s = await FakeServer.start(() => ok({}), stream);
  servers.push(s);
  return s;
}

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.stop();
});

/** The replicated event log every fake replica serves from: one message per index 1..n. */
function eventLog(n: number): ChatEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    index: i + 1,
    event: 'message_received' as const,
    message_received: {
      message_id: i + 1,
      chat_id: 'c1',
      sender: 'bob',
      content: `m${i + 1}`,
      sent_at: 1000 + i,
      read: false,
      edited_at: 0,
    },
  }));
}

const afterIndexOf = (s: FakeServer) => s.callsOf('Subscribe').map((c) => Number(c.request.after_index));

describe('ChatClient.subscribe', () => {
  it('resumes on the next member after the last index seen when the stream errors, dropping replays', async () => {
    const log = eventLog(8);
    // Replica a sends events 3..5, then fails the stream.
    const a = await fake((call) => {
      call.sendMetadata(new grpc.Metadata());
      for (const ev of log.slice(2, 5)) call.write(ev);
      setTimeout(() => call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'Shutting down.' }), 20);
    });
    // Replica b replays from after_index, and (misbehaving) one event before it: the client must drop it.
    const b = await fake((call) => {
      call.sendMetadata(new grpc.Metadata());
      const after = Number(call.request.after_index);
      for (const ev of log.filter((e) => e.index >= after)) call.write(ev);
    });
    a.lastApplied = 2;
    const c = new ChatClient([a.address, b.address], deterministic().opts);
    clients.push(c);
    c.token = 'tok';
    const seen: number[] = [];
    const reconnects: string[] = [];
    const connects: string[] = [];
    const sub = c.subscribe({
      onEvent: (e) => seen.push(e.index),
      onConnect: (addr) => connects.push(addr),
      onReconnect: (addr) => reconnects.push(addr),
    });
    await waitFor(() => seen.length >= 6, 5000, 'all events');
    expect(seen).toEqual([3, 4, 5, 6, 7, 8]);
    // First stream: after the replica's last_applied; second: after the last index seen.
    expect(afterIndexOf(a)).toEqual([2]);
    expect(afterIndexOf(b)).toEqual([5]);
    expect(connects).toEqual([a.address]);
    expect(reconnects).toEqual([b.address]);
    expect(sub.lastIndex).toBe(8);
    expect(b.callsOf('Subscribe')[0].authorization).toBe('Bearer tok');
  });

  it('resumes after the replica is killed mid-stream and picks up the leader hint', async () => {
    const log = eventLog(6);
    let bAddress = '';
    const a = await fake((call) => {
      call.sendMetadata(hintMetadata({ leader: bAddress, members: [a.address, bAddress] })!);
      for (const ev of log.slice(0, 2)) call.write(ev);
    });
    const b = await fake((call) => {
      call.sendMetadata(new grpc.Metadata());
      for (const ev of log.filter((e) => e.index > Number(call.request.after_index))) call.write(ev);
    });
    bAddress = b.address;
    const c = new ChatClient([a.address], { ...deterministic().opts });
    clients.push(c);
    c.token = 'tok';
    const seen: number[] = [];
    const sub = c.subscribe({ onEvent: (e) => seen.push(e.index) }, { resumeFromStatus: false });
    await sub.ready;
    await waitFor(() => seen.length === 2, 5000, 'first two events');
    a.stop();
    await waitFor(() => seen.length === 6, 5000, 'the rest');
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(afterIndexOf(a)).toEqual([0]);
    expect(afterIndexOf(b)).toEqual([2]);
    expect(sub.address).toBe(b.address);
  });

  it('reconnects when a stream ends cleanly, and delivers nothing twice across several breaks', async () => {
    const log = eventLog(9);
    // Each stream sends the next three events after after_index, then ends with OK.
    const s = await fake((call) => {
      call.sendMetadata(new grpc.Metadata());
      const after = Number(call.request.after_index);
      for (const ev of log.filter((e) => e.index > after - 1 && e.index <= after + 3)) call.write(ev);
      call.end();
    });
    const c = new ChatClient([s.address], deterministic().opts);
    clients.push(c);
    c.token = 'tok';
    const seen: number[] = [];
    let reconnects = 0;
    const sub = c.subscribe(
      { onEvent: (e) => seen.push(e.index), onReconnect: () => reconnects++ },
      { resumeFromStatus: false },
    );
    await waitFor(() => seen.length >= 9, 5000, 'nine events');
    // The fourth stream opens after the ninth event arrives (after a backoff), so wait for it too.
    await waitFor(() => afterIndexOf(s).length >= 4, 5000, 'a fourth stream');
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(afterIndexOf(s).slice(0, 4)).toEqual([0, 3, 6, 9]);
    expect(reconnects).toBeGreaterThanOrEqual(2);
    sub.close();
  });

  it('resumes after the server cuts a stream that fell behind (RESOURCE_EXHAUSTED)', async () => {
    const log = eventLog(4);
    let streams = 0;
    const s = await fake((call) => {
      call.sendMetadata(new grpc.Metadata());
      const after = Number(call.request.after_index);
      if (++streams === 1) {
        call.write(log[0]);
        call.write(log[1]);
        setTimeout(
          () => call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'Fell behind.' }),
          20,
        );
      } else {
        for (const ev of log.filter((e) => e.index > after)) call.write(ev);
      }
    });
    const c = new ChatClient([s.address], deterministic().opts);
    clients.push(c);
    const seen: number[] = [];
    const errors: unknown[] = [];
    c.subscribe(
      { onEvent: (e) => seen.push(e.index), onError: (e) => errors.push(e) },
      { resumeFromStatus: false },
    );
    await waitFor(() => seen.length === 4, 5000, 'four events');
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(afterIndexOf(s)).toEqual([0, 2]);
    expect(errors).toEqual([]);
  });

  it('stops with onError on UNAUTHENTICATED instead of reconnecting', async () => {
    const s = await fake((call) =>
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'Log in first.' }),
    );
    const c = new ChatClient([s.address], deterministic().opts);
    clients.push(c);
    const errors: ChatClientError[] = [];
    const sub = c.subscribe(
      { onEvent: () => {}, onError: (e) => errors.push(e) },
      { resumeFromStatus: false },
    );
    await waitFor(() => errors.length === 1, 5000, 'onError');
    expect(errors[0].codeName).toBe('UNAUTHENTICATED');
    expect(errors[0].message).toBe('Log in first.');
    expect(sub.closed).toBe(true);
    expect(s.callsOf('Subscribe')).toHaveLength(1);
  });

  it('close() ends the stream and nothing is delivered afterwards', async () => {
    let open: grpc.ServerWritableStream<Record<string, unknown>, unknown> | undefined;
    const s = await fake((call) => {
      call.sendMetadata(new grpc.Metadata());
      open = call;
    });
    const c = new ChatClient([s.address], deterministic().opts);
    clients.push(c);
    const seen: number[] = [];
    const errors: unknown[] = [];
    const sub = c.subscribe({ onEvent: (e) => seen.push(e.index), onError: (e) => errors.push(e) });
    await sub.ready;
    await waitFor(() => open !== undefined, 5000, 'stream');
    open!.write(eventLog(1)[0]);
    await waitFor(() => seen.length === 1, 5000, 'event 1');
    sub.close();
    await waitFor(() => open!.cancelled, 5000, 'server sees the cancel');
    expect(s.callsOf('Subscribe')).toHaveLength(1);
    expect(errors).toEqual([]);
  });
});
