import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { LIMITS, PROTOCOL_VERSION } from './constants';
import { Bytes32, EpochMillis, SessionId, Subject, Topic } from './primitives';
import { Receipt } from './receipt';

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

export const ClientMessage = Type.Union([PublishMessage]);
export type ClientMessage = Static<typeof ClientMessage>;

// ---------------------------------------------------------------------------
// Relay → client.
// ---------------------------------------------------------------------------

/** Sent once when the channel opens: what this session may do. */
export const HelloMessage = Type.Object(
  {
    type: Type.Literal('hello'),
    protocol: Type.Literal(PROTOCOL_VERSION),
    sessionId: SessionId,
    subject: Subject,
    topics: Type.Array(Type.String()),
    maxPayloadBytes: Type.Integer({ minimum: 1 }),
    maxMessageBytes: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type HelloMessage = Static<typeof HelloMessage>;

/** The record is durably queued: it will be stored and anchored. */
export const AckMessage = Type.Object(
  {
    type: Type.Literal('ack'),
    id: ClientMessageId,
    recordId: Bytes32,
    contentHash: Bytes32,
    acceptedAt: EpochMillis,
  },
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
  invalid_payload: 'The payload has no canonical JSON form (for example a lone UTF-16 surrogate).',
  topic_not_allowed: 'The token does not grant publishing to this topic.',
  token_expired: 'The session token expired; open a new session with a fresh token.',
  unavailable:
    'The relay could not queue the record durably right now; it was not accepted. Retry.',
  shutting_down: 'The relay is shutting down; it was not accepted. Reconnect and retry.',
} as const;
export type NackCode = keyof typeof NACK_CODES;

export const NackMessage = Type.Object(
  {
    type: Type.Literal('nack'),
    /** The publish id, or null when the message was too broken to carry one. */
    id: Type.Union([ClientMessageId, Type.Null()]),
    code: Type.Union(Object.keys(NACK_CODES).map((code) => Type.Literal(code as NackCode))),
    message: Type.String(),
  },
  { additionalProperties: false },
);
export type NackMessage = Static<typeof NackMessage>;

export const ReceiptMessage = Type.Object(
  { type: Type.Literal('receipt'), receipt: Receipt },
  { additionalProperties: false },
);
export type ReceiptMessage = Static<typeof ReceiptMessage>;

export const ServerMessage = Type.Union([HelloMessage, AckMessage, NackMessage, ReceiptMessage]);
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

/** Parses one relay text message (used by clients); never throws. */
export function parseServerMessage(text: string): ServerMessage | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return serverMessageCheck.Check(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
