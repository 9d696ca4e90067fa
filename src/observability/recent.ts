// A short-term view an operator asks about a replica in `quorum-chat status` and on the /cluster page:
// its recent fsync times (a slow disk delays every commit). /metrics has the full histogram; this
// answers "p99 now". The event-loop lag's view is event-loop.ts.

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
