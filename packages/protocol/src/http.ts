import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { ANY_TOPIC, PROTOCOL_VERSION, PROTOCOL_VERSIONS, TOPIC_PATTERN } from './constants';
import { TopicPosition } from './data-channel';
import { BatchLeaf, StoredRecord, TopicHistoryRecord } from './history';
import { Address, Subject, Topic } from './primitives';
import { ReceiptAnchor } from './receipt';
import { LEAF_ENCODING } from './record';

/** Problem type URIs are `urn:streamanchor:problem:<code>`; `code` repeats the last part. */
export const PROBLEM_TYPE_PREFIX = 'urn:streamanchor:problem:';

/**
 * Every error the HTTP API returns, with its status. docs/protocol.md documents each;
 * a test keeps the two in step.
 */
export const PROBLEMS = {
  bad_request: { status: 400, title: 'The request is malformed.' },
  invalid_sdp: { status: 400, title: 'The body is not a usable SDP offer with a data channel.' },
  invalid_sdpfrag: {
    status: 400,
    title: 'The body is not a usable trickle ICE SDP fragment.',
  },
  unauthorized: { status: 401, title: 'A valid bearer token is required.' },
  forbidden: { status: 403, title: 'The token does not allow this.' },
  topic_not_allowed: { status: 403, title: 'The token does not grant subscribing to this topic.' },
  session_not_found: { status: 404, title: 'No such session.' },
  record_not_found: { status: 404, title: 'No such record.' },
  receipt_pending: { status: 404, title: 'The record is not anchored yet.' },
  batch_not_found: { status: 404, title: 'No such batch.' },
  batch_pending: { status: 404, title: 'The batch is not anchored yet.' },
  not_found: { status: 404, title: 'No such resource.' },
  method_not_allowed: { status: 405, title: 'The method is not allowed on this resource.' },
  request_timeout: { status: 408, title: 'The request was not received in time.' },
  precondition_failed: {
    status: 412,
    title: "If-Match does not match the session's current ETag.",
  },
  payload_too_large: { status: 413, title: 'The request body is too large.' },
  unsupported_media_type: { status: 415, title: 'The request body has the wrong Content-Type.' },
  ice_restart_unsupported: { status: 422, title: 'The relay does not support ICE restarts.' },
  precondition_required: { status: 428, title: 'The request must carry If-Match.' },
  rate_limited: { status: 429, title: 'Too many requests.' },
  headers_too_large: { status: 431, title: 'The request headers are too large.' },
  internal_error: { status: 500, title: 'Something went wrong on our side.' },
  no_relay_available: { status: 503, title: 'No relay is available to take the session.' },
  relay_timeout: { status: 503, title: 'The relay did not answer in time.' },
  indexer_unavailable: { status: 503, title: 'The chain indexer did not answer in time.' },
} as const satisfies Record<string, { status: number; title: string }>;
export type ProblemCode = keyof typeof PROBLEMS;

/**
 * The generic code for an error that carries only a status (raised by a framework, or
 * answered by a proxy in front of the gateway).
 */
export const PROBLEM_BY_STATUS: Readonly<Partial<Record<number, ProblemCode>>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  412: 'precondition_failed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  428: 'precondition_required',
  429: 'rate_limited',
  431: 'headers_too_large',
  500: 'internal_error',
};

/** RFC 9457 problem details, plus a machine-readable `code`. Served as application/problem+json. */
export const Problem = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  code: Type.String(),
  detail: Type.Optional(Type.String()),
  instance: Type.Optional(Type.String()),
});
export type Problem = Static<typeof Problem>;

export function problem(code: ProblemCode, detail?: string, instance?: string): Problem {
  const { status, title } = PROBLEMS[code];
  return {
    type: `${PROBLEM_TYPE_PREFIX}${code}`,
    title,
    status,
    code,
    ...(detail === undefined ? {} : { detail }),
    ...(instance === undefined ? {} : { instance }),
  };
}

/** A topic a token grants: a topic name, or `*` for all. */
const TopicGrant = Type.Union([Topic, Type.Literal(ANY_TOPIC)]);

/**
 * Claims of the HS256 bearer tokens the gateway accepts. A token must grant at least one
 * topic, in `topics` or `subscribe` (the gateway checks it; the schema cannot say it).
 */
export const TokenClaims = Type.Object({
  sub: Subject,
  /** Topics the bearer may publish to; `*` grants all. Empty in a subscribe-only token. */
  topics: Type.Array(TopicGrant, { maxItems: 256 }),
  /** Topics the bearer may subscribe to; `*` grants all. Absent: none (older tokens). */
  subscribe: Type.Optional(Type.Array(TopicGrant, { minItems: 1, maxItems: 256 })),
  exp: Type.Integer(),
  iat: Type.Optional(Type.Integer()),
  /** Checked against JWT_AUDIENCE when the gateway sets it. */
  aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
  /** Checked against JWT_ISSUER when the gateway sets it. */
  iss: Type.Optional(Type.String()),
  /** Live sessions this subject may hold at once; replaces the gateway's MAX_SESSIONS_PER_SUBJECT. */
  maxSessions: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
});
export type TokenClaims = Static<typeof TokenClaims>;

/** Whether the token grants any topic at all, to publish or to subscribe to. */
export function grantsAnyTopic(claims: Pick<TokenClaims, 'topics' | 'subscribe'>): boolean {
  return claims.topics.length > 0 || (claims.subscribe?.length ?? 0) > 0;
}

export function topicAllowed(grants: readonly string[], topic: string): boolean {
  return grants.includes(ANY_TOPIC) || grants.includes(topic);
}

const CLIENT_TOPIC = new RegExp(TOPIC_PATTERN);

/**
 * Whether the token may read `topic`'s records and payloads (its `subscribe` grants it). Only
 * client topics can be granted: `*` does not grant reserved ones such as the audit log's
 * `_audit`, whose payloads are not for subscribers.
 */
export function subscribeAllowed(claims: Pick<TokenClaims, 'subscribe'>, topic: string): boolean {
  return CLIENT_TOPIC.test(topic) && topicAllowed(claims.subscribe ?? [], topic);
}

/** GET /v1/info: what a client needs to verify receipts against the chain. */
export const InfoResponse = Type.Object({
  /** The newest data-channel protocol the relays speak. */
  protocol: Type.Literal(PROTOCOL_VERSION),
  /** Every data-channel protocol the relays speak, oldest first. */
  protocols: Type.Array(Type.Union(PROTOCOL_VERSIONS.map((version) => Type.Literal(version)))),
  chainId: Type.Integer(),
  contract: Address,
  deploymentBlock: Type.Integer({ minimum: 0 }),
  /** A JSON-RPC URL the browser may use to read the chain (HTTP; no WebSocket). */
  rpcUrl: Type.String(),
  leafEncoding: Type.Array(Type.String(), { default: [...LEAF_ENCODING] }),
});
export type InfoResponse = Static<typeof InfoResponse>;

/** GET /v1/topics/<topic>/records: a page of a topic's stored records, in position order. */
export const TopicRecordsResponse = Type.Object(
  {
    topic: Topic,
    records: Type.Array(TopicHistoryRecord),
    /** The `after` of the next page; null when this page reached the topic's head. */
    next: Type.Union([TopicPosition, Type.Null()]),
    /** The topic's highest stored position (0: none), read after the page. */
    head: TopicPosition,
  },
  { additionalProperties: false },
);
export type TopicRecordsResponse = Static<typeof TopicRecordsResponse>;

/** GET /v1/records/<recordId>: one stored record of a topic the token subscribes to. */
export const RecordResponse = StoredRecord;
export type RecordResponse = StoredRecord;

/**
 * GET /v1/batches/<batchId>: an anchored batch's current anchoring (a receipt's anchor half,
 * §9) and a page of all its leaves in leaf order, with proofs.
 */
export const BatchResponse = Type.Object(
  {
    anchor: ReceiptAnchor,
    leaves: Type.Array(BatchLeaf),
    /** The `from` of the next page; null when this page holds the batch's last leaf. */
    next: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type BatchResponse = Static<typeof BatchResponse>;

/**
 * A checker of one response schema, compiled on first use: `undefined` when `value` matches,
 * else its first mismatch (`path: message`). For clients that read an operator's answers
 * without trusting them (a chain follower, docs/protocol.md §10.1).
 */
function lazyProblem<T extends TSchema>(schema: T): (value: unknown) => string | undefined {
  let check: TypeCheck<T> | undefined;
  return (value) => {
    check ??= TypeCompiler.Compile(schema);
    if (check.Check(value)) return undefined;
    const first = check.Errors(value).First();
    return first ? `${first.path || '(root)'}: ${first.message}` : 'does not match the schema';
  };
}

/** Why `value` is not a BatchResponse (its first mismatch); undefined when it is one. */
export const batchResponseProblem = lazyProblem(BatchResponse);
/** Why `value` is not a TopicRecordsResponse (its first mismatch); undefined when it is one. */
export const topicRecordsResponseProblem = lazyProblem(TopicRecordsResponse);
