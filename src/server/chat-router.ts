// The seam between the gRPC handlers and whatever executes a ChatService call. A Raft replica serves it
// with RaftChatRouter (raft-router.ts): locally when it leads, forwarded to the leader otherwise
// (keeping deadline, token and idempotency key), UNAVAILABLE when no leader is known in time.
import type { ChatMethod } from '../chat/service.js';

export interface ChatRequest {
  method: ChatMethod;
  /** The decoded request message (proto field names, src/proto.ts options). */
  request: unknown;
  token?: string;
  idempotencyKey?: string;
  /** Absolute deadline, Unix ms. */
  deadline?: number;
  /** Another replica forwarded this call already; it is never forwarded again. */
  forwarded?: boolean;
}

export interface ChatRouter {
  /** Resolves with the response message, or rejects with a ChatError. */
  handle(req: ChatRequest): Promise<unknown>;
}
