import type { ColumnType, Generated, Insertable, Selectable, SelectType, Updateable } from 'kysely';

/** bigint columns come back as strings from pg and as numbers from PGlite: read them with Number(). */
type Int8 = ColumnType<string | number, number | bigint | string, number | bigint | string>;
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

/**
 * One row per accepted record. Written once (idempotent on record_id): its batch is in
 * `batch_leaves`, not in the row (migration 0010); `record_leaves` reads both together.
 */
export interface RecordsTable {
  record_id: string;
  /**
   * Ingest order: batches take records in this order. Drawn from an identity sequence (never
   * given by an insert: the batch frontier relies on it, see migration 0010).
   */
  seq: Generated<Int8>;
  topic: string;
  subject: string;
  content_hash: string;
  accepted_at: Int8;
  /**
   * RFC 8785 canonical JSON text; content_hash = keccak256(utf8(payload)). NULL once pruned
   * (payload retention, `pruneRecordPayloads`): only pruning sets it to NULL.
   */
  payload: ColumnType<string | null, string, null>;
  relay_id: string;
  session_id: string;
  stored_at: Generated<Timestamp>;
  /**
   * The record's position in its topic (1, 2, 3… in ack order), given by the relay that
   * accepted it; null when it has none. Not unique: a Redis reset restarts the counter.
   */
  position: Int8 | null;
}

/**
 * Batch lifecycle, written only through the ledger (`createBatchLedger`):
 * built (tree fixed, not yet signed) → sent (signed tx stored, broadcast) → included (the
 * indexer saw its BatchAnchored event in a canonical block) → final (that block is
 * FINALITY_DEPTH deep). A reorg puts an included batch back to sent.
 */
export type BatchStatus = 'built' | 'sent' | 'included' | 'final';

export interface BatchesTable {
  batch_id: string;
  seq: Generated<Int8>;
  status: BatchStatus;
  merkle_root: string;
  record_count: number;
  chain_id: number;
  contract: string;
  signer: string | null;
  nonce: Int8 | null;
  /** The signed transaction, kept so a restart re-broadcasts the same bytes (same nonce) instead of signing anew. */
  raw_tx: string | null;
  tx_hash: string | null;
  sent_at: Timestamp | null;
  block_number: Int8 | null;
  block_hash: string | null;
  log_index: number | null;
  included_at: Timestamp | null;
  final_at: Timestamp | null;
  /** Bumped by every change of the batch's anchoring (included, final, reorged). */
  revision: Generated<number>;
  created_at: Generated<Timestamp>;
}

/**
 * A batch's records in leaf order: one row per batched record, written with its batch by the
 * ledger's `createBatch` and never changed (migration 0010). A record is in at most one batch
 * (unique record_seq).
 */
export interface BatchLeavesTable {
  /** The batch's `batches.seq`. */
  batch_seq: Int8;
  leaf_index: number;
  /** The record's `records.seq`. */
  record_seq: Int8;
  leaf_hash: string;
}

/**
 * The batcher's queue (one row): every record with `seq` up to `frontier_seq` is batched;
 * those in no batch are found above it. Written only by the ledger's batch-frontier code
 * (`readWaitingRecords`, `takeUnbatchedRecords`); see migration 0010 for the horizon.
 */
export interface BatchFrontierTable {
  id: Generated<boolean>;
  frontier_seq: Int8;
  horizon_seq: Int8;
  /** xid8, as text. */
  horizon_xid: string;
}

/** A view's row: read-only (Kysely refuses inserts and updates of its columns). */
type ReadOnly<T> = { [K in keyof T]: ColumnType<SelectType<T[K]>, never, never> };

/**
 * The view `record_leaves`: every record with its batch and leaf (null while in no batch).
 * What `records.batch_id`, `leaf_index` and `leaf_hash` gave before migration 0010.
 */
export type RecordLeavesView = ReadOnly<
  RecordsTable & { batch_id: string | null; leaf_index: number | null; leaf_hash: string | null }
>;

export type ReceiptNoticeStatus = 'included' | 'final' | 'reorged';

/**
 * The receipts outbox: one row per batch revision, written in the transaction that made the
 * transition; the indexer turns each into receipt jobs and stamps sent_at.
 */
export interface ReceiptNoticesTable {
  id: ColumnType<string | number, never, never>;
  batch_id: string;
  revision: number;
  status: ReceiptNoticeStatus;
  /** The anchoring this notice is about (for `reorged`: the one that left the chain). */
  tx_hash: string;
  block_number: Int8;
  block_hash: string;
  log_index: number;
  confirmations: number;
  created_at: Generated<Timestamp>;
  sent_at: Timestamp | null;
}

/** The indexer's window of recent canonical block headers, linked by parent hash. */
export interface IndexerBlocksTable {
  chain_id: number;
  contract: string;
  block_number: Int8;
  block_hash: string;
  parent_hash: string;
}

/** Every BatchAnchored log the indexer has seen. */
export interface AnchorEventsTable {
  chain_id: number;
  contract: string;
  block_number: Int8;
  block_hash: string;
  tx_hash: string;
  log_index: number;
  batch_id: string;
  merkle_root: string;
  record_count: number;
  writer: string;
  indexed_at: Generated<Timestamp>;
}

/** How far the indexer has read, per chain and contract. */
export interface IndexerCursorsTable {
  chain_id: number;
  contract: string;
  block_number: Int8;
  block_hash: string | null;
  updated_at: Generated<Timestamp>;
}

/**
 * Items of a job the writer could not store (poison isolation): one row per item, written in
 * the transaction that stored the job's valid items. `raw` is JSON text (NULs escaped).
 */
export interface DeadLettersTable {
  id: ColumnType<string | number, never, never>;
  /** The queue the job came from: `records` or `audit`. */
  queue: string;
  job_id: string;
  /** Position of the item in its job (unique per queue and job: retries add nothing). */
  item_index: number;
  /** The item's record id (or audit event id) when it had a readable one. */
  record_id: string | null;
  reason: string;
  raw: string;
  created_at: Generated<Timestamp>;
}

/** The append-only audit hash chain; written only by `appendAudit`. */
export interface AuditLogTable {
  seq: Int8;
  event_id: string;
  at: Int8;
  kind: string;
  subject: string | null;
  relay_id: string | null;
  session_id: string | null;
  address: string | null;
  details: ColumnType<Record<string, unknown>, string, never>;
  prev_hash: string;
  entry_hash: string;
  appended_at: Generated<Timestamp>;
}

/** Audit heads anchored on chain: each one is the record `record_id` (topic `_audit`). */
export interface AuditAnchorsTable {
  seq: Int8;
  entry_hash: string;
  record_id: string;
  created_at: Generated<Timestamp>;
}

/**
 * How far payload pruning went, per chain and contract: every batch with `seq` up to
 * `batch_seq` is final and had its records' payloads pruned. Written only by `pruneRecordPayloads`.
 */
export interface PayloadPruneCursorsTable {
  chain_id: number;
  contract: string;
  batch_seq: Int8;
  updated_at: Generated<Timestamp>;
}

/**
 * The epoch of the active chain-indexer per chain and contract (migration 0009): bumped by each
 * indexer that takes the leader lock, checked by its write transactions (fencing). Written only
 * by the chain-indexer's leader module.
 */
export interface IndexerLeadersTable {
  chain_id: number;
  contract: string;
  epoch: Int8;
  holder: string;
  acquired_at: Generated<Timestamp>;
}

export interface Database {
  records: RecordsTable;
  batches: BatchesTable;
  batch_leaves: BatchLeavesTable;
  batch_frontier: BatchFrontierTable;
  record_leaves: RecordLeavesView;
  anchor_events: AnchorEventsTable;
  indexer_cursors: IndexerCursorsTable;
  receipt_notices: ReceiptNoticesTable;
  indexer_blocks: IndexerBlocksTable;
  dead_letters: DeadLettersTable;
  audit_log: AuditLogTable;
  audit_anchors: AuditAnchorsTable;
  payload_prune_cursors: PayloadPruneCursorsTable;
  indexer_leaders: IndexerLeadersTable;
}

export type RecordRow = Selectable<RecordsTable>;
export type RecordLeavesRow = Selectable<RecordLeavesView>;
export type BatchLeafRow = Selectable<BatchLeavesTable>;
export type NewRecordRow = Insertable<RecordsTable>;
export type BatchRow = Selectable<BatchesTable>;
export type NewBatchRow = Insertable<BatchesTable>;
export type BatchUpdate = Updateable<BatchesTable>;
export type AnchorEventRow = Selectable<AnchorEventsTable>;
export type ReceiptNoticeRow = Selectable<ReceiptNoticesTable>;
export type DeadLetterRow = Selectable<DeadLettersTable>;
export type NewDeadLetterRow = Insertable<DeadLettersTable>;
export type AuditLogRow = Selectable<AuditLogTable>;
export type AuditAnchorRow = Selectable<AuditAnchorsTable>;
