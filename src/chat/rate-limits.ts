// The two rate limits of API.md ("Limits"), as plain in-memory bookkeeping with an injected clock. They
// decide admission only: they live on the leader, in front of the ChatService (admission.ts), and never
// in apply, so the replicated state machine stays deterministic. docs/design/rate-limits.md says why.
import { foldCase } from './glob.js';

/** Sweep idle keys once a map holds this many (both maps are small in normal use). */
const SWEEP_AT = 10_000;

export interface FailedLoginOptions {
  /** Failed attempts allowed per username per window (API.md: 5). */
  maxFailures: number;
  /** The window (API.md: one minute). */
  windowMs: number;
  now: () => number;
  /** Retry hint when only attempts still running fill the allowance (they end within a hash or so). */
  busyRetryMs?: number;
}

export type Admission<T> = { ok: true; ticket: T } | { ok: false; retryAfterMs: number };

export interface LoginTicket {
  /** The attempt is over: `failed` when its credentials were wrong. Call once. */
  done(failed: boolean): void;
}

interface Window {
  /** Times of failed attempts inside the window, oldest first. */
  failures: number[];
  /** Attempts admitted and not yet over: they may still fail, so they count against the allowance. */
  running: number;
}

/**
 * At most `maxFailures` failed Logins per username (any case) in any `windowMs`, as a sliding window.
 * An attempt is admitted only while failures in the window plus attempts still running stay below the
 * allowance, so even a burst of concurrent guesses cannot exceed it. Once refused, every attempt for that
 * name is refused, whatever its password, until the oldest failure leaves the window.
 */
export class FailedLoginLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly opts: FailedLoginOptions) {}

  /** The key of a username: case-folded (as accounts are), and bounded in length. */
  static key(username: string): string {
    return foldCase(username.slice(0, 64));
  }

  begin(username: string): Admission<LoginTicket> {
    const now = this.opts.now();
    if (this.windows.size >= SWEEP_AT) this.sweep(now);
    const key = FailedLoginLimiter.key(username);
    let w = this.windows.get(key);
    if (w) this.prune(w, now);
    const used = (w?.failures.length ?? 0) + (w?.running ?? 0);
    if (w && used >= this.opts.maxFailures) {
      // The failure whose expiry brings `used` below the allowance; if running attempts alone fill it,
      // they will be over within about one password check.
      const k = used - this.opts.maxFailures;
      const retryAfterMs =
        k < w.failures.length ? w.failures[k] + this.opts.windowMs - now : (this.opts.busyRetryMs ?? 1000);
      return { ok: false, retryAfterMs: Math.max(1, retryAfterMs) };
    }
    if (!w) {
      w = { failures: [], running: 0 };
      this.windows.set(key, w);
    }
    const win = w;
    win.running++;
    let over = false;
    return {
      ok: true,
      ticket: {
        done: (failed: boolean) => {
          if (over) return;
          over = true;
          win.running--;
          if (failed) win.failures.push(this.opts.now());
          if (win.running === 0 && win.failures.length === 0 && this.windows.get(key) === win) {
            this.windows.delete(key);
          }
        },
      },
    };
  }

  /** Usernames with state (for tests and metrics). */
  get size(): number {
    return this.windows.size;
  }

  private prune(w: Window, now: number): void {
    let drop = 0;
    while (drop < w.failures.length && w.failures[drop] <= now - this.opts.windowMs) drop++;
    if (drop > 0) w.failures.splice(0, drop);
  }

  private sweep(now: number): void {
    for (const [key, w] of this.windows) {
      this.prune(w, now);
      if (w.running === 0 && w.failures.length === 0) this.windows.delete(key);
    }
  }
}

export interface WriteRateOptions {
  /** Sustained writes per second per user (API.md: 20). */
  perSecond: number;
  /** Bucket size: writes allowed at once after a quiet spell (API.md: 40). */
  burst: number;
  now: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket per user: `burst` tokens, refilled at `perSecond`; a write takes one. */
export class WriteRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly opts: WriteRateOptions) {}

  /** Takes a token for `key`; when none is left, the ms until one will be. */
  take(key: string): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = this.opts.now();
    if (this.buckets.size >= SWEEP_AT) this.sweep(now);
    const b = this.buckets.get(key) ?? { tokens: this.opts.burst, at: now };
    this.refill(b, now);
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / this.opts.perSecond)) };
  }

  get size(): number {
    return this.buckets.size;
  }

  private refill(b: Bucket, now: number): void {
    if (now > b.at) {
      b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) * this.opts.perSecond) / 1000);
      b.at = now;
    }
  }

  /** A bucket that has refilled is the same as no bucket: drop those. */
  private sweep(now: number): void {
    for (const [key, b] of this.buckets) {
      this.refill(b, now);
      if (b.tokens >= this.opts.burst) this.buckets.delete(key);
    }
  }
}
