import type { Database, LedgerScope } from '@streamanchor/db';
import { batchAnchoredEvent } from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { Kysely } from 'kysely';
import { BlockNotFoundError, encodeEventTopics, type PublicClient } from 'viem';
import type { Config } from '../config';
import { BlockUnavailableError } from '../errors';
import type { Fence } from '../leader';
import { blockMayHaveLogs } from './bloom';
import { type AnchorEvent, createLogReader, type LogReader } from './logs';
import {
  type ApplyResult,
  type BlockHeader,
  type Cursor,
  type CursorKey,
  commitBlocks,
  eventBlocks,
  readCursor,
  readWindow,
  rewind,
} from './store';

export interface SyncerDeps {
  config: Pick<
    Config,
    'chainId' | 'contract' | 'deploymentBlock' | 'confirmations' | 'maxLogRange' | 'finalityDepth'
  >;
  logger: Logger;
  db: Kysely<Database>;
  client: PublicClient;
  /** Checked first in every write transaction (src/leader): a stale active indexer's are rejected. */
  fence?: Fence;
}

export interface SyncStep {
  /** Highest block the indexer may read now (head − CONFIRMATIONS). */
  target: bigint;
  /** The cursor after this step. */
  cursor: bigint;
  /** True when the cursor reached `target`: wait for new blocks before the next step. */
  caughtUp: boolean;
  /** `range`: a plain eth_getLogs scan far below the head; `blocks`: header by header near it. */
  mode: 'range' | 'blocks' | 'idle';
  events: number;
  result?: ApplyResult;
  /** Set when blocks the indexer had stored left the chain and it went back to their ancestor. */
  rewound?: { to: bigint; batchIds: string[]; events: number };
}

export interface Syncer {
  readonly key: CursorKey;
  readonly reader: LogReader;
  /** One step: a range scan, a run of new blocks, or a rewind after a reorg. */
  step(): Promise<SyncStep>;
}

const [batchAnchoredTopic0] = encodeEventTopics({ abi: [batchAnchoredEvent] }) as [`0x${string}`];

/** Most headers read (and committed together) in one step near the head. */
const BLOCKS_PER_STEP = 50;
/** Headers fetched at once. */
const HEADER_CONCURRENCY = 10;

/**
 * Follows BatchAnchored logs from DEPLOYMENT_BLOCK, storing only what is canonical.
 *
 * - Far below the head (more than FINALITY_DEPTH blocks deep) it scans plain eth_getLogs
 *   ranges: fast, and reorgs that deep are outside what the indexer promises to follow.
 * - Near the head it reads block by block: each header must extend the previous one by
 *   `parentHash` (from the cursor, through a window of stored headers), and a block's logs
 *   are read by its hash (EIP-234), so they cannot come from another fork than its header;
 *   blocks whose logs bloom rules out our event cost no eth_getLogs at all.
 * - A header that does not extend the cursor means a reorg: the indexer walks its window
 *   down to the common ancestor, and rewinds exactly the orphaned events and batches.
 *
 * Single active instance per database: src/leader elects it and fences its writes (and the
 * cursor is compare-and-set, so a second one fails instead of corrupting).
 */
export function createSyncer({ config, logger, db, client, fence }: SyncerDeps): Syncer {
  const key: CursorKey = { chainId: config.chainId, contract: config.contract };
  const scope: LedgerScope = { ...key, finalityDepth: config.finalityDepth };
  const reader = createLogReader({
    client,
    address: config.contract,
    maxRange: config.maxLogRange,
    logger,
  });
  const initial: Cursor = { blockNumber: BigInt(config.deploymentBlock) - 1n, blockHash: null };
  const depth = BigInt(config.finalityDepth);
  /** Headers kept: enough to find the ancestor of any reorg up to twice the finality depth. */
  const windowSize = 2n * depth + 8n;

  async function header(
    blockNumber: bigint,
  ): Promise<(BlockHeader & { logsBloom: `0x${string}` | null }) | undefined> {
    try {
      const block = await client.getBlock({ blockNumber, includeTransactions: false });
      if (!block.hash) return undefined;
      return {
        blockNumber: block.number ?? blockNumber,
        blockHash: block.hash.toLowerCase() as `0x${string}`,
        parentHash: block.parentHash.toLowerCase() as `0x${string}`,
        logsBloom: block.logsBloom,
      };
    } catch (error) {
      if (error instanceof BlockNotFoundError) return undefined;
      throw error;
    }
  }

  async function headers(from: bigint, to: bigint) {
    const numbers: bigint[] = [];
    for (let n = from; n <= to; n++) numbers.push(n);
    const found: Awaited<ReturnType<typeof header>>[] = [];
    for (let i = 0; i < numbers.length; i += HEADER_CONCURRENCY) {
      found.push(...(await Promise.all(numbers.slice(i, i + HEADER_CONCURRENCY).map(header))));
    }
    // Stop at the first missing header (a lagging node): the rest waits for the next step.
    const missing = found.indexOf(undefined);
    return (missing < 0 ? found : found.slice(0, missing)) as NonNullable<
      Awaited<ReturnType<typeof header>>
    >[];
  }

  /**
   * The newest block at or below the cursor that is still canonical: the window's newest
   * header whose hash the chain still has, else (a reorg deeper than the window, or none
   * kept) the newest stored event block still on the chain, else the start.
   */
  async function commonAncestor(cursor: Cursor, head: bigint): Promise<Cursor> {
    for (const kept of await readWindow(db, key)) {
      if (kept.blockNumber > cursor.blockNumber || kept.blockNumber > head) continue;
      const now = await header(kept.blockNumber);
      if (now?.blockHash === kept.blockHash)
        return { blockNumber: kept.blockNumber, blockHash: kept.blockHash };
    }
    logger.warn(
      { cursor: cursor.blockNumber.toString() },
      'reorg reaches below the header window; searching stored events for the ancestor',
    );
    const stored = await eventBlocks(db, key, cursor.blockNumber);
    const onChain = async (index: number): Promise<boolean> => {
      const row = stored[index]!;
      if (row.blockNumber > head) return false;
      return (await header(row.blockNumber))?.blockHash === row.blockHash.toLowerCase();
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
    return keep
      ? { blockNumber: keep.blockNumber, blockHash: keep.blockHash.toLowerCase() }
      : initial;
  }

  async function rewindFrom(
    cursor: Cursor,
    head: bigint,
  ): Promise<NonNullable<SyncStep['rewound']>> {
    const target = await commonAncestor(cursor, head);
    const reverted = await rewind(db, key, scope, cursor, target, fence);
    const log = reverted.deep.length > 0 ? logger.fatal.bind(logger) : logger.warn.bind(logger);
    log(
      {
        from: cursor.blockNumber.toString(),
        to: target.blockNumber.toString(),
        droppedHash: cursor.blockHash,
        eventsRemoved: reverted.events,
        batchesBackToSent: reverted.batchIds,
        ...(reverted.deep.length > 0 && { finalBatchesReverted: reverted.deep }),
      },
      reverted.deep.length > 0
        ? 'CHAIN REORG DEEPER THAN FINALITY_DEPTH: final batches left the chain; raise FINALITY_DEPTH'
        : 'chain reorg: rewound to the common ancestor and re-reading',
    );
    return { to: target.blockNumber, batchIds: reverted.batchIds, events: reverted.events };
  }

  /** Far below the head: one plain eth_getLogs range. */
  async function rangeStep(
    cursor: Cursor,
    head: bigint,
    target: bigint,
    upTo: bigint,
  ): Promise<SyncStep> {
    if (cursor.blockHash !== null) {
      const now = await header(cursor.blockNumber);
      if (!now) throw new BlockUnavailableError(cursor.blockNumber);
      if (now.blockHash !== cursor.blockHash.toLowerCase()) {
        const rewound = await rewindFrom(cursor, head);
        return { target, cursor: rewound.to, caughtUp: false, mode: 'range', events: 0, rewound };
      }
    }
    const from = cursor.blockNumber + 1n;
    const { events, toBlock } = await reader.read(from, upTo);
    const end = await header(toBlock);
    if (!end) throw new BlockUnavailableError(toBlock);
    const next: Cursor = { blockNumber: toBlock, blockHash: end.blockHash };
    const result = await commitBlocks(
      db,
      key,
      scope,
      {
        events,
        headers: [end],
        previous: cursor,
        next,
        head,
        pruneAtOrBelow: toBlock - windowSize,
      },
      fence,
    );
    report(result, from, toBlock, events.length);
    return {
      target,
      cursor: toBlock,
      caughtUp: toBlock >= target,
      mode: 'range',
      events: events.length,
      result,
    };
  }

  /** Near the head: header by header, each extending the last, logs read by block hash. */
  async function blocksStep(cursor: Cursor, head: bigint, target: bigint): Promise<SyncStep> {
    const from = cursor.blockNumber + 1n;
    const to =
      from + BigInt(BLOCKS_PER_STEP) - 1n < target ? from + BigInt(BLOCKS_PER_STEP) - 1n : target;
    const fetched = from <= to ? await headers(from, to) : [];

    // No new block: the cursor's own block may still have been replaced (a reorg that
    // keeps the height), so check it against the chain's block at that height.
    if (fetched.length === 0) {
      if (cursor.blockHash !== null) {
        // A chain now shorter than the cursor lost the cursor's block for sure.
        const now = cursor.blockNumber <= head ? await header(cursor.blockNumber) : undefined;
        if (
          cursor.blockNumber > head ||
          (now && now.blockHash !== cursor.blockHash.toLowerCase())
        ) {
          const rewound = await rewindFrom(cursor, head);
          return {
            target,
            cursor: rewound.to,
            caughtUp: false,
            mode: 'blocks',
            events: 0,
            rewound,
          };
        }
      }
      return {
        target,
        cursor: cursor.blockNumber,
        caughtUp: from > target,
        mode: 'idle',
        events: 0,
      };
    }

    if (cursor.blockHash !== null && fetched[0]!.parentHash !== cursor.blockHash.toLowerCase()) {
      const rewound = await rewindFrom(cursor, head);
      return { target, cursor: rewound.to, caughtUp: false, mode: 'blocks', events: 0, rewound };
    }
    // Keep the run that links up; a break inside it means the chain moved while we read.
    let linked = 1;
    while (
      linked < fetched.length &&
      fetched[linked]!.parentHash === fetched[linked - 1]!.blockHash
    )
      linked++;
    const run = fetched.slice(0, linked);

    // Logs by block hash, several blocks at once; the run is cut at the first block whose
    // read failed or disagreed with its header (the chain moved while we read).
    const wanted = run.map((block) =>
      blockMayHaveLogs(block.logsBloom, config.contract, batchAnchoredTopic0),
    );
    const reads: ({ ok: true; logs: AnchorEvent[] } | { ok: false; error: unknown })[] = [];
    for (let i = 0; i < run.length; i += HEADER_CONCURRENCY) {
      reads.push(
        ...(await Promise.all(
          run.slice(i, i + HEADER_CONCURRENCY).map((block, j) =>
            wanted[i + j]
              ? reader.readBlock(block.blockHash).then(
                  (logs) => ({ ok: true as const, logs }),
                  (error: unknown) => ({ ok: false as const, error }),
                )
              : Promise.resolve({ ok: true as const, logs: [] }),
          ),
        )),
      );
    }
    const events: AnchorEvent[] = [];
    let kept = 0;
    let failure: unknown;
    for (const [i, block] of run.entries()) {
      const read = reads[i]!;
      if (!read.ok) {
        failure = read.error;
        logger.info(
          {
            blockNumber: block.blockNumber.toString(),
            blockHash: block.blockHash,
            reason:
              (read.error as { shortMessage?: string }).shortMessage ??
              (read.error as Error).message,
          },
          'logs by block hash failed; committing the blocks before it and re-reading',
        );
        break;
      }
      if (read.logs.some((log) => log.removed || log.blockHash !== block.blockHash)) break;
      events.push(...read.logs);
      kept++;
    }
    // Not even the first block's logs could be read: let the loop back off and retry (the
    // next step finds a reorg by its parent hash; anything else is an RPC fault to see).
    if (kept === 0) throw failure ?? new BlockUnavailableError(from);
    const committed = run.slice(0, kept);
    const last = committed[committed.length - 1]!;
    const next: Cursor = { blockNumber: last.blockNumber, blockHash: last.blockHash };
    const result = await commitBlocks(
      db,
      key,
      scope,
      {
        events,
        headers: committed,
        previous: cursor,
        next,
        head: last.blockNumber,
        pruneAtOrBelow: last.blockNumber - windowSize,
      },
      fence,
    );
    report(result, from, last.blockNumber, events.length);
    return {
      target,
      cursor: last.blockNumber,
      caughtUp: last.blockNumber >= target,
      mode: 'blocks',
      events: events.length,
      result,
    };
  }

  function report(result: ApplyResult, from: bigint, to: bigint, events: number): void {
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
    if (events > 0 || result.finalized.length > 0) {
      logger.info(
        {
          fromBlock: from.toString(),
          toBlock: to.toString(),
          events,
          inserted: result.inserted,
          included: result.included.length,
          finalized: result.finalized.length,
          unknown: result.unknown,
        },
        'indexed BatchAnchored events',
      );
    }
  }

  return {
    key,
    reader,
    async step(): Promise<SyncStep> {
      const cursor = (await readCursor(db, key)) ?? initial;
      const head = await client.getBlockNumber({ cacheTime: 0 });
      const target = head - BigInt(config.confirmations);
      // Blocks at or below this are FINALITY_DEPTH deep: scan them by ranges.
      const deep = head - depth;
      if (cursor.blockNumber < target && cursor.blockNumber < deep) {
        return rangeStep(cursor, head, target, target < deep ? target : deep);
      }
      return blocksStep(cursor, head, target);
    },
  };
}
