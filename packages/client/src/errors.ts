import { BaseError, type NackCode } from '@streamanchor/protocol';

/**
 * Base class of every error the SDK throws: a one-line `shortMessage` plus `details`.
 * It extends the project's one error base (`BaseError` in @streamanchor/protocol), so
 * `walk()` follows the `cause` chain.
 */
export class StreamAnchorError extends BaseError<string | undefined> {
  override name = 'StreamAnchorError';

  constructor(shortMessage: string, options: { details?: string; cause?: unknown } = {}) {
    super(shortMessage, {
      details: options.details,
      cause: options.cause,
      message: options.details ? `${shortMessage}\n\nDetails: ${options.details}` : shortMessage,
    });
  }
}

/**
 * The gateway refused a signaling request (POST or DELETE of a session). Carries the
 * RFC 9457 problem fields when the body was application/problem+json.
 */
export class SessionRequestError extends StreamAnchorError {
  override name = 'SessionRequestError';
  readonly status: number;
  /** Machine-readable problem code (PROBLEMS in @streamanchor/protocol), or `unknown`. */
  readonly code: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly type: string | undefined;

  constructor(fields: {
    status: number;
    code: string;
    title: string;
    detail?: string;
    type?: string;
  }) {
    super(`Session request failed: ${fields.status} ${fields.code} — ${fields.title}`, {
      details: fields.detail,
    });
    this.status = fields.status;
    this.code = fields.code;
    this.title = fields.title;
    this.detail = fields.detail;
    this.type = fields.type;
  }
}

/** The session could not be established (ICE, channel open or `hello` did not happen in time). */
export class ConnectError extends StreamAnchorError {
  override name = 'ConnectError';
}

/** The relay refused a message with a `nack`. Nothing of the message was kept. */
export class NackError extends StreamAnchorError {
  override name = 'NackError';
  readonly code: NackCode;
  /** The publish id the nack refers to (null when the relay could not read one). */
  readonly id: string | null;

  constructor(
    fields: { code: NackCode; message: string; id: string | null },
    shortMessage = `Record refused: ${fields.code}`,
  ) {
    super(shortMessage, { details: fields.message });
    this.code = fields.code;
    this.id = fields.id;
  }
}

/**
 * The relay refused a `subscribe` or `unsubscribe` (a NackError: `code` is the nack's, e.g.
 * `topic_not_allowed`, `too_many_subscriptions`, `invalid_message`). Nothing of it was done.
 */
export class SubscriptionError extends NackError {
  override name = 'SubscriptionError';
  readonly topic: string;
  readonly action: 'subscribe' | 'unsubscribe';

  constructor(fields: {
    code: NackCode;
    message: string;
    id: string | null;
    topic: string;
    action: 'subscribe' | 'unsubscribe';
  }) {
    super(fields, `${fields.action} "${fields.topic}" refused: ${fields.code}`);
    this.topic = fields.topic;
    this.action = fields.action;
  }
}

/** The relay's ack does not match what this client sent (content hash differs). */
export class IntegrityError extends StreamAnchorError {
  override name = 'IntegrityError';
}

/** The session is closed (or closed while the operation was pending). */
export class SessionClosedError extends StreamAnchorError {
  override name = 'SessionClosedError';
}

/** The chain could not be read while verifying a receipt (network or RPC failure). */
export class VerificationError extends StreamAnchorError {
  override name = 'VerificationError';
}

/**
 * A chain follower cannot go on: the gateway refused it (401, 403, a topic's history), the
 * chain could not be read, or it was stopped. What it found wrong is reported as events.
 */
export class ChainFollowerError extends StreamAnchorError {
  override name = 'ChainFollowerError';
}
