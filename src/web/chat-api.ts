// What the HTTP gateway needs from the chat backend. It mirrors the client library's methods (one per
// ChatService RPC, plus resumable Subscribe and the member list), so the server hands the gateway a
// ChatClient and every browser request forwards to the leader and survives failover like any client.
// Shapes follow proto/chat.proto as loaded by src/proto.ts (keepCase, longs as numbers).

// The proto message shapes are defined once, with the chat domain that produces them.
import type { Chat, Message, User } from '../chat/types.js';
export type { Chat, Message, User };

export interface ChatEvent {
  /** The log index whose application produced the event; resume with `after_index` = this. */
  index: number;
  message_received?: Message;
  messages_deleted?: { chat_id: string; message_ids: number[] };
  chat_removed?: { chat_id: string };
  chat_started?: Chat;
  messages_read?: { chat_id: string; reader: string; up_to_id: number };
  message_edited?: Message;
  /** Ephemeral: never replayed on resume; its index only says how far the replica had applied. */
  typing?: { chat_id: string; username: string; typing: boolean };
}

/** Per-call metadata the gateway passes through from the browser. */
export interface CallMeta {
  /** The bearer token (without the `Bearer ` prefix). */
  token?: string;
  /** The browser's key for this logical operation; reused by the browser on every retry. */
  idempotencyKey?: string;
}

export interface SubscribeSink {
  onEvent(event: ChatEvent): void;
  /** The stream ended for good (the client library gave up, or the token was revoked). */
  onError(err: unknown): void;
}

export interface Subscription {
  /** Resolves once the backend stream is open, so that events from then on reach the sink. */
  ready?: Promise<void>;
  /** Once ready: the index the stream starts after (the library may start at the replica's last
   * applied index); the page resumes from it if it has seen nothing newer. */
  readonly lastIndex?: number;
  close(): void;
}

export interface ChatApi {
  signup(
    req: { username: string; nickname: string; password: string },
    meta: CallMeta,
  ): Promise<{ user: User }>;
  login(req: { username: string; password: string }, meta: CallMeta): Promise<{ token: string; user: User }>;
  logout(req: Record<string, never>, meta: CallMeta): Promise<Record<string, never>>;
  deleteAccount(req: { password: string }, meta: CallMeta): Promise<Record<string, never>>;
  listUsers(
    req: { pattern: string; page: number; page_size: number },
    meta: CallMeta,
  ): Promise<{ users: User[]; page: number; total_pages: number; total_count: number }>;
  getSettings(req: Record<string, never>, meta: CallMeta): Promise<{ view_limit: number }>;
  updateSettings(req: { view_limit: number }, meta: CallMeta): Promise<{ view_limit: number }>;
  startChat(req: { username: string }, meta: CallMeta): Promise<Chat>;
  listChats(req: Record<string, never>, meta: CallMeta): Promise<{ chats: Chat[] }>;
  sendMessage(req: { chat_id: string; content: string }, meta: CallMeta): Promise<Message>;
  getMessages(
    req: { chat_id: string; before_id: number; limit: number },
    meta: CallMeta,
  ): Promise<{ messages: Message[]; has_more: boolean }>;
  readMessages(
    req: { chat_id: string },
    meta: CallMeta,
  ): Promise<{ messages: Message[]; unread_remaining: number }>;
  markRead(req: { chat_id: string; up_to_id: number }, meta: CallMeta): Promise<{ unread_remaining: number }>;
  editMessage(
    req: { chat_id: string; message_id: number; content: string },
    meta: CallMeta,
  ): Promise<Message>;
  setTyping(req: { chat_id: string; typing: boolean }, meta: CallMeta): Promise<Record<string, never>>;
  deleteMessages(
    req: { chat_id: string; message_ids: number[] },
    meta: CallMeta,
  ): Promise<{ deleted_count: number }>;
  /** Events applied after `after_index` (0: live only), delivered until `close()`. */
  subscribe(req: { after_index: number }, meta: CallMeta, sink: SubscribeSink): Subscription;
  /** The voting members' gRPC addresses (host:port), as last learned from x-members. */
  members(): string[];
}
