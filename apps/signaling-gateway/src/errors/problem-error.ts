import { PROBLEMS, type ProblemCode } from '@streamanchor/protocol';

/**
 * An error the HTTP API reports to the client as application/problem+json with one of
 * the codes in PROBLEMS. Throw it from a route or hook; the error handler renders it.
 */
export class ProblemError extends Error {
  override name = 'ProblemError';
  readonly status: number;
  readonly shortMessage: string;

  constructor(
    readonly code: ProblemCode,
    /** Human-readable explanation sent as `detail`; never secrets or internals. */
    readonly detail?: string,
    readonly details: {
      /** Response headers to send with the problem (Retry-After, WWW-Authenticate, Allow…). */
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(
      detail ? `${code}: ${detail}` : code,
      details.cause === undefined ? {} : { cause: details.cause },
    );
    this.status = PROBLEMS[code].status;
    this.shortMessage = PROBLEMS[code].title;
  }
}
