// Session tokens: random on the leader (prepare), stored only as their SHA-256 so that a copy of the
// database or a snapshot does not hand out live sessions. The token itself is in no log entry and no
// idempotency row either: a Login entry carries only the hash (docs/design/sessions.md).
import { createHash, randomBytes } from 'node:crypto';

/** newToken() gives 43 characters; anything far longer is refused before it is hashed. */
export const MAX_TOKEN_LENGTH = 256;

/** The default of --session-ttl: 30 days. */
export const DEFAULT_SESSION_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** The longest session TTL a Login may carry (about ten years): keeps at + ttl a safe integer. */
export const MAX_SESSION_TTL_MS = 10 * 366 * 24 * 60 * 60 * 1000;

export const newToken = (): string => randomBytes(32).toString('base64url');

export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');

/** A SHA-256 in lower-case hex, as tokenHash() gives it. */
export const isTokenHash = (value: unknown): value is string =>
  typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
