import type {
  AuditEventsJob,
  BatchByIdRequest,
  BatchByIdResult,
  CreateSessionRequest,
  CreateSessionResult,
  DeleteSessionRequest,
  DeleteSessionResult,
  LookupReceiptRequest,
  LookupReceiptResult,
  ReceiptBatchJob,
  ReceiptNoticeJob,
  RecordBatchJob,
  RecordByIdRequest,
  RecordByIdResult,
  SessionRecordsRequest,
  SessionRecordsResult,
  TopicRecordsRequest,
  TopicRecordsResult,
  TrickleSessionRequest,
  TrickleSessionResult,
} from '@streamanchor/protocol';

/**
 * The exhaustive map of queues and the jobs each carries. Per-relay queues take the
 * relay id, so a session's requests and receipts reach the relay that holds it.
 * Names avoid ':' (BullMQ's key separator).
 */
export const QUEUES = {
  /** gateway → one relay, request/reply (the gateway awaits the job's result). */
  relayControl: { name: (relayId: string) => `relay-control.${relayId}` },
  /** relays → chain-writer: accepted records, many per job. */
  records: { name: () => 'records' },
  /** chain-indexer → one relay: receipts for the sessions it holds. */
  receipts: { name: (relayId: string) => `receipts.${relayId}` },
  /**
   * gateway and relays → chain-indexer, request/reply: read-only lookups (a record's current
   * receipt; a session's records of a batch; history: a topic's records, one record, one
   * batch's leaves).
   */
  indexerLookup: { name: () => 'indexer-lookup' },
  /** gateway and relays → chain-writer: audit events, many per job (`createAuditPublisher`). */
  audit: { name: () => 'audit' },
} as const;

export interface QueueJobs {
  relayControl: {
    createSession: { data: CreateSessionRequest; result: CreateSessionResult };
    deleteSession: { data: DeleteSessionRequest; result: DeleteSessionResult };
    /** Trickled ICE candidates for a session (PATCH /v1/sessions/<id>). */
    trickleSession: { data: TrickleSessionRequest; result: TrickleSessionResult };
  };
  records: {
    /** `deadLettered` (items the writer could not store, kept in dead_letters) only when > 0. */
    recordBatch: { data: RecordBatchJob; result: { stored: number; deadLettered?: number } };
  };
  receipts: {
    /** One revision of a batch's anchoring for the sessions one relay holds. */
    receiptNotice: { data: ReceiptNoticeJob; result: { delivered: number } };
    /** The job receiptNotice replaced (a full receipt per record); still delivered when found. */
    receiptBatch: { data: ReceiptBatchJob; result: { delivered: number } };
  };
  indexerLookup: {
    lookupReceipt: { data: LookupReceiptRequest; result: LookupReceiptResult };
    /** relay → indexer: a session's records of a batch, for a notice that carried only their number. */
    sessionRecords: { data: SessionRecordsRequest; result: SessionRecordsResult };
    /** gateway and relays → indexer: a topic's stored records after a position, and its head. */
    topicRecords: { data: TopicRecordsRequest; result: TopicRecordsResult };
    /** gateway → indexer: one stored record. */
    recordById: { data: RecordByIdRequest; result: RecordByIdResult };
    /** gateway → indexer: a batch's anchoring and a page of its leaves with proofs. */
    batchById: { data: BatchByIdRequest; result: BatchByIdResult };
  };
  audit: {
    auditEvents: { data: AuditEventsJob; result: { appended: number; deadLettered?: number } };
  };
}

export type QueueKind = keyof QueueJobs;
export type JobName<Q extends QueueKind> = keyof QueueJobs[Q] & string;
/** Payload of job N on queue Q (a union over all of Q's jobs when N is omitted). */
export type JobData<Q extends QueueKind, N extends JobName<Q> = JobName<Q>> = N extends unknown
  ? QueueJobs[Q][N] extends { data: infer D }
    ? D
    : never
  : never;
export type JobResult<Q extends QueueKind, N extends JobName<Q> = JobName<Q>> = N extends unknown
  ? QueueJobs[Q][N] extends { result: infer R }
    ? R
    : never
  : never;

/**
 * Deterministic job ids, so that a retried `add` never creates a second job.
 * BullMQ forbids ':' in custom ids.
 */
export const jobIds = {
  /** A group of records is identified by its first record id (record ids are unique). */
  recordBatch: (firstRecordId: string) => `records-${firstRecordId}`,
  /** One revision of a batch's anchoring for one relay (a new revision: included, final, reorged). */
  receiptNotice: (batchId: string, relayId: string, revision: number) =>
    `receipts-${batchId}-${relayId}-r${revision}`,
  createSession: (sessionId: string) => `create-${sessionId}`,
  deleteSession: (sessionId: string, nonce: string) => `delete-${sessionId}-${nonce}`,
  trickleSession: (sessionId: string, nonce: string) => `trickle-${sessionId}-${nonce}`,
  /** Lookups are reads: unique per request (the nonce), never deduplicated. */
  lookupReceipt: (recordId: string, nonce: string) => `lookup-${recordId}-${nonce}`,
  sessionRecords: (batchId: string, sessionId: string, nonce: string) =>
    `session-records-${batchId}-${sessionId}-${nonce}`,
  topicRecords: (topic: string, nonce: string) => `topic-records-${topic}-${nonce}`,
  recordById: (recordId: string, nonce: string) => `record-${recordId}-${nonce}`,
  batchById: (batchId: string, nonce: string) => `batch-${batchId}-${nonce}`,
  /** A group of audit events is identified by its first event id (event ids are unique). */
  auditEvents: (firstEventId: string) => `audit-${firstEventId}`,
} as const;
