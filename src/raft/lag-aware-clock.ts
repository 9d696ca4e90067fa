// The production clock of the replica machine, aware of event-loop lag (issue 10, deliver 5).
//
// On a busy machine the event loop stalls (CPU hogs, GC, a big query). When it runs again, Node runs
// the timers phase before the poll phase: an election or check-quorum timer that fell due during the
// stall fires BEFORE the heartbeats and acknowledgements that arrived during the same stall are read
// from their sockets. The replica then concludes "I heard nothing" when it heard plenty, and starts a
// needless election (a follower) or steps down (a check-quorum leader).
//
// This clock notices that a timer fires late (the lag) and runs its callback only after the input that
// is already waiting: after `turns` passes of the poll phase (setImmediate runs after poll). If that
// input re-arms or cancels the timer (a heartbeat re-enters the follower state), the late callback is
// dropped. The machine stays pure: it sees the same timer events, only in the order in which things
// really happened. Safety does not depend on timing in Raft; the delay is bounded (a few loop turns),
// so a dead leader is still detected (docs/design/leader-stability.md).
//
// Only timers that conclude "heard nothing" need this: the election timer, the lease, check-quorum
// (all at least the base election timeout long). A leader's heartbeat timer is the opposite, a timer
// that SENDS: holding it back behind a backlog of client work only makes the heartbeat later, which
// is exactly what makes followers time out. Timers shorter than `deferFromMs` run as soon as they fire.
import type { Clock } from './interfaces.js';

export interface LagAwareClockOptions {
  /** A timer this much later than due counts as delayed by lag (default 5 ms). */
  lateMs?: number;
  /** Loop turns to let waiting input go first (default 2). */
  turns?: number;
  /**
   * Only timers of at least this many ms are deferred when late (default 0: all). A replica passes its
   * base election timeout, so that its heartbeat timer (shorter, by the flags' rule) is never held back.
   */
  deferFromMs?: number;
  /** Counts timers deferred (for metrics and tests). */
  onDeferred?: (lateMs: number) => void;
}

interface Handle {
  timer?: NodeJS.Timeout;
  cancelled: boolean;
}

export function lagAwareClock(opts: LagAwareClockOptions = {}): Clock {
  const lateMs = opts.lateMs ?? 5;
  const turns = Math.max(1, opts.turns ?? 2);
  const deferFromMs = opts.deferFromMs ?? 0;
  const later = (h: Handle, fn: () => void, left: number) => {
    setImmediate(() => {
      if (h.cancelled) return;
      if (left > 1) later(h, fn, left - 1);
      else fn();
    });
  };
  return {
    setTimeout: (fn, ms) => {
      const h: Handle = { cancelled: false };
      const due = performance.now() + ms;
      h.timer = setTimeout(() => {
        if (h.cancelled) return;
        const late = performance.now() - due;
        if (late <= lateMs || ms < deferFromMs) return fn();
        opts.onDeferred?.(late);
        later(h, () => fn(), turns);
      }, ms);
      return h;
    },
    clearTimeout: (id) => {
      const h = id as Handle;
      if (!h) return;
      h.cancelled = true;
      if (h.timer) clearTimeout(h.timer);
    },
    now: () => Date.now(),
  };
}
