// Session tokens: random on the leader (prepare), stored only as their SHA-256 so that a copy of the
// database or a snapshot does not hand out live sessions.
import { createHash, randomBytes } from 'node:crypto';

export const newToken = (): string => randomBytes(32).toString('base64url');

export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');
