// A SimulatedClock for replays: it fires `after` timers the ordinary way (clock.increment) but knows
// when the next one is due, so a replay jumps from timer to timer instead of ticking 1 ms at a time.

import { SimulatedClock } from 'xstate';

export class SteppingClock extends SimulatedClock {
  private due = new Map<number, number>();

  override setTimeout(fn: (...args: unknown[]) => void, timeout: number): number {
    const id: number = super.setTimeout((...args: unknown[]) => {
      this.due.delete(id);
      fn(...args);
    }, timeout);
    this.due.set(id, this.now() + timeout);
    return id;
  }

  override clearTimeout(id: number): void {
    this.due.delete(id);
    super.clearTimeout(id);
  }

  /** Advance to the earliest pending timer (fires it and anything due with it); false when none. */
  advanceToNext(): boolean {
    if (this.due.size === 0) return false;
    const next = Math.min(...this.due.values());
    this.increment(Math.max(0, next - this.now()));
    return true;
  }
}
