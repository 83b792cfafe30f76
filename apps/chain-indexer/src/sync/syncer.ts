import type { Database } from '@streamanchor/db';
import type { Logger } from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';
import { BlockNotFoundError, type PublicClient } from 'viem';
import type { Config } from '../config';
import { BlockUnavailableError } from '../errors';
import { createLogReader } from './logs';
import {
  type ApplyResult,
  applyRange,
  type Cursor,
  type CursorKey,
  eventBlocks,
  readCursor,
  rewind,
} from './store';

export interface SyncerDeps {
  config: Pick<
    Config,
    'chainId' | 'contract' | 'deploymentBlock' | 'confirmations' | 'maxLogRange'
  >;
  logger: Logger;
  db: Kysely<Database>;
  client: PublicClient;
}

export interface SyncStep {
  /** Highest block the indexer may read now (head − CONFIRMATIONS). */
  target: bigint;
  /** The cursor after this step. */
  cursor: bigint;
  /** True when the cursor reached `target`: wait for new blocks before the next step. */
  caughtUp: boolean;
  events: number;
  result?: ApplyResult;
  /** Set when the cursor's block was no longer on the chain and the indexer went back. */
  rewound?: { to: bigint; batchIds: string[] };
}

/**
 * Follows BatchAnchored logs from DEPLOYMENT_BLOCK, one block range per `step()`.
 * Single active instance per database (the cursor is compare-and-set, so a second one
 * fails instead of corrupting).
 */
export function createSyncer({ config, logger, db, client }: SyncerDeps) {
  const key: CursorKey = { chainId: config.chainId, contract: config.contract };
  const reader = createLogReader({
    client,
    address: config.contract,
    maxRange: config.maxLogRange,
    logger,
  });
  const initial: Cursor = { blockNumber: BigInt(config.deploymentBlock) - 1n, blockHash: null };

  async function blockHashAt(blockNumber: bigint): Promise<`0x${string}` | undefined> {
    try {
      const block = await client.getBlock({ blockNumber, includeTransactions: false });
      return block.hash?.toLowerCase() as `0x${string}` | undefined;
    } catch (error) {
      if (error instanceof BlockNotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * The cursor's block is gone from the chain: go back to the newest stored event whose
   * block is still on the chain (every block below a block still on the chain is too),
   * or to the start when none is, and read forward again from there.
   */
  async function recover(
    cursor: Cursor,
    head: bigint,
  ): Promise<{ target: Cursor; batchIds: string[] }> {
    const stored = await eventBlocks(db, key, cursor.blockNumber);
    const onChain = async (index: number): Promise<boolean> => {
      const row = stored[index]!;
      if (row.blockNumber > head) return false;
      return (await blockHashAt(row.blockNumber)) === row.blockHash.toLowerCase();
    };
    // stored is newest first: a run of dropped blocks, then blocks still on the chain.
    let lo = 0;
    let hi = stored.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (await onChain(mid)) hi = mid;
      else lo = mid + 1;
    }
    const keep = stored[lo];
    const target: Cursor = keep
      ? { blockNumber: keep.blockNumber, blockHash: keep.blockHash.toLowerCase() }
      : initial;
    const reset = await rewind(db, key, cursor, target);
    logger.warn(
      {
        from: cursor.blockNumber.toString(),
        to: target.blockNumber.toString(),
        droppedHash: cursor.blockHash,
        batchesBackToSent: reset,
      },
      'CHAIN REORG: the cursor block is no longer on the chain; rewound and re-reading',
    );
    return { target, batchIds: reset };
  }

  return {
    key,
    reader,

    async step(): Promise<SyncStep> {
      let cursor = (await readCursor(db, key)) ?? initial;
      const head = await client.getBlockNumber({ cacheTime: 0 });
      let rewound: SyncStep['rewound'];

      if (cursor.blockHash !== null) {
        const hash = cursor.blockNumber > head ? undefined : await blockHashAt(cursor.blockNumber);
        if (hash === undefined && cursor.blockNumber <= head)
          throw new BlockUnavailableError(cursor.blockNumber);
        if (hash !== cursor.blockHash.toLowerCase()) {
          const recovered = await recover(cursor, head);
          cursor = recovered.target;
          rewound = { to: cursor.blockNumber, batchIds: recovered.batchIds };
        }
      }

      const target = head - BigInt(config.confirmations);
      const from = cursor.blockNumber + 1n;
      if (from > target) {
        return {
          target,
          cursor: cursor.blockNumber,
          caughtUp: true,
          events: 0,
          ...(rewound && { rewound }),
        };
      }

      // The hash of the last block read, so the next step can tell whether it was replaced.
      // Fetched alongside the logs for the range's planned end; again if the range shrank.
      const plannedEnd = minBig(target, from + BigInt(reader.range) - 1n);
      const [{ events, toBlock }, plannedHash] = await Promise.all([
        reader.read(from, target),
        blockHashAt(plannedEnd),
      ]);
      const hash = toBlock === plannedEnd ? plannedHash : await blockHashAt(toBlock);
      if (hash === undefined) throw new BlockUnavailableError(toBlock);

      const next: Cursor = { blockNumber: toBlock, blockHash: hash };
      const result = await applyRange(db, key, events, cursor, next);
      if (result.mismatched.length > 0) {
        logger.error(
          {
            mismatched: result.mismatched.map((m) => ({
              batchId: m.batchId,
              stored: m.stored,
              event: { merkleRoot: m.event.merkleRoot, recordCount: m.event.recordCount },
            })),
          },
          'BatchAnchored event disagrees with the stored batch (root or count); batch left as is',
        );
      }
      if (events.length > 0) {
        logger.info(
          {
            fromBlock: from.toString(),
            toBlock: toBlock.toString(),
            events: events.length,
            inserted: result.inserted,
            anchored: result.anchored,
            unknown: result.unknown,
          },
          'indexed BatchAnchored events',
        );
      }
      return {
        target,
        cursor: toBlock,
        caughtUp: toBlock >= target,
        events: events.length,
        result,
        ...(rewound && { rewound }),
      };
    },
  };
}
export type Syncer = ReturnType<typeof createSyncer>;

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
