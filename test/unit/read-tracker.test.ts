// ReadTracker: a read resolves only once its index is known and applied; refusals, a new role or term
// before the index is known, a timeout and stop all fail it; duplicate or stray answers change nothing.
// Reads are batched: those of one turn share one request; one batch waits for its index at a time, and
// a read that arrives after its batch's request went out never joins it.

import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { ReadNotServedError, ReadTracker } from '../../src/raft/read-tracker.js';

function tracker(timeoutMs = 1000, holdMs?: number) {
  const clock = new SimulatedClock();
  const requested: string[] = [];
  const deferred: (() => void)[] = [];
  const t = new ReadTracker({
    prefix: 'n2:x',
    clock,
    timeoutMs,
    holdMs,
    request: (id) => requested.push(id),
    defer: (fn) => deferred.push(fn),
  });
  /** The end of the host's turn: what was deferred runs (bounded). */
  const turn = () => {
    for (let i = 0; i < 100 && deferred.length > 0; i++) deferred.shift()?.();
  };
  /** read() and the end of the turn it arrived in. */
  const readNow = () => {
    const p = t.read();
    turn();
    return p;
  };
  return { t, clock, requested, turn, readNow };
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
    const { t, requested, readNow } = tracker();
    t.appliedTo(3);
    const r = watch(readNow());
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
    const { t, requested, readNow } = tracker();
    t.appliedTo(10);
    const r = watch(readNow());
    t.ready(requested[0], 10);
    t.ready(requested[0], 99);
    t.rejected(requested[0], 'late refusal', null);
    await flush();
    expect(r.outcome).toBe('served');
  });

  it('a refusal fails the read with its reason', async () => {
    const { t, requested, readNow } = tracker();
    const r = watch(readNow());
    t.rejected(requested[0], 'the leader refused the read index', 'n1');
    await flush();
    expect(r.outcome).toBe('the leader refused the read index');
  });

  it('a new term or role fails reads still waiting for their index, not those that have one', async () => {
    const { t, requested, readNow, turn } = tracker();
    t.roleChanged('follower', 1, 'n1');
    const known = watch(readNow());
    const waiting = watch(readNow()); // held back until the first batch has its index
    expect(requested).toHaveLength(1);
    t.ready(requested[0], 7);
    turn();
    expect(requested).toHaveLength(2);
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
    const { t, clock, requested, readNow } = tracker(500);
    const r = watch(readNow());
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
    const { t, readNow } = tracker();
    const a = watch(readNow());
    const b = watch(readNow());
    t.failAll(new Error('the replica stopped'));
    await flush();
    expect([a.outcome, b.outcome]).toEqual(['the replica stopped', 'the replica stopped']);
  });

  it('reads arriving in one turn share one request; one answer serves them all', async () => {
    const { t, requested, turn } = tracker();
    const reads = Array.from({ length: 20 }, () => watch(t.read()));
    expect(requested).toEqual([]); // nothing goes out before the turn ends
    turn();
    expect(requested).toEqual(['n2:x:1']);
    t.ready('n2:x:1', 4);
    t.appliedTo(4);
    await flush();
    expect(reads.map((r) => r.outcome)).toEqual(Array(20).fill('served'));
    expect(t.size).toBe(0);
  });

  it('a read arriving after its batch was sent never joins it: it goes in the next request, after the answer', async () => {
    const { t, requested, turn, readNow } = tracker();
    const first = watch(readNow());
    const later = [watch(t.read()), watch(t.read())];
    turn();
    expect(requested).toEqual(['n2:x:1']); // held back while the first batch waits for its index
    t.appliedTo(9);
    t.ready('n2:x:1', 9);
    await flush();
    expect(first.outcome).toBe('served');
    expect(later.map((r) => r.outcome)).toEqual(['pending', 'pending']); // not served by the old index
    turn();
    expect(requested).toEqual(['n2:x:1', 'n2:x:2']);
    t.ready('n2:x:2', 9);
    await flush();
    expect(later.map((r) => r.outcome)).toEqual(['served', 'served']);
  });

  it('a batch with no answer holds the next one back for holdMs only; its own reads keep waiting', async () => {
    const { t, clock, requested, turn, readNow } = tracker(1000, 50);
    const lost = watch(readNow());
    const next = watch(readNow());
    clock.increment(49);
    expect(requested).toEqual(['n2:x:1']);
    clock.increment(1);
    turn();
    expect(requested).toEqual(['n2:x:1', 'n2:x:2']);
    t.ready('n2:x:2', 0);
    await flush();
    expect(next.outcome).toBe('served');
    expect(lost.outcome).toBe('pending');
    t.ready('n2:x:1', 0); // the late answer still counts: it was learnt after the read arrived
    await flush();
    expect(lost.outcome).toBe('served');
  });

  it('a refused batch fails all its reads and lets the next one go', async () => {
    const { t, requested, turn, readNow } = tracker();
    const a = [watch(t.read()), watch(t.read())];
    turn();
    const b = watch(readNow());
    t.rejected('n2:x:1', 'no leader known', null);
    turn();
    await flush();
    expect(a.map((r) => r.outcome)).toEqual(['no leader known', 'no leader known']);
    expect(b.outcome).toBe('pending');
    expect(requested).toEqual(['n2:x:1', 'n2:x:2']);
  });

  it('a new term fails the sent batch, not the reads not sent yet: they ask the new leader', async () => {
    const { t, requested, turn, readNow } = tracker();
    t.roleChanged('follower', 1, 'n1');
    const sent = watch(readNow());
    const unsent = watch(readNow());
    t.roleChanged('follower', 2, 'n3');
    turn();
    await flush();
    expect(sent.outcome).toBe('the leader changed during the read');
    expect(unsent.outcome).toBe('pending');
    expect(requested).toEqual(['n2:x:1', 'n2:x:2']);
  });

  it('failAll also fails reads not sent yet', async () => {
    const { t, requested } = tracker();
    const r = watch(t.read());
    t.failAll(new Error('the replica stopped'));
    await flush();
    expect(r.outcome).toBe('the replica stopped');
    expect(requested).toEqual([]);
    expect(t.size).toBe(0);
  });
});
