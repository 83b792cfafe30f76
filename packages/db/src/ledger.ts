import {
  buildMerkleTree,
  type LeafFields,
  type Receipt,
  type ReceiptAnchor,
  type ReceiptRecord,
  type ReceiptStatus,
  receiptOf,
} from '@streamanchor/protocol';
import { ServiceError } from '@streamanchor/service-kit';
import { type Kysely, NoResultError, sql, type Transaction } from 'kysely';
import type { BatchRow, Database, ReceiptNoticeRow } from './schema';

/**
 * The batch ledger: the ONLY code that writes batch state (`batches`, `batch_leaves`, and the
 * batcher's queue `batch_frontier`: see readWaitingRecords) and receipt state
 * (`receipt_notices`). The writer and the indexer both call it.
 *
 *   built ──recordSigned──▶ sent ──markIncluded──▶ included ──finalize──▶ final
 *     │                      ▲ │                      │
 *     └─recordAnchoredElsewhere┘ └─(sent, no tx)─returnToBuilt─▶ built
 *                            ▲                        │
 *                            └──────revertAbove───────┘   (a reorg)
 *
 * Every transition is guarded (`where status = …`), so a stale caller changes nothing and
 * learns so from the return value. Every change of a batch's anchoring bumps its `revision`
 * and writes one receipt notice in the same statement: receipts can never disagree with the
 * batch state they announce.
 */
export interface BatchLedger {
  /**
   * Inserts a `built` batch and its leaves (`batch_leaves`, one row per record: the records
   * themselves are not written) in one transaction: the caller's, which must roll back when
   * this throws (a LedgerError when a record is unknown or already in a batch). Proofs are not
   * stored: reading a batch rebuilds its tree from the records' leaf fields in leaf order and
   * checks the root against the batch's.
   */
  createBatch(batch: NewBuiltBatch, leaves: readonly LeafStamp[]): Promise<void>;
  /**
   * A signed tx was made for the batch: `built → sent`, or `sent → sent` replacing the tx
   * whose raw bytes are `replaces` (compare-and-set). False when the batch had moved on.
   */
  recordSigned(batchId: string, signed: SignedTx, replaces?: string): Promise<boolean>;
  /** `built → sent` without a tx of ours: the chain already holds the batch anchored. */
  recordAnchoredElsewhere(batchId: string): Promise<boolean>;
  /** `sent → built` for a batch with no tx of ours whose outside anchoring left the chain. */
  returnToBuilt(batchId: string): Promise<boolean>;
  /**
   * Anchorings seen in canonical blocks: `built|sent → included` (or straight to `final`
   * when already deep enough), or a moved `included` anchoring updated. Returns the batches
   * changed. `head` is the newest canonical block the caller checked.
   */
  markIncluded(anchorings: readonly Anchoring[], head: bigint): Promise<string[]>;
  /** `included → final` for every batch whose block is now `finalityDepth` deep. */
  finalize(head: bigint): Promise<string[]>;
  /**
   * A reorg: every batch anchored above `ancestor` goes back to `sent` with a `reorged`
   * notice. Returns them; `deep` lists those that had been final (a reorg deeper than the
   * finality depth: an operator must hear of it).
   */
  revertAbove(ancestor: bigint): Promise<{ batchIds: string[]; deep: string[] }>;
  /** Receipt notices not sent yet, oldest first. */
  unsentNotices(limit: number): Promise<ReceiptNoticeRow[]>;
  markNoticeSent(id: string | number): Promise<void>;
  /** `markNoticeSent` for many notices in one statement. */
  markNoticesSent(ids: readonly (string | number)[]): Promise<void>;
  /**
   * What one notice announces: the batch's anchor, and each record of the batch with where
   * to deliver its receipt (`receiptOf(anchor, record)`), in leaf order. The record objects
   * are frozen, and the same objects for every notice of a batch while it is cached.
   */
  noticeOf(notice: ReceiptNoticeRow): Promise<NoticeContent>;
  /** Where a record stands now, with its current receipt once it is included or final. */
  lookupRecord(recordId: string): Promise<RecordLookup>;
  /**
   * One session's records of a batch with their proofs, in leaf order (none for an unknown
   * batch or a session with no record in it): what a relay asks for when a notice carried
   * only their number.
   */
  sessionRecordsOf(batchId: string, sessionId: string): Promise<ReceiptRecord[]>;
  /**
   * Where a batch stands: unknown, pending (built or sent, not in a canonical block), or
   * anchored with its current anchoring and the records at leaf indexes `from` to
   * `from + limit − 1` with their proofs, in leaf order (from the tree rebuilt over all its
   * records and checked against the anchored root: BatchRootMismatchError otherwise).
   */
  lookupBatch(batchId: string, page: { from: number; limit: number }): Promise<BatchLookup>;
}

export interface LedgerScope {
  chainId: number;
  /** Lowercase contract address. */
  contract: string;
  /** Confirmations (the anchoring block counted) after which an anchoring is final. */
  finalityDepth: number;
  /**
   * noticeOf keeps the leaves of the batches it read last, up to this many records in all
   * (default 0: none). A batch's records and leaves never change once `createBatch` wrote
   * them, and each batch is announced at least twice (included, then final), so the second
   * notice needs no read. The indexer's outbox sets it; the writer leaves it off.
   */
  contentCacheRecords?: number;
}

export interface NewBuiltBatch {
  batchId: string;
  merkleRoot: string;
  recordCount: number;
}

export interface LeafStamp {
  recordId: string;
  leafIndex: number;
  leafHash: string;
}

export interface SignedTx {
  signer: string;
  nonce: number;
  rawTx: string;
  txHash: string;
}

/** One BatchAnchored event, as the indexer found it in a canonical block. */
export interface Anchoring {
  batchId: string;
  txHash: string;
  blockNumber: bigint;
  blockHash: string;
  logIndex: number;
}

export interface NoticeContent {
  anchor: ReceiptAnchor;
  records: readonly DeliverableRecord[];
}

export interface DeliverableRecord {
  relayId: string;
  sessionId: string;
  record: ReceiptRecord;
}

export type RecordLookup =
  | { state: 'unknown' }
  /** Stored, not in a canonical anchored batch yet. */
  | { state: 'pending'; subject: string }
  | { state: 'anchored'; subject: string; receipt: Receipt };

export type BatchLookup =
  | { state: 'unknown' }
  /** Built or sent, not in a canonical block yet (never anchored, or reorged out). */
  | { state: 'pending'; status: 'built' | 'sent' }
  | {
      state: 'anchored';
      anchor: ReceiptAnchor;
      /** The page's records, in leaf order. */
      records: ReceiptRecord[];
      /** How many records the batch has stored (its leaves; recordCount unless rows are gone). */
      leafCount: number;
    };

export function confirmationsAt(head: bigint, blockNumber: bigint): number {
  return head < blockNumber ? 0 : Number(head - blockNumber + 1n);
}

export function createBatchLedger(db: Kysely<Database>, scope: LedgerScope): BatchLedger {
  const { chainId, contract, finalityDepth } = scope;
  // The highest block number that is final with `head` as the newest block.
  const finalAtOrBelow = (head: bigint) => head - BigInt(finalityDepth) + 1n;

  /** readBatchContent, from the cache when there (frozen rows and proofs, see below). */
  const contentCache = new Map<string, BatchContent>();
  /** A cached batch's records as noticeOf hands them out, made once per batch content. */
  const deliverables = new WeakMap<BatchContent, readonly DeliverableRecord[]>();
  let cachedRecords = 0;
  const cacheLimit = scope.contentCacheRecords ?? 0;
  async function batchContent(batchId: string): Promise<BatchContent> {
    const cached = contentCache.get(batchId);
    if (cached) return cached;
    const content = await readBatchContent(db, batchId);
    const { rows } = content;
    if (rows.length > 0 && rows.length <= cacheLimit) {
      contentCache.set(batchId, content);
      cachedRecords += rows.length;
      // Oldest first (a Map iterates in insertion order).
      for (const [id, old] of contentCache) {
        if (cachedRecords <= cacheLimit) break;
        contentCache.delete(id);
        cachedRecords -= old.rows.length;
      }
    }
    return content;
  }

  /** The newest block the indexer has read for a chain and contract, if it has read any. */
  async function indexedHead(onChain: number, at: string): Promise<bigint | undefined> {
    const cursor = await db
      .selectFrom('indexer_cursors')
      .select('block_number')
      .where('chain_id', '=', onChain)
      .where('contract', '=', at)
      .executeTakeFirst();
    return cursor ? BigInt(cursor.block_number) : undefined;
  }

  return {
    async createBatch(batch, leaves) {
      const { seq } = await db
        .insertInto('batches')
        .values({
          batch_id: batch.batchId,
          status: 'built',
          merkle_root: batch.merkleRoot,
          record_count: batch.recordCount,
          chain_id: chainId,
          contract,
        })
        .returning('seq')
        .executeTakeFirstOrThrow();
      const stamps = JSON.stringify(
        leaves.map((leaf) => ({
          record_id: leaf.recordId,
          leaf_index: leaf.leafIndex,
          leaf_hash: leaf.leafHash,
        })),
      );
      const mismatch = (details: Record<string, unknown>) =>
        new LedgerError('batch update touched an unexpected number of records', {
          batchId: batch.batchId,
          expected: leaves.length,
          ...details,
        });
      let inserted: number;
      try {
        // An unknown record has no row to join; one already batched breaks batch_leaves_record.
        const result = await sql`
          insert into batch_leaves (batch_seq, leaf_index, record_seq, leaf_hash)
          select ${String(seq)}::bigint, v.leaf_index, r.seq, v.leaf_hash
            from jsonb_to_recordset(${stamps}::jsonb) as v(record_id text, leaf_index integer, leaf_hash text)
            join records r on r.record_id = v.record_id`.execute(db);
        inserted = Number(result.numAffectedRows ?? -1);
      } catch (error) {
        if ((error as { code?: unknown }).code !== UNIQUE_VIOLATION) throw error;
        throw mismatch({ reason: (error as Error).message });
      }
      if (inserted !== leaves.length) throw mismatch({ updated: String(inserted) });
    },

    async recordSigned(batchId, signed, replaces) {
      let update = db
        .updateTable('batches')
        .set({
          status: 'sent',
          signer: signed.signer,
          nonce: signed.nonce,
          raw_tx: signed.rawTx,
          tx_hash: signed.txHash,
          sent_at: new Date(),
        })
        .where('batch_id', '=', batchId);
      update = replaces
        ? update.where('status', '=', 'sent').where('raw_tx', '=', replaces)
        : update.where('status', '=', 'built');
      const result = await update.executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async recordAnchoredElsewhere(batchId) {
      const result = await db
        .updateTable('batches')
        .set({ status: 'sent', sent_at: new Date() })
        .where('batch_id', '=', batchId)
        .where('status', '=', 'built')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async returnToBuilt(batchId) {
      const result = await db
        .updateTable('batches')
        .set({ status: 'built' })
        .where('batch_id', '=', batchId)
        .where('status', '=', 'sent')
        .where('raw_tx', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async markIncluded(anchorings, head) {
      if (anchorings.length === 0) return [];
      const values = sql.join(
        anchorings.map(
          (a) =>
            sql`(${a.batchId}::text, ${a.txHash}::text, ${a.blockNumber.toString()}::bigint, ${a.blockHash}::text, ${a.logIndex}::integer)`,
        ),
      );
      const finalLimit = finalAtOrBelow(head).toString();
      const { rows } = await sql<{ batch_id: string }>`
        with v(batch_id, tx_hash, block_number, block_hash, log_index) as (values ${values}),
        changed as (
          update batches as b
             set status = case when v.block_number <= ${finalLimit}::bigint then 'final' else 'included' end,
                 tx_hash = v.tx_hash, block_number = v.block_number, block_hash = v.block_hash,
                 log_index = v.log_index, included_at = now(),
                 final_at = case when v.block_number <= ${finalLimit}::bigint then now() else null end,
                 revision = b.revision + 1
            from v
           where b.batch_id = v.batch_id and b.chain_id = ${chainId} and b.contract = ${contract}
             and (b.status in ('built', 'sent')
                  or (b.status = 'included' and (b.block_hash is distinct from v.block_hash
                                                 or b.log_index is distinct from v.log_index)))
          returning b.batch_id, b.revision, b.status, b.tx_hash, b.block_number, b.block_hash, b.log_index
        )
        insert into receipt_notices (batch_id, revision, status, tx_hash, block_number, block_hash, log_index, confirmations)
        select batch_id, revision, status, tx_hash, block_number, block_hash, log_index,
               greatest(0, ${head.toString()}::bigint - block_number + 1)
          from changed
        returning batch_id`.execute(db);
      return rows.map((row) => row.batch_id);
    },

    async finalize(head) {
      const { rows } = await sql<{ batch_id: string }>`
        with changed as (
          update batches
             set status = 'final', final_at = now(), revision = revision + 1
           where chain_id = ${chainId} and contract = ${contract} and status = 'included'
             and block_number <= ${finalAtOrBelow(head).toString()}::bigint
          returning batch_id, revision, tx_hash, block_number, block_hash, log_index
        )
        insert into receipt_notices (batch_id, revision, status, tx_hash, block_number, block_hash, log_index, confirmations)
        select batch_id, revision, 'final', tx_hash, block_number, block_hash, log_index,
               greatest(0, ${head.toString()}::bigint - block_number + 1)
          from changed
        returning batch_id`.execute(db);
      return rows.map((row) => row.batch_id);
    },

    async revertAbove(ancestor) {
      const { rows } = await sql<{ batch_id: string; was: string }>`
        with old as (
          select batch_id, status, tx_hash, block_number, block_hash, log_index
            from batches
           where chain_id = ${chainId} and contract = ${contract}
             and status in ('included', 'final') and block_number > ${ancestor.toString()}::bigint
           for update
        ),
        changed as (
          update batches as b
             set status = 'sent', block_number = null, block_hash = null, log_index = null,
                 included_at = null, final_at = null, revision = b.revision + 1
            from old
           where b.batch_id = old.batch_id
          returning b.batch_id, b.revision, old.status as was, old.tx_hash, old.block_number,
                    old.block_hash, old.log_index
        ),
        noticed as (
          insert into receipt_notices (batch_id, revision, status, tx_hash, block_number, block_hash, log_index, confirmations)
          select batch_id, revision, 'reorged', tx_hash, block_number, block_hash, log_index, 0
            from changed
        )
        select batch_id, was from changed`.execute(db);
      return {
        batchIds: rows.map((row) => row.batch_id),
        deep: rows.filter((row) => row.was === 'final').map((row) => row.batch_id),
      };
    },

    async unsentNotices(limit) {
      return db
        .selectFrom('receipt_notices')
        .innerJoin('batches', 'batches.batch_id', 'receipt_notices.batch_id')
        .selectAll('receipt_notices')
        .where('receipt_notices.sent_at', 'is', null)
        .where('batches.chain_id', '=', chainId)
        .where('batches.contract', '=', contract)
        .orderBy('receipt_notices.id')
        .limit(limit)
        .execute();
    },

    async markNoticeSent(id) {
      await db
        .updateTable('receipt_notices')
        .set({ sent_at: sql`now()` })
        .where(sql<boolean>`id = ${String(id)}::bigint`)
        .where('sent_at', 'is', null)
        .execute();
    },

    async markNoticesSent(ids) {
      if (ids.length === 0) return;
      await db
        .updateTable('receipt_notices')
        .set({ sent_at: sql`now()` })
        .where(
          sql<boolean>`id = any(${`{${ids.map((id) => String(Number(id))).join(',')}}`}::bigint[])`,
        )
        .where('sent_at', 'is', null)
        .execute();
    },

    async noticeOf(notice) {
      const content = await batchContent(notice.batch_id);
      let records = deliverables.get(content);
      if (!records) {
        records = Object.freeze(
          content.rows.map((row) =>
            Object.freeze({
              relayId: row.relay_id,
              sessionId: row.session_id,
              record: Object.freeze(receiptRecordOf(row)),
            }),
          ),
        );
        deliverables.set(content, records);
      }
      return {
        anchor: {
          status: notice.status,
          confirmations: notice.confirmations,
          revision: notice.revision,
          batchId: notice.batch_id as Hex,
          merkleRoot: content.merkleRoot as Hex,
          recordCount: content.recordCount,
          chainId,
          contract: contract as Hex,
          txHash: notice.tx_hash as Hex,
          blockNumber: Number(notice.block_number),
          blockHash: notice.block_hash as Hex,
          logIndex: notice.log_index,
        },
        records,
      };
    },

    async sessionRecordsOf(batchId, sessionId) {
      let rows: BatchContent['rows'];
      try {
        ({ rows } = await batchContent(batchId));
      } catch (error) {
        if (error instanceof NoResultError) return []; // no such batch
        throw error;
      }
      return rows.filter((row) => row.session_id === sessionId).map(receiptRecordOf);
    },

    async lookupBatch(batchId, { from, limit }) {
      const batch = await db
        .selectFrom('batches')
        .select([
          'status',
          'revision',
          'merkle_root',
          'record_count',
          'chain_id',
          'contract',
          'tx_hash',
          'block_number',
          'block_hash',
          'log_index',
        ])
        .where('batch_id', '=', batchId)
        .executeTakeFirst();
      if (!batch) return { state: 'unknown' };
      if (batch.status === 'built' || batch.status === 'sent' || batch.block_number == null) {
        return { state: 'pending', status: batch.status === 'built' ? 'built' : 'sent' };
      }
      const blockNumber = BigInt(batch.block_number);
      const head = (await indexedHead(batch.chain_id, batch.contract)) ?? blockNumber;
      const { rows } = await batchContent(batchId);
      return {
        state: 'anchored',
        anchor: {
          status: batch.status,
          confirmations: confirmationsAt(head, blockNumber),
          revision: batch.revision,
          batchId: batchId as Hex,
          merkleRoot: batch.merkle_root as Hex,
          recordCount: batch.record_count,
          chainId: batch.chain_id,
          contract: batch.contract as Hex,
          txHash: (batch.tx_hash ?? '') as Hex,
          blockNumber: Number(blockNumber),
          blockHash: (batch.block_hash ?? '') as Hex,
          logIndex: batch.log_index ?? 0,
        },
        records: rows.slice(from, from + limit).map(receiptRecordOf),
        leafCount: rows.length,
      };
    },

    async lookupRecord(recordId) {
      const row = await db
        .selectFrom('records')
        .leftJoin('batch_leaves', 'batch_leaves.record_seq', 'records.seq')
        .leftJoin('batches', 'batches.seq', 'batch_leaves.batch_seq')
        .select([
          ...LEAF_RECORD_COLUMNS,
          'batches.batch_id',
          'batches.status',
          'batches.revision',
          'batches.merkle_root',
          'batches.record_count',
          'batches.tx_hash',
          'batches.block_number',
          'batches.block_hash',
          'batches.log_index',
        ])
        .where('records.record_id', '=', recordId)
        .executeTakeFirst();
      if (!row) return { state: 'unknown' };
      if (
        !row.batch_id ||
        (row.status !== 'included' && row.status !== 'final') ||
        row.block_number == null
      )
        return { state: 'pending', subject: row.subject };
      const blockNumber = BigInt(row.block_number);
      const head = (await indexedHead(chainId, contract)) ?? blockNumber;
      const { rows } = await batchContent(row.batch_id);
      const proof = rows[row.leaf_index ?? -1]?.proof ?? [];
      return {
        state: 'anchored',
        subject: row.subject,
        receipt: buildReceipt(
          { ...row, proof },
          {
            status: row.status,
            confirmations: confirmationsAt(head, blockNumber),
            revision: row.revision ?? 1,
            batchId: row.batch_id,
            merkleRoot: row.merkle_root ?? '',
            recordCount: row.record_count ?? 0,
            chainId,
            contract,
            txHash: row.tx_hash ?? '',
            blockNumber: Number(blockNumber),
            blockHash: row.block_hash ?? '',
            logIndex: row.log_index ?? 0,
          },
        ),
      };
    },
  };
}

/** A batch's records in leaf order, each with its proof (frozen, shared by every receipt). */
export interface BatchContent {
  merkleRoot: string;
  recordCount: number;
  rows: readonly BatchContentRow[];
}

export interface BatchContentRow extends RecordLeafRow {
  relay_id: string;
  session_id: string;
}

/** A stored record's leaf fields, as the tree takes them. */
export function leafFieldsOf(row: {
  record_id: string;
  topic: string;
  subject: string;
  content_hash: string;
  accepted_at: string | number;
}): LeafFields {
  return {
    recordId: row.record_id as Hex,
    topic: row.topic,
    subject: row.subject,
    contentHash: row.content_hash as Hex,
    acceptedAt: Number(row.accepted_at),
  };
}

/**
 * Reads a batch's records in leaf order and gives each its proof, from the tree rebuilt over
 * their leaf fields (proofs are not stored). The tree must give the batch's root and every
 * stored leaf hash, or this throws a LedgerError: a receipt is never made from rows that do
 * not add up to what was anchored (BatchRootMismatchError). A batch whose records are gone
 * has no rows.
 */
export async function readBatchContent(
  db: Kysely<Database>,
  batchId: string,
): Promise<BatchContent> {
  const batch = await db
    .selectFrom('batches')
    .select(['merkle_root', 'record_count'])
    .where('batch_id', '=', batchId)
    .executeTakeFirstOrThrow();
  // From the batch by its id, as the planner best sees it: a literal batch_seq with a
  // thousand-odd rows makes it plan a parallel bitmap scan (worker start-up ≫ the read).
  const stored = await db
    .selectFrom('batches')
    .innerJoin('batch_leaves', 'batch_leaves.batch_seq', 'batches.seq')
    .innerJoin('records', 'records.seq', 'batch_leaves.record_seq')
    .select(LEAF_RECORD_COLUMNS)
    .where('batches.batch_id', '=', batchId)
    .orderBy('batch_leaves.leaf_index')
    .execute();
  const rows: BatchContentRow[] = [];
  if (stored.length > 0) {
    const tree = await buildMerkleTree(stored.map(leafFieldsOf));
    const misplaced = stored.findIndex(
      (row, i) => row.leaf_index !== i || row.leaf_hash !== tree.leafHashes[i],
    );
    if (
      tree.root !== batch.merkle_root ||
      misplaced !== -1 ||
      stored.length !== batch.record_count
    ) {
      throw new BatchRootMismatchError('stored records do not rebuild the batch root', {
        batchId,
        expected: batch.merkle_root,
        rebuilt: tree.root,
        records: stored.length,
        recordCount: batch.record_count,
      });
    }
    for (const [i, row] of stored.entries()) {
      rows.push(Object.freeze({ ...row, proof: Object.freeze(tree.proof(i)) }));
    }
  }
  return Object.freeze({
    merkleRoot: batch.merkle_root,
    recordCount: batch.record_count,
    rows: Object.freeze(rows),
  });
}

interface RecordLeafRow {
  record_id: string;
  topic: string;
  subject: string;
  content_hash: string;
  accepted_at: string | number;
  leaf_index: number | null;
  leaf_hash: string | null;
  proof: readonly Hex[];
}

interface AnchoringFields {
  status: ReceiptStatus;
  confirmations: number;
  revision: number;
  batchId: string;
  merkleRoot: string;
  recordCount: number;
  chainId: number;
  contract: string;
  txHash: string;
  blockNumber: number;
  blockHash: string;
  logIndex: number;
}

type Hex = `0x${string}`;

/** SQLSTATE unique_violation. */
const UNIQUE_VIOLATION = '23505';

/** A stored record's half of its receipts. */
function receiptRecordOf(row: RecordLeafRow): ReceiptRecord {
  return {
    recordId: row.record_id as Hex,
    topic: row.topic,
    subject: row.subject,
    contentHash: row.content_hash as Hex,
    acceptedAt: Number(row.accepted_at),
    leafHash: (row.leaf_hash ?? '') as Hex,
    leafIndex: row.leaf_index ?? -1,
    // The cached proof arrays are frozen and shared; ReceiptRecord's type does not say readonly.
    proof: row.proof as Hex[],
  };
}

function buildReceipt(row: RecordLeafRow, anchoring: AnchoringFields): Receipt {
  return receiptOf(
    {
      ...anchoring,
      batchId: anchoring.batchId as Hex,
      merkleRoot: anchoring.merkleRoot as Hex,
      contract: anchoring.contract as Hex,
      txHash: anchoring.txHash as Hex,
      blockHash: anchoring.blockHash as Hex,
    },
    receiptRecordOf(row),
  );
}

/**
 * The batcher's queue: records in no batch, oldest (lowest `seq`) first.
 *
 * There is no index of unbatched records (one maintained by updating each record when it is
 * batched would write every record twice: migration 0010). They are found by an anti-join of
 * `records` (`records_seq`) against `batch_leaves` (`batch_leaves_record`) over the `seq`
 * above the frontier (`batch_frontier.frontier_seq`), below which every record is batched. The
 * frontier follows the batches closely, so that range holds the waiting records and few more.
 *
 * A record may become visible after records with a higher `seq` were batched (its insert
 * committed later), so the frontier may not simply follow the batched `seq`: it passes a `seq`
 * only once no transaction can still add a record at or below it. Each move records a horizon
 * (the sequence's last value, then the moving transaction's own xid, assigned after it); the
 * next move may advance the frontier up to that value once every transaction older than that
 * xid has ended (`pg_snapshot_xmin`), since the trigger `records_assign_xid` gives an inserting
 * transaction its xid before it draws a `seq`. Moves happen under the batch cut lock.
 */

/** Key of the transaction-scoped advisory lock held by batch cuts and frontier moves. */
const BATCH_CUT_LOCK = 0x5ab47c7;

/** A record waiting for a batch, as a cut takes it. */
export interface UnbatchedRecord {
  record_id: string;
  topic: string;
  subject: string;
  content_hash: string;
  accepted_at: string | number;
  /** How long ago it was stored (ms, by the database's clock). */
  age_ms: string | number;
}

export interface WaitingRecords {
  /** Records in no batch, counted up to `limit`. */
  waiting: number;
  /** How long ago the oldest of them was stored (ms, by the database's clock; 0: none). */
  oldestAgeMs: number;
}

/**
 * How many records wait for a batch (up to `limit`) and how long the oldest has waited. Moves
 * the batch frontier first when no cut holds the lock (it then writes: call it in a
 * transaction of its own, before anything else in it).
 */
export async function readWaitingRecords(
  trx: Transaction<Database>,
  { limit }: { limit: number },
): Promise<WaitingRecords> {
  const frontier = await moveBatchFrontier(trx, 'try');
  const { rows } = await sql<{ waiting: string | number; oldest_age_ms: string | number | null }>`
    with waiting as (
      select r.seq, r.stored_at from records r
       where r.seq > ${frontier}::bigint
         and not exists (select 1 from batch_leaves l
                          where l.record_seq = r.seq and l.record_seq > ${frontier}::bigint)
       order by r.seq limit ${limit})
    select count(*) as waiting,
           (select extract(epoch from (clock_timestamp() - stored_at)) * 1000
              from waiting order by seq limit 1) as oldest_age_ms
      from waiting`.execute(trx);
  return {
    waiting: Number(rows[0]?.waiting ?? 0),
    oldestAgeMs: Number(rows[0]?.oldest_age_ms ?? 0),
  };
}

/**
 * The oldest records in no batch, in `seq` order, at most `limit`: what a cut puts in its
 * batch (`createBatch`, in the same transaction). Takes the batch cut lock (a concurrent cut
 * waits for this transaction, then sees its leaves) and moves the batch frontier: call it first
 * in the cut's transaction.
 */
export async function takeUnbatchedRecords(
  trx: Transaction<Database>,
  { limit }: { limit: number },
): Promise<UnbatchedRecord[]> {
  const frontier = await moveBatchFrontier(trx, 'wait');
  const { rows } = await sql<UnbatchedRecord>`
    select r.record_id, r.topic, r.subject, r.content_hash, r.accepted_at,
           extract(epoch from (clock_timestamp() - r.stored_at)) * 1000 as age_ms
      from records r
     where r.seq > ${frontier}::bigint
       and not exists (select 1 from batch_leaves l
                        where l.record_seq = r.seq and l.record_seq > ${frontier}::bigint)
     order by r.seq limit ${limit}`.execute(trx);
  return rows;
}

/**
 * Takes the batch cut lock (`wait`, or `try`: without it the frontier is only read) and, when
 * the last horizon has settled, moves the frontier up to it and records a new one. Returns the
 * frontier (as text: a bigint). Must run before the transaction writes anything: the new
 * horizon's xid must be assigned after its `seq` was read.
 */
async function moveBatchFrontier(
  trx: Transaction<Database>,
  lock: 'wait' | 'try',
): Promise<string> {
  const { rows: locked } = await sql<{ locked: boolean }>`
    select ${lock === 'wait' ? sql`pg_advisory_xact_lock(${BATCH_CUT_LOCK}) is not null` : sql`pg_try_advisory_xact_lock(${BATCH_CUT_LOCK})`} as locked`.execute(
    trx,
  );
  const { rows } = await sql<{
    frontier_seq: string | number;
    horizon_seq: string | number;
    settled: boolean;
    last_seq: string | number;
    fresh: boolean;
  }>`
    select f.frontier_seq, f.horizon_seq,
           pg_snapshot_xmin(pg_current_snapshot()) >= f.horizon_xid as settled,
           coalesce(pg_sequence_last_value(pg_get_serial_sequence('records', 'seq')::regclass), 0) as last_seq,
           pg_current_xact_id_if_assigned() is null as fresh
      from batch_frontier f`.execute(trx);
  const state = rows[0];
  if (!state) throw new LedgerError('batch_frontier has no row (migration 0010 not run?)');
  const frontier = String(state.frontier_seq);
  if (!locked[0]?.locked || !state.settled) return frontier;
  if (!state.fresh) {
    throw new LedgerError('the batch frontier must move before its transaction writes');
  }
  const horizon = String(state.horizon_seq);
  // Up to the horizon, and not past the first record (visible now) that is in no batch.
  const { rows: moved } = await sql<{ frontier_seq: string | number }>`
    update batch_frontier
       set frontier_seq = greatest(frontier_seq, coalesce(
             (select r.seq - 1 from records r
               where r.seq > ${frontier}::bigint and r.seq <= ${horizon}::bigint
                 and not exists (select 1 from batch_leaves l
                                  where l.record_seq = r.seq and l.record_seq > ${frontier}::bigint)
               order by r.seq limit 1),
             ${horizon}::bigint)),
           horizon_seq = ${String(state.last_seq)}::bigint,
           horizon_xid = pg_current_xact_id()
    returning frontier_seq`.execute(trx);
  return String(moved[0]?.frontier_seq ?? frontier);
}

/** A batched record's columns, as receipts and batch lookups read them. */
const LEAF_RECORD_COLUMNS = [
  'records.record_id',
  'records.topic',
  'records.subject',
  'records.content_hash',
  'records.accepted_at',
  'batch_leaves.leaf_index',
  'batch_leaves.leaf_hash',
  'records.relay_id',
  'records.session_id',
] as const;

/** A ledger invariant did not hold (a bug, never bad input). */
export class LedgerError extends ServiceError {
  override name = 'LedgerError';
}

/**
 * A batch's stored records do not rebuild its root (or their stored leaf hashes): rows
 * changed after the batch was built. No receipt can be made from them; retrying won't help.
 */
export class BatchRootMismatchError extends LedgerError {
  override name = 'BatchRootMismatchError';
}

export type { BatchRow };
