import { describe, expect, it } from 'vitest';
import { createActor, setup } from 'xstate';
import { EventQueue } from '../../src/raft/sim/event-queue.js';

function drain(q: EventQueue, max = 10_000): void {
  for (let i = 0; i < max && q.step(); i++) {}
}

describe('EventQueue', () => {
  it('runs events in (time, seq) order and advances the clock', () => {
    const q = new EventQueue();
    const log: string[] = [];
    q.after(10, 't', () => log.push(`b@${q.now()}`));
    q.after(5, 't', () => log.push(`a@${q.now()}`));
    q.after(10, 't', () => log.push(`c@${q.now()}`));
    q.after(0, 't', () => log.push(`z@${q.now()}`));
    drain(q);
    expect(log).toEqual(['z@0', 'a@5', 'b@10', 'c@10']);
    expect(q.now()).toBe(10);
    expect(q.executed).toBe(4);
  });

  it('runs events scheduled while running at the right place', () => {
    const q = new EventQueue();
    const log: string[] = [];
    q.after(1, 't', () => {
      log.push('first');
      q.after(0, 't', () => log.push('same-time, later seq'));
      q.after(1, 't', () => log.push('t=2'));
    });
    q.after(1, 't', () => log.push('second'));
    drain(q);
    expect(log).toEqual(['first', 'second', 'same-time, later seq', 't=2']);
  });

  it('keeps a large random schedule sorted', () => {
    const q = new EventQueue();
    const times: number[] = [];
    let x = 12345;
    for (let i = 0; i < 1000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      q.after(x % 500, 't', () => times.push(q.now()));
    }
    drain(q);
    expect(times).toHaveLength(1000);
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!);
  });

  it('cancels single events and all events of an owner', () => {
    const q = new EventQueue();
    const log: string[] = [];
    const ev = q.after(1, 't', () => log.push('cancelled'));
    q.after(2, 't', () => log.push('n1 timer'), 'n1');
    q.after(3, 't', () => log.push('n1 fsync'), 'n1');
    q.after(4, 't', () => log.push('n2 timer'), 'n2');
    q.cancel(ev);
    expect(q.cancelOwner('n1')).toBe(2);
    drain(q);
    expect(log).toEqual(['n2 timer']);
  });

  it('gives XState a clock: delayed transitions fire in virtual time only', () => {
    const q = new EventQueue();
    const machine = setup({ delays: { wait: 100 } }).createMachine({
      initial: 'a',
      states: { a: { after: { wait: 'b' } }, b: { after: { 50: 'c' } }, c: {} },
    });
    const actor = createActor(machine, { clock: q.clockFor('n1') });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    expect(actor.getSnapshot().value).toBe('a');
    q.step();
    expect(q.now()).toBe(100);
    expect(actor.getSnapshot().value).toBe('b');
    q.step();
    expect(q.now()).toBe(150);
    expect(actor.getSnapshot().value).toBe('c');
    expect(q.step()).toBeUndefined();
    expect(errors).toEqual([]);
    actor.stop();
  });

  it('lets XState cancel a delayed event when the state is left early', () => {
    const q = new EventQueue();
    const machine = setup({}).createMachine({
      initial: 'a',
      states: { a: { after: { 100: 'timedOut' }, on: { go: 'b' } }, b: {}, timedOut: {} },
    });
    const actor = createActor(machine, { clock: q.clockFor('n1') });
    actor.subscribe({ error: () => {} });
    actor.start();
    actor.send({ type: 'go' });
    drain(q);
    expect(actor.getSnapshot().value).toBe('b');
    actor.stop();
  });

  it('defers work to the same virtual time, in order, after what is already due', () => {
    const q = new EventQueue();
    const defer = q.deferFor('n1');
    const log: string[] = [];
    q.after(0, 't', () => log.push('due'));
    defer(() => log.push('deferred 1'));
    defer(() => log.push('deferred 2'));
    drain(q);
    expect(log).toEqual(['due', 'deferred 1', 'deferred 2']);
    expect(q.now()).toBe(0);
  });
});
