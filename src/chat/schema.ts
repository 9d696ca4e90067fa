// The chat tables (DESIGN.md "Storage"). Users get internal ids from a sequence so that a re-created
// account never collides with rows of a deleted one; usernames stay as typed, `username_key` (lower
// case) enforces uniqueness ignoring case.
//
// Version 2 (Chat v2 and issue 13):
// - messages.edited_at, and indexes that make a page of history and an unread count cost what the
//   page or the unread messages cost, not what the whole chat costs:
//     messages_by_chat_id      (chat_id, id)                  last message, paging by id
//     messages_by_chat_sender  (chat_id, sender_id, read, id) visible pages (merged per sender and read
//                                                             flag), unread counts, oldest unread first
// - sessions expire (`expires_at`, refreshed on use by `ttl_ms`), idempotency rows are keyed by
//   (caller, method, key) and never hold a token.
// A version-1 data dir is refused at start-up (store.ts, SchemaVersionError): its log and idempotency
// rows hold live tokens in clear, and no start-up migration could be deterministic across replicas
// stopped at different applied indexes.
export const CHAT_SCHEMA_VERSION = 2;

/** The table that holds the schema version; created first, so the version is read before anything else. */
export const CHAT_META_SCHEMA = `
CREATE TABLE IF NOT EXISTS chat_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

export const CHAT_SCHEMA = `
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
  created_at INTEGER NOT NULL,
  -- Command time (the entry's at) after which the session is dead; every use sets it to at + ttl_ms.
  expires_at INTEGER NOT NULL,
  -- The TTL the leader's --session-ttl gave at Login: replicated, so every replica refreshes alike.
  ttl_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
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
-- method: the command type, so that one key used for two methods never replays the other's result.
-- actor: the session's token hash (for Login, the session it created); never a token.
CREATE TABLE IF NOT EXISTS idempotency (
  caller TEXT NOT NULL,
  method TEXT NOT NULL,
  key TEXT NOT NULL,
  actor TEXT,
  at INTEGER NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (caller, method, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_at ON idempotency (at);
CREATE INDEX IF NOT EXISTS idempotency_by_actor ON idempotency (actor, method, key);
`;
