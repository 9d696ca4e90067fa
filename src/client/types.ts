// The ChatService and ClusterService messages as grpc-js delivers them with the project's loader options
// (src/proto.ts: keepCase, longs as Number, defaults on, oneofs named).

// The proto message shapes are defined once, with the chat domain that produces them.
import type { Chat, Message, User } from '../chat/types.js';
export type { Chat, Message, User };

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

/** GetMessages: one page of history, oldest first. */
export interface HistoryPage {
  messages: Message[];
  /** Older visible messages exist (page on with before_id = the first message's id). */
  has_more: boolean;
}

/** ReadMessages: the delivered unread messages, now read, and how many are still unread. */
export interface Delivery {
  messages: Message[];
  unread_remaining: number;
}

/** @deprecated v1's name for a ReadMessages reply. */
export type MessagesPage = Delivery;

/** One pushed event; `event` names the one field that is set. */
export type ChatEvent =
  | { index: number; event: 'message_received'; message_received: Message }
  | { index: number; event: 'messages_deleted'; messages_deleted: { chat_id: string; message_ids: number[] } }
  | { index: number; event: 'chat_removed'; chat_removed: { chat_id: string } }
  | { index: number; event: 'chat_started'; chat_started: Chat }
  | {
      index: number;
      event: 'messages_read';
      messages_read: { chat_id: string; reader: string; up_to_id: number };
    }
  | { index: number; event: 'message_edited'; message_edited: Message }
  /** Ephemeral: its index is the replica's applied index when sent; it is never replayed. */
  | { index: number; event: 'typing'; typing: { chat_id: string; username: string; typing: boolean } };

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
  /** Health (GetStatus only): p99 of the last 1000 fsyncs, ms. */
  fsync_p99_ms?: number;
  /** Fsyncs slower than --slow-fsync-ms since start. */
  slow_fsyncs?: number;
  /** p99 event-loop delay over the last 10 s, ms. */
  event_loop_lag_p99_ms?: number;
}
