import { randomFillSync } from 'node:crypto';
import {
  type AcceptedRecord,
  type ControlMessage,
  canonicalJson,
  contentHashOf,
  type Hex,
  LIMITS,
  type NackCode,
  NonCanonicalPayloadError,
  parseClientMessage,
  scanMessageStructure,
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
  /** The instant (ms) from which the token counts as expired (its `exp` plus the clock tolerance). */
  tokenExpiresAt: number;
  maxMessageBytes: number;
  maxPayloadBytes: number;
  /** Structure limits (default LIMITS.maxDepth, maxMembers, maxTotalMembers). */
  maxDepth?: number;
  maxMembers?: number;
  maxTotalMembers?: number;
  /** keccak-256 of a canonical payload's UTF-8 bytes (contentHashOf unless a faster one is given). */
  hash?: (canonicalText: string) => Hex;
}

export type Validation =
  | { ok: true; id: string; record: AcceptedRecord; control?: undefined }
  /** A valid message that is not a publish (`subscribe`, `unsubscribe`): the session acts on it. */
  | { ok: true; id: string; control: ControlMessage; record?: undefined }
  | { ok: false; id: string | null; code: NackCode; detail: string };

/** A message that passed the checks that come before parsing (size, structure). */
export interface Screened {
  ok: true;
  /** The message's top-level `id` as the pre-scan saw it (null when it has none usable). */
  id: string | null;
  /** Set only by a scan that looked for duplicates (`names` undefined). */
  duplicateMember: string | undefined;
  unsafeInteger: string | undefined;
  /**
   * Member names the pre-scan counted in the message's objects. The pre-scan does not look
   * for duplicate names (a set of names per object costs more than the rest of the scan):
   * checkScreened compares this count with the members of the parsed message instead.
   */
  names?: number;
}

export type Screening = Screened | { ok: false; id: string | null; code: NackCode; detail: string };

/**
 * Checks one client text message and, when it is a valid publish, turns it into an
 * AcceptedRecord: `screenMessage`, then `checkScreened`. The order is the protocol's
 * (docs/protocol.md §5.4):
 *
 * 1. message size (`message_too_large`), before anything looks inside the text;
 * 2. structure pre-scan of the raw text, before JSON.parse: nesting depth
 *    (`payload_too_deep`) and member counts (`payload_too_complex`);
 *    (the session takes its publish quota here, `rate_limited`, before the costly steps)
 * 3. parse and schema (`malformed_message`, `invalid_message`);
 * 4. topic grant (`topic_not_allowed`); 5. token expiry (`token_expired`);
 * 6. duplicate member names (`duplicate_member`); 7. integers beyond 2^53 − 1, then
 *    the canonical form (`invalid_payload`); 8. canonical payload size (`payload_too_large`);
 * then content hash → record id → acceptedAt.
 *
 * Every step is linear in the message's length (the pre-scan bounds what parsing and
 * canonicalization may cost), so one message costs O(maxMessageBytes). Never throws.
 */
export function validateMessage(
  text: string,
  ctx: RecordContext,
  now: () => number = Date.now,
): Validation {
  const screened = screenMessage(text, ctx);
  return screened.ok ? checkScreened(text, screened, ctx, now) : screened;
}

/**
 * Step 1 of validateMessage: the `message_too_large` refusal of a text over
 * ctx.maxMessageBytes UTF-8 bytes (a whole message, or a message of publish lines), else
 * undefined. Never throws.
 */
export function checkMessageSize(
  text: string,
  ctx: Pick<RecordContext, 'maxMessageBytes'>,
): Extract<Screening, { ok: false }> | undefined {
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
  return undefined;
}

/** Steps 1 and 2 of validateMessage: cheap, before anything is parsed. Never throws. */
export function screenMessage(text: string, ctx: RecordContext): Screening {
  const tooLarge = checkMessageSize(text, ctx);
  if (tooLarge) return tooLarge;
  const structure = scanMessageStructure(text, structureLimits(ctx), { findDuplicates: false });
  if (!structure.ok) {
    return { ok: false, id: structure.id, code: structure.code, detail: structure.detail };
  }
  return structure;
}

function structureLimits(ctx: RecordContext) {
  return {
    maxDepth: ctx.maxDepth ?? LIMITS.maxDepth,
    maxMembers: ctx.maxMembers ?? LIMITS.maxMembers,
    maxTotalMembers: ctx.maxTotalMembers ?? LIMITS.maxTotalMembers,
  };
}

/** The members a publish message object has (type, id, topic, payload: the schema's four). */
const PUBLISH_MEMBERS = 4;
const counter = { members: 0 };

/** Steps 3 to 8 of validateMessage, for a message `screenMessage` passed. Never throws. */
export function checkScreened(
  text: string,
  structure: Screened,
  ctx: RecordContext,
  now: () => number = Date.now,
): Validation {
  const parsed = parseClientMessage(text);
  if (!parsed.ok) return { ok: false, id: parsed.id, code: parsed.code, detail: parsed.detail };
  const message = parsed.message;
  if (message.type !== 'publish') return checkControl(text, message, ctx, now);
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
  // Canonical form first: it also counts the parsed objects' members, which tells whether a
  // name occurred twice (JSON.parse keeps one member per name). Its errors are reported after
  // duplicate_member and after the unsafe integers, as the protocol orders them.
  let payload: string | undefined;
  let canonicalError: string | undefined;
  counter.members = 0;
  try {
    payload = canonicalJson(message.payload, counter);
  } catch (error) {
    // canonicalJson throws NonCanonicalPayloadError; anything else is treated the same.
    canonicalError =
      error instanceof NonCanonicalPayloadError ? error.message : 'payload has no canonical form';
  }
  let duplicateMember = structure.duplicateMember;
  if (
    structure.names !== undefined &&
    (payload === undefined || counter.members + PUBLISH_MEMBERS !== structure.names)
  ) {
    // Some name occurs twice (or the count is unknown): the exact scan names it.
    const exact = scanMessageStructure(text, structureLimits(ctx));
    if (exact.ok) duplicateMember = exact.duplicateMember;
  }
  if (duplicateMember !== undefined) {
    return {
      ok: false,
      id: message.id,
      code: 'duplicate_member',
      detail: `member ${JSON.stringify(duplicateMember.slice(0, 64))} occurs twice`,
    };
  }
  if (structure.unsafeInteger !== undefined) {
    return {
      ok: false,
      id: message.id,
      code: 'invalid_payload',
      detail: `integer ${structure.unsafeInteger.slice(0, 40)} is beyond ±(2^53 − 1)`,
    };
  }
  if (payload === undefined) {
    return {
      ok: false,
      id: message.id,
      code: 'invalid_payload',
      detail: canonicalError ?? 'payload has no canonical form',
    };
  }
  // RFC 8785 escapes U+0000 as \u0000; storage refuses a raw NUL, so make sure of it.
  if (payload.includes('\u0000')) {
    return { ok: false, id: message.id, code: 'invalid_payload', detail: 'raw U+0000 in payload' };
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit: count them only when it matters.
  if (payload.length * 3 > ctx.maxPayloadBytes) {
    const payloadBytes = utf8Length(payload);
    if (payloadBytes > ctx.maxPayloadBytes) {
      return {
        ok: false,
        id: message.id,
        code: 'payload_too_large',
        detail: `canonical payload is ${payloadBytes} bytes; limit is ${ctx.maxPayloadBytes}`,
      };
    }
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

/**
 * The checks of a parsed `subscribe` or `unsubscribe` that do not depend on the session's
 * state: token expiry, then duplicate member names (the exact scan: these messages are rare
 * and small). Topic grants and limits are the session's.
 */
function checkControl(
  text: string,
  message: ControlMessage,
  ctx: RecordContext,
  now: () => number,
): Validation {
  if (now() >= ctx.tokenExpiresAt) {
    return {
      ok: false,
      id: message.id,
      code: 'token_expired',
      detail: 'the session token expired',
    };
  }
  const exact = scanMessageStructure(text, structureLimits(ctx));
  if (exact.ok && exact.duplicateMember !== undefined) {
    return {
      ok: false,
      id: message.id,
      code: 'duplicate_member',
      detail: `member ${JSON.stringify(exact.duplicateMember.slice(0, 64))} occurs twice`,
    };
  }
  return { ok: true, id: message.id, control: message };
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
