import { type Static, Type } from '@sinclair/typebox';
import { TopicPosition } from './data-channel';
import {
  BatchLeaf,
  HISTORY_LIMITS,
  StoredRecord,
  TopicHistoryRecord,
  UnanchoredBatchStatus,
} from './history';
import { Bytes32, EpochMillis, SessionId, Subject, Topic } from './primitives';
import { Receipt, ReceiptAnchor, ReceiptRecord } from './receipt';

// Payloads of BullMQ jobs between services. The queue map in @streamanchor/bus
// binds each job name to one of these.

/** gateway → relay: take a new session. The job's return value is CreateSessionResult. */
export const CreateSessionRequest = Type.Object({
  sessionId: SessionId,
  offerSdp: Type.String(),
  subject: Subject,
  /** Topics the session may publish to (the token's `topics`). */
  topics: Type.Array(Type.String()),
  /**
   * Topics the session may subscribe to (the token's `subscribe`). Optional: a job from a
   * gateway before subscribers has none, and grants no subscription.
   */
  subscribeTopics: Type.Optional(Type.Array(Type.String())),
  tokenExpiresAt: EpochMillis,
  /** The gateway stops waiting at this time; a relay that picks the job up later drops it. */
  deadline: EpochMillis,
});
export type CreateSessionRequest = Static<typeof CreateSessionRequest>;

export const CreateSessionResult = Type.Object({ answerSdp: Type.String() });
export type CreateSessionResult = Static<typeof CreateSessionResult>;

/** gateway → relay: end a session. */
export const DeleteSessionRequest = Type.Object({ sessionId: SessionId, deadline: EpochMillis });
export type DeleteSessionRequest = Static<typeof DeleteSessionRequest>;

export const DeleteSessionResult = Type.Object({ deleted: Type.Boolean() });
export type DeleteSessionResult = Static<typeof DeleteSessionResult>;

/**
 * gateway → relay: trickled ICE (PATCH /v1/sessions/<id>, docs/protocol.md §3.1.2): the
 * candidates of one `application/trickle-ice-sdpfrag` body, already checked by
 * `parseTrickleFragment`. The relay compares `ifMatch` with the session's ETag itself.
 */
export const TrickleSessionRequest = Type.Object({
  sessionId: SessionId,
  /** The request's If-Match, as sent (`*` or a list of entity-tags). */
  ifMatch: Type.String({ maxLength: 1024 }),
  /** The fragment's a=ice-ufrag / a=ice-pwd, when it had them (a new pair is an ICE restart). */
  iceUfrag: Type.Optional(Type.String({ maxLength: 256 })),
  icePwd: Type.Optional(Type.String({ maxLength: 256 })),
  /** `candidate:…` attribute values (no `a=`), each with the mid of its m= section, if named. */
  candidates: Type.Array(
    Type.Object({
      candidate: Type.String({ maxLength: 1024 }),
      mid: Type.Optional(Type.String({ maxLength: 64 })),
    }),
    { maxItems: 256 },
  ),
  endOfCandidates: Type.Boolean(),
  deadline: EpochMillis,
});
export type TrickleSessionRequest = Static<typeof TrickleSessionRequest>;

/**
 * `applied`: the candidates were taken (`204`); `precondition_failed`: If-Match did not match
 * (`412`). Either way `etag` is the session's current ETag.
 */
export const TrickleSessionResult = Type.Object({
  outcome: Type.Union([Type.Literal('applied'), Type.Literal('precondition_failed')]),
  etag: Type.String(),
});
export type TrickleSessionResult = Static<typeof TrickleSessionResult>;

/** A record as accepted by a relay: everything the writer stores and the leaf commits to. */
export const AcceptedRecord = Type.Object({
  recordId: Bytes32,
  topic: Topic,
  subject: Subject,
  contentHash: Bytes32,
  acceptedAt: EpochMillis,
  /** RFC 8785 canonical JSON text of the payload; contentHash = keccak256(utf8(payload)). */
  payload: Type.String(),
  relayId: Type.String(),
  sessionId: SessionId,
});
export type AcceptedRecord = Static<typeof AcceptedRecord>;

/**
 * Why `value` cannot be stored as Postgres text or jsonb, or undefined if it can: Postgres
 * (and PGlite) refuse U+0000 in text and jsonb, and a lone UTF-16 surrogate has no UTF-8
 * form. Checks every string inside objects and arrays (keys too), to `maxDepth` levels.
 */
export function unstorableTextProblem(
  value: unknown,
  path = '',
  maxDepth = 16,
): string | undefined {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return `${path || '/'}: contains U+0000`;
    if (LONE_SURROGATE.test(value)) return `${path || '/'}: contains a lone surrogate`;
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (maxDepth <= 0) return `${path || '/'}: nested too deep`;
  for (const [key, item] of Object.entries(value)) {
    const problem =
      unstorableTextProblem(key, `${path}/(key)`, 0) ??
      unstorableTextProblem(item, `${path}/${key}`, maxDepth - 1);
    if (problem) return problem;
  }
  return undefined;
}
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** relay → writer: records grouped into one job (never one job per record). */
export const RecordBatchJob = Type.Object({ records: Type.Array(AcceptedRecord, { minItems: 1 }) });
export type RecordBatchJob = Static<typeof RecordBatchJob>;

/**
 * Kinds of audit events (security-relevant facts the gateway and relays report), with their
 * meanings. The writer appends them to the audit hash chain (docs/protocol.md, "Audit log").
 */
export const AUDIT_EVENT_KINDS = {
  session_opened: 'a session was opened (subject, address, relay, session)',
  session_closed: 'a session was closed (subject, relay, session; details.reason)',
  token_refused: 'a token was refused (details.code; subject when it could be read)',
  rate_limited: 'a rate limit was hit (details.limit, subject and/or address)',
  session_nacks: 'nack counts of one session, by code (details.counts)',
  subject_suspended:
    'a session was closed for refused messages and its subject suspended (details.code, details.suspendMs)',
} as const;
export type AuditEventKind = keyof typeof AUDIT_EVENT_KINDS;

/** Longest text of an audit event field the writer stores. */
export const AUDIT_FIELD_MAX_LENGTH = 256;
const AuditText = Type.String({ minLength: 1, maxLength: AUDIT_FIELD_MAX_LENGTH });

/** One audit event; `eventId` is the producer's unique id (appends are idempotent on it). */
export const AuditEvent = Type.Object({
  eventId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  /** When it happened, by the producer's clock. */
  at: EpochMillis,
  kind: Type.Unsafe<AuditEventKind>(
    Type.String({ enum: Object.keys(AUDIT_EVENT_KINDS) as AuditEventKind[] }),
  ),
  subject: Type.Optional(AuditText),
  relayId: Type.Optional(AuditText),
  sessionId: Type.Optional(AuditText),
  /** The client's IP address (as the gateway saw it). */
  address: Type.Optional(AuditText),
  /** Small JSON object of kind-specific facts (at most 4 KiB as canonical JSON). */
  details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type AuditEvent = Static<typeof AuditEvent>;

/** gateway and relays → writer: audit events, many per job. */
export const AuditEventsJob = Type.Object({
  events: Type.Array(AuditEvent, { minItems: 1 }),
});
export type AuditEventsJob = Static<typeof AuditEventsJob>;

/** One session's part of a ReceiptNoticeJob that carries its records. */
export const NoticeSessionRecords = Type.Object({
  sessionId: SessionId,
  records: Type.Array(ReceiptRecord, { minItems: 1 }),
});
export type NoticeSessionRecords = Static<typeof NoticeSessionRecords>;

/**
 * One session's part of a ReceiptNoticeJob of a batch revision after the first: the session's
 * records were in the batch's first notice and never change, so only their number comes. A v2
 * session that was sent them gets an `anchoring` message; any other (v1, or one that forgot the
 * batch) has the relay ask the indexer for them (SessionRecordsRequest).
 */
export const NoticeSessionCount = Type.Object({
  sessionId: SessionId,
  recordCount: Type.Integer({ minimum: 1 }),
});
export type NoticeSessionCount = Static<typeof NoticeSessionCount>;

/**
 * indexer → relay: one notice of a batch's anchoring for the sessions this relay holds, the
 * anchor once and, per session, its records of the batch (the first notice of the batch) or
 * just their number (every later one). The relay turns them into `receipts` or `anchoring`
 * messages for v2 sessions, `receipt` messages for v1 ones.
 */
export const ReceiptNoticeJob = Type.Object({
  anchor: ReceiptAnchor,
  sessions: Type.Array(Type.Union([NoticeSessionRecords, NoticeSessionCount]), { minItems: 1 }),
});
export type ReceiptNoticeJob = Static<typeof ReceiptNoticeJob>;

/** relay → chain-indexer, request/reply: one session's records of one batch, with their proofs. */
export const SessionRecordsRequest = Type.Object({ batchId: Bytes32, sessionId: SessionId });
export type SessionRecordsRequest = Static<typeof SessionRecordsRequest>;

/** The indexer's answer to SessionRecordsRequest, in leaf order (none: unknown batch or session). */
export const SessionRecordsResult = Type.Object({ records: Type.Array(ReceiptRecord) });
export type SessionRecordsResult = Static<typeof SessionRecordsResult>;

/**
 * indexer → relay, before ReceiptNoticeJob: one full receipt per record. No longer enqueued;
 * relays still deliver such jobs left in a queue by an older indexer.
 */
export const ReceiptBatchJob = Type.Object({
  receipts: Type.Array(Type.Object({ sessionId: SessionId, receipt: Receipt }), { minItems: 1 }),
});
export type ReceiptBatchJob = Static<typeof ReceiptBatchJob>;

/** gateway → chain-indexer, request/reply: where one record stands (GET /v1/records/…/receipt). */
export const LookupReceiptRequest = Type.Object({ recordId: Bytes32 });
export type LookupReceiptRequest = Static<typeof LookupReceiptRequest>;

/**
 * The indexer's answer to LookupReceiptRequest: `unknown` (no such record stored),
 * `pending` (stored, not in a canonical anchored batch yet) or `anchored` with the current
 * receipt (status `included` or `final`). `subject` lets the gateway hide other subjects' records.
 */
export const LookupReceiptResult = Type.Union([
  Type.Object({ state: Type.Literal('unknown') }),
  Type.Object({ state: Type.Literal('pending'), subject: Subject }),
  Type.Object({ state: Type.Literal('anchored'), subject: Subject, receipt: Receipt }),
]);
export type LookupReceiptResult = Static<typeof LookupReceiptResult>;

/** A page size of a history lookup: 1 to HISTORY_LIMITS.maxPageRecords. */
const PageLimit = Type.Integer({ minimum: 1, maximum: HISTORY_LIMITS.maxPageRecords });

/**
 * gateway and relays → chain-indexer, request/reply: a topic's stored records after position
 * `after` (0: from its first), in position order, at most `limit` (GET /v1/topics/…/records; a
 * relay catching a subscriber up from Postgres).
 */
export const TopicRecordsRequest = Type.Object(
  { topic: Topic, after: TopicPosition, limit: PageLimit },
  { additionalProperties: false },
);
export type TopicRecordsRequest = Static<typeof TopicRecordsRequest>;

/**
 * The indexer's answer to TopicRecordsRequest: the records (fewer than `limit` when the topic
 * has no more, or when their payloads reached HISTORY_LIMITS.maxPagePayloadBytes) and `head`,
 * the topic's highest stored position (0: none), read after them.
 */
export const TopicRecordsResult = Type.Object(
  { records: Type.Array(TopicHistoryRecord), head: TopicPosition },
  { additionalProperties: false },
);
export type TopicRecordsResult = Static<typeof TopicRecordsResult>;

/** gateway → chain-indexer, request/reply: one stored record (GET /v1/records/<recordId>). */
export const RecordByIdRequest = Type.Object(
  { recordId: Bytes32 },
  { additionalProperties: false },
);
export type RecordByIdRequest = Static<typeof RecordByIdRequest>;

/** The indexer's answer to RecordByIdRequest: the record, or null when none is stored. */
export const RecordByIdResult = Type.Object(
  { record: Type.Union([StoredRecord, Type.Null()]) },
  { additionalProperties: false },
);
export type RecordByIdResult = Static<typeof RecordByIdResult>;

/**
 * gateway → chain-indexer, request/reply: one batch's anchoring and a page of its leaves in
 * leaf order, from leaf `from` (default 0), at most `limit` (default
 * HISTORY_LIMITS.defaultPageRecords) (GET /v1/batches/<batchId>). `payloadTopics`: the topics
 * whose payloads the page carries (names, or `*` for all); absent: all. Other leaves come with
 * `payload: null`.
 */
export const BatchByIdRequest = Type.Object(
  {
    batchId: Bytes32,
    from: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(PageLimit),
    payloadTopics: Type.Optional(Type.Array(Type.String(), { maxItems: 256 })),
  },
  { additionalProperties: false },
);
export type BatchByIdRequest = Static<typeof BatchByIdRequest>;

/**
 * The indexer's answer to BatchByIdRequest: `unknown` (no such batch stored), `pending` (its
 * tree is built or its transaction sent, but it is not in a canonical block) or `anchored`:
 * its current anchoring (status `included` or `final`), a page of its leaves, each with its
 * proof rebuilt from all the batch's stored records and checked against the anchored root, and
 * `next`, the leaf index the next page starts at (null after the last leaf).
 */
export const BatchByIdResult = Type.Union([
  Type.Object({ state: Type.Literal('unknown') }, { additionalProperties: false }),
  Type.Object(
    { state: Type.Literal('pending'), status: UnanchoredBatchStatus },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      state: Type.Literal('anchored'),
      anchor: ReceiptAnchor,
      leaves: Type.Array(BatchLeaf),
      next: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    },
    { additionalProperties: false },
  ),
]);
export type BatchByIdResult = Static<typeof BatchByIdResult>;
