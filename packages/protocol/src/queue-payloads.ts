import { type Static, Type } from '@sinclair/typebox';
import { Bytes32, EpochMillis, SessionId, Subject, Topic } from './primitives';
import { Receipt } from './receipt';

// Payloads of BullMQ jobs between services. The queue map in @streamanchor/bus
// binds each job name to one of these.

/** gateway → relay: take a new session. The job's return value is CreateSessionResult. */
export const CreateSessionRequest = Type.Object({
  sessionId: SessionId,
  offerSdp: Type.String(),
  subject: Subject,
  topics: Type.Array(Type.String()),
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

/** relay → writer: records grouped into one job (never one job per record). */
export const RecordBatchJob = Type.Object({ records: Type.Array(AcceptedRecord, { minItems: 1 }) });
export type RecordBatchJob = Static<typeof RecordBatchJob>;

/** indexer → relay: receipts for sessions this relay holds. */
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
