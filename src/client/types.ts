// The ChatService and ClusterService messages as grpc-js delivers them with the project's loader options
// (src/proto.ts: keepCase, longs as Number, defaults on, oneofs named).

// The proto message shapes are defined once, with the chat domain that produces them.
import type { Chat, Message, Typing, User } from '../chat/types.js';
export type { Chat, Message, Typing, User };

export interface LoginResult {
  token: string;
  user: User;
}

export interface UserPage {
  users: User[];
  page: number;
  total_pages: number;
  total_count: number;
}

export interface Settings {
  view_limit: number;
}

/** GetMessages: one page of the visible history, oldest first. */
export interface MessagesPage {
  messages: Message[];
  /** Older visible messages exist (ask again with before_id = the first message's id). */
  has_more: boolean;
}

/** ReadMessages: the oldest view_limit unread messages, now marked read. */
export interface UnreadBatch {
  messages: Message[];
  unread_remaining: number;
}

export interface MessagesRead {
  chat_id: string;
  reader: string;
  up_to_id: number;
}

/** One pushed event; `event` names the one field that is set. */
export type ChatEvent =
  | { index: number; event: 'message_received'; message_received: Message }
  | { index: number; event: 'messages_deleted'; messages_deleted: { chat_id: string; message_ids: number[] } }
  | { index: number; event: 'chat_removed'; chat_removed: { chat_id: string } }
  | { index: number; event: 'chat_started'; chat_started: Chat }
  | { index: number; event: 'messages_read'; messages_read: MessagesRead }
  | { index: number; event: 'message_edited'; message_edited: Message }
  | { index: number; event: 'typing'; typing: Typing };

export interface ClusterMember {
  id: string;
  address: string;
  voter: boolean;
}

export interface ClusterStatus {
  node_id: string;
  address: string;
  role: string;
  term: number;
  leader_id: string;
  leader_address: string;
  commit_index: number;
  last_applied: number;
  last_log_index: number;
  snapshot_index: number;
  members: ClusterMember[];
  state_digest: string;
}
