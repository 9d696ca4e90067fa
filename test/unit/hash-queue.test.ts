// The password-hashing queue: K run at once, Q wait, the rest is shed at once with RESOURCE_EXHAUSTED and
// retry-after; a waiter whose deadline passed is dropped without running.
import { describe, expect, it } from 'vitest';
import { ChatError, status } from '../../src/chat/errors.js';
import { HashQueue, defaultHashConcurrency } from '../../src/chat/hash-queue.js';

/** A job that runs until released, recording that it started. */
function gate() {
  const started: number[] = [];
  const releases: (() => void)[] = [];
  const job = (id: number) => () =>
    new Promise<number>((resolve) => {
      started.push(id);
      releases.push(() => resolve(id));
    });
  return { started, job, release: () => releases.shift()?.() };
}

async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('HashQueue', () => {
  it('runs K at once, queues Q, sheds the rest at once with RESOURCE_EXHAUSTED and retry-after', async () => {
    const t = { now: 0 };
    const q = new HashQueue({ concurrency: 2, maxWaiting: 3, now: () => t.now, expectedMs: 500 });
    const g = gate();
    const results = [1, 2, 3, 4, 5].map((id) => q.run(g.job(id)));
    await settled();
    expect(g.started).toEqual([1, 2]);
    expect(q.stats()).toMatchObject({ running: 2, waiting: 3 });
    let shed: unknown;
    await q.run(g.job(6)).catch((e) => {
      shed = e;
    });
    expect(shed).toBeInstanceOf(ChatError);
    expect((shed as ChatError).code).toBe(status.RESOURCE_EXHAUSTED);
    // (3 waiting + 2 running) / 2 slots × 500 ms.
    expect((shed as ChatError).retryAfterMs).toBe(1250);
    expect((shed as ChatError).message).toBe('The server is busy checking passwords; try again in 2 s.');
    expect(q.stats().shed).toBe(1);
    // Finishing one starts the next waiter, in order.
    t.now = 400;
    g.release();
    await settled();
    expect(g.started).toEqual([1, 2, 3]);
    for (let i = 0; i < 4; i++) {
      g.release();
      await settled();
    }
    await expect(Promise.all(results)).resolves.toEqual([1, 2, 3, 4, 5]);
    expect(q.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it('drops a waiter whose deadline passed without running it', async () => {
    const t = { now: 0 };
    // Hashes expected to take 10 ms: a deadline 100 ms away is admitted, then the running one is slow.
    const q = new HashQueue({ concurrency: 1, maxWaiting: 2, now: () => t.now, expectedMs: 10 });
    const g = gate();
    const first = q.run(g.job(1));
    const late = q.run(g.job(2), 100);
    const onTime = q.run(g.job(3), 10_000);
    await settled();
    t.now = 200;
    g.release();
    await expect(first).resolves.toBe(1);
    const err = await late.catch((e: unknown) => e);
    expect((err as ChatError).code).toBe(status.DEADLINE_EXCEEDED);
    await settled();
    expect(g.started).toEqual([1, 3]);
    g.release();
    await expect(onTime).resolves.toBe(3);
    expect(q.stats().expired).toBe(1);
  });

  it('sheds at once a call that could only finish past its deadline', async () => {
    const t = { now: 0 };
    const q = new HashQueue({ concurrency: 1, maxWaiting: 8, now: () => t.now, expectedMs: 600 });
    const g = gate();
    const first = q.run(g.job(1));
    // One running: this one would start in ~600 ms and end in ~1200 ms.
    const tight = await q.run(g.job(2), 1000).catch((e: unknown) => e);
    expect((tight as ChatError).code).toBe(status.RESOURCE_EXHAUSTED);
    expect((tight as ChatError).retryAfterMs).toBe(600);
    const roomy = q.run(g.job(3), 5000);
    expect(q.stats()).toMatchObject({ running: 1, waiting: 1, shed: 1 });
    g.release();
    await settled();
    g.release();
    await expect(Promise.all([first, roomy])).resolves.toEqual([1, 3]);
  });

  it('a failing job frees its slot', async () => {
    const q = new HashQueue({ concurrency: 1, maxWaiting: 0 });
    await expect(q.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(q.run(async () => 7)).resolves.toBe(7);
  });

  it('K leaves one core to the event loop and one pool thread to fs work, and is at least 1', () => {
    expect(defaultHashConcurrency(2, 4)).toBe(1);
    expect(defaultHashConcurrency(1, 4)).toBe(1);
    expect(defaultHashConcurrency(8, 4)).toBe(3);
    expect(defaultHashConcurrency(8, 16)).toBe(7);
  });
});
