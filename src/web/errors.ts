// Maps gRPC statuses (as thrown by the client library) to the gateway's JSON errors:
// `{code: 'NOT_FOUND', message}` with the HTTP status a browser or curl user would expect.

const codeNames = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export type CodeName = (typeof codeNames)[number];

const httpStatusOf: Record<CodeName, number> = {
  OK: 200,
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  // A size or rate limit: 429 tells a browser to back off; an oversized body is answered 413 directly.
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 412,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  UNAUTHENTICATED: 401,
};

/** An error the gateway answers with; `status` is the HTTP status. */
export class ApiError extends Error {
  /**
   * A rate limit's wait (the server's `retry-after-ms`): the gateway sends it as `Retry-After` (whole
   * seconds, rounded up, as HTTP has it) and as `retry_after_ms` in the JSON body.
   */
  readonly retryAfterMs?: number;

  constructor(
    readonly code: CodeName,
    message: string,
    readonly status: number = httpStatusOf[code],
    retryAfterMs?: number,
  ) {
    super(message);
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }

  toJSON(): { code: CodeName; message: string; retry_after_ms?: number } {
    return this.retryAfterMs === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, retry_after_ms: this.retryAfterMs };
  }
}

/** A positive whole number of ms, as the server's `retry-after-ms` is; anything else is no wait. */
function waitOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function codeNameOf(code: unknown): CodeName | undefined {
  if (typeof code === 'number' && Number.isInteger(code) && code >= 0 && code < codeNames.length) {
    return codeNames[code];
  }
  if (typeof code === 'string' && (codeNames as readonly string[]).includes(code)) return code as CodeName;
  return undefined;
}

/**
 * Anything thrown by the backend as an ApiError. grpc-js errors carry a numeric `code` and the
 * server's one sentence in `details`; a library may use code names instead. Unknown errors become
 * INTERNAL with a generic message, so no stack or internal detail leaks to the browser.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; details?: unknown; message?: unknown; retryAfterMs?: unknown };
    const name = codeNameOf(e.code);
    if (name && name !== 'OK') {
      const text =
        typeof e.details === 'string' && e.details
          ? e.details
          : typeof e.message === 'string' && e.message
            ? e.message
            : name;
      // grpc-js's own deadline text ("Deadline exceeded after 1.793s,LB pick: ...") is not for users.
      if (name === 'DEADLINE_EXCEEDED' && /^Deadline exceeded after/.test(text)) {
        return new ApiError(name, 'The cluster did not answer before the deadline; please retry.');
      }
      // Only a RESOURCE_EXHAUSTED carries a wait (API.md Limits); the client library parsed it already.
      const wait = name === 'RESOURCE_EXHAUSTED' ? waitOf(e.retryAfterMs) : undefined;
      return new ApiError(name, text, undefined, wait);
    }
  }
  return new ApiError('INTERNAL', 'The gateway failed to handle the request.');
}
