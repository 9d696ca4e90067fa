// The seam between the gRPC handlers and whatever executes a ChatService call. Single-node: the local
// ChatService. With Raft (next issue) a router built on the `chat` machine serves it here when this
// replica leads, forwards it to the leader otherwise (keeping deadline, token and idempotency key), or
// answers UNAVAILABLE when no leader is known.
import type { ChatMethod, ChatService } from '../chat/service.js';

export interface ChatRequest {
  method: ChatMethod;
  /** The decoded request message (proto field names, src/proto.ts options). */
  request: unknown;
  token?: string;
  idempotencyKey?: string;
  /** Absolute deadline, Unix ms. */
  deadline?: number;
}

export interface ChatRouter {
  /** Resolves with the response message, or rejects with a ChatError. */
  handle(req: ChatRequest): Promise<unknown>;
}

/** Every call is served by this process's ChatService (the one-member cluster). */
export class LocalChatRouter implements ChatRouter {
  constructor(private readonly service: ChatService) {}

  handle(req: ChatRequest): Promise<unknown> {
    return this.service.handle(req.method, req.request, {
      token: req.token,
      idempotencyKey: req.idempotencyKey,
      deadline: req.deadline,
    });
  }
}
