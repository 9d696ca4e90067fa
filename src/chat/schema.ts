// The chat tables (DESIGN.md "Storage"). Users get internal ids from a sequence so that a re-created
// account never collides with rows of a deleted one; usernames stay as typed, `username_key` (lower
// case) enforces uniqueness ignoring case.
//
// Version 2 (Chat v2): messages.edited_at, and indexes that make a page of history and an unread
// count cost what the page or the unread messages cost, not what the whole chat costs:
//   messages_by_chat_id      (chat_id, id)                  last message, paging by id
//   messages_by_chat_sender  (chat_id, sender_id, read, id) visible pages (merged per sender and read
//                                                           flag), unread counts, oldest unread first
export const CHAT_SCHEMA_VERSION = 2;

/** Upgrades a version-1 database in place (run inside one transaction, before CHAT_SCHEMA). */
export const MIGRATE_1_TO_2 = `
ALTER TABLE messages ADD COLUMN edited_at INTEGER NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS messages_by_chat;
`;

export const CHAT_SCHEMA = `
CREATE TABLE IF NOT EXISTS chat_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS applied (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  idx INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sequences (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL,
  username_key TEXT NOT NULL UNIQUE,
  nickname TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
  user_id INTEGER PRIMARY KEY,
  view_limit INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS chats (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  user_a INTEGER NOT NULL,
  user_b INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_activity_at INTEGER NOT NULL,
  UNIQUE (user_a, user_b)
);
CREATE INDEX IF NOT EXISTS chats_by_b ON chats (user_b);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  chat_id TEXT NOT NULL,
  sender_id INTEGER NOT NULL,
  content TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  read INTEGER NOT NULL DEFAULT 0,
  edited_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_chat_id ON messages (chat_id, id);
CREATE INDEX IF NOT EXISTS messages_by_chat_sender ON messages (chat_id, sender_id, read, id);
CREATE TABLE IF NOT EXISTS idempotency (
  caller TEXT NOT NULL,
  key TEXT NOT NULL,
  actor TEXT,
  at INTEGER NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (caller, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_at ON idempotency (at);
CREATE INDEX IF NOT EXISTS idempotency_by_actor ON idempotency (actor, key);
`;
