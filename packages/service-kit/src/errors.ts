import { BaseError } from '@streamanchor/protocol';

/** The one error base of every package, re-exported for the services and tooling. */
export { BaseError, walkError } from '@streamanchor/protocol';

/**
 * Base of the services' errors (viem-style): a one-line `shortMessage` for people, and
 * structured `details` for logs. The message carries both. It extends the one error base
 * of every package (`BaseError` in @streamanchor/protocol), so `walk()` follows `cause`.
 */
export class ServiceError extends BaseError<Record<string, unknown>> {
  override name = 'ServiceError';
  constructor(
    shortMessage: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(shortMessage, {
      details,
      cause: options?.cause,
      message:
        Object.keys(details).length > 0
          ? `${shortMessage} ${JSON.stringify(details)}`
          : shortMessage,
    });
  }
}
