// The /cluster page's "messages in flight", as one replica sees its own traffic. The transport taps each
// message it sends (and each one it drops, on either side) into `record`; every few hundred ms the
// inspector `flush`es: per-link rates (all messages counted) and a bounded sample of the messages
// themselves (so a page can draw thousands a second without drawing each one). Pure: time comes in as
// arguments, so the sampling is unit-tested without a clock.
//
// Sampling: votes, pre-votes, snapshots, TimeoutNow and rejections are rare and tell the story of an
// election, so each is kept (up to `maxSamples`); heartbeats and appends are kept one per link, kind
// and flush, which is enough to draw the flow on every link.
import type { RaftMessage } from '../../machines/protocol.js';

export type MessageKind =
  | 'heartbeat'
  | 'append'
  | 'appendResponse'
  | 'preVote'
  | 'preVoteResponse'
  | 'vote'
  | 'voteResponse'
  | 'snapshot'
  | 'snapshotResponse'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResponse';

export function kindOf(m: RaftMessage): MessageKind {
  switch (m.type) {
    case 'AppendEntries':
      return m.entries.length === 0 ? 'heartbeat' : 'append';
    case 'AppendEntriesResponse':
      return 'appendResponse';
    case 'RequestVote':
      return m.preVote ? 'preVote' : 'vote';
    case 'RequestVoteResponse':
      return m.preVote ? 'preVoteResponse' : 'voteResponse';
    case 'InstallSnapshot':
      return 'snapshot';
    case 'InstallSnapshotResponse':
      return 'snapshotResponse';
    case 'TimeoutNow':
      return 'timeoutNow';
    case 'ReadIndexRequest':
      return 'readIndex';
    case 'ReadIndexResponse':
      return 'readIndexResponse';
  }
}

/** Kinds sent many times a second on a healthy cluster: one sample per link and flush is enough. */
const frequent = new Set<MessageKind>([
  'heartbeat',
  'append',
  'appendResponse',
  'readIndex',
  'readIndexResponse',
]);

/** One message as the page draws it. */
export interface SampledMessage {
  at: number;
  from: string;
  to: string;
  kind: MessageKind;
  term: number;
  /** Entries carried (AppendEntries). */
  entries?: number;
  /** A vote granted, an append accepted; false for a refusal. */
  ok?: boolean;
  /** Dropped at this replica's transport (a cut link or a pause). */
  dropped: boolean;
}

/** One directed link over the last flush interval. */
export interface LinkRate {
  from: string;
  to: string;
  /** Messages sent per second (the sender's count). */
  perSecond: number;
  /** Messages dropped per second, at either end. */
  dropsPerSecond: number;
  /** Per kind, messages per second. */
  kinds: Partial<Record<MessageKind, number>>;
  /** Messages were dropped within the last `brokenHoldMs`. */
  broken: boolean;
}

export interface TrafficFrame {
  at: number;
  /** Milliseconds the rates are over. */
  intervalMs: number;
  links: LinkRate[];
  messages: SampledMessage[];
  /** Messages recorded but not sampled in this interval. */
  skipped: number;
}

export interface TrafficSamplerOptions {
  /** Messages kept per flush at most. */
  maxSamples?: number;
  /** A link stays broken this long after its last drop (a heartbeat interval or two). */
  brokenHoldMs?: number;
  /** A link with no traffic for this long is forgotten. */
  forgetMs?: number;
}

interface LinkCounts {
  from: string;
  to: string;
  sent: number;
  dropped: number;
  kinds: Partial<Record<MessageKind, number>>;
  lastDropAt: number;
  lastSeenAt: number;
  /** Frequent kinds already sampled in this interval. */
  sampled: Set<MessageKind>;
}

export class TrafficSampler {
  private readonly maxSamples: number;
  private readonly brokenHoldMs: number;
  private readonly forgetMs: number;
  private links = new Map<string, LinkCounts>();
  private samples: SampledMessage[] = [];
  private skipped = 0;
  private since: number | undefined;

  constructor(opts: TrafficSamplerOptions = {}) {
    this.maxSamples = opts.maxSamples ?? 60;
    this.brokenHoldMs = opts.brokenHoldMs ?? 1500;
    this.forgetMs = opts.forgetMs ?? 10_000;
  }

  /**
   * One message: sent by this replica (`dropped` false), or dropped by this replica's transport on its
   * way out or in. A message that was sent is not recorded again when it arrives: the sender counts it.
   */
  record(now: number, m: RaftMessage, dropped: boolean): void {
    this.since ??= now;
    const key = `${m.from}>${m.to}`;
    let link = this.links.get(key);
    if (!link) {
      link = {
        from: m.from,
        to: m.to,
        sent: 0,
        dropped: 0,
        kinds: {},
        lastDropAt: Number.NEGATIVE_INFINITY,
        lastSeenAt: now,
        sampled: new Set(),
      };
      this.links.set(key, link);
    }
    const kind = kindOf(m);
    link.lastSeenAt = now;
    if (dropped) {
      link.dropped++;
      link.lastDropAt = now;
    } else {
      link.sent++;
      link.kinds[kind] = (link.kinds[kind] ?? 0) + 1;
    }
    const refusal = okOf(m) === false;
    const keep =
      this.samples.length < this.maxSamples &&
      (!frequent.has(kind) || refusal || !link.sampled.has(kind) || (dropped && link.dropped === 1));
    if (!keep) {
      this.skipped++;
      return;
    }
    if (frequent.has(kind)) link.sampled.add(kind);
    const s: SampledMessage = { at: now, from: m.from, to: m.to, kind, term: m.term, dropped };
    if (m.type === 'AppendEntries') s.entries = m.entries.length;
    const ok = okOf(m);
    if (ok !== undefined) s.ok = ok;
    this.samples.push(s);
  }

  /** The rates since the last flush and the sampled messages; starts the next interval. */
  flush(now: number): TrafficFrame {
    const intervalMs = Math.max(1, now - (this.since ?? now));
    const perSecond = (n: number) => Math.round((n * 10_000) / intervalMs) / 10;
    const links: LinkRate[] = [];
    for (const [key, l] of this.links) {
      if (now - l.lastSeenAt > this.forgetMs) {
        this.links.delete(key);
        continue;
      }
      const kinds: Partial<Record<MessageKind, number>> = {};
      for (const [k, n] of Object.entries(l.kinds)) kinds[k as MessageKind] = perSecond(n);
      links.push({
        from: l.from,
        to: l.to,
        perSecond: perSecond(l.sent),
        dropsPerSecond: perSecond(l.dropped),
        kinds,
        broken: now - l.lastDropAt <= this.brokenHoldMs,
      });
      l.sent = 0;
      l.dropped = 0;
      l.kinds = {};
      l.sampled.clear();
    }
    const frame: TrafficFrame = { at: now, intervalMs, links, messages: this.samples, skipped: this.skipped };
    this.samples = [];
    this.skipped = 0;
    this.since = now;
    return frame;
  }

  /** Forget everything (the last viewer left: the next one starts afresh). */
  reset(): void {
    this.links.clear();
    this.samples = [];
    this.skipped = 0;
    this.since = undefined;
  }
}

function okOf(m: RaftMessage): boolean | undefined {
  switch (m.type) {
    case 'RequestVoteResponse':
      return m.granted;
    case 'AppendEntriesResponse':
      return m.success;
    case 'ReadIndexResponse':
      return m.ok;
    default:
      return undefined;
  }
}
