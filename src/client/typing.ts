// Who is typing where, as a receiver of `typing` events sees it (API.md: a `typing: true` is over after
// 6 s without a refresh, and no event is sent at expiry, so the receiver expires it itself).
import { TYPING_EXPIRY_MS } from '../chat/typing.js';

export interface TypingEvent {
  chat_id: string;
  username: string;
  typing: boolean;
}

export class TypingIndicators {
  /** `chat\0user` → when the indicator lapses (Unix ms). */
  private readonly until = new Map<string, number>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly expiryMs = TYPING_EXPIRY_MS,
  ) {}

  /** A `typing` event: true (re)starts the 6 s window, false ends it at once. */
  apply(e: TypingEvent): void {
    const key = `${e.chat_id}\u0000${e.username}`;
    if (e.typing) this.until.set(key, this.now() + this.expiryMs);
    else this.until.delete(key);
  }

  /** The users typing in `chatId` right now (expired indicators are dropped). */
  typing(chatId: string): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const [key, until] of this.until) {
      if (until <= now) {
        this.until.delete(key);
        continue;
      }
      const [chat, user] = key.split('\u0000');
      if (chat === chatId) out.push(user);
    }
    return out.sort();
  }

  /** When the next indicator lapses (for a UI timer), or undefined when none is shown. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const until of this.until.values()) if (next === undefined || until < next) next = until;
    return next;
  }
}
