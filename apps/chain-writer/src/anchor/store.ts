import type { BatchRow, Database } from '@streamanchor/db';
import type { Kysely } from 'kysely';
import { type Address, type Hex, keccak256 } from 'viem';
import type { OpenBatch, OpenStatus } from './decide';

/**
 * The submitter's reads of batch state (writes go through the ledger only): the batches
 * whose anchoring is not final yet, and the nonces the signer's rows hold.
 */
export type AnchorStore = {
  /** `sent` and `included` batches of ours (or anchored by others: no signer), oldest first. */
  inFlight(): Promise<OpenBatch[]>;
  /** The oldest `built` batches. */
  built(limit: number): Promise<OpenBatch[]>;
  /**
   * Every nonce a batch row of this signer holds, whatever its status; from `atLeast` on
   * when given (nonces below the mined count are used whatever the rows say: callers pass
   * it so the read does not grow with the signer's whole history).
   */
  heldNonces(atLeast?: number): Promise<Set<number>>;
};

export function createAnchorStore(
  db: Kysely<Database>,
  scope: { chainId: number; contract: Address; signer: Address },
): AnchorStore {
  const mine = () =>
    db
      .selectFrom('batches')
      .selectAll()
      .where('chain_id', '=', scope.chainId)
      .where('contract', '=', scope.contract)
      .orderBy('seq');
  return {
    async inFlight() {
      const rows = await mine()
        .where('status', 'in', ['sent', 'included'])
        .where((eb) => eb.or([eb('signer', '=', scope.signer), eb('signer', 'is', null)]))
        .execute();
      return rows.map(toOpenBatch);
    },
    async built(limit) {
      const rows = await mine().where('status', '=', 'built').limit(limit).execute();
      return rows.map(toOpenBatch);
    },
    async heldNonces(atLeast) {
      let query = db
        .selectFrom('batches')
        .select('nonce')
        .where('chain_id', '=', scope.chainId)
        .where('signer', '=', scope.signer)
        .where('nonce', 'is not', null);
      if (atLeast !== undefined && atLeast > 0) query = query.where('nonce', '>=', atLeast);
      const rows = await query.execute();
      return new Set(rows.map((row) => Number(row.nonce)));
    },
  };
}

/**
 * A row as `decide` sees it. The tx is followed by its stored bytes: after a reorg the
 * indexer may have left the hash of another signature of the same nonce in tx_hash.
 */
export function toOpenBatch(row: BatchRow): OpenBatch {
  const batch: OpenBatch = {
    batchId: row.batch_id as Hex,
    // Only non-final rows are loaded (inFlight, built).
    status: row.status as OpenStatus,
    merkleRoot: row.merkle_root as Hex,
    recordCount: row.record_count,
  };
  if (row.raw_tx && row.nonce != null) {
    batch.tx = {
      nonce: Number(row.nonce),
      rawTx: row.raw_tx as Hex,
      txHash: keccak256(row.raw_tx as Hex),
    };
  }
  return batch;
}
