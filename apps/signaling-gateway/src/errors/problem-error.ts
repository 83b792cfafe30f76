import { BaseError, PROBLEMS, type ProblemCode } from '@streamanchor/protocol';

/** What a ProblemError carries besides its code and detail. */
export interface ProblemErrorDetails {
  /** Response headers to send with the problem (Retry-After, WWW-Authenticate, Allow…). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/**
 * An error the HTTP API reports to the client as application/problem+json with one of
 * the codes in PROBLEMS. Throw it from a route or hook; the error handler renders it.
 * `shortMessage` is the problem's title.
 */
export class ProblemError extends BaseError<ProblemErrorDetails> {
  override name = 'ProblemError';
  readonly status: number;

  constructor(
    readonly code: ProblemCode,
    /** Human-readable explanation sent as `detail`; never secrets or internals. */
    readonly detail?: string,
    details: ProblemErrorDetails = {},
  ) {
    super(PROBLEMS[code].title, {
      details,
      cause: details.cause,
      message: detail ? `${code}: ${detail}` : code,
    });
    this.status = PROBLEMS[code].status;
  }
}
