// The one error type of the chat domain: a gRPC status code plus a one-sentence message for the user.
// Apply never throws it past its own boundary; it becomes data (CommandResult) so every replica
// records the same outcome for the same entry.
import { status } from '@grpc/grpc-js';

export { status };

export class ChatError extends Error {
  readonly code: status;

  constructor(code: status, message: string) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
  }
}

export const invalid = (message: string): ChatError => new ChatError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): ChatError => new ChatError(status.NOT_FOUND, message);
export const denied = (message: string): ChatError => new ChatError(status.PERMISSION_DENIED, message);
export const unauthenticated = (message: string): ChatError => new ChatError(status.UNAUTHENTICATED, message);

/** Login's answer for an unknown user and for a wrong password alike, so it leaks neither. */
export const BAD_CREDENTIALS = 'Wrong username or password.';
/** The answer for a missing, unknown or revoked token. */
export const BAD_TOKEN = 'The session token is missing, invalid or revoked; log in again.';
