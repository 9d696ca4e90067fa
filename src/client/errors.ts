// The one error type the bundled clients surface: a gRPC status code plus the server's one-sentence message.
import * as grpc from '@grpc/grpc-js';

export class ChatClientError extends Error {
  /** The gRPC status code (grpc.status.*). */
  readonly code: grpc.status;
  /** The code's name, e.g. `NOT_FOUND`, for printing and for mapping to HTTP. */
  readonly codeName: string;
  /** RESOURCE_EXHAUSTED from a rate limit: the server's `retry-after-ms`, the wait before a retry can work. */
  readonly retryAfterMs?: number;

  constructor(code: grpc.status, message: string, retryAfterMs?: number) {
    super(message);
    this.name = 'ChatClientError';
    this.code = code;
    this.codeName = grpc.status[code] ?? `CODE_${code}`;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }

  /** `NOT_FOUND: no such user.` */
  override toString(): string {
    return `${this.codeName}: ${this.message}`;
  }
}

/** Wraps whatever a grpc-js call rejected with (a ServiceError, or anything else) as a ChatClientError. */
export function toClientError(err: unknown): ChatClientError {
  if (err instanceof ChatClientError) return err;
  const e = err as Partial<grpc.ServiceError> | undefined;
  if (e && typeof e.code === 'number') {
    // grpc-js puts "<code> <NAME>: <details>" in .message; the server's own sentence is .details.
    return new ChatClientError(
      e.code,
      e.details || e.message || 'The call failed.',
      retryAfterOf(e.metadata),
    );
  }
  return new ChatClientError(grpc.status.UNKNOWN, err instanceof Error ? err.message : String(err));
}

/** The `retry-after-ms` trailer (API.md Limits), or undefined when absent or not a positive whole number. */
export function retryAfterOf(md: grpc.Metadata | undefined): number | undefined {
  const value = md?.get('retry-after-ms')[0];
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value)) return undefined;
  const ms = Number(value);
  return ms > 0 ? ms : undefined;
}

// Connection-level failures that grpc-js reports as INTERNAL/UNKNOWN rather than UNAVAILABLE when a
// replica dies in the middle of a call. These are transport problems, not answers from the server.
const LOST_CONNECTION =
  /RST_STREAM|ECONNRESET|EPIPE|connection (dropped|closed|reset)|socket hang up|GOAWAY/i;

/**
 * Whether a failed attempt may be retried at once (on another replica). Only transport trouble and "no
 * leader yet" qualify; every other code is the server's answer and retrying would not change it.
 * RESOURCE_EXHAUSTED is never retryable at once: the client waits its `retry-after-ms` first, if the
 * operation's deadline allows (client.ts), and otherwise reports it.
 */
export function isRetryable(err: ChatClientError): boolean {
  switch (err.code) {
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
    // A replica shutting down cancels its in-flight calls; we never cancel a unary call ourselves.
    case grpc.status.CANCELLED:
      return true;
    case grpc.status.INTERNAL:
    case grpc.status.UNKNOWN:
      return LOST_CONNECTION.test(err.message);
    default:
      return false;
  }
}
