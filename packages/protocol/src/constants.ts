/** Version string carried as the data channel's `protocol` and in `hello`. Bump on incompatible change. */
export const PROTOCOL_VERSION = 'streamanchor.v1';

/** Label of the one reliable, ordered data channel a client opens. */
export const DATA_CHANNEL_LABEL = 'records';

export const LIMITS = {
  /** Default maximum size of a record's canonical payload bytes. */
  maxPayloadBytes: 16 * 1024,
  /** Largest data-channel message (UTF-8 bytes) a relay accepts; larger ones are nacked. */
  maxMessageBytes: 64 * 1024,
  /** Largest SDP offer body the gateway reads. */
  maxSdpBytes: 32 * 1024,
  /** Client message ids are opaque strings of at most this many characters. */
  maxClientIdLength: 64,
  maxTopicLength: 64,
  maxSubjectLength: 128,
} as const;

/** Topics: lowercase, digits, dot, dash, underscore; starting with a letter or digit. */
export const TOPIC_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';

/** A token topic grant of `*` allows publishing to every topic. */
export const ANY_TOPIC = '*';
