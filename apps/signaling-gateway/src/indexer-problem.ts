import { RemoteError, RequestTimeoutError } from '@streamanchor/bus';
import type { Logger } from '@streamanchor/service-kit';
import { ProblemError } from './errors';

/** Seconds a client should wait before retrying after the indexer did not answer. */
export const INDEXER_RETRY_AFTER_SECONDS = 2;

/**
 * Maps a failed indexer lookup (receipts, history) to the problem the client sees: no answer
 * in time is 503 `indexer_unavailable` with Retry-After; anything else (a refusal, an answer
 * of the wrong shape, a failure on the indexer's side) is logged and is 500 `internal_error`.
 * `context` (the record, topic or batch asked for) goes into the log lines.
 */
export function indexerProblem(
  error: unknown,
  logger: Logger,
  context: Record<string, unknown>,
): ProblemError {
  if (error instanceof RequestTimeoutError) {
    logger.warn(
      { ...context, lookup: error.jobName, timeoutMs: error.timeoutMs },
      'indexer did not answer a lookup in time',
    );
    return new ProblemError(
      'indexer_unavailable',
      'The chain indexer did not answer in time; retry shortly',
      { headers: { 'Retry-After': String(INDEXER_RETRY_AFTER_SECONDS) }, cause: error },
    );
  }
  logger.error(
    { err: error, ...context, code: error instanceof RemoteError ? error.code : undefined },
    'indexer lookup failed',
  );
  return new ProblemError('internal_error', undefined, { cause: error });
}
