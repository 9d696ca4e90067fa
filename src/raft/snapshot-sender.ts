// The leader's side of InstallSnapshot: streams the latest snapshot to each peer that needs it, with a
// small window of chunks in flight (flow control: a slow or far follower is not flooded with the whole
// file at once), resuming from the offset the follower reports.
//
// The follower answers every chunk with the next offset it expects (FileSnapshotStore.receive):
// - an offset beyond what it had acknowledged: progress, slide the window;
// - the same offset again while we sent beyond it: a chunk was lost (the later ones were refused as a
//   gap), so go back once and resend from there;
// - a lower offset: the follower lost its partial file (it restarted, or the finished file did not
//   verify and it asks for a new start), so start again from that offset;
// - `installed`: done.
// Silence for `retransmitMs` resends the window from the last acknowledged offset. If the leader's
// snapshot changes mid-transfer (it took a newer one), the transfer restarts from offset 0 with the
// new one; the follower drops its partial file when it sees a different snapshot.

import type { InstallSnapshotResponse, NodeId, RaftMessage, SnapshotMeta } from '../../machines/protocol.js';
import type { Clock, SnapshotStore } from './interfaces.js';

export interface SnapshotSenderOptions {
  id: NodeId;
  store: SnapshotStore;
  send: (m: RaftMessage) => void;
  clock: Clock;
  /** Bytes per chunk (default 64 KiB). */
  chunkBytes?: number;
  /** Chunks in flight per peer (default 4). */
  window?: number;
  /** Resend the window after this long without progress (default 500 ms). */
  retransmitMs?: number;
  /** Give up after this many retransmissions or restarts without progress (the machine retries later). */
  maxRetries?: number;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

interface Transfer {
  to: NodeId;
  term: number;
  meta: SnapshotMeta;
  /** Next offset the follower has confirmed it expects. */
  acked: number;
  /** Next offset to send. */
  sent: number;
  /** Size of the snapshot, once the last chunk has been read. */
  end: number | null;
  /** A loss was answered by going back; further duplicates wait for progress. */
  rewound: boolean;
  retries: number;
  timer: unknown;
  startedAt: number;
}

export interface SnapshotSenderStats {
  chunksSent: number;
  bytesSent: number;
  retransmits: number;
  restarts: number;
  completed: number;
}

export class SnapshotSender {
  private readonly transfers = new Map<NodeId, Transfer>();
  private readonly chunk: number;
  private readonly window: number;
  private readonly retransmitMs: number;
  private readonly maxRetries: number;
  readonly stats: SnapshotSenderStats = {
    chunksSent: 0,
    bytesSent: 0,
    retransmits: 0,
    restarts: 0,
    completed: 0,
  };

  constructor(private readonly opts: SnapshotSenderOptions) {
    this.chunk = Math.max(1, opts.chunkBytes ?? 64 * 1024);
    this.window = Math.max(1, opts.window ?? 4);
    this.retransmitMs = opts.retransmitMs ?? 500;
    this.maxRetries = opts.maxRetries ?? 20;
  }

  /** Peers with a transfer in progress. */
  active(): NodeId[] {
    return [...this.transfers.keys()];
  }

  /**
   * Start (or, when one is running for this term, re-drive) a transfer to `to`. A repeated request
   * keeps the acknowledged offset and resends from it: the machine asks again when a transfer stalled.
   */
  start(to: NodeId, term: number): void {
    const meta = this.opts.store.latest();
    if (meta.index === 0) {
      this.opts.logger?.warn({ to }, 'a peer needs a snapshot but there is none yet');
      return;
    }
    const t = this.transfers.get(to);
    if (t && t.term === term) {
      t.sent = t.acked;
      t.rewound = false;
      this.pump(t);
      return;
    }
    if (t) this.cancel(to);
    const fresh: Transfer = {
      to,
      term,
      meta,
      acked: 0,
      sent: 0,
      end: null,
      rewound: false,
      retries: 0,
      timer: undefined,
      startedAt: this.opts.clock.now(),
    };
    this.transfers.set(to, fresh);
    this.opts.logger?.info({ to, index: meta.index }, 'sending snapshot');
    this.pump(fresh);
  }

  onResponse(m: InstallSnapshotResponse): void {
    const t = this.transfers.get(m.from);
    if (!t || m.term !== t.term) return;
    if (m.installed && m.lastIncludedIndex >= t.meta.index) {
      this.stats.completed++;
      this.opts.logger?.info(
        { to: t.to, index: t.meta.index, ms: this.opts.clock.now() - t.startedAt },
        'snapshot installed on peer',
      );
      this.cancel(t.to);
      return;
    }
    if (m.lastIncludedIndex !== t.meta.index) return; // about an older snapshot
    if (m.nextOffset > t.acked) {
      t.acked = m.nextOffset;
      t.sent = Math.max(t.sent, t.acked);
      t.rewound = false;
      t.retries = 0;
    } else if (m.nextOffset < t.acked) {
      // The follower lost its partial file (restart) or rejected the finished one: start from there.
      if (++t.retries > this.maxRetries) {
        this.giveUp(t);
        return;
      }
      this.stats.restarts++;
      t.acked = m.nextOffset;
      t.sent = m.nextOffset;
      t.rewound = false;
    } else if (t.sent > t.acked && !t.rewound) {
      // A duplicate answer while later chunks are out: one of ours was lost; go back once.
      this.stats.retransmits++;
      t.sent = t.acked;
      t.rewound = true;
    } else {
      return;
    }
    this.pump(t);
  }

  /** Stop the transfer to `to` (it finished, the peer left, or leadership was lost). */
  cancel(to: NodeId): void {
    const t = this.transfers.get(to);
    if (!t) return;
    if (t.timer !== undefined) this.opts.clock.clearTimeout(t.timer);
    this.transfers.delete(to);
  }

  cancelAll(): void {
    for (const to of [...this.transfers.keys()]) this.cancel(to);
  }

  private giveUp(t: Transfer): void {
    this.opts.logger?.warn({ to: t.to, index: t.meta.index }, 'snapshot transfer gave up; will retry later');
    this.cancel(t.to);
  }

  /** Send what the window allows, then (re)arm the retransmit timer. */
  private pump(t: Transfer): void {
    const latest = this.opts.store.latest();
    if (latest.index !== t.meta.index || latest.term !== t.meta.term) {
      // The leader has a newer snapshot: the old file is gone, start over with the new one.
      this.stats.restarts++;
      t.meta = latest;
      t.acked = 0;
      t.sent = 0;
      t.end = null;
      t.rewound = false;
    }
    const limit = t.acked + this.window * this.chunk;
    for (let i = 0; i < this.window + 1 && t.sent < limit && (t.end === null || t.sent < t.end); i++) {
      const { chunk, done } = this.opts.store.read(t.sent, this.chunk);
      this.opts.send({
        type: 'InstallSnapshot',
        from: this.opts.id,
        to: t.to,
        term: t.term,
        lastIncludedIndex: t.meta.index,
        lastIncludedTerm: t.meta.term,
        config: t.meta.config,
        offset: t.sent,
        chunk: Buffer.from(chunk).toString('base64'),
        done,
      });
      this.stats.chunksSent++;
      this.stats.bytesSent += chunk.length;
      t.sent += chunk.length;
      if (done) t.end = t.sent;
    }
    if (t.timer !== undefined) this.opts.clock.clearTimeout(t.timer);
    t.timer = this.opts.clock.setTimeout(() => this.onSilence(t.to), this.retransmitMs);
  }

  private onSilence(to: NodeId): void {
    const t = this.transfers.get(to);
    if (!t) return;
    t.timer = undefined;
    if (++t.retries > this.maxRetries) {
      this.giveUp(t);
      return;
    }
    this.stats.retransmits++;
    t.sent = t.acked;
    t.rewound = false;
    this.pump(t);
  }
}
