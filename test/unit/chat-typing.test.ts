// Typing notices: the fan-out's throttle (injected clock), the relay payload codec, the receiver-side
// expiry, and RaftService.Relay's authentication.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { Typing } from '../../src/chat/types.js';
import {
  TYPING_EXPIRY_MS,
  TypingFanout,
  type TypingNotice,
  decodeNotice,
  encodeNotice,
} from '../../src/chat/typing.js';
import { TypingIndicators } from '../../src/client/typing.js';
import { services } from '../../src/proto.js';
import { addRaftService } from '../../src/raft/raft-service.js';
import { metadata } from './server-fixture.js';

function fanout(opts: { perSenderPerSecond?: number } = {}) {
  const clock = { now: 1_000_000 };
  const delivered: { userId: number; typing: Typing }[] = [];
  const relayed: Buffer[] = [];
  const f = new TypingFanout({
    hub: { publishEphemeral: (userId, typing) => delivered.push({ userId, typing }) },
    relay: (p) => relayed.push(p),
    now: () => clock.now,
    ...opts,
  });
  return { clock, delivered, relayed, f };
}

const notice = (typing: boolean, chat = 'c1', senderId = 1): TypingNotice => ({
  senderId,
  userId: 2,
  typing: { chat_id: chat, username: 'alice', typing },
});

describe('TypingFanout', () => {
  it('passes changes at once, a repeated true once per 2 s, a repeated false never; relays what it delivers', () => {
    const { clock, delivered, relayed, f } = fanout();
    f.publish(notice(true));
    f.publish(notice(true)); // refresh within 2 s: dropped
    clock.now += 1999;
    f.publish(notice(true)); // still within
    clock.now += 1;
    f.publish(notice(true)); // 2 s later: a refresh goes out
    f.publish(notice(false));
    f.publish(notice(false)); // repeated false: dropped
    f.publish(notice(true, 'c2')); // another chat is its own state
    expect(delivered.map((d) => [d.typing.chat_id, d.typing.typing])).toEqual([
      ['c1', true],
      ['c1', true],
      ['c1', false],
      ['c2', true],
    ]);
    expect(relayed.map((p) => decodeNotice(p))).toEqual(
      delivered.map((d) => ({ senderId: 1, userId: d.userId, typing: d.typing })),
    );
    expect(f.stats).toMatchObject({ published: 4, throttled: 3, relayed: 4 });
  });

  it('caps one sender at its rate however the state flips; others are unaffected', () => {
    const { clock, delivered, f } = fanout({ perSenderPerSecond: 5 });
    for (let i = 0; i < 50; i++) f.publish(notice(i % 2 === 0));
    expect(delivered).toHaveLength(5);
    f.publish(notice(true, 'c1', 9));
    expect(delivered).toHaveLength(6);
    clock.now += 1000; // the bucket refills
    for (let i = 0; i < 50; i++) f.publish(notice(i % 2 === 1));
    expect(delivered).toHaveLength(11);
  });

  it('receive() delivers a relayed notice, never relays it again, and drops malformed payloads', () => {
    const { delivered, relayed, f } = fanout();
    f.receive(encodeNotice(notice(true)));
    expect(delivered).toEqual([{ userId: 2, typing: { chat_id: 'c1', username: 'alice', typing: true } }]);
    expect(relayed).toEqual([]);
    for (const bad of [
      Buffer.from('not json'),
      Buffer.from('{"v":2,"s":1,"u":2,"c":"c1","n":"a","t":true}'),
      Buffer.from('{"v":1,"s":1,"u":0,"c":"c1","n":"a","t":true}'),
      Buffer.from('{"v":1,"s":1,"u":2,"c":"c1","n":"a","t":"yes"}'),
      Buffer.alloc(2000, 32),
    ]) {
      f.receive(bad);
    }
    expect(delivered).toHaveLength(1);
    expect(f.stats.refused).toBe(5);
  });

  it('a relayed notice sets the throttle too: the same state from another replica is not announced again', () => {
    const { clock, delivered, f } = fanout();
    f.receive(encodeNotice(notice(true))); // alice typed through another replica
    clock.now += 500;
    f.publish(notice(true)); // her refresh arrives here: receivers already show it
    f.publish(notice(false)); // the stop is a change: it goes out
    expect(delivered.map((d) => d.typing.typing)).toEqual([true, false]);
  });
});

describe('TypingIndicators (the receiver side)', () => {
  it('shows typing until 6 s pass without a refresh, or until typing: false', () => {
    const clock = { now: 0 };
    const t = new TypingIndicators(() => clock.now);
    t.apply({ chat_id: 'c1', username: 'bob', typing: true });
    t.apply({ chat_id: 'c2', username: 'carol', typing: true });
    expect(t.typing('c1')).toEqual(['bob']);
    expect(t.nextExpiry()).toBe(TYPING_EXPIRY_MS);
    clock.now = 5000;
    t.apply({ chat_id: 'c1', username: 'bob', typing: true }); // refresh
    clock.now = 6000;
    expect(t.typing('c1')).toEqual(['bob']);
    expect(t.typing('c2')).toEqual([]); // expired with no event
    clock.now = 11_000;
    expect(t.typing('c1')).toEqual([]);
    t.apply({ chat_id: 'c1', username: 'bob', typing: true });
    t.apply({ chat_id: 'c1', username: 'bob', typing: false });
    expect(t.typing('c1')).toEqual([]);
    expect(t.nextExpiry()).toBeUndefined();
  });
});

describe('RaftService.Relay', () => {
  let server: grpc.Server | undefined;
  let client: grpc.Client | undefined;
  afterEach(() => {
    client?.close();
    server?.forceShutdown();
  });

  it('needs the cluster secret, refuses oversized payloads, and hands the bytes to the host', async () => {
    const got: [string, string, string][] = [];
    server = new grpc.Server();
    addRaftService(server, {
      secret: 's3cret',
      deliver: () => {},
      relay: (from, topic, payload) => got.push([from, topic, payload.toString()]),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    client = new (services().RaftService)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const relay = (req: unknown, md: grpc.Metadata) =>
      new Promise<grpc.ServiceError | null>((resolve) =>
        (client as unknown as Record<string, Function>).Relay.call(
          client,
          req,
          md,
          { deadline: Date.now() + 5000 },
          (err: grpc.ServiceError | null) => resolve(err),
        ),
      );
    const req = { from: 'n2', topic: 'chat.typing', payload: Buffer.from('hello') };
    expect((await relay(req, metadata()))?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await relay(req, metadata({ authorization: 'Bearer wrong' })))?.code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect(got).toEqual([]);
    const big = { ...req, payload: Buffer.alloc(17 * 1024) };
    expect((await relay(big, metadata({ authorization: 'Bearer s3cret' })))?.code).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect(await relay(req, metadata({ authorization: 'Bearer s3cret' }))).toBeNull();
    expect(got).toEqual([['n2', 'chat.typing', 'hello']]);
  });
});
