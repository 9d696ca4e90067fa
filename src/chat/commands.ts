// Chat commands: plain data, serialized as JSON into `command` log entries. Everything non-deterministic
// (the leader's clock in `at`, the scrypt hash with its random salt, the random session token) is filled
// in by the leader before it proposes ("prepare", in service.ts); apply (store.ts) reads only the command
// and the database, so every replica computes the same tables from the same log.
import type { status } from './errors.js';

interface Base {
  /** Leader clock, Unix ms, when the entry was proposed. Message times and the idempotency window use it. */
  at: number;
  /** The caller's idempotency key (API.md: up to 64 characters). */
  idempotencyKey?: string;
}

/** Commands made with a session token carry its SHA-256 (hex) as `actor`, never the token. */
interface Authed extends Base {
  actor: string;
}

export type Command =
  | (Base & { type: 'signup'; username: string; nickname: string; passwordHash: string })
  /** `userId` is the account whose password the leader verified; apply checks it still is that account. */
  | (Base & { type: 'login'; username: string; userId: number; token: string })
  | (Authed & { type: 'logout' })
  | (Authed & { type: 'deleteAccount'; userId: number })
  | (Authed & { type: 'updateSettings'; viewLimit: number })
  | (Authed & { type: 'startChat'; username: string })
  | (Authed & { type: 'sendMessage'; chatId: string; content: string })
  /** v1's GetMessages, kept so that a v1 log still applies: it delivers like readMessages. */
  | (Authed & { type: 'getMessages'; chatId: string })
  | (Authed & { type: 'readMessages'; chatId: string })
  | (Authed & { type: 'markRead'; chatId: string; upToId: number })
  | (Authed & { type: 'editMessage'; chatId: string; messageId: number; content: string })
  | (Authed & { type: 'deleteMessages'; chatId: string; messageIds: number[] });

export type CommandType = Command['type'];

/** The outcome of one command, as data: identical on every replica, stored for idempotent replays. */
export type CommandResult = { ok: true; value: unknown } | { ok: false; code: status; message: string };

export const encodeCommand = (c: Command): string => JSON.stringify(c);
