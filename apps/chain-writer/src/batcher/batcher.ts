import type { Database } from '@streamanchor/db';
import type { Logger } from '@streamanchor/service-kit';
import { AGAIN, createLoop, type Loop } from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';
import { type BuiltBatch, batchState, type CutOptions, cutBatch } from './cut';

export interface BatcherDeps {
  db: Kysely<Database>;
  logger: Logger;
  options: CutOptions;
  /** Poll interval (default 100 ms); `wake()` runs a check at once. */
  intervalMs?: number;
  onBuilt?: (batch: BuiltBatch) => void;
}

export interface Batcher extends Loop {
  /**
   * The ingest stored `count` new records. Wakes the batcher only when that can make a batch
   * due sooner than the check it already has planned: when nothing was waiting at its last
   * check (it then plans the age cut), or when enough records arrived for a size cut.
   */
  recordsStored(count: number): void;
}

/**
 * Cuts batches while they are due: by size (BATCH_MAX_RECORDS) or by age (BATCH_MAX_AGE_MS).
 * Each check knows the oldest waiting record's age, so the next one is planned for the moment
 * it turns BATCH_MAX_AGE_MS old rather than polled for; under load that is one check per
 * batch instead of one per stored job.
 */
export function createBatcher(deps: BatcherDeps): Batcher {
  const logger = deps.logger.child({ subsystem: 'batcher' });
  const { maxAgeMs, maxRecords } = deps.options;
  /** Whether the last check saw records waiting (so an age check is already planned). */
  let waitingSeen = false;
  /** New records stored since the last check (an upper bound on the newly waiting ones). */
  let storedSinceCheck = 0;
  let waitingAtCheck = 0;

  const loop = createLoop('batcher', logger, deps.intervalMs ?? 100, async () => {
    storedSinceCheck = 0;
    const state = await batchState(deps.db, deps.options);
    waitingSeen = state.waiting > 0;
    waitingAtCheck = state.waiting;
    if (!state.due) {
      // While a built batch waits for its signature, poll (the submitter signs it soon).
      if (!state.waiting || state.unsigned) return undefined;
      return Math.max(1, Math.ceil(maxAgeMs - state.oldestAgeMs));
    }
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

  return Object.assign(loop, {
    recordsStored(count: number) {
      storedSinceCheck += count;
      if (!waitingSeen || waitingAtCheck + storedSinceCheck >= maxRecords) {
        waitingSeen = true;
        loop.wake();
      }
    },
  });
}
