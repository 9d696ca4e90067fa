// Admission control: the rate limits of API.md, applied in front of the ChatService on the replica that
// serves the call. In a Raft replica that is the leader: followers forward every Login and every write
// (raft-router.ts), so one limiter there sees the whole cluster's calls, and a refused call never reaches
// the log. Nothing here is replicated or read by apply; see docs/design/rate-limits.md.
import { ChatError, exhausted, status, waitText } from './errors.js';
import { FailedLoginLimiter, WriteRateLimiter } from './rate-limits.js';
import type { CallContext, ChatService } from './service.js';

/** Calls that change state for a signed-in user: each takes a token from the user's bucket. */
export const RATE_LIMITED_WRITES: ReadonlySet<string> = new Set([
  'Logout',
  'DeleteAccount',
  'UpdateSettings',
  'StartChat',
  'SendMessage',
  'DeleteMessages',
  'ReadMessages',
  'MarkRead',
  'EditMessage',
  'SetTyping',
]);

export interface RateLimits {
  /** Failed Logins per username per minute (API.md: 5). */
  loginFailuresPerMinute: number;
  /** Sustained writes per second per user (API.md: 20). */
  writesPerSecond: number;
  /** Writes at once after a quiet spell (API.md: 40). */
  writeBurst: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  loginFailuresPerMinute: 5,
  writesPerSecond: 20,
  writeBurst: 40,
};

export interface AdmissionOptions {
  service: Pick<ChatService, 'handle'>;
  /** The account behind a session token in this replica's applied state, or undefined if unknown. */
  userOf: (token: string) => number | undefined;
  limits?: RateLimits;
  now?: () => number;
  /** Called with the limit that refused a call (metrics). */
  onRefused?: (limit: 'login' | 'write') => void;
}

export class AdmissionControl {
  readonly logins: FailedLoginLimiter;
  readonly writes: WriteRateLimiter;

  constructor(private readonly opts: AdmissionOptions) {
    const limits = opts.limits ?? DEFAULT_RATE_LIMITS;
    const now = opts.now ?? Date.now;
    this.logins = new FailedLoginLimiter({
      maxFailures: limits.loginFailuresPerMinute,
      windowMs: 60_000,
      now,
    });
    this.writes = new WriteRateLimiter({ perSecond: limits.writesPerSecond, burst: limits.writeBurst, now });
  }

  /** The same seam as ChatService.handle: the router calls this instead. */
  handle(method: string, request: unknown, ctx: CallContext): Promise<unknown> {
    if (method === 'Login') return this.login(request, ctx);
    if (RATE_LIMITED_WRITES.has(method) && typeof ctx.token === 'string' && ctx.token !== '') {
      const userId = this.opts.userOf(ctx.token);
      // An unknown token gets no bucket: the service refuses it as UNAUTHENTICATED anyway.
      if (userId !== undefined) {
        const taken = this.writes.take(`u:${userId}`);
        if (!taken.ok) {
          this.opts.onRefused?.('write');
          return Promise.reject(
            exhausted(
              `Too many writes; the limit is ${this.limits.writesPerSecond} per second. Try again in ${waitText(taken.retryAfterMs)}.`,
              taken.retryAfterMs,
            ),
          );
        }
      }
    }
    return this.opts.service.handle(method, request, ctx);
  }

  private get limits(): RateLimits {
    return this.opts.limits ?? DEFAULT_RATE_LIMITS;
  }

  private async login(request: unknown, ctx: CallContext): Promise<unknown> {
    const r = (typeof request === 'object' && request !== null ? request : {}) as { username?: unknown };
    const username = typeof r.username === 'string' ? r.username : '';
    const admitted = this.logins.begin(username);
    if (!admitted.ok) {
      this.opts.onRefused?.('login');
      throw exhausted(
        `Too many failed logins for this username; try again in ${waitText(admitted.retryAfterMs)}.`,
        admitted.retryAfterMs,
      );
    }
    try {
      const result = await this.opts.service.handle('Login', request, ctx);
      admitted.ticket.done(false);
      return result;
    } catch (err) {
      // Only wrong credentials count; a shed hash, a deadline or a lost leadership is no guess.
      admitted.ticket.done(err instanceof ChatError && err.code === status.UNAUTHENTICATED);
      throw err;
    }
  }
}
