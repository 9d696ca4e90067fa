import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/raft/interfaces.js';
import { lagAwareClock } from '../../src/raft/lag-aware-clock.js';

const realClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
  now: () => Date.now(),
};

/** Block the event loop for `ms` (what a CPU hog or a long query does to a replica). */
function stall(ms: number): void {
  const end = performance.now() + ms;
  for (let i = 0; i < 1e10 && performance.now() < end; i++) {
    // busy
  }
}

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/**
 * A 10 ms timer armed, a message written to a loopback socket, then the loop stalls for 80 ms: the
 * message is waiting when the timer falls due. Returns the order in which the two ran.
 */
async function race(clock: Clock): Promise<string[]> {
  const order: string[] = [];
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  const peer = await accepted;
  closers.push(() => {
    client.destroy();
    peer.destroy();
    server.close();
  });
  const done = new Promise<void>((resolve) => {
    let seen = 0;
    const mark = (what: string) => {
      order.push(what);
      if (++seen === 2) resolve();
    };
    peer.once('data', () => mark('heartbeat'));
    clock.setTimeout(() => mark('election timeout'), 10);
  });
  client.write('heartbeat');
  stall(80);
  await done;
  return order;
}

describe('lagAwareClock', () => {
  it('a timer that fell due during a stall runs after the input that arrived during it', async () => {
    let deferred = 0;
    expect(await race(lagAwareClock({ onDeferred: () => deferred++ }))).toEqual([
      'heartbeat',
      'election timeout',
    ]);
    expect(deferred).toBe(1);
  });

  it('(the plain clock fires the timer first: the failure this clock exists for)', async () => {
    expect(await race(realClock)).toEqual(['election timeout', 'heartbeat']);
  });

  it('a timer shorter than deferFromMs (a heartbeat, which sends) runs at once even when late', async () => {
    let deferred = 0;
    // The 10 ms timer is a leader's heartbeat here: holding it back behind waiting input would only
    // make the heartbeat later. Without deferFromMs it would be deferred (the first test).
    expect(await race(lagAwareClock({ deferFromMs: 11, onDeferred: () => deferred++ }))).toEqual([
      'election timeout',
      'heartbeat',
    ]);
    expect(deferred).toBe(0);
  });

  it('a deferred timer cancelled by that input never runs; an on-time timer runs at once', async () => {
    let fired = 0;
    let deferred = 0;
    // The input that arrived during the stall re-arms the timer: it cancels it after the late timer
    // was deferred and before its turns are over (here, at once, from the deferral itself).
    const clock = lagAwareClock({
      onDeferred: () => {
        deferred++;
        clock.clearTimeout(id);
      },
    });
    const id = clock.setTimeout(() => fired++, 5);
    stall(40);
    await new Promise<void>((r) => setTimeout(r, 20));
    await new Promise<void>((r) => setImmediate(() => setImmediate(() => setImmediate(r))));
    expect(deferred).toBe(1);
    expect(fired).toBe(0);
    const onTime = await new Promise<number>((r) => {
      const t0 = performance.now();
      clock.setTimeout(() => r(performance.now() - t0), 20);
    });
    expect(onTime).toBeGreaterThanOrEqual(19);
  });
});
