/** An error caused by the user (bad flag, port in use, foreign data dir): printed as one line, exit 1. */
export class UserError extends Error {
  readonly userError = true;
}
