// One virtual clock and one event queue for the whole simulated cluster. Every timer, message
// delivery, fsync completion, client action and fault is an event ordered by (time, seq): seq is the
// order of scheduling, so ties break the same way on every replay of a seed.

import type { Clock } from '../interfaces.js';

export interface SimEvent {
  time: number;
  seq: number;
  /** Short label for traces: 'timer', 'deliver', 'fsync', 'defer', 'client', 'fault'... */
  kind: string;
  /** The node whose incarnation owns the event; a crash cancels all of them. */
  owner: string | null;
  fn: () => void;
  cancelled: boolean;
}

export class EventQueue {
  private heap: SimEvent[] = [];
  private seq = 0;
  private time = 0;
  private byOwner = new Map<string, Set<SimEvent>>();
  /** Events run so far. */
  executed = 0;
  /** Called after each event ran (the trace-file recorder's status snapshots); unset: free. */
  onStep: ((ev: SimEvent) => void) | undefined;

  now(): number {
    return this.time;
  }

  size(): number {
    return this.heap.length;
  }

  /** Schedule `fn` after `delay` ms of virtual time (0 runs after everything already due now). */
  after(delay: number, kind: string, fn: () => void, owner: string | null = null): SimEvent {
    const d = Number.isFinite(delay) && delay > 0 ? delay : 0;
    const ev: SimEvent = { time: this.time + d, seq: this.seq++, kind, owner, fn, cancelled: false };
    this.push(ev);
    if (owner !== null) {
      let set = this.byOwner.get(owner);
      if (!set) {
        set = new Set();
        this.byOwner.set(owner, set);
      }
      set.add(ev);
    }
    return ev;
  }

  cancel(ev: SimEvent): void {
    if (ev.cancelled) return;
    ev.cancelled = true;
    if (ev.owner !== null) this.byOwner.get(ev.owner)?.delete(ev);
  }

  /** Cancel every pending event of `owner` (a crashed node's timers, fsyncs and deferred work). */
  cancelOwner(owner: string): number {
    const set = this.byOwner.get(owner);
    if (!set) return 0;
    const n = set.size;
    for (const ev of set) ev.cancelled = true;
    this.byOwner.delete(owner);
    return n;
  }

  /** Time of the next live event, or undefined when nothing is pending. */
  peekTime(): number | undefined {
    this.dropCancelledTop();
    return this.heap[0]?.time;
  }

  /** Run the next event. Returns it, or undefined when the queue is empty. */
  step(): SimEvent | undefined {
    this.dropCancelledTop();
    const ev = this.pop();
    if (!ev) return undefined;
    this.time = ev.time;
    if (ev.owner !== null) this.byOwner.get(ev.owner)?.delete(ev);
    this.executed++;
    ev.fn();
    if (this.onStep) this.onStep(ev);
    return ev;
  }

  /** A Clock (the interface XState's delayed events use) whose timers belong to `owner`. */
  clockFor(owner: string, onFire?: (delay: number) => void): Clock {
    return {
      setTimeout: (fn: (...args: unknown[]) => void, timeout: number) =>
        this.after(
          timeout,
          'timer',
          () => {
            onFire?.(timeout);
            fn();
          },
          owner,
        ),
      clearTimeout: (id: unknown) => {
        if (id && typeof id === 'object') this.cancel(id as SimEvent);
      },
      now: () => this.time,
    };
  }

  /** A `defer` scheduler for one node: run `fn` later at the same virtual time, in order. */
  deferFor(owner: string): (fn: () => void) => void {
    return (fn) => {
      this.after(0, 'defer', fn, owner);
    };
  }

  private dropCancelledTop(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
  }

  private push(ev: SimEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      const tmp = h[i]!;
      h[i] = h[p]!;
      h[p] = tmp;
      i = p;
    }
  }

  private pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        const tmp = h[i]!;
        h[i] = h[m]!;
        h[m] = tmp;
        i = m;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
