import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { LIMITS, PROTOCOL_VERSIONS } from './constants';
import { Bytes32, EpochMillis, SessionId, Subject, Topic } from './primitives';
import { Receipt, ReceiptAnchor, ReceiptRecord } from './receipt';

// ---------------------------------------------------------------------------
// Client → relay. Each data-channel message is one UTF-8 JSON text message.
// ---------------------------------------------------------------------------

/** A client's correlation id for a publish, echoed in its ack or nack. */
export const ClientMessageId = Type.String({ minLength: 1, maxLength: LIMITS.maxClientIdLength });

export const PublishMessage = Type.Object(
  {
    type: Type.Literal('publish'),
    id: ClientMessageId,
    topic: Topic,
    /** Any JSON value; its RFC 8785 canonical form is what the content hash covers. */
    payload: Type.Unknown(),
  },
  { additionalProperties: false },
);
export type PublishMessage = Static<typeof PublishMessage>;

/** A topic position: records of a topic are numbered 1, 2, 3… in the order they were acked. */
export const TopicPosition = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

/**
 * Protocol v2: receive the records of some topics as they are acked, on any relay (§5.9).
 * `after`: deliver from the record after that position (resume); without it, from the next
 * record acked. `anchoringAfter`: replay the anchoring changes the relay still keeps of
 * batches holding positions after it (default: `after`), e.g. the lowest position a resuming
 * client holds whose batch is not final yet.
 */
export const SubscribeMessage = Type.Object(
  {
    type: Type.Literal('subscribe'),
    id: ClientMessageId,
    topics: Type.Array(
      Type.Object(
        {
          topic: Topic,
          after: Type.Optional(TopicPosition),
          anchoringAfter: Type.Optional(TopicPosition),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: LIMITS.maxSubscriptions },
    ),
  },
  { additionalProperties: false },
);
export type SubscribeMessage = Static<typeof SubscribeMessage>;

/** Protocol v2: stop receiving some topics' records. */
export const UnsubscribeMessage = Type.Object(
  {
    type: Type.Literal('unsubscribe'),
    id: ClientMessageId,
    topics: Type.Array(Topic, { minItems: 1, maxItems: LIMITS.maxSubscriptions }),
  },
  { additionalProperties: false },
);
export type UnsubscribeMessage = Static<typeof UnsubscribeMessage>;

/** The client messages that are not publishes. */
export type ControlMessage = SubscribeMessage | UnsubscribeMessage;

export const ClientMessage = Type.Union([PublishMessage, SubscribeMessage, UnsubscribeMessage]);
export type ClientMessage = Static<typeof ClientMessage>;

// ---------------------------------------------------------------------------
// Relay → client.
// ---------------------------------------------------------------------------

/** Sent once when the channel opens: what this session may do. */
export const HelloMessage = Type.Object(
  {
    type: Type.Literal('hello'),
    /** The channel's `protocol`, which the client chose (one of PROTOCOL_VERSIONS). */
    protocol: Type.Union(PROTOCOL_VERSIONS.map((version) => Type.Literal(version))),
    sessionId: SessionId,
    subject: Subject,
    /** Topics the token grants publishing to (`*`: every topic). */
    topics: Type.Array(Type.String()),
    /**
     * Topics the token grants subscribing to (`*`: every topic). Optional: relays before
     * subscriptions did not send it.
     */
    subscribe: Type.Optional(Type.Array(Type.String())),
    /** Most topics the session may be subscribed to at once. */
    maxSubscriptions: Type.Optional(Type.Integer({ minimum: 1 })),
    maxPayloadBytes: Type.Integer({ minimum: 1 }),
    maxMessageBytes: Type.Integer({ minimum: 1 }),
    // The structure limits (LIMITS.maxDepth …). A relay of this version always sends them;
    // they are optional so that a hello from an older relay still parses.
    /** Deepest nesting of arrays and objects accepted in a payload. */
    maxDepth: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Most members of any one array or object. */
    maxMembers: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Most members of all arrays and objects of one payload together. */
    maxTotalMembers: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type HelloMessage = Static<typeof HelloMessage>;

/** What an ack says of one publish. */
export const AckFields = Type.Object(
  {
    id: ClientMessageId,
    recordId: Bytes32,
    contentHash: Bytes32,
    acceptedAt: EpochMillis,
  },
  { additionalProperties: false },
);
export type AckFields = Static<typeof AckFields>;

/** The record is durably queued: it will be stored and anchored. */
export const AckMessage = Type.Object(
  { type: Type.Literal('ack'), ...AckFields.properties },
  { additionalProperties: false },
);
export type AckMessage = Static<typeof AckMessage>;

/**
 * Machine-readable reasons a message was refused. Nothing about a nacked message
 * was kept; the session stays open unless the code says otherwise.
 */
export const NACK_CODES = {
  malformed_message: 'The message is not a UTF-8 JSON object.',
  invalid_message: 'The message does not match the schema for its `type` (or the type is unknown).',
  message_too_large: 'The message exceeds `maxMessageBytes`.',
  payload_too_large: 'The canonical payload exceeds `maxPayloadBytes`.',
  payload_too_deep: 'Arrays and objects in the payload are nested deeper than `maxDepth`.',
  payload_too_complex:
    'An array or object has more than `maxMembers` members, or the payload more than `maxTotalMembers` in all.',
  duplicate_member: 'An object in the message has two members with the same name.',
  invalid_payload:
    'The payload has no canonical JSON form (for example a lone UTF-16 surrogate), or holds an integer beyond ±(2^53 − 1).',
  topic_not_allowed:
    'The token does not grant publishing to this topic (or, for `subscribe`, subscribing to it).',
  too_many_subscriptions:
    'The session would be subscribed to more than `maxSubscriptions` topics; nothing of the `subscribe` was done.',
  token_expired: 'The session token expired; open a new session with a fresh token.',
  unavailable:
    'The relay could not queue the record durably right now; it was not accepted. Retry.',
  shutting_down: 'The relay is shutting down; it was not accepted. Reconnect and retry.',
  relay_draining:
    'The relay is draining before it stops: it accepts no more publishes or subscriptions on this session. Open a new session through the gateway (resume subscriptions after their last position), republish what was nacked, then close this one.',
  rate_limited:
    'The session or its subject publishes faster than its quota, or has too many records waiting; it was not accepted. Retry after `retryAfterMs`.',
} as const;
export type NackCode = keyof typeof NACK_CODES;

export const NackMessage = Type.Object(
  {
    type: Type.Literal('nack'),
    /** The publish id, or null when the message was too broken to carry one. */
    id: Type.Union([ClientMessageId, Type.Null()]),
    code: Type.Union(Object.keys(NACK_CODES).map((code) => Type.Literal(code as NackCode))),
    message: Type.String(),
    /** With `rate_limited`: how long to wait before publishing again, in milliseconds. */
    retryAfterMs: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type NackMessage = Static<typeof NackMessage>;

/**
 * Protocol v2: the acks of consecutive publishes that were queued together, in the order the
 * publishes arrived (at most ACKS_PER_MESSAGE). A nack between them ends the run: replies
 * still leave in arrival order.
 */
export const AcksMessage = Type.Object(
  {
    type: Type.Literal('acks'),
    acks: Type.Array(AckFields, { minItems: 1, maxItems: 100 }),
  },
  { additionalProperties: false },
);
export type AcksMessage = Static<typeof AcksMessage>;

/** Most acks in one `acks` message (each at most ~600 bytes: the message stays under 64 KiB). */
export const ACKS_PER_MESSAGE = 100;

export const ReceiptMessage = Type.Object(
  { type: Type.Literal('receipt'), receipt: Receipt },
  { additionalProperties: false },
);
export type ReceiptMessage = Static<typeof ReceiptMessage>;

/**
 * Protocol v2: receipts for many of the session's records in one batch, under one anchor
 * (each record's receipt is `receiptOf(anchor, record)`). A batch's records may fill several
 * such messages; each is at most LIMITS.maxReceiptsMessageBytes.
 */
export const ReceiptsMessage = Type.Object(
  {
    type: Type.Literal('receipts'),
    anchor: ReceiptAnchor,
    records: Type.Array(ReceiptRecord, { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type ReceiptsMessage = Static<typeof ReceiptsMessage>;

/**
 * Protocol v2: a later change of a batch's anchoring (final, reorged, included again) for
 * records this session already got in `receipts` messages of the same batch. Each such
 * record's receipt is now `receiptOf(anchor, record)`: proofs and leaf fields never change.
 */
export const AnchoringMessage = Type.Object(
  {
    type: Type.Literal('anchoring'),
    anchor: ReceiptAnchor,
    /** How many of this session's records the batch holds (all sent in `receipts` before). */
    records: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type AnchoringMessage = Static<typeof AnchoringMessage>;

/** Where a subscription starts: records after `after` come next; `head` is the newest position then. */
export const SubscribedTopic = Type.Object(
  { topic: Topic, after: TopicPosition, head: TopicPosition },
  { additionalProperties: false },
);
export type SubscribedTopic = Static<typeof SubscribedTopic>;

/** Answers a `subscribe` (every topic of it, in order): records follow. */
export const SubscribedMessage = Type.Object(
  {
    type: Type.Literal('subscribed'),
    id: ClientMessageId,
    topics: Type.Array(SubscribedTopic, { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type SubscribedMessage = Static<typeof SubscribedMessage>;

/**
 * Why the relay ended a subscription on its own: `history_unavailable` — the subscriber
 * fell behind (or resumed from) a position the relay can no longer serve; resume from
 * `after` over HTTP history, then subscribe again.
 */
export const UNSUBSCRIBE_REASONS = {
  requested: 'The client unsubscribed.',
  history_unavailable:
    'The records after `after` are no longer held for live delivery and could not be read from history; resume from `after`.',
} as const;
export type UnsubscribeReason = keyof typeof UNSUBSCRIBE_REASONS;

/** Answers an `unsubscribe` (id set), or tells of a subscription the relay ended (id null). */
export const UnsubscribedMessage = Type.Object(
  {
    type: Type.Literal('unsubscribed'),
    id: Type.Union([ClientMessageId, Type.Null()]),
    topics: Type.Array(Topic, { minItems: 1 }),
    reason: Type.Union(
      Object.keys(UNSUBSCRIBE_REASONS).map((reason) => Type.Literal(reason as UnsubscribeReason)),
    ),
    /** With a reason other than `requested`: the last position delivered (resume after it). */
    after: Type.Optional(TopicPosition),
  },
  { additionalProperties: false },
);
export type UnsubscribedMessage = Static<typeof UnsubscribedMessage>;

/** One record of a topic as a subscriber gets it. */
export const DeliveredRecord = Type.Object(
  {
    position: TopicPosition,
    recordId: Bytes32,
    subject: Subject,
    contentHash: Bytes32,
    acceptedAt: EpochMillis,
    /** The record's canonical payload (§6), as a JSON value; null when pruned. */
    payload: Type.Unknown(),
    /** Present (true) when the payload was pruned (payload retention): `payload` is null. */
    pruned: Type.Optional(Type.Literal(true)),
  },
  { additionalProperties: false },
);
export type DeliveredRecord = Static<typeof DeliveredRecord>;

/** Records of one topic, in position order, without gaps since the previous ones. */
export const RecordsMessage = Type.Object(
  {
    type: Type.Literal('records'),
    topic: Topic,
    records: Type.Array(DeliveredRecord, { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type RecordsMessage = Static<typeof RecordsMessage>;

/** Inclusive ranges of a topic's positions, ascending and apart: `[[1, 40], [43, 43]]`. */
export const PositionRanges = Type.Array(Type.Tuple([TopicPosition, TopicPosition]), {
  minItems: 1,
});
export type PositionRanges = Static<typeof PositionRanges>;

/** The ranges of `positions` (any order, repeats allowed). */
export function positionRangesOf(positions: Iterable<number>): [number, number][] {
  const sorted = [...new Set(positions)].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const position of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && position === last[1] + 1) last[1] = position;
    else ranges.push([position, position]);
  }
  return ranges;
}

/** Whether `ranges` (ascending, as in a `batch` message) hold `position`. */
export function rangesInclude(
  ranges: readonly (readonly [number, number])[],
  position: number,
): boolean {
  let low = 0;
  let high = ranges.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const [first, last] = ranges[middle]!;
    if (position < first) high = middle - 1;
    else if (position > last) low = middle + 1;
    else return true;
  }
  return false;
}

/**
 * Protocol v2, subscriptions: the anchoring of a batch holding records of a subscribed topic
 * changed (included, final, reorged, included again), with the topic's positions it holds.
 * The records' proofs: `GET /v1/records/<recordId>/receipt`, or the batch over HTTP.
 */
export const BatchMessage = Type.Object(
  {
    type: Type.Literal('batch'),
    topic: Topic,
    anchor: ReceiptAnchor,
    positions: PositionRanges,
  },
  { additionalProperties: false },
);
export type BatchMessage = Static<typeof BatchMessage>;

export const ServerMessage = Type.Union([
  HelloMessage,
  AckMessage,
  AcksMessage,
  NackMessage,
  ReceiptMessage,
  ReceiptsMessage,
  AnchoringMessage,
  SubscribedMessage,
  UnsubscribedMessage,
  RecordsMessage,
  BatchMessage,
]);
export type ServerMessage = Static<typeof ServerMessage>;

const clientMessageCheck = TypeCompiler.Compile(ClientMessage);
const serverMessageCheck = TypeCompiler.Compile(ServerMessage);

export type ParseResult<T> =
  | { ok: true; message: T }
  | { ok: false; code: NackCode; id: string | null; detail: string };

/** Parses one client text message; never throws. Size limits are the caller's (they are configurable). */
export function parseClientMessage(text: string): ParseResult<ClientMessage> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'malformed_message', id: null, detail: 'not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'malformed_message', id: null, detail: 'not a JSON object' };
  }
  const rawId = (value as { id?: unknown }).id;
  const id =
    typeof rawId === 'string' && rawId.length > 0 && rawId.length <= LIMITS.maxClientIdLength
      ? rawId
      : null;
  if (!clientMessageCheck.Check(value)) {
    const first = clientMessageCheck.Errors(value).First();
    const where = first ? `${first.path || '/'}: ${first.message}` : 'schema mismatch';
    return { ok: false, code: 'invalid_message', id, detail: where };
  }
  return { ok: true, message: value };
}

// ---------------------------------------------------------------------------
// Structure pre-scan: bounds what JSON.parse and canonicalization may cost.
// ---------------------------------------------------------------------------

export interface StructureLimits {
  /** Deepest nesting of arrays/objects in the payload (the message object itself not counted). */
  maxDepth: number;
  /** Most members of any one array or object (the message object included). */
  maxMembers: number;
  /** Most members of all the payload's arrays and objects together. */
  maxTotalMembers: number;
}

export type StructureScan =
  | {
      ok: true;
      /** The message's top-level `id` (a string of valid length), when the scan met one. */
      id: string | null;
      /**
       * The first member name that occurs twice in one object, if any (always undefined when
       * the scan was told not to look: `findDuplicates: false`).
       */
      duplicateMember: string | undefined;
      /** The first integer token (no fraction, no exponent) beyond ±(2^53 − 1), if any. */
      unsafeInteger: string | undefined;
      /**
       * Member names of every object of the message, the message object's included. JSON.parse
       * keeps one member per name, so a parsed message with fewer members has a duplicate.
       */
      names: number;
    }
  | {
      ok: false;
      code: 'payload_too_deep' | 'payload_too_complex';
      /** The message's top-level `id`, when it came before the problem and is a valid id. */
      id: string | null;
      detail: string;
    };

export interface ScanOptions {
  /**
   * Find the first duplicate member name (default true), which costs a set of names per
   * object. With false the scan only counts names (`names`): compare that count with the
   * members of the parsed message and scan again with true when they differ.
   */
  findDuplicates?: boolean;
}

const MAX_SAFE_DIGITS = String(Number.MAX_SAFE_INTEGER);

function decodeJsonString(raw: string): string {
  if (raw.indexOf('\\') === -1) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw; // JSON.parse of the whole message will report it
  }
}

function structureProblem(
  code: 'payload_too_deep' | 'payload_too_complex',
  id: string | null,
  detail: string,
): StructureScan {
  return { ok: false, code, id, detail };
}

// Per-depth state of the scan, reused across calls (the scan is synchronous): whether the
// container is an object, and its members so far. Grown on demand; the depth limit bounds it.
let isObjectAt = new Uint8Array(64);
let membersAt = new Int32Array(64);

/**
 * One linear pass over a message's text, before JSON.parse: counts nesting and members
 * outside strings, counts member names (and finds duplicates, unless told not to), finds
 * integers beyond 2^53 − 1. O(text length), allocation bounded by the limits; never throws.
 * It does not validate JSON: on broken text it stops or carries on leniently, and JSON.parse
 * reports the problem. The message object is depth 1, so a payload may open containers up
 * to depth maxDepth + 1.
 */
export function scanMessageStructure(
  text: string,
  limits: StructureLimits,
  options: ScanOptions = {},
): StructureScan {
  const findDuplicates = options.findDuplicates ?? true;
  const maxDepth = limits.maxDepth + 1;
  if (isObjectAt.length < maxDepth + 1) {
    isObjectAt = new Uint8Array(maxDepth + 1);
    membersAt = new Int32Array(maxDepth + 1);
  }
  const isObject = isObjectAt;
  const members = membersAt;
  const names: (Set<string> | undefined)[] = [];
  let depth = 0;
  let total = 0;
  let nameCount = 0;
  let fresh = false;
  let expectName = false;
  /** Whether the current top-level member is named `id`. */
  let topIsId = false;
  let id: string | null = null;
  let duplicateMember: string | undefined;
  let unsafeInteger: string | undefined;
  const length = text.length;
  // Strings are skipped with indexOf (native, many characters a step) instead of a check per
  // character: these are the first `"` and the first `\` at or after some earlier point of
  // the scan, looked for again only once the scan has passed them (-2: not looked for yet,
  // -1: none left). Each search starts beyond the last one's result, so together they read
  // the text once: the scan stays linear, however many escapes a string holds.
  let nextQuote = -2;
  let nextBackslash = -2;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    if (fresh) {
      fresh = false;
      if (c !== 0x5d && c !== 0x7d) {
        members[depth - 1] = 1;
        if (depth >= 2 && ++total > limits.maxTotalMembers)
          return structureProblem(
            'payload_too_complex',
            id,
            `more than ${limits.maxTotalMembers} members in all`,
          );
      }
    }
    switch (c) {
      case 0x22: {
        // A string: skip to its closing quote.
        let j = i + 1;
        let escaped = false;
        for (;;) {
          if (nextQuote !== -1 && nextQuote < j) nextQuote = text.indexOf('"', j);
          if (nextQuote === -1)
            return { ok: true, id, duplicateMember, unsafeInteger, names: nameCount }; // unterminated
          if (nextBackslash !== -1 && nextBackslash < j) nextBackslash = text.indexOf('\\', j);
          if (nextBackslash === -1 || nextBackslash > nextQuote) {
            j = nextQuote;
            break;
          }
          // An escape before the quote: it and the character it escapes are skipped.
          escaped = true;
          j = nextBackslash + 2;
        }
        if (expectName) {
          expectName = false;
          nameCount++;
          if (findDuplicates) {
            const name = decodeJsonString(text.slice(i + 1, j));
            let seen = names[depth - 1];
            if (!seen) {
              seen = new Set();
              names[depth - 1] = seen;
            }
            if (seen.has(name)) duplicateMember ??= name;
            else seen.add(name);
            if (depth === 1) topIsId = name === 'id';
          } else if (depth === 1) {
            topIsId = escaped
              ? decodeJsonString(text.slice(i + 1, j)) === 'id'
              : j === i + 3 && text.charCodeAt(i + 1) === 0x69 && text.charCodeAt(i + 2) === 0x64;
          }
        } else if (depth === 1 && topIsId && id === null) {
          const value = decodeJsonString(text.slice(i + 1, j));
          if (value.length > 0 && value.length <= LIMITS.maxClientIdLength) id = value;
        }
        i = j;
        break;
      }
      case 0x7b: // {
      case 0x5b: {
        // [
        if (++depth > maxDepth)
          return structureProblem('payload_too_deep', id, `deeper than ${limits.maxDepth}`);
        isObject[depth - 1] = c === 0x7b ? 1 : 0;
        members[depth - 1] = 0;
        if (findDuplicates) names[depth - 1] = undefined;
        fresh = true;
        expectName = c === 0x7b;
        break;
      }
      case 0x7d: // }
      case 0x5d: // ]
        if (depth === 0) return { ok: true, id, duplicateMember, unsafeInteger, names: nameCount }; // broken
        if (findDuplicates) names[depth - 1] = undefined;
        depth--;
        expectName = false;
        break;
      case 0x2c: // ,
        if (depth === 0) break;
        if (++members[depth - 1]! > limits.maxMembers)
          return structureProblem(
            'payload_too_complex',
            id,
            `more than ${limits.maxMembers} members in one array or object`,
          );
        if (depth >= 2 && ++total > limits.maxTotalMembers)
          return structureProblem(
            'payload_too_complex',
            id,
            `more than ${limits.maxTotalMembers} members in all`,
          );
        expectName = isObject[depth - 1] === 1;
        break;
      case 0x3a: // :
        expectName = false;
        break;
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
          // A number token: [-0-9.eE+] until anything else.
          let j = i;
          let integer = true;
          for (; j < length; j++) {
            const d = text.charCodeAt(j);
            if (d >= 0x30 && d <= 0x39) continue;
            if (d === 0x2d || d === 0x2b) continue;
            if (d === 0x2e || d === 0x65 || d === 0x45) {
              integer = false;
              continue;
            }
            break;
          }
          if (integer && unsafeInteger === undefined) {
            const from = c === 0x2d ? i + 1 : i;
            const digits = j - from;
            if (
              digits > MAX_SAFE_DIGITS.length ||
              (digits === MAX_SAFE_DIGITS.length && text.slice(from, j) > MAX_SAFE_DIGITS)
            )
              unsafeInteger = text.slice(i, j);
          }
          i = j - 1;
        }
    }
  }
  return { ok: true, id, duplicateMember, unsafeInteger, names: nameCount };
}

/** UTF-8 length of `text` (the fast path: ASCII, where it is the string's length). */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 2; // a surrogate pair: 2 UTF-16 units, 4 bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/** One serialized relay message and how many records' receipts it carries. */
export interface SerializedReceipts {
  text: string;
  records: number;
}

/**
 * The `receipts` messages (serialized) that carry `records` under `anchor`, in order, each at
 * most `maxBytes` UTF-8 bytes (a record too large for one message on its own still gets a
 * message of its own). Each record is serialized once.
 */
export function serializeReceiptsMessages(
  anchor: ReceiptAnchor,
  records: readonly ReceiptRecord[],
  maxBytes: number = LIMITS.maxReceiptsMessageBytes,
): SerializedReceipts[] {
  const head = `{"type":"receipts","anchor":${JSON.stringify(anchor)},"records":[`;
  const tail = ']}';
  const frame = utf8Length(head) + tail.length;
  const messages: SerializedReceipts[] = [];
  let parts: string[] = [];
  let bytes = frame;
  const flush = () => {
    messages.push({ text: head + parts.join(',') + tail, records: parts.length });
    parts = [];
    bytes = frame;
  };
  for (const record of records) {
    const json = JSON.stringify(record);
    const size = utf8Length(json);
    if (parts.length > 0 && bytes + 1 + size > maxBytes) flush();
    bytes += (parts.length > 0 ? 1 : 0) + size;
    parts.push(json);
  }
  if (parts.length > 0) flush();
  return messages;
}

/** Parses one relay text message (used by clients); never throws. */
export function parseServerMessage(text: string): ServerMessage | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return serverMessageCheck.Check(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
