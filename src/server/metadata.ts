// What every gRPC response carries and what every request may carry (API.md §2 "Conventions"):
// topology hints out (x-leader, x-members, on success and on error, as headers AND trailers, so a
// grpc-js client sees them whichever it reads), bearer token and idempotency key in.
import * as grpc from '@grpc/grpc-js';
import { ChatError } from '../chat/errors.js';
import { MAX_IDEMPOTENCY_KEY, charCount } from '../chat/validate.js';

/** Response metadata of a RESOURCE_EXHAUSTED: whole milliseconds until a retry can succeed. */
export const RETRY_AFTER_HEADER = 'retry-after-ms';

/** The `retry-after-ms` of response metadata, or undefined when absent or not a positive whole number. */
export function retryAfterOf(md: grpc.Metadata | undefined): number | undefined {
  const value = md?.get(RETRY_AFTER_HEADER)[0];
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value)) return undefined;
  const ms = Number(value);
  return ms > 0 ? ms : undefined;
}

/** Who leads and who votes, as this replica currently believes. */
export interface Topology {
  leaderAddress(): string | undefined;
  memberAddresses(): string[];
}

export function topologyMetadata(t: Topology): grpc.Metadata {
  const md = new grpc.Metadata();
  const leader = t.leaderAddress();
  if (leader) md.set('x-leader', leader);
  md.set('x-members', t.memberAddresses().join(','));
  return md;
}

/** The token of `authorization: Bearer <token>`, or undefined when absent or malformed. */
export function bearerToken(md: grpc.Metadata): string | undefined {
  const value = md.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(value);
  return m ? m[1] : undefined;
}

/** The idempotency key, or undefined; a key longer than 64 characters is INVALID_ARGUMENT. */
export function idempotencyKey(md: grpc.Metadata): string | undefined {
  const value = md.get('idempotency-key')[0];
  if (typeof value !== 'string' || value === '') return undefined;
  if (charCount(value) > MAX_IDEMPOTENCY_KEY) {
    throw new ChatError(grpc.status.INVALID_ARGUMENT, 'The idempotency-key must be at most 64 characters.');
  }
  return value;
}

/** A call's deadline as Unix ms, or undefined when it has none. */
export function deadlineOf(call: { getDeadline(): grpc.Deadline }): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}

/** A status for grpc-js: ChatErrors keep code and message; anything else is a bug, reported as INTERNAL. */
export function toStatus(err: unknown, metadata: grpc.Metadata): grpc.ServerErrorResponse {
  if (err instanceof ChatError) {
    // API.md Limits: a rate limit answers RESOURCE_EXHAUSTED with `retry-after-ms` (in the trailers).
    if (err.retryAfterMs !== undefined) metadata.set(RETRY_AFTER_HEADER, String(err.retryAfterMs));
    return { name: 'ChatError', message: err.message, code: err.code, details: err.message, metadata };
  }
  return {
    name: 'Error',
    message: 'Internal error',
    code: grpc.status.INTERNAL,
    details: 'The server hit an internal error; the request may not have been applied.',
    metadata,
  };
}
