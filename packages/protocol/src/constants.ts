/**
 * The data-channel protocols a relay speaks, oldest first: the client names one as its
 * channel's `protocol`, and `hello` repeats it. v2 is v1 with a batch's receipts sent
 * together (`receipts`, then `anchoring` for later changes) instead of one `receipt`
 * message per record (docs/protocol.md §5.5–5.7).
 */
export const PROTOCOL_VERSIONS = ['streamanchor.v1', 'streamanchor.v2'] as const;
export type ProtocolVersion = (typeof PROTOCOL_VERSIONS)[number];

/** The newest protocol, which this package's clients open. Bump on incompatible change. */
export const PROTOCOL_VERSION: ProtocolVersion = 'streamanchor.v2';

export function isProtocolVersion(value: string): value is ProtocolVersion {
  return (PROTOCOL_VERSIONS as readonly string[]).includes(value);
}

/** Label of the one reliable, ordered data channel a client opens. */
export const DATA_CHANNEL_LABEL = 'records';

export const LIMITS = {
  /** Default maximum size of a record's canonical payload bytes. */
  maxPayloadBytes: 16 * 1024,
  /** Largest data-channel message (UTF-8 bytes) a relay accepts; larger ones are nacked. */
  maxMessageBytes: 64 * 1024,
  /**
   * Largest `receipts` message a relay sends (UTF-8 bytes): within the 64 KiB every WebRTC
   * stack accepts when the remote SDP names no `max-message-size`.
   */
  maxReceiptsMessageBytes: 64 * 1024,
  /** Largest SDP offer body the gateway reads. */
  maxSdpBytes: 32 * 1024,
  /** Client message ids are opaque strings of at most this many characters. */
  maxClientIdLength: 64,
  maxTopicLength: 64,
  maxSubjectLength: 128,
  /**
   * Deepest nesting of arrays and objects in a payload (`[]` is depth 1, `[[1]]` depth 2;
   * a scalar payload is depth 0). Deeper payloads are nacked `payload_too_deep`.
   */
  maxDepth: 32,
  /** Most members (elements or name/value pairs) of any one array or object in a message. */
  maxMembers: 1024,
  /** Most members of all arrays and objects in a payload together. */
  maxTotalMembers: 4096,
  /** Most topics one session subscribes to at once (and names in one `subscribe`). */
  maxSubscriptions: 64,
} as const;

/** Largest integer a payload number may have without a fraction or exponent (2^53 − 1). */
export const MAX_SAFE_PAYLOAD_INTEGER = Number.MAX_SAFE_INTEGER;

/**
 * Clock skew allowed between a token's issuer, the gateway and the relay, in seconds. A
 * token counts as expired once `now ≥ exp + CLOCK_TOLERANCE_SECONDS`, on every service:
 * the gateway accepts a token up to this long after its `exp`, and the relay keeps the
 * session (and accepts its records) just as long. `tokenExpiresAt` in createSession is
 * the token's `exp` in milliseconds, unmodified; each side adds the tolerance itself.
 */
export const CLOCK_TOLERANCE_SECONDS = 5;

/** The instant (ms) from which a token whose `exp` is `tokenExpiresAtMs` is expired everywhere. */
export function tokenExpiredFrom(tokenExpiresAtMs: number): number {
  return tokenExpiresAtMs + CLOCK_TOLERANCE_SECONDS * 1000;
}

/** Topics: lowercase, digits, dot, dash, underscore; starting with a letter or digit. */
export const TOPIC_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';

/** A token topic grant of `*` allows publishing to every topic. */
export const ANY_TOPIC = '*';

/**
 * The chain-writer anchors the head of its audit log as a record of this reserved topic
 * (no client can publish to it: client topics start with a letter or digit). Such records
 * belong to no session, so no receipt is delivered for them; they are verified with
 * `pnpm run audit:verify`.
 */
export const AUDIT_TOPIC = '_audit';
