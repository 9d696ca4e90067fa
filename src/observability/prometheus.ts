// A small Prometheus registry and its text exposition (format 0.0.4), written by hand: counters, gauges
// and histograms with labels. Gauges may be computed at scrape time (`collect`), so a value that is
// already kept elsewhere (the Raft term, the commit index) is read when asked, not copied on each change.

export type Labels = Record<string, string>;

/** Seconds; from a fast fsync on an SSD to a slow cross-replica round trip. */
export const latencyBuckets = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    for (const l of labelNames) if (!LABEL.test(l) || l === 'le') throw new Error(`bad label name ${l}`);
  }
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  abstract lines(): string[];

  protected key(labels: Labels = {}): string[] {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) throw new Error(`${this.name}: label ${n} missing`);
      return v;
    });
    if (Object.keys(labels).length !== this.labelNames.length) throw new Error(`${this.name}: unknown label`);
    return values;
  }
}

export class Counter extends Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, { labels: string[]; value: number }>();

  inc(labels?: Labels, by = 1): void {
    if (by < 0) throw new Error(`${this.name}: a counter only goes up`);
    const values = this.key(labels);
    const k = values.join('\u0000');
    const cur = this.values.get(k);
    if (cur) cur.value += by;
    else this.values.set(k, { labels: values, value: by });
  }

  get(labels?: Labels): number {
    return this.values.get(this.key(labels).join('\u0000'))?.value ?? 0;
  }

  lines(): string[] {
    // An unlabelled counter exists from the start: 0 is a value, a missing series is not.
    if (this.labelNames.length === 0 && this.values.size === 0) return [`${this.name} 0`];
    return [...this.values.values()].map(
      (s) => `${this.name}${labelText(this.labelNames, s.labels)} ${formatValue(s.value)}`,
    );
  }
}

export type GaugeSample = { labels?: Labels; value: number };

export class Gauge extends Metric {
  readonly type = 'gauge';
  private readonly values = new Map<string, { labels: string[]; value: number }>();

  /** `collect` (optional) computes every sample at scrape time; set()/inc() are for kept values. */
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly collect?: () => GaugeSample[],
  ) {
    super(name, help, labelNames);
  }

  set(labels: Labels | undefined, value: number): void {
    const values = this.key(labels);
    this.values.set(values.join('\u0000'), { labels: values, value });
  }

  inc(labels?: Labels, by = 1): void {
    const values = this.key(labels);
    const k = values.join('\u0000');
    const cur = this.values.get(k);
    this.values.set(k, { labels: values, value: (cur?.value ?? 0) + by });
  }

  dec(labels?: Labels, by = 1): void {
    this.inc(labels, -by);
  }

  get(labels?: Labels): number {
    return this.values.get(this.key(labels).join('\u0000'))?.value ?? 0;
  }

  lines(): string[] {
    const samples = this.collect
      ? this.collect().map((s) => ({ labels: this.key(s.labels), value: s.value }))
      : [...this.values.values()];
    return samples.map((s) => `${this.name}${labelText(this.labelNames, s.labels)} ${formatValue(s.value)}`);
  }
}

export class Histogram extends Metric {
  readonly type = 'histogram';
  private readonly buckets: number[];
  private readonly series = new Map<
    string,
    { labels: string[]; counts: number[]; sum: number; count: number }
  >();

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[] = latencyBuckets,
  ) {
    super(name, help, labelNames);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels | undefined, value: number): void {
    const values = this.key(labels);
    const k = values.join('\u0000');
    let s = this.series.get(k);
    if (!s) {
      s = { labels: values, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    // Buckets are cumulative in the exposition; here each holds its own range, summed when written.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  count(labels?: Labels): number {
    return this.series.get(this.key(labels).join('\u0000'))?.count ?? 0;
  }

  lines(): string[] {
    const out: string[] = [];
    const series = [...this.series.values()];
    if (this.labelNames.length === 0 && series.length === 0)
      series.push({ labels: [], counts: this.buckets.map(() => 0), sum: 0, count: 0 });
    for (const s of series) {
      let acc = 0;
      this.buckets.forEach((b, i) => {
        acc += s.counts[i];
        out.push(`${this.name}_bucket${labelText(this.labelNames, s.labels, ['le', formatValue(b)])} ${acc}`);
      });
      out.push(`${this.name}_bucket${labelText(this.labelNames, s.labels, ['le', '+Inf'])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, s.labels)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    collect?: () => GaugeSample[],
  ): Gauge {
    return this.add(new Gauge(name, help, labelNames, collect));
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets?: readonly number[],
  ): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** The whole exposition; a collector that throws costs its own metric only. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) {
      let lines: string[];
      try {
        lines = m.lines();
      } catch {
        continue;
      }
      out.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`, ...lines);
    }
    return `${out.join('\n')}\n`;
  }

  private add<M extends Metric>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
}

export const contentType = 'text/plain; version=0.0.4; charset=utf-8';
