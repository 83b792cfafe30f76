/**
 * The one error base of every StreamAnchor package (viem's `errors/base.ts` is the model):
 * a one-line `shortMessage` for people, structured `details` for logs and callers, the
 * `cause` chain, and `walk()` to find an error in that chain. Browser-safe (no Node
 * modules), so the SDK, the services and the tooling all extend it.
 *
 * Subclasses keep their own `name`, their own `details` type (a string in the SDK, a
 * record in the services) and their own `message` format.
 */
export class BaseError<TDetails = unknown> extends Error {
  override name = 'BaseError';
  readonly shortMessage: string;
  readonly details: TDetails;

  constructor(
    shortMessage: string,
    options: {
      details?: TDetails;
      cause?: unknown;
      /** The full `message`; default: the short message. */
      message?: string;
    } = {},
  ) {
    super(
      options.message ?? shortMessage,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.shortMessage = shortMessage;
    this.details = options.details as TDetails;
  }

  /**
   * Follows `cause` from this error: without a predicate, returns the deepest error of the
   * chain; with one, the first error (this one included) it matches, or null.
   */
  walk(predicate?: (error: unknown) => boolean): unknown {
    return walkError(this, predicate);
  }
}

/** How many causes `walk` follows at most (a guard against cycles built by hand). */
const MAX_DEPTH = 64;

/**
 * `walk` for any value (also errors that do not extend BaseError, such as a BullMQ or
 * viem error in the middle of a chain): follows `cause` like `BaseError.walk`.
 */
export function walkError(error: unknown, predicate?: (error: unknown) => boolean): unknown {
  let current = error;
  const seen = new Set<unknown>();
  for (let depth = 0; depth < MAX_DEPTH; depth += 1) {
    if (predicate?.(current)) return current;
    seen.add(current);
    const cause =
      typeof current === 'object' && current !== null && 'cause' in current
        ? (current as { cause?: unknown }).cause
        : undefined;
    if (cause === undefined || cause === null || seen.has(cause)) break;
    current = cause;
  }
  return predicate ? null : current;
}
