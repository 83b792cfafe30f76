import { randomBytes } from 'node:crypto';
import { type Database, leafFieldsOf } from '@streamanchor/db';
import type { Bytes32 } from '@streamanchor/protocol';
import { type Kysely, sql } from 'kysely';
import { writerLedger } from '../ledger';
import { buildBatchTree } from './tree';

export interface CutOptions {
  maxRecords: number;
  maxAgeMs: number;
  chainId: number;
  /** Lowercase contract address. */
  contract: string;
}

export interface BuiltBatch {
  batchId: Bytes32;
  merkleRoot: Bytes32;
  recordCount: number;
  /** Time spent building the tree. */
  treeMs: number;
}

export function randomBatchId(): Bytes32 {
  return `0x${randomBytes(32).toString('hex')}`;
}

export interface BatchState {
  /**
   * A batch is due: at least `maxRecords` records wait, or the oldest waiting one was stored
   * `maxAgeMs` ago (by the database's clock) — and no batch of this chain and contract is
   * still `built` (waiting for the submitter to sign it). While one is, the records keep
   * waiting and go into the next batch together: batches grow with the load (up to
   * `maxRecords`) instead of queueing up behind the submitter, so the number of anchor
   * transactions, and the gas per record, falls as traffic rises.
   */
  due: boolean;
  /** Records waiting for a batch (counted up to maxRecords). */
  waiting: number;
  /** Age of the oldest waiting record by the database's clock (0 when none waits). */
  oldestAgeMs: number;
  /** A batch of this chain and contract is still `built` (not signed yet). */
  unsigned: boolean;
}

/**
 * Whether a batch is due, and what that follows from (so the batcher knows when to look
 * again). A cheap read, in a short transaction of its own only to set its scan plan (see
 * `scanUnbatchedByIndex`).
 */
export async function batchState(db: Kysely<Database>, options: CutOptions): Promise<BatchState> {
  const result = await db.transaction().execute(async (trx) => {
    await scanUnbatchedByIndex(trx);
    return sql<{
      waiting: number | string;
      oldest_age_ms: number | string | null;
      unsigned: boolean;
    }>`
    select
      (select count(*) from (select 1 from records where batch_id is null order by seq
                              limit ${options.maxRecords}) as w) as waiting,
      (select extract(epoch from (clock_timestamp() - stored_at)) * 1000
         from records where batch_id is null order by seq limit 1) as oldest_age_ms,
      exists (select 1 from batches where status = 'built' and chain_id = ${options.chainId}
                and contract = ${options.contract}) as unsigned`.execute(trx);
  });
  const row = result.rows[0];
  const waiting = Number(row?.waiting ?? 0);
  const oldestAgeMs = Number(row?.oldest_age_ms ?? 0);
  const unsigned = row?.unsigned === true;
  const due =
    waiting > 0 && !unsigned && (waiting >= options.maxRecords || oldestAgeMs >= options.maxAgeMs);
  return { due, waiting, oldestAgeMs, unsigned };
}

/**
 * Cuts one batch in one transaction: locks the oldest unbatched records (`for update skip
 * locked`, so concurrent batchers never take the same record), builds their tree, inserts
 * the batch ('built') and stamps each record with batch_id, leaf_index and leaf_hash (both
 * through the ledger, the one writer of batch state; proofs are derived when read).
 * Returns undefined when no batch is due.
 */
export async function cutBatch(
  db: Kysely<Database>,
  options: CutOptions,
): Promise<BuiltBatch | undefined> {
  return db.transaction().execute(async (trx) => {
    await scanUnbatchedByIndex(trx);
    const rows = await trx
      .selectFrom('records')
      .select([
        'record_id',
        'topic',
        'subject',
        'content_hash',
        'accepted_at',
        sql<number | string>`extract(epoch from (clock_timestamp() - stored_at)) * 1000`.as(
          'age_ms',
        ),
      ])
      .where('batch_id', 'is', null)
      .orderBy('seq')
      .limit(options.maxRecords)
      .forUpdate()
      .skipLocked()
      .execute();
    if (rows.length === 0) return undefined;
    const oldestAgeMs = Number(rows[0]!.age_ms);
    if (rows.length < options.maxRecords && oldestAgeMs < options.maxAgeMs) return undefined;

    const started = performance.now();
    const { merkleRoot, leafHashes } = await buildBatchTree(rows.map(leafFieldsOf));
    const treeMs = performance.now() - started;

    const batchId = randomBatchId();
    // The ledger writes the 'built' batch and stamps its records, inside this transaction.
    await writerLedger(trx, options).createBatch(
      { batchId, merkleRoot, recordCount: rows.length },
      rows.map((row, i) => ({
        recordId: row.record_id,
        leafIndex: i,
        leafHash: leafHashes[i]!,
      })),
    );
    return { batchId, merkleRoot, recordCount: rows.length, treeMs };
  });
}

/**
 * Makes the rest of the transaction read the unbatched records with plain index scans, not
 * bitmap scans. Every batched record leaves a dead entry under `batch_id is null` (in
 * records_unbatched and records_batch) until VACUUM removes it; a bitmap scan visits the
 * heap for every such entry on every query, so each check and cut grew with the records
 * batched since the last vacuum (14 ms per query at 300k dead entries). A plain index scan
 * marks an entry dead the first time it finds its row dead to everyone, and later scans
 * skip it without a heap visit (about 1 ms at 300k). The planner cannot see that
 * difference, so it is told.
 */
async function scanUnbatchedByIndex(trx: Kysely<Database>): Promise<void> {
  await sql`set local enable_bitmapscan = off`.execute(trx);
}
