// Lower bounds that let apply skip the two housekeeping DELETEs every command used to run: the prune of
// idempotency rows older than the window, and the removal of sessions whose expiry the command's time
// has passed. Most commands find nothing to delete, yet each paid a statement (an index seek, a
// SELECT of the expired tokens and a DELETE) inside the apply transaction.
//
// A floor is at most the smallest value of its column (idempotency.at, sessions.expires_at), so when
// the floor is above a command's cutoff the DELETE provably deletes nothing and is skipped. Skipping
// an empty DELETE changes no table, so every replica keeps the same state whatever its floors are; the
// floors themselves come only from table contents and entry times (never the clock), and any lower
// bound is correct:
// - read from the tables at open and after a snapshot restore (MIN of the column, an index lookup);
// - lowered when apply writes a smaller value (an idempotency row, a new or rotated session);
// - read again after a DELETE that ran (the remaining rows' MIN);
// - dropped to -Infinity ("unknown", every check runs the DELETE) when an apply transaction rolls
//   back, since a rolled-back DELETE brings rows back below a floor read after it.
// Refreshing a session only raises its expiry, and deleting rows only raises the true MIN: a floor
// below the truth costs one DELETE that finds nothing, after which the floor is read again.

export interface FloorReads {
  /** MIN(idempotency.at), null when the table is empty. */
  idempotency: () => number | null;
  /** MIN(sessions.expires_at), null when the table is empty. */
  sessions: () => number | null;
}

export class ExpiryFloors {
  private idempotency = Number.NEGATIVE_INFINITY;
  private sessions = Number.NEGATIVE_INFINITY;

  /** `enabled` false: every check says due (the old behaviour, for the equivalence tests). */
  constructor(
    private readonly read: FloorReads,
    private readonly enabled = true,
  ) {}

  /** Both floors from the tables (at open, after a restore). */
  rebuild(): void {
    this.idempotency = this.read.idempotency() ?? Number.POSITIVE_INFINITY;
    this.sessions = this.read.sessions() ?? Number.POSITIVE_INFINITY;
  }

  /** The tables may differ from what the floors saw (a rolled-back transaction): check every time. */
  forget(): void {
    this.idempotency = Number.NEGATIVE_INFINITY;
    this.sessions = Number.NEGATIVE_INFINITY;
  }

  /** Whether an idempotency row with `at <= cutoff` may exist. */
  idempotencyDue(cutoff: number): boolean {
    return !this.enabled || this.idempotency <= cutoff;
  }

  /** Whether a session with `expires_at <= at` may exist. */
  sessionsDue(at: number): boolean {
    return !this.enabled || this.sessions <= at;
  }

  /** An idempotency row was written with this `at`. */
  idempotencyWritten(at: number): void {
    if (at < this.idempotency) this.idempotency = at;
  }

  /** A session was written (created or rotated) with this expiry. */
  sessionWritten(expiresAt: number): void {
    if (expiresAt < this.sessions) this.sessions = expiresAt;
  }

  /** The prune ran: the remaining rows' MIN (not read when disabled: nothing would use it). */
  idempotencyPruned(): void {
    if (this.enabled) this.idempotency = this.read.idempotency() ?? Number.POSITIVE_INFINITY;
  }

  /** The expired sessions were deleted: the remaining sessions' MIN. */
  sessionsPruned(): void {
    if (this.enabled) this.sessions = this.read.sessions() ?? Number.POSITIVE_INFINITY;
  }
}
