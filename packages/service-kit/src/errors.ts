/**
 * Base of the services' errors (viem-style): a one-line `shortMessage` for people, and
 * structured `details` for logs. The message carries both.
 */
export class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(
    readonly shortMessage: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(
      Object.keys(details).length > 0 ? `${shortMessage} ${JSON.stringify(details)}` : shortMessage,
      options,
    );
  }
}
