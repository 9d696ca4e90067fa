// The session rows by token hash, in memory: every call on the leader authenticates its token (the
// rate limits' user, admission.ts) and every applied command looks up its caller's session, each a
// SQLite join of sessions and users. The cache holds rows exactly as the tables have them, or nothing:
// - it is filled only from a read of the tables (a miss), never from a write;
// - a refresh (expires_at = MAX(expires_at, at + ttl_ms)) is mirrored on the cached row;
// - a rolled-back apply transaction clears it: it may have undone a mirrored refresh, or a row read
//   inside it (a session its own Login created a few commands earlier);
// - whatever removes or renames a session removes its row here (Logout, expiry, a Login retry rotating
//   the token, DeleteAccount for all the user's sessions), and a snapshot restore clears it.
// A row removed here while its removal later rolls back (a command's savepoint) only costs a miss.
// Liveness (expires_at > now) is judged by the caller's time at each lookup, as the SQL did.

export interface CachedSession {
  userId: number;
  username: string;
  /** First instant the session is dead (Unix ms, command time). */
  expiresAt: number;
  ttlMs: number;
}

export class SessionCache {
  private readonly rows = new Map<string, CachedSession>();

  /** `max` rows at most; the oldest filled goes first. */
  constructor(private readonly max = 50_000) {}

  get size(): number {
    return this.rows.size;
  }

  get(hash: string): CachedSession | undefined {
    return this.rows.get(hash);
  }

  /** A row just read from the tables. */
  fill(hash: string, row: CachedSession): void {
    this.rows.set(hash, row);
    if (this.rows.size > this.max) {
      const oldest = this.rows.keys().next().value as string;
      this.rows.delete(oldest);
    }
  }

  /** The session was used at `at`: its expiry moves as the refresh statement moves it. */
  refreshed(hash: string, at: number): void {
    const row = this.rows.get(hash);
    if (row) row.expiresAt = Math.max(row.expiresAt, at + row.ttlMs);
  }

  forget(hash: string): void {
    this.rows.delete(hash);
  }

  /** Every session of an account (DeleteAccount). A scan, but accounts are rarely deleted. */
  forgetUser(userId: number): void {
    for (const [hash, row] of this.rows) if (row.userId === userId) this.rows.delete(hash);
  }

  clear(): void {
    this.rows.clear();
  }
}
