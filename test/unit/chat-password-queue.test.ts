// ChatService's password work goes through its HashQueue: Signup's hash, Login's check (for an unknown
// user too, against a dummy hash of the same cost) and DeleteAccount's check. With the queue full, each is
// shed with RESOURCE_EXHAUSTED before any hashing.
import { describe, expect, it } from 'vitest';
import { status } from '../../src/chat/errors.js';
import { EventHub } from '../../src/chat/events.js';
import { HashQueue } from '../../src/chat/hash-queue.js';
import { costOf } from '../../src/chat/password.js';
import { ChatService } from '../../src/chat/service.js';
import { ChatStore } from '../../src/chat/store.js';
import { LocalReplicator } from '../support/local-replicator.js';
import { FAST_SCRYPT, errorOf } from './chat-fixture.js';

/** A HashQueue that counts the jobs it was given. */
class CountingQueue extends HashQueue {
  jobs = 0;
  override run<T>(job: () => Promise<T>, deadline?: number): Promise<T> {
    this.jobs++;
    return super.run(job, deadline);
  }
}

function stack() {
  const store = new ChatStore(':memory:', { durable: false });
  const queue = new CountingQueue({ concurrency: 1, maxWaiting: 0 });
  const service = new ChatService(store, new LocalReplicator(store), new EventHub(store), {
    scryptCost: FAST_SCRYPT,
    hashQueue: queue,
  });
  return { store, queue, service };
}

describe('ChatService password work through the hash queue', () => {
  it('an unknown user costs one queued check, like a known one, against a dummy of the same cost', async () => {
    const { queue, service } = stack();
    await service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, {});
    expect(queue.jobs).toBe(1);
    const wrong = await errorOf(service.login({ username: 'alice', password: 'not the one' }, {}));
    expect(queue.jobs).toBe(2);
    const unknown = await errorOf(service.login({ username: 'nobody', password: 'not the one' }, {}));
    expect(queue.jobs).toBe(3);
    expect(unknown.code).toBe(status.UNAUTHENTICATED);
    expect(unknown.message).toBe(wrong.message);
    // The dummy is checked at the service's cost, not at some cheaper one.
    expect(costOf((service as unknown as { dummy: string }).dummy)).toEqual(FAST_SCRYPT);
  });

  it('with the queue full, Signup, Login (known or unknown user) and DeleteAccount are shed with RESOURCE_EXHAUSTED', async () => {
    const { queue, service } = stack();
    await service.signup({ username: 'alice', nickname: 'A', password: 'password123' }, {});
    const { token } = await service.login({ username: 'alice', password: 'password123' }, {});
    let release = () => {};
    const busy = queue.run(
      () =>
        new Promise<void>((r) => {
          release = r;
        }),
    );
    const calls = [
      service.signup({ username: 'bob', nickname: 'B', password: 'password123' }, {}),
      service.login({ username: 'alice', password: 'password123' }, {}),
      service.login({ username: 'nobody', password: 'password123' }, {}),
      service.deleteAccount({ password: 'password123' }, { token }),
    ];
    for (const call of calls) {
      const e = await errorOf(call);
      expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(e.retryAfterMs).toBeGreaterThan(0);
    }
    release();
    await busy;
    await expect(service.login({ username: 'alice', password: 'password123' }, {})).resolves.toMatchObject({
      user: { username: 'alice' },
    });
  });
});
