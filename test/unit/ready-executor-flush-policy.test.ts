// The executor's flush policy (--flush-delay-us, --flush-max-entries; ready-executor.ts FlushPolicy) on
// a simulated clock: `defer` runs on the next turn, the timer when the test advances time. Each test
// fails without the policy: (a) and (b) count fsyncs and when they happen, (c) pins delay 0 to the
// behaviour before the policy existed (one flush per turn, on the next turn, no timer).

import { describe, expect, it } from 'vitest';
import type { Entry, RaftMessage } from '../../machines/protocol.js';
import { type FlushPolicy, ReadyExecutor } from '../../src/raft/ready-executor.js';
import { MemoryLogStore } from '../support/memory-log-store.js';
import { notingLog } from '../support/noting-log.js';

const entry = (index: number): Entry => ({ index, term: 1, kind: 'command', data: `e${index}` });

const ack = (matchIndex: number): RaftMessage => ({
  type: 'AppendEntriesResponse',
  from: 'n2',
  to: 'n1',
  term: 1,
  success: true,
  matchIndex,
  conflictIndex: 0,
  conflictTerm: 0,
  readRound: 0,
});

/** A clock in microseconds with timers, and turns of the event loop that the test runs by hand. */
function rig(policy?: FlushPolicy) {
  const store = new MemoryLogStore();
  let nowUs = 0;
  let timers: { at: number; fn: () => void }[] = [];
  let deferred: (() => void)[] = [];
  const log: string[] = [];
  let timersArmed = 0;
  const ready = new ReadyExecutor(
    {
      log: notingLog(store, (what) => {
        if (what === 'flush starts') log.push(`fsync at ${nowUs}`);
      }),
      send: (m) => log.push(`send ${m.type === 'AppendEntriesResponse' ? m.matchIndex : m.type}`),
      defer: (fn) => deferred.push(fn),
      persisted: (p) => log.push(`persisted ${p.index}`),
      apply: (upTo) => upTo,
      other: () => {},
      ...(policy ? { flushPolicy: policy } : {}),
      timer: (fn, delayUs) => {
        timersArmed++;
        const t = { at: nowUs + delayUs, fn };
        timers.push(t);
        return () => {
          timers = timers.filter((x) => x !== t);
        };
      },
    },
    { durableIndex: 0, commitIndex: 0, appliedIndex: 0 },
  );
  let next = 1;
  /** One handler turn that writes `n` entries and acknowledges them once durable (a follower). */
  const write = (n = 1) => {
    const entries = Array.from({ length: n }, () => entry(next++));
    ready.execute([
      { type: 'persist', entries },
      { type: 'send', message: ack(entries[entries.length - 1].index), afterPersist: true },
    ]);
  };
  /** The rest of this loop turn: run what was deferred to it. */
  const turn = () => {
    const fns = deferred;
    deferred = [];
    for (const fn of fns) fn();
  };
  /** Time passes (µs): due timers fire, each in a turn of its own. */
  const advance = (us: number) => {
    nowUs += us;
    for (;;) {
      const due = timers.filter((t) => t.at <= nowUs).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      timers = timers.filter((t) => t !== due);
      due.fn();
      turn();
    }
  };
  return {
    ready,
    store,
    log,
    write,
    turn,
    advance,
    timersArmed: () => timersArmed,
    fsyncs: () => log.filter((l) => l.startsWith('fsync')),
  };
}

describe('ReadyExecutor flush policy', () => {
  it('(a) with a delay, writes of separate turns within it share one fsync, when the delay ends', () => {
    const r = rig({ delayUs: 500, maxEntries: 512 });
    r.write();
    r.turn();
    r.advance(200);
    r.write();
    r.turn();
    r.advance(200);
    r.write();
    r.turn();
    // 400 µs after the first write: nothing flushed, nothing acknowledged.
    expect(r.fsyncs()).toEqual([]);
    expect(r.store.durable().lastIndex()).toBe(0);
    r.advance(99);
    expect(r.fsyncs()).toEqual([]);
    r.advance(1);
    // One fsync for the three turns, 500 µs after the first write; then the held acks, in order.
    expect(r.log).toEqual(['fsync at 500', 'send 1', 'send 2', 'send 3', 'persisted 3']);
    expect(r.store.durable().lastIndex()).toBe(3);
    // The next write starts a new delay from its own time.
    r.advance(1000);
    r.write();
    r.turn();
    r.advance(499);
    expect(r.fsyncs()).toEqual(['fsync at 500']);
    r.advance(1);
    expect(r.fsyncs()).toEqual(['fsync at 500', 'fsync at 2000']);
  });

  it('(b) reaching maxEntries flushes on the next turn without waiting for the timer', () => {
    const r = rig({ delayUs: 10_000, maxEntries: 8 });
    r.write(5);
    r.turn();
    r.advance(100);
    expect(r.fsyncs()).toEqual([]);
    r.write(3); // 8 entries wait now
    expect(r.fsyncs()).toEqual([]); // not inside the handler turn
    r.turn();
    expect(r.log).toEqual(['fsync at 100', 'send 5', 'send 8', 'persisted 8']);
    // The timer was cancelled: it flushes nothing when its time comes.
    r.advance(20_000);
    expect(r.fsyncs()).toEqual(['fsync at 100']);
    // A single turn with more than maxEntries flushes on the next turn as well.
    r.write(20);
    r.turn();
    expect(r.fsyncs()).toEqual(['fsync at 100', 'fsync at 20100']);
  });

  it('(c) delay 0 (the default) flushes every turn on the next turn, as before, and arms no timer', () => {
    for (const policy of [undefined, { delayUs: 0, maxEntries: 512 }, { delayUs: 0, maxEntries: 1 }]) {
      const r = rig(policy);
      r.write();
      r.write(2);
      expect(r.fsyncs()).toEqual([]);
      r.turn();
      expect(r.log).toEqual(['fsync at 0', 'send 1', 'send 3', 'persisted 3']);
      r.advance(100);
      r.write();
      r.turn();
      expect(r.fsyncs()).toEqual(['fsync at 0', 'fsync at 100']);
      expect(r.timersArmed()).toBe(0);
    }
  });

  it('a commit alone also waits for the delay, and stop() cancels the timer', () => {
    const r = rig({ delayUs: 300, maxEntries: 512 });
    r.ready.execute([{ type: 'commit', index: 0 }]); // not a raise: nothing to write
    r.write();
    r.turn();
    r.ready.execute([{ type: 'commit', index: 1 }]);
    r.advance(300);
    expect(r.fsyncs()).toEqual(['fsync at 300']);
    expect(r.ready.durableCommit()).toBe(1);
    r.write();
    r.ready.stop();
    r.advance(1000);
    expect(r.fsyncs()).toEqual(['fsync at 300']);
  });

  it('refuses a delay without a timer', () => {
    expect(
      () =>
        new ReadyExecutor(
          {
            log: new MemoryLogStore(),
            send: () => {},
            defer: () => {},
            flushPolicy: { delayUs: 1, maxEntries: 1 },
            persisted: () => {},
            apply: (u) => u,
            other: () => {},
          },
          { durableIndex: 0, commitIndex: 0, appliedIndex: 0 },
        ),
    ).toThrow(/needs a timer/);
  });
});
