import { type BatchLedger, createBatchLedger, type Database } from '@streamanchor/db';
import type { Kysely } from 'kysely';

/**
 * The finality depth the writer's ledger is scoped with. The writer's calls (createBatch,
 * recordSigned, recordAnchoredElsewhere, returnToBuilt) never read it: finality is the
 * indexer's to decide (markIncluded, finalize). The writer only reads `final` from the rows.
 */
const NOT_READ_BY_THE_WRITER = 1;

/** The batch ledger as the writer uses it: the one module that writes batch state. */
export function writerLedger(
  db: Kysely<Database>,
  scope: { chainId: number; contract: string },
): BatchLedger {
  return createBatchLedger(db, {
    chainId: scope.chainId,
    contract: scope.contract.toLowerCase(),
    finalityDepth: NOT_READ_BY_THE_WRITER,
  });
}
