import { randomBytes } from 'node:crypto';
import {
  type Database,
  leafFieldsOf,
  readWaitingRecords,
  takeUnbatchedRecords,
} from '@streamanchor/db';
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
 * again). A cheap read, in a short transaction of its own: it also moves the batcher's queue
 * forward (`readWaitingRecords`).
 */
export async function batchState(db: Kysely<Database>, options: CutOptions): Promise<BatchState> {
  const { waiting, oldestAgeMs, unsigned } = await db.transaction().execute(async (trx) => {
    const state = await readWaitingRecords(trx, { limit: options.maxRecords });
    const { rows } = await sql<{ unsigned: boolean }>`
      select exists (select 1 from batches where status = 'built' and chain_id = ${options.chainId}
                       and contract = ${options.contract}) as unsigned`.execute(trx);
    return { ...state, unsigned: rows[0]?.unsigned === true };
  });
  const due =
    waiting > 0 && !unsigned && (waiting >= options.maxRecords || oldestAgeMs >= options.maxAgeMs);
  return { due, waiting, oldestAgeMs, unsigned };
}

/**
 * Cuts one batch in one transaction: takes the oldest unbatched records under the batch cut
 * lock (`takeUnbatchedRecords`: concurrent batchers cut one after the other, never taking the
 * same record), builds their tree, and inserts the batch ('built') with its leaves: batch_id,
 * leaf_index and leaf_hash of each record (both through the ledger, the one writer of batch
 * state; proofs are derived when read). Returns undefined when no batch is due.
 */
export async function cutBatch(
  db: Kysely<Database>,
  options: CutOptions,
): Promise<BuiltBatch | undefined> {
  return db.transaction().execute(async (trx) => {
    const rows = await takeUnbatchedRecords(trx, { limit: options.maxRecords });
    if (rows.length === 0) return undefined;
    const oldestAgeMs = Number(rows[0]!.age_ms);
    if (rows.length < options.maxRecords && oldestAgeMs < options.maxAgeMs) return undefined;

    const started = performance.now();
    const { merkleRoot, leafHashes } = await buildBatchTree(rows.map(leafFieldsOf));
    const treeMs = performance.now() - started;

    const batchId = randomBatchId();
    // The ledger writes the 'built' batch and its leaves, inside this transaction.
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
