import { type Static, Type } from '@sinclair/typebox';
import { AUDIT_TOPIC } from './constants';
import { TopicPosition } from './data-channel';
import { Bytes32, EpochMillis, Subject, Topic } from './primitives';

// Stored history, as the chain-indexer reads it and the gateway serves it
// (docs/protocol.md §3.8–3.10): a topic's records by position, one record, one batch's leaves.

/** Paging of history reads, over HTTP and on the `indexerLookup` queue. */
export const HISTORY_LIMITS = {
  /** Most records (or leaves) one page holds; a request may ask for fewer. */
  maxPageRecords: 1000,
  /** Records (or leaves) a page holds when the request names no limit. */
  defaultPageRecords: 100,
  /**
   * A page stops early, before the record whose payload would take its payloads past this
   * many UTF-8 bytes (it always holds at least one record): a page of 1,000 records of 16 KiB
   * payloads would otherwise be 16 MiB through Redis and HTTP. The page's `next` says where
   * to go on.
   */
  maxPagePayloadBytes: 1024 * 1024,
} as const;

/** A stored record's topic: a client topic (§5.2), or the audit log's reserved `_audit`. */
export const StoredTopic = Type.Union([Topic, Type.Literal(AUDIT_TOPIC)]);

/**
 * A record's canonical payload text (RFC 8785, §6) as a string, so that keccak256 of its UTF-8
 * bytes is the record's contentHash; null when the payload was pruned (payload retention) or is
 * not served to this reader. A string rather than a JSON value: a payload may itself be JSON
 * `null`, and the text is exactly the bytes that were hashed.
 */
export const PayloadText = Type.Union([Type.String(), Type.Null()]);

/** A record of a topic's history, in position order (the topic is named once, around it). */
export const TopicHistoryRecord = Type.Object(
  {
    position: TopicPosition,
    recordId: Bytes32,
    subject: Subject,
    contentHash: Bytes32,
    acceptedAt: EpochMillis,
    payload: PayloadText,
    /** The batch the record was put in; null until the writer batched it. */
    batchId: Type.Union([Bytes32, Type.Null()]),
  },
  { additionalProperties: false },
);
export type TopicHistoryRecord = Static<typeof TopicHistoryRecord>;

/** One stored record: its leaf fields, where it stands in its topic and batch, its payload. */
export const StoredRecord = Type.Object(
  {
    recordId: Bytes32,
    topic: StoredTopic,
    /** Its position in its topic; null for a record that has none (stored before positions, or the audit log's). */
    position: Type.Union([TopicPosition, Type.Null()]),
    subject: Subject,
    contentHash: Bytes32,
    acceptedAt: EpochMillis,
    payload: PayloadText,
    batchId: Type.Union([Bytes32, Type.Null()]),
  },
  { additionalProperties: false },
);
export type StoredRecord = Static<typeof StoredRecord>;

/**
 * One leaf of an anchored batch: the record's leaf fields, leaf hash and proof (a receipt's
 * record half, §9), its position in its topic and its payload.
 */
export const BatchLeaf = Type.Object(
  {
    leafIndex: Type.Integer({ minimum: 0 }),
    recordId: Bytes32,
    topic: StoredTopic,
    subject: Subject,
    contentHash: Bytes32,
    acceptedAt: EpochMillis,
    leafHash: Bytes32,
    proof: Type.Array(Bytes32),
    position: Type.Union([TopicPosition, Type.Null()]),
    payload: PayloadText,
  },
  { additionalProperties: false },
);
export type BatchLeaf = Static<typeof BatchLeaf>;

/** The batch statuses before anchoring: its tree is built, or its transaction sent. */
export const UnanchoredBatchStatus = Type.Union([Type.Literal('built'), Type.Literal('sent')]);
export type UnanchoredBatchStatus = Static<typeof UnanchoredBatchStatus>;
