// Short-term views of two things an operator asks about a replica in `quorum-chat status` and on the
// /cluster page: its recent fsync times (a slow disk delays every commit) and its event-loop lag (a
// blocked loop delays the election timers). /metrics has the full histograms; these answer "p99 now".
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** The last `capacity` samples in a ring; percentiles over them by nearest rank. */
export class RecentSamples {
  private readonly ring: number[] = [];
  private next = 0;

  constructor(private readonly capacity = 1000) {}

  add(value: number): void {
    if (this.ring.length < this.capacity) this.ring.push(value);
    else this.ring[this.next] = value;
    this.next = (this.next + 1) % this.capacity;
  }

  get size(): number {
    return this.ring.length;
  }

  /** Nearest-rank percentile (0 < p <= 100); 0 without samples. */
  percentile(p: number): number {
    if (this.ring.length === 0) return 0;
    const sorted = [...this.ring].sort((a, b) => a - b);
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
  }
}

/**
 * Event-loop delay (node's monitorEventLoopDelay) over windows of `windowMs`: `p99Ms()` is the p99 of
 * the last complete window, or of the current one before the first window ends.
 */
export class EventLoopLag {
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private last: { p99: number; max: number } | undefined;

  constructor(windowMs = 10_000) {
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.last = this.read();
      this.histogram.reset();
    }, windowMs);
    this.timer.unref();
  }

  private read(): { p99: number; max: number } {
    // The histogram holds nanoseconds; it has no samples (and reports huge minimums) until the loop ticks.
    if (this.histogram.count === 0) return { p99: 0, max: 0 };
    return { p99: this.histogram.percentile(99) / 1e6, max: this.histogram.max / 1e6 };
  }

  p99Ms(): number {
    return (this.last ?? this.read()).p99;
  }

  maxMs(): number {
    return (this.last ?? this.read()).max;
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
