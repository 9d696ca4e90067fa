// Typing notices (SetTyping): ephemeral, never in the log, never on disk (docs/design/typing.md).
// The replica that accepted a SetTyping hands the notice to its TypingFanout, which delivers it to the
// recipient's streams on this replica and relays it, encoded, to every other replica over the peer
// transport; each of those delivers it to the streams open there. Raft knows nothing of this: it
// carries the encoded notice as opaque bytes.
import type { Typing } from './types.js';

/** One typing notice: who typed (internal user id), to whom (internal user id), and the event. */
export interface TypingNotice {
  senderId: number;
  userId: number;
  typing: Typing;
}

/** What the fan-out needs of the event hub: delivery to the user's open streams, nothing retained. */
export interface EphemeralSink {
  publishEphemeral(userId: number, typing: Typing): void;
}

export interface TypingFanoutOptions {
  hub: EphemeralSink;
  /** Sends a payload to every other replica, best effort; none for a single replica. */
  relay?: (payload: Buffer) => void;
  now?: () => number;
  /** A repeated `typing: true` for the same sender and chat is passed on at most once per this (ms). */
  refreshMs?: number;
  /** Notices per second one sender may cause, with a burst of as many (beyond: dropped). */
  perSenderPerSecond?: number;
}

/** The relay topic of typing notices on the peer transport. */
export const TYPING_TOPIC = 'chat.typing';

/** A receiver treats `typing: true` as over after this long without a refresh (API.md). */
export const TYPING_EXPIRY_MS = 6000;
const DEFAULT_REFRESH_MS = 2000;
const DEFAULT_PER_SENDER = 10;
/** Largest payload a peer may relay; a notice is about 100 bytes. */
export const MAX_NOTICE_BYTES = 1024;
/** Bound on the throttle's memory: entries idle longer than the expiry are forgotten past this many. */
const MAX_TRACKED = 10_000;

interface Last {
  typing: boolean;
  at: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TypingFanout {
  private readonly now: () => number;
  private readonly refreshMs: number;
  private readonly rate: number;
  private readonly last = new Map<string, Last>();
  private readonly buckets = new Map<number, Bucket>();
  /** Counters for tests and metrics. */
  readonly stats = { published: 0, throttled: 0, relayed: 0, received: 0, refused: 0 };

  constructor(private readonly opts: TypingFanoutOptions) {
    this.now = opts.now ?? Date.now;
    this.refreshMs = opts.refreshMs ?? DEFAULT_REFRESH_MS;
    this.rate = opts.perSenderPerSecond ?? DEFAULT_PER_SENDER;
  }

  /**
   * A SetTyping this replica accepted. A change of state always goes out; a repeated `true` only once
   * per refresh interval (receivers keep it for 6 s, so that is plenty); a repeated `false` never.
   * Each sender is further capped, so flipping the state in a loop cannot flood the peers.
   */
  publish(notice: TypingNotice): void {
    const now = this.now();
    const key = `${notice.senderId}\u0000${notice.typing.chat_id}`;
    const prev = this.last.get(key);
    const fresh =
      prev === undefined ||
      prev.typing !== notice.typing.typing ||
      (notice.typing.typing && now - prev.at >= this.refreshMs);
    if (!fresh || !this.take(notice.senderId, now)) {
      this.stats.throttled++;
      return;
    }
    this.last.set(key, { typing: notice.typing.typing, at: now });
    if (this.last.size > MAX_TRACKED) this.prune(now);
    this.stats.published++;
    this.opts.hub.publishEphemeral(notice.userId, notice.typing);
    if (this.opts.relay) {
      this.stats.relayed++;
      this.opts.relay(encodeNotice(notice));
    }
  }

  /** A notice relayed by another replica: delivered here, never relayed again. */
  receive(payload: Uint8Array): void {
    const notice = decodeNotice(payload);
    if (!notice) {
      this.stats.refused++;
      return;
    }
    this.stats.received++;
    // The receivers already heard this state: the throttle follows it, so a sender whose calls move
    // between replicas (follower reads serve SetTyping where it arrives) is not announced twice.
    const key = `${notice.senderId}\u0000${notice.typing.chat_id}`;
    this.last.set(key, { typing: notice.typing.typing, at: this.now() });
    if (this.last.size > MAX_TRACKED) this.prune(this.now());
    this.opts.hub.publishEphemeral(notice.userId, notice.typing);
  }

  private take(senderId: number, now: number): boolean {
    const b = this.buckets.get(senderId) ?? { tokens: this.rate, at: now };
    b.tokens = Math.min(this.rate, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    this.buckets.set(senderId, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private prune(now: number): void {
    for (const [k, v] of this.last) if (now - v.at > TYPING_EXPIRY_MS) this.last.delete(k);
    for (const [k, v] of this.buckets) if (now - v.at > TYPING_EXPIRY_MS) this.buckets.delete(k);
  }
}

/** The relay payload: compact JSON (`v` is the format version). */
export function encodeNotice(n: TypingNotice): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: 1,
      s: n.senderId,
      u: n.userId,
      c: n.typing.chat_id,
      n: n.typing.username,
      t: n.typing.typing,
    }),
  );
}

/** The notice in a relay payload, or undefined for anything malformed (it is then dropped). */
export function decodeNotice(payload: Uint8Array): TypingNotice | undefined {
  if (payload.length > MAX_NOTICE_BYTES) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null || o.v !== 1) return undefined;
  const id = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
  if (
    !id(o.s) ||
    !id(o.u) ||
    typeof o.c !== 'string' ||
    typeof o.n !== 'string' ||
    typeof o.t !== 'boolean'
  ) {
    return undefined;
  }
  return { senderId: o.s, userId: o.u, typing: { chat_id: o.c, username: o.n, typing: o.t } };
}
