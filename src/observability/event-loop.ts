// Event-loop delay, as Node measures it (perf_hooks.monitorEventLoopDelay): how late the loop runs what
// is due. Raft's heartbeats and election timers run on this loop, so this is the figure that says
// whether something (a login flood, a big request) starves consensus. Kept per second for the last ten
// seconds and exposed on /metrics; the histogram itself does not run on the loop.
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
