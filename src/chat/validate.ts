// The limits of API.md, one function per field. Each violation is INVALID_ARGUMENT with one sentence.
// The service runs them before proposing (fail fast) and apply runs them again (a command in the log
// is trusted no more than a request), so both must be deterministic: no clock, no locale.
import { invalid } from './errors.js';

export const DEFAULT_VIEW_LIMIT = 6;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_IDEMPOTENCY_KEY = 64;

/** Length in characters (code points), not UTF-16 units, so an emoji counts once. */
export const charCount = (s: string): number => [...s].length;

const isBlank = (s: string): boolean => s.trim() === '';

/**
 * C0 controls (U+0000-U+001F), DEL and C1 controls (U+0080-U+009F): a terminal acts on them (ESC starts
 * a sequence that can clear the screen, retitle the window or move the cursor; CR rewinds the line), so
 * a name or message holding one could rewrite what another user sees (issue 13, finding 6).
 */
const hasControl = (s: string): boolean => /\p{Cc}/u.test(s);
/** The same, but a message may hold line breaks and tabs. */
const hasControlInText = (s: string): boolean => hasControl(s.replace(/[\n\t]/g, ''));

function mustBeString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(`${field} must be a string.`);
  return value;
}

const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;

export function checkUsername(value: unknown): string {
  const s = mustBeString(value, 'username');
  if (!USERNAME.test(s)) {
    throw invalid("username must be 3 to 32 characters of letters, digits, '_', '.' or '-'.");
  }
  return s;
}

/** A username that names someone else (StartChat): bounded, so that no oversize name reaches the log. */
export function checkUsernameRef(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalid('The username is required.');
  if (value.length > 32) throw invalid('The username must be at most 32 characters.');
  return value;
}

export function checkNickname(value: unknown): string {
  const s = mustBeString(value, 'nickname');
  const n = charCount(s);
  if (n < 1 || n > 64 || isBlank(s)) throw invalid('The nickname must be 1 to 64 characters and not blank.');
  // A nickname is one line wherever it is shown: no line breaks or tabs either.
  if (hasControl(s)) throw invalid('The nickname must not contain control characters.');
  return s;
}

export function checkPassword(value: unknown): string {
  const s = mustBeString(value, 'password');
  const n = charCount(s);
  if (n < 8 || n > 128) throw invalid('The password must be 8 to 128 characters.');
  return s;
}

/** Message content, for SendMessage and EditMessage alike. */
export function checkContent(value: unknown): string {
  const s = mustBeString(value, 'content');
  const n = charCount(s);
  if (n < 1 || n > 4096 || isBlank(s))
    throw invalid('The message content must be 1 to 4096 characters and not blank.');
  if (hasControlInText(s)) {
    throw invalid('The message content must not contain control characters other than line breaks and tabs.');
  }
  return s;
}

export function checkViewLimit(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1000) {
    throw invalid('The view_limit must be a whole number from 1 to 1000.');
  }
  return value;
}

/** 0 (proto3's unset) means 1; negative is an error. */
export function checkPage(value: unknown): number {
  const v = value ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw invalid('The page must be 1 or more (0 means 1).');
  }
  return v === 0 ? 1 : v;
}

/** 0 (proto3's unset) means 20. */
export function checkPageSize(value: unknown): number {
  const v = value ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100) {
    throw invalid('The page_size must be from 1 to 100 (0 means 20).');
  }
  return v === 0 ? DEFAULT_PAGE_SIZE : v;
}

export function checkPattern(value: unknown): string {
  return mustBeString(value ?? '', 'pattern');
}

/** Chat ids are short (`c<seq>`); a longer one names no chat and must not reach the log. */
export const MAX_CHAT_ID = 64;
/** At most this many ids in one DeleteMessages. */
export const MAX_MESSAGE_IDS = 1000;

export function checkChatId(value: unknown): string {
  const s = mustBeString(value, 'chat_id');
  if (s === '') throw invalid('The chat_id is required.');
  if (s.length > MAX_CHAT_ID) throw invalid(`The chat_id must be at most ${MAX_CHAT_ID} characters.`);
  return s;
}

/** Message ids, deduplicated, in ascending order. */
export function checkMessageIds(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0)
    throw invalid('The message_ids must list at least one message id.');
  if (value.length > MAX_MESSAGE_IDS) {
    throw invalid(`The message_ids must list at most ${MAX_MESSAGE_IDS} message ids.`);
  }
  for (const id of value) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw invalid('The message_ids must hold whole, non-negative numbers.');
    }
  }
  return [...new Set(value as number[])].sort((a, b) => a - b);
}

/** The idempotency-key metadata: at most 64 characters; an empty key counts as none. */
export function checkIdempotencyKey(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalid('The idempotency-key must be a string.');
  if (charCount(value) > MAX_IDEMPOTENCY_KEY)
    throw invalid('The idempotency-key must be at most 64 characters.');
  return value;
}

export const DEFAULT_HISTORY_LIMIT = 50;
export const MAX_HISTORY_LIMIT = 200;

// uint64 fields arrive as numbers (src/proto.ts: longs as Number). An id above 2^53 cannot be exact,
// and no message has one: it is clamped to the largest safe integer, which still means "every id".
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const clampId = (v: number): number => Math.min(v, Number.MAX_SAFE_INTEGER);

/** GetMessages.before_id: 0 (proto3's unset) means no bound. */
export function checkBeforeId(value: unknown): number {
  const v = value ?? 0;
  if (!isId(v)) throw invalid('The before_id must be a whole number, 0 or more (0 means no bound).');
  return clampId(v);
}

/** GetMessages.limit: 1 to 200; 0 (proto3's unset) means 50. */
export function checkHistoryLimit(value: unknown): number {
  const v = value ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_HISTORY_LIMIT) {
    throw invalid(`The limit must be from 1 to ${MAX_HISTORY_LIMIT} (0 means ${DEFAULT_HISTORY_LIMIT}).`);
  }
  return v === 0 ? DEFAULT_HISTORY_LIMIT : v;
}

/** EditMessage.message_id: a message id (ids start at 1). */
export function checkMessageId(value: unknown): number {
  if (!isId(value) || value === 0) throw invalid('The message_id must be a message id (1 or more).');
  return clampId(value);
}

/** MarkRead.up_to_id: the newest message id to mark read (1 or more). */
export function checkUpToId(value: unknown): number {
  if (!isId(value) || value === 0) throw invalid('The up_to_id must be a message id (1 or more).');
  return clampId(value);
}

/** SetTyping.typing: a boolean (proto3's unset is false). */
export function checkTyping(value: unknown): boolean {
  const v = value ?? false;
  if (typeof v !== 'boolean') throw invalid('The typing must be true or false.');
  return v;
}
