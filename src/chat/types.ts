// The shapes the chat domain returns: exactly the proto messages of proto/chat.proto as src/proto.ts
// loads them (keepCase, uint64/int64 as numbers), so handlers pass them to grpc-js unchanged.

export interface User {
  username: string;
  nickname: string;
  view_limit: number;
}

export interface Chat {
  chat_id: string;
  other_user: string;
  other_nickname: string;
  unread_count: number;
  last_message_at: number;
}

export interface Message {
  message_id: number;
  chat_id: string;
  sender: string;
  content: string;
  sent_at: number;
  read: boolean;
  /** Unix ms of the last edit; 0 for a message never edited. */
  edited_at: number;
}

/** Typing state of the other participant (ephemeral: never in the log, never replayed on resume). */
export interface Typing {
  chat_id: string;
  username: string;
  typing: boolean;
}

/** A ChatEvent of chat.proto: `index` plus exactly one of the event fields. */
export type ChatEvent =
  | { index: number; message_received: Message }
  | { index: number; messages_deleted: { chat_id: string; message_ids: number[] } }
  | { index: number; chat_removed: { chat_id: string } }
  | { index: number; chat_started: Chat }
  | { index: number; messages_read: { chat_id: string; reader: string; up_to_id: number } }
  | { index: number; message_edited: Message }
  | { index: number; typing: Typing };

/** An event addressed to one user (by internal id: a username may be reused after DeleteAccount). */
export interface AddressedEvent {
  userId: number;
  event: ChatEvent;
}

/** Sessions and users that an applied batch revoked: their Subscribe streams must end. */
export interface Revocations {
  tokenHashes: string[];
  userIds: number[];
}

/** What the store tells its listener after a batch has committed. */
export interface AppliedBatch {
  lastIndex: number;
  events: AddressedEvent[];
  revoked: Revocations;
}
