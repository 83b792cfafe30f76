import { AUDIT_TOPIC } from '@streamanchor/protocol';
import { type Kysely, sql } from 'kysely';
import type { BatchStatus, Database } from './schema';

export interface PrunePayloadsOptions {
  /** The batches of this chain and contract (the writer's). */
  chainId: number;
  /** Lowercase contract address, as stored in batches.contract. */
  contract: string;
  /** Only batches built before this time are pruned (now − the retention). */
  before: Date;
  /** Most batches pruned in this call (default 16): each is one transaction. */
  maxBatches?: number;
}

export interface PrunePayloadsResult {
  /** Batches whose records were pruned in this call. */
  batches: number;
  /** Records whose payload this call set to NULL. */
  records: number;
  /** True when maxBatches batches were pruned: more may be ready, call again. */
  more: boolean;
  /**
   * The batch the walk stopped at because it is not final yet although built before `before`
   * (nothing after it is pruned until it is final); undefined when the walk stopped at a
   * batch built after `before`, or at the newest batch.
   */
  blockedBy?: { batchId: string; status: BatchStatus };
}

/**
 * Payload retention: sets `records.payload` to NULL for the records of final batches built
 * before `before`, oldest batch first, keeping every leaf field. The batch's tree, root and
 * proofs are rebuilt from the leaf fields (content_hash, not payload: `readBatchContent`), so
 * receipts and proofs stay valid; history then serves those records with `payload: null`.
 *
 * Walks batches in `seq` order from the chain's cursor (`payload_prune_cursors`) and stops at
 * the first batch that is not final or not old enough, so the cursor only ever passes batches
 * that were pruned, and a restart goes on where the last call stopped. Each batch is pruned
 * and the cursor moved in one transaction. Records of the audit log (topic `_audit`) are kept:
 * `pnpm run audit:verify` checks each anchored head's payload. Idempotent, and safe to run
 * from two processes at once (the cursor only moves forward).
 */
export async function pruneRecordPayloads(
  db: Kysely<Database>,
  { chainId, contract, before, maxBatches = 16 }: PrunePayloadsOptions,
): Promise<PrunePayloadsResult> {
  if (!Number.isSafeInteger(maxBatches) || maxBatches < 1) {
    throw new RangeError(`maxBatches must be a positive integer, not ${maxBatches}`);
  }
  const cursor = await db
    .selectFrom('payload_prune_cursors')
    .select('batch_seq')
    .where('chain_id', '=', chainId)
    .where('contract', '=', contract)
    .executeTakeFirst();
  const batches = await db
    .selectFrom('batches')
    .select([
      'batch_id',
      'seq',
      'status',
      sql<boolean>`created_at < ${before.toISOString()}::timestamptz`.as('old_enough'),
    ])
    .where('chain_id', '=', chainId)
    .where('contract', '=', contract)
    .where(sql<boolean>`seq > ${String(cursor?.batch_seq ?? 0)}::bigint`)
    .orderBy('seq')
    .limit(maxBatches)
    .execute();

  const result: PrunePayloadsResult = { batches: 0, records: 0, more: false };
  for (const batch of batches) {
    if (!batch.old_enough) return result;
    if (batch.status !== 'final') {
      result.blockedBy = { batchId: batch.batch_id, status: batch.status };
      return result;
    }
    const pruned = await db.transaction().execute(async (trx) => {
      const update = await trx
        .updateTable('records')
        .from('batch_leaves')
        .set({ payload: null })
        .whereRef('batch_leaves.record_seq', '=', 'records.seq')
        .where(sql<boolean>`batch_leaves.batch_seq = ${String(batch.seq)}::bigint`)
        .where('records.payload', 'is not', null)
        .where('records.topic', '<>', AUDIT_TOPIC)
        .executeTakeFirst();
      await trx
        .insertInto('payload_prune_cursors')
        .values({ chain_id: chainId, contract, batch_seq: String(batch.seq) })
        .onConflict((conflict) =>
          conflict.columns(['chain_id', 'contract']).doUpdateSet({
            batch_seq: sql`greatest(payload_prune_cursors.batch_seq, excluded.batch_seq)`,
            updated_at: sql`now()`,
          }),
        )
        .execute();
      return Number(update.numUpdatedRows);
    });
    result.batches += 1;
    result.records += pruned;
  }
  result.more = batches.length === maxBatches;
  return result;
}
