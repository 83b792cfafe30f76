import { randomFillSync } from 'node:crypto';
import {
  type AcceptedRecord,
  canonicalPayload,
  contentHashOf,
  type Hex,
  type NackCode,
  NonCanonicalPayloadError,
  parseClientMessage,
  topicAllowed,
  utf8Length,
} from '@streamanchor/protocol';

/** What a session knows when it checks a message: who may publish what, and the limits. */
export interface RecordContext {
  relayId: string;
  sessionId: string;
  subject: string;
  /** Topic grants from the token (`*` = every topic). */
  topics: readonly string[];
  tokenExpiresAt: number;
  maxMessageBytes: number;
  maxPayloadBytes: number;
  /** keccak-256 of a canonical payload's UTF-8 bytes (contentHashOf unless a faster one is given). */
  hash?: (canonicalText: string) => Hex;
}

export type Validation =
  | { ok: true; id: string; record: AcceptedRecord }
  | { ok: false; id: string | null; code: NackCode; detail: string };

/**
 * Checks one client text message and, when it is a valid publish, turns it into an
 * AcceptedRecord. The order is the protocol's: size → parse → topic → token expiry →
 * canonical payload → payload size → content hash → record id → acceptedAt. Never throws.
 */
export function validateMessage(
  text: string,
  ctx: RecordContext,
  now: () => number = Date.now,
): Validation {
  // UTF-16 length ≤ UTF-8 length ≤ 3 × UTF-16 length: count bytes only when it matters.
  if (
    text.length > ctx.maxMessageBytes ||
    (text.length * 3 > ctx.maxMessageBytes && utf8Length(text) > ctx.maxMessageBytes)
  ) {
    return {
      ok: false,
      id: null,
      code: 'message_too_large',
      detail: `limit is ${ctx.maxMessageBytes} bytes`,
    };
  }
  const parsed = parseClientMessage(text);
  if (!parsed.ok) return { ok: false, id: parsed.id, code: parsed.code, detail: parsed.detail };
  const message = parsed.message;
  if (!topicAllowed(ctx.topics, message.topic)) {
    return {
      ok: false,
      id: message.id,
      code: 'topic_not_allowed',
      detail: `topic ${message.topic}`,
    };
  }
  if (now() >= ctx.tokenExpiresAt) {
    return {
      ok: false,
      id: message.id,
      code: 'token_expired',
      detail: 'the session token expired',
    };
  }
  let payload: string;
  try {
    payload = canonicalPayload(message.payload);
  } catch (error) {
    // canonicalPayload throws NonCanonicalPayloadError; anything else is treated the same.
    const detail =
      error instanceof NonCanonicalPayloadError ? error.message : 'payload has no canonical form';
    return { ok: false, id: message.id, code: 'invalid_payload', detail };
  }
  const payloadBytes = utf8Length(payload);
  if (payloadBytes > ctx.maxPayloadBytes) {
    return {
      ok: false,
      id: message.id,
      code: 'payload_too_large',
      detail: `canonical payload is ${payloadBytes} bytes; limit is ${ctx.maxPayloadBytes}`,
    };
  }
  const contentHash = (ctx.hash ?? contentHashOf)(payload);
  return {
    ok: true,
    id: message.id,
    record: {
      recordId: newRecordId(),
      topic: message.topic,
      subject: ctx.subject,
      contentHash,
      acceptedAt: now(),
      payload,
      relayId: ctx.relayId,
      sessionId: ctx.sessionId,
    },
  };
}

// Record ids are 32 random bytes. Drawing them from a pool refilled in bulk keeps the
// hot path off a syscall per record.
const POOL_IDS = 256;
const pool = Buffer.alloc(32 * POOL_IDS);
let poolNext = POOL_IDS;

/** A fresh record id: 32 random bytes as 0x-prefixed lowercase hex. */
export function newRecordId(): Hex {
  if (poolNext >= POOL_IDS) {
    randomFillSync(pool);
    poolNext = 0;
  }
  const start = 32 * poolNext++;
  return `0x${pool.toString('hex', start, start + 32)}`;
}
