import type { Database } from '@streamanchor/db';
import type { Logger } from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';
import { AGAIN, createLoop, type Loop } from '../loop';
import { type BuiltBatch, batchDue, type CutOptions, cutBatch } from './cut';

export interface BatcherDeps {
  db: Kysely<Database>;
  logger: Logger;
  options: CutOptions;
  /** Poll interval (default 100 ms); `wake()` runs a check at once. */
  intervalMs?: number;
  onBuilt?: (batch: BuiltBatch) => void;
}

/** Cuts batches while they are due: by size (BATCH_MAX_RECORDS) or by age (BATCH_MAX_AGE_MS). */
export function createBatcher(deps: BatcherDeps): Loop {
  const logger = deps.logger.child({ subsystem: 'batcher' });
  return createLoop('batcher', logger, deps.intervalMs ?? 100, async () => {
    if (!(await batchDue(deps.db, deps.options))) return;
    const batch = await cutBatch(deps.db, deps.options);
    if (!batch) return;
    logger.info(
      {
        batchId: batch.batchId,
        merkleRoot: batch.merkleRoot,
        recordCount: batch.recordCount,
        treeMs: Math.round(batch.treeMs),
      },
      'batch built',
    );
    deps.onBuilt?.(batch);
    return AGAIN;
  });
}
