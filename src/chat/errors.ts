// The one error type of the chat domain: a gRPC status code plus a one-sentence message for the user.
// Apply never throws it past its own boundary; it becomes data (CommandResult) so every replica
// records the same outcome for the same entry.
import { status } from '@grpc/grpc-js';

export { status };

export class ChatError extends Error {
  readonly code: status;
  /** For RESOURCE_EXHAUSTED from a rate limit or a full queue: how long the caller should wait (ms).
   *  The gRPC layer sends it as `retry-after-ms` response metadata (src/server/metadata.ts). */
  readonly retryAfterMs?: number;

  constructor(code: status, message: string, retryAfterMs?: number) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
    if (retryAfterMs !== undefined) this.retryAfterMs = Math.max(1, Math.ceil(retryAfterMs));
  }
}

export const invalid = (message: string): ChatError => new ChatError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): ChatError => new ChatError(status.NOT_FOUND, message);
export const denied = (message: string): ChatError => new ChatError(status.PERMISSION_DENIED, message);
export const unauthenticated = (message: string): ChatError => new ChatError(status.UNAUTHENTICATED, message);
/** A rate limit or a full queue: RESOURCE_EXHAUSTED with the time after which a retry can succeed. */
export const exhausted = (message: string, retryAfterMs: number): ChatError =>
  new ChatError(status.RESOURCE_EXHAUSTED, message, retryAfterMs);

/** "in 42 s" / "in 250 ms": a wait for a sentence, rounded up. */
export function waitText(ms: number): string {
  return ms >= 1000 ? `${Math.ceil(ms / 1000)} s` : `${Math.max(1, Math.ceil(ms))} ms`;
}

/** Login's answer for an unknown user and for a wrong password alike, so it leaks neither. */
export const BAD_CREDENTIALS = 'Wrong username or password.';
/** The answer for a missing, unknown or revoked token. */
export const BAD_TOKEN = 'The session token is missing, invalid or revoked; log in again.';
