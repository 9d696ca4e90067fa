// Event-loop delay, as Node measures it (perf_hooks.monitorEventLoopDelay): how late the loop runs what
// is due. Raft's heartbeats and election timers run on this loop, so this is the figure that says
// whether something (a login flood, a big request) starves consensus. Kept per second for the last ten
// seconds, for /metrics, GetStatus and the /cluster card alike; the histogram itself does not run on
// the loop. What the figures can and cannot show, from how Node's histogram works:
// - its p99 of n samples is the value of rank floor(0.99 n + 0.5): at the 10 ms resolution a second
//   holds up to 100 samples, so one stall in a second is its max, not its p99; two stalls in one
//   second are its p99;
// - reset() also forgets the time of the last tick, so the first tick after the once-a-second reset
//   records no delay: a stall that begins within 10 ms after it is not seen (about 1 stall in 100).
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

interface Sample {
  maxMs: number;
  p99Ms: number;
}

export class EventLoopLag {
  private readonly histogram: IntervalHistogram;
  private readonly recent: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private worstMs = 0;

  constructor(private readonly opts: { intervalMs?: number; keep?: number; resolutionMs?: number } = {}) {
    this.histogram = monitorEventLoopDelay({ resolution: opts.resolutionMs ?? 10 });
  }

  start(): void {
    if (this.timer) return;
    this.histogram.enable();
    this.timer = setInterval(() => this.roll(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.histogram.disable();
  }

  /** The longest delay in the last `keep` intervals and the current one (ms). */
  recentMaxMs(): number {
    return Math.max(this.current().maxMs, ...this.recent.map((s) => s.maxMs));
  }

  /** The highest per-interval 99th percentile in the same span (ms). */
  recentP99Ms(): number {
    return Math.max(this.current().p99Ms, ...this.recent.map((s) => s.p99Ms));
  }

  /** The longest delay since start (ms). */
  worstSinceStartMs(): number {
    return Math.max(this.worstMs, this.current().maxMs);
  }

  private current(): Sample {
    const h = this.histogram;
    // An empty histogram reports huge sentinel values; no sample means no delay measured yet.
    if (h.count === 0) return { maxMs: 0, p99Ms: 0 };
    return { maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 };
  }

  private roll(): void {
    const s = this.current();
    this.worstMs = Math.max(this.worstMs, s.maxMs);
    this.recent.push(s);
    while (this.recent.length > (this.opts.keep ?? 10)) this.recent.shift();
    this.histogram.reset();
  }
}
