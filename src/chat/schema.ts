// The chat tables (DESIGN.md "Storage"). Users get internal ids from a sequence so that a re-created
// account never collides with rows of a deleted one; usernames stay as typed, `username_key` (lower
// case) enforces uniqueness ignoring case.
export const CHAT_SCHEMA_VERSION = 1;

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
  read INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_chat ON messages (chat_id, read, id);
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
