import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../machines/protocol.js';
import { ChatStore } from '../../src/chat/store.js';
import { LocalReplicator } from '../support/local-replicator.js';
import { errorOf } from './chat-fixture.js';

const HASH = 'scrypt$1024$8$1$c2FsdA==$aGFzaA==';

describe('LocalReplicator', () => {
  it('applies concurrent proposals at consecutive indices, in order, batched', async () => {
    const store = new ChatStore(':memory:', { durable: false });
    const batches: Entry[][] = [];
    const apply = store.apply.bind(store);
    store.apply = (b: Entry[]) => {
      batches.push(b);
      return apply(b);
    };
    const r = new LocalReplicator(store);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        r.propose({ type: 'signup', username: `user${i}`, nickname: 'n', passwordHash: HASH, at: 1000 + i }),
      ),
    );
    expect(results.every((x) => x.ok)).toBe(true);
    const indices = batches.flat().map((e) => e.index);
    expect(indices).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(batches.length).toBeLessThan(20);
    expect(store.listUsers(0, '', 1, 100).users.map((u) => u.username)).toEqual(
      Array.from({ length: 20 }, (_, i) => `user${i}`).sort(),
    );
  });

  it('fails with DEADLINE_EXCEEDED past the deadline and proposes nothing', async () => {
    const store = new ChatStore(':memory:', { durable: false });
    const r = new LocalReplicator(store, { now: () => 5000 });
    const err = await errorOf(
      r.propose(
        { type: 'signup', username: 'late', nickname: 'n', passwordHash: HASH, at: 1 },
        { deadline: 4000 },
      ),
    );
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    expect((await errorOf(r.read(() => 1, { deadline: 4000 }))).code).toBe(status.DEADLINE_EXCEEDED);
    expect(store.appliedIndex()).toBe(0);
  });

  it('a failed command emits no events', async () => {
    const store = new ChatStore(':memory:', { durable: false });
    const seen: number[] = [];
    store.onApplied((b) => seen.push(b.events.length));
    const r = new LocalReplicator(store);
    await r.propose({ type: 'signup', username: 'aaa', nickname: 'n', passwordHash: HASH, at: 1 });
    await r.propose({ type: 'signup', username: 'bbb', nickname: 'n', passwordHash: HASH, at: 1 });
    const { tokenHash } = await import('../../src/chat/tokens.js');
    const actor = tokenHash('token-for-aaa-0123456789');
    await r.propose({ type: 'login', username: 'aaa', userId: 1, tokenHash: actor, ttlMs: 60_000, at: 2 });
    const ok = await r.propose({ type: 'startChat', actor, username: 'bbb', at: 3 });
    const bad = await r.propose({ type: 'sendMessage', actor, chatId: 'c1', content: ' ', at: 4 });
    expect(ok.ok).toBe(true);
    expect(bad).toMatchObject({ ok: false, code: status.INVALID_ARGUMENT });
    expect(seen).toEqual([0, 0, 0, 1, 0]);
  });
});
