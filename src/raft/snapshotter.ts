// Snapshotter: takes a snapshot of the state machine in the background whenever enough entries were
// applied since the last one, then has the RaftNode compact its log behind it. The state machine
// writes the bytes (SnapshotSource.snapshotTo, e.g. the chat tables: src/chat/snapshots.ts); this
// module only decides when, and records the index, term and configuration they are consistent with.
//
// Bound on the log: at most `every` entries are applied past the latest snapshot before a new one
// starts, the take itself runs while more entries arrive (a few hundred ms to seconds for a large state), and
// `keep` entries stay behind the snapshot for followers that are only slightly behind. With the
// defaults (every 5000, keep 1000) the log stays well under 10,000 entries.

import type { SnapshotMeta } from '../../machines/protocol.js';
import { lastConfigAtOrBefore } from '../../machines/replica/rules.js';
import type { ApplyOutcome, LogStore, SnapshotSource } from './interfaces.js';
import type { RaftLogger } from './node-types.js';
import type { FileSnapshotStore } from './snapshot-store.js';

/** The part of RaftNode a Snapshotter uses. */
export interface SnapshotHost {
  appliedIndex(): number;
  snapshotTaken(meta: SnapshotMeta, keep?: number): void;
  onApplied(cb: (outcomes: ApplyOutcome[]) => void): () => void;
}

export interface SnapshotterOptions {
  host: SnapshotHost;
  logStore: LogStore;
  snapshots: FileSnapshotStore;
  /** Writes the state machine's snapshot bytes (in steps: it must not hold the event loop long). */
  source: SnapshotSource;
  /** Take a snapshot once this many entries were applied past the latest one (default 5000). */
  every?: number;
  /** Entries kept in the log behind the snapshot (default: a fifth of `every`, at most 1000). */
  keep?: number;
  logger?: RaftLogger;
}

export interface SnapshotterStats {
  taken: number;
  failed: number;
  lastIndex: number;
  lastMs: number;
  /** Longest single step of the last take: how long it held the event loop. */
  lastMaxStepMs: number;
  lastBytes: number;
}

export class Snapshotter {
  readonly every: number;
  readonly keep: number;
  readonly stats: SnapshotterStats = {
    taken: 0,
    failed: 0,
    lastIndex: 0,
    lastMs: 0,
    lastMaxStepMs: 0,
    lastBytes: 0,
  };
  private unsubscribe: (() => void) | undefined;
  private running: Promise<SnapshotMeta | undefined> | undefined;
  private stopped = false;
  /** After a failure, wait before trying again (a full disk must not turn into a busy loop). */
  private notBefore = 0;

  constructor(private readonly opts: SnapshotterOptions) {
    this.every = Math.max(1, opts.every ?? 5000);
    this.keep = Math.max(0, opts.keep ?? Math.min(1000, Math.floor(this.every / 5)));
  }

  start(): void {
    this.unsubscribe ??= this.opts.host.onApplied(() => this.maybeTake());
    this.maybeTake();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Wait for the take in progress, if any (tests, graceful shutdown). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** Start a take if the log has grown enough since the latest snapshot and none is running. */
  maybeTake(): void {
    if (this.stopped || this.running || Date.now() < this.notBefore) return;
    if (this.opts.host.appliedIndex() - this.opts.snapshots.latest().index < this.every) return;
    void this.takeNow().catch(() => undefined);
  }

  /** Take a snapshot at the current applied index now (one at a time). */
  takeNow(): Promise<SnapshotMeta | undefined> {
    if (this.running) return this.running;
    const run = this.take().finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async take(): Promise<SnapshotMeta | undefined> {
    const { snapshots, logStore, host, logger } = this.opts;
    try {
      const meta = await snapshots.takeInSteps(this.opts.source, {
        metaAt: (index) => {
          const term = logStore.termAt(index);
          if (term === undefined) return undefined;
          const config = logStore.configAt
            ? logStore.configAt(index)
            : (lastConfigAtOrBefore(logStore, index)?.config ?? logStore.snapshot().config);
          return { index, term, config };
        },
      });
      if (!meta || this.stopped) return undefined;
      host.snapshotTaken(meta, this.keep);
      const t = snapshots.lastTake;
      this.stats.taken++;
      this.stats.lastIndex = meta.index;
      this.stats.lastMs = t?.totalMs ?? 0;
      this.stats.lastMaxStepMs = t?.maxStepMs ?? 0;
      this.stats.lastBytes = t?.bytes ?? 0;
      logger?.info(
        {
          index: meta.index,
          ms: Math.round(this.stats.lastMs),
          maxStepMs: Math.round(this.stats.lastMaxStepMs * 10) / 10,
          bytes: this.stats.lastBytes,
          firstLogIndex: logStore.firstIndex(),
        },
        'snapshot taken, log compacted',
      );
      return meta;
    } catch (err) {
      this.stats.failed++;
      this.notBefore = Date.now() + 1000;
      logger?.warn({ err }, 'taking a snapshot failed; will retry');
      throw err;
    } finally {
      // Entries may have piled up during the take.
      if (!this.stopped) setImmediate(() => this.maybeTake());
    }
  }
}
