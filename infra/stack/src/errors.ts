import { BaseError } from '@streamanchor/service-kit';

/** The stack could not start or a part of it failed; `shortMessage` is what a person needs first. */
export class StackError extends BaseError<string> {
  override name = 'StackError';
  constructor(shortMessage: string, details: string, options: { cause?: unknown } = {}) {
    super(shortMessage, {
      details,
      cause: options.cause,
      message: details ? `${shortMessage}\n${details}` : shortMessage,
    });
  }
}
