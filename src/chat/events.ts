// Subscribe's event fan-out on one replica. The store hands over each committed batch's events (already
// addressed to users); the hub delivers them to that user's open streams and keeps a bounded window of
// recent events so a stream that broke can resume with SubscribeRequest.after_index without a gap.
// Ephemeral events (typing) are delivered to the streams open now and never enter that window, so a
// resume never replays them.
import type { ChatStore } from './store.js';
import type { AppliedBatch, ChatEvent, Typing } from './types.js';

export interface EventSink {
  event(event: ChatEvent): void;
  /** The stream must end: its session was revoked (Logout, DeleteAccount). */
  revoked(): void;
}

interface Subscriber {
  userId: number;
  tokenHash: string;
  afterIndex: number;
  sink: EventSink;
}

export class EventHub {
  private readonly window: { userId: number; event: ChatEvent }[] = [];
  private readonly subscribers = new Set<Subscriber>();
  private readonly detach: () => void;
  /** The highest index applied when the hub started: events at or below it are not in the window. */
  private horizon: number;

  constructor(
    private readonly store: ChatStore,
    private readonly capacity = 10_000,
  ) {
    this.horizon = store.appliedIndex();
    this.detach = store.onApplied((batch) => this.publish(batch));
  }

  /**
   * Opens a stream for `userId`: first the retained events with index > afterIndex (0: none, live only),
   * then live ones. Synchronous, so no batch can slip between the replay and the live registration.
   */
  subscribe(userId: number, tokenHash: string, afterIndex: number, sink: EventSink): () => void {
    const sub: Subscriber = { userId, tokenHash, afterIndex, sink };
    if (afterIndex > 0) {
      for (const rec of this.window) {
        if (rec.userId === userId && rec.event.index > afterIndex) sink.event(rec.event);
      }
    }
    this.subscribers.add(sub);
    return () => this.subscribers.delete(sub);
  }

  /**
   * An ephemeral event for `userId`'s open streams: not retained, not replayable. Its index is this
   * replica's applied index: every logged event up to it has already gone out on these streams, so a
   * client that resumes after it misses nothing.
   */
  publishEphemeral(userId: number, typing: Typing): void {
    const event: ChatEvent = { index: this.store.appliedIndex(), typing };
    for (const sub of this.subscribers) if (sub.userId === userId) deliver(sub, event);
  }

  /** The oldest index the window can replay after (resuming from below it may miss events). */
  oldestResumable(): number {
    return this.horizon;
  }

  subscriberCount(): number {
    return this.subscribers.size;
  }

  close(): void {
    this.detach();
    this.subscribers.clear();
  }

  private publish(batch: AppliedBatch): void {
    for (const rec of batch.events) {
      this.window.push(rec);
      for (const sub of this.subscribers) {
        // A resumed stream may have seen events up to afterIndex on another replica already.
        if (sub.userId === rec.userId && rec.event.index > sub.afterIndex) deliver(sub, rec.event);
      }
    }
    if (this.window.length > this.capacity) {
      const dropped = this.window.splice(0, this.window.length - this.capacity);
      this.horizon = Math.max(this.horizon, dropped[dropped.length - 1].event.index);
    }
    const tokens = new Set(batch.revoked.tokenHashes);
    const users = new Set(batch.revoked.userIds);
    if (tokens.size === 0 && users.size === 0) return;
    for (const sub of [...this.subscribers]) {
      if (tokens.has(sub.tokenHash) || users.has(sub.userId)) {
        this.subscribers.delete(sub);
        try {
          sub.sink.revoked();
        } catch {
          // The stream is gone already.
        }
      }
    }
  }
}

function deliver(sub: Subscriber, event: ChatEvent): void {
  try {
    sub.sink.event(event);
  } catch {
    // One broken stream must not keep the event from the others.
  }
}
