import { type Static, Type } from '@sinclair/typebox';
import { LIMITS, TOPIC_PATTERN } from './constants';

/** 32 bytes as 0x-prefixed lowercase hex. */
export type Hex = `0x${string}`;
export const Bytes32 = Type.Unsafe<Hex>(
  Type.String({ pattern: '^0x[0-9a-f]{64}$', description: '32 bytes, 0x-prefixed lowercase hex' }),
);
export type Bytes32 = Hex;

/** An EVM address, 0x-prefixed hex (checksummed or lowercase). */
export const Address = Type.Unsafe<Hex>(Type.String({ pattern: '^0x[0-9a-fA-F]{40}$' }));

export const Topic = Type.String({ pattern: TOPIC_PATTERN, maxLength: LIMITS.maxTopicLength });

/**
 * What a subject may hold: any characters but the C0 controls (U+0000–U+001F) and DEL
 * (U+007F), and only paired surrogates, so that every store (Postgres text, JSON, logs)
 * can keep it as is.
 */
export const SUBJECT_PATTERN =
  '^(?:[^\\u0000-\\u001F\\u007F\\uD800-\\uDFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])+$';

export const Subject = Type.String({
  minLength: 1,
  maxLength: LIMITS.maxSubjectLength,
  pattern: SUBJECT_PATTERN,
});

/** Milliseconds since the Unix epoch (UTC). */
export const EpochMillis = Type.Integer({ minimum: 0 });

/** Session ids are 22 characters of base64url (128 random bits). */
export const SessionId = Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' });

export type Topic = Static<typeof Topic>;
