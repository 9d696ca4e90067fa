// ReadTracker: a read resolves only once its index is known and applied; refusals, a new role or term
// before the index is known, a timeout and stop all fail it; duplicate or stray answers change nothing.

import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { ReadNotServedError, ReadTracker } from '../../src/raft/read-tracker.js';

function tracker(timeoutMs = 1000) {
  const clock = new SimulatedClock();
  const requested: string[] = [];
  const t = new ReadTracker({ prefix: 'n2:x', clock, timeoutMs, request: (id) => requested.push(id) });
  return { t, clock, requested };
}

/** Outcome of a read so far: 'pending', 'served' or the failure's reason. */
function watch(p: Promise<void>) {
  const state = { outcome: 'pending' as string };
  p.then(
    () => {
      state.outcome = 'served';
    },
    (e: Error) => {
      state.outcome = e instanceof ReadNotServedError ? e.reason : e.message;
    },
  );
  return state;
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('ReadTracker', () => {
  it('ids name the incarnation; a read waits for its index, then for the applied index', async () => {
    const { t, requested } = tracker();
    t.appliedTo(3);
    const r = watch(t.read());
    expect(requested).toEqual(['n2:x:1']);
    await flush();
    expect(r.outcome).toBe('pending');
    t.ready('n2:x:1', 5);
    t.appliedTo(4);
    await flush();
    expect(r.outcome).toBe('pending');
    t.appliedTo(5);
    await flush();
    expect(r.outcome).toBe('served');
    expect(t.size).toBe(0);
  });

  it('an index already applied serves at once; a second answer for the same id is ignored', async () => {
    const { t, requested } = tracker();
    t.appliedTo(10);
    const r = watch(t.read());
    t.ready(requested[0], 10);
    t.ready(requested[0], 99);
    t.rejected(requested[0], 'late refusal', null);
    await flush();
    expect(r.outcome).toBe('served');
  });

  it('a refusal fails the read with its reason', async () => {
    const { t, requested } = tracker();
    const r = watch(t.read());
    t.rejected(requested[0], 'the leader refused the read index', 'n1');
    await flush();
    expect(r.outcome).toBe('the leader refused the read index');
  });

  it('a new term or role fails reads still waiting for their index, not those that have one', async () => {
    const { t, requested } = tracker();
    t.roleChanged('follower', 1, 'n1');
    const waiting = watch(t.read());
    const known = watch(t.read());
    t.ready(requested[1], 7);
    t.roleChanged('follower', 1, null); // the leader forgotten, same role and term: nothing happens
    await flush();
    expect(waiting.outcome).toBe('pending');
    t.roleChanged('follower', 2, 'n3');
    await flush();
    expect(waiting.outcome).toBe('the leader changed during the read');
    expect(known.outcome).toBe('pending');
    t.appliedTo(7);
    await flush();
    expect(known.outcome).toBe('served');
  });

  it('a read not served within the timeout fails; the clock decides, not the wall', async () => {
    const { t, clock, requested } = tracker(500);
    const r = watch(t.read());
    clock.increment(499);
    await flush();
    expect(r.outcome).toBe('pending');
    clock.increment(1);
    await flush();
    expect(r.outcome).toBe('the read could not be confirmed in time');
    t.ready(requested[0], 0); // a late answer finds nothing
    expect(t.size).toBe(0);
  });

  it('failAll fails everything pending', async () => {
    const { t } = tracker();
    const a = watch(t.read());
    const b = watch(t.read());
    t.failAll(new Error('the replica stopped'));
    await flush();
    expect([a.outcome, b.outcome]).toEqual(['the replica stopped', 'the replica stopped']);
  });
});
