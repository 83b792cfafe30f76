import { type Database, pruneRecordPayloads } from '@streamanchor/db';
import { createLoop, type Logger, type Loop } from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';

const DAY_MS = 86_400_000;
/** How often the pruner looks for batches that passed the retention (ms). */
export const PRUNE_INTERVAL_MS = 60_000;
/** Batches pruned per step (each is one transaction: an UPDATE of its records). */
const BATCHES_PER_STEP = 16;
/** Pause between steps while a backlog is pruned, so that ingest keeps the database first. */
const BACKLOG_PAUSE_MS = 100;

export interface PayloadPrunerDeps {
  db: Kysely<Database>;
  logger: Logger;
  chainId: number;
  /** Lowercase contract address, as stored in batches.contract. */
  contract: string;
  /** PAYLOAD_RETENTION_DAYS (> 0: the pruner is not created for 0, keep forever). */
  retentionDays: number;
  intervalMs?: number;
  /** The clock (tests pass a fake one). */
  now?: () => number;
}

/**
 * Payload retention (PAYLOAD_RETENTION_DAYS): every PRUNE_INTERVAL_MS, sets `records.payload`
 * to NULL for the records of this writer's final batches built more than the retention ago,
 * oldest first (`pruneRecordPayloads`: leaf fields stay, so roots, proofs and receipts do not
 * change; the audit log's records are kept). History then serves those records with
 * `payload: null`. A backlog (retention just turned on) is pruned BATCHES_PER_STEP batches at
 * a time, BACKLOG_PAUSE_MS apart. A batch built before the cutoff that is still not final
 * holds the rest back (pruning goes in batch order): warned about once per batch.
 */
export function createPayloadPruner({
  db,
  logger: parentLogger,
  chainId,
  contract,
  retentionDays,
  intervalMs = PRUNE_INTERVAL_MS,
  now = Date.now,
}: PayloadPrunerDeps): Loop {
  if (!Number.isInteger(retentionDays) || retentionDays < 1) {
    throw new RangeError(`retentionDays must be a positive integer, not ${retentionDays}`);
  }
  const logger = parentLogger.child({ subsystem: 'payload-retention' });
  let warnedAbout: string | undefined;
  return createLoop('payload-retention', logger, intervalMs, async () => {
    const before = new Date(now() - retentionDays * DAY_MS);
    const result = await pruneRecordPayloads(db, {
      chainId,
      contract,
      before,
      maxBatches: BATCHES_PER_STEP,
    });
    if (result.batches > 0) {
      logger.info(
        { batches: result.batches, records: result.records, before: before.toISOString() },
        'payloads pruned',
      );
    }
    if (result.blockedBy && result.blockedBy.batchId !== warnedAbout) {
      warnedAbout = result.blockedBy.batchId;
      logger.warn(
        { ...result.blockedBy, retentionDays },
        'payload pruning waits for a batch older than the retention that is not final',
      );
    }
    return result.more ? BACKLOG_PAUSE_MS : undefined;
  });
}
