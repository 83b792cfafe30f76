import { streamAnchorAbi } from '@streamanchor/contracts';
import type { Logger } from '@streamanchor/service-kit';
import type { PublicClient } from 'viem';
import { LogFetchError } from '../errors';

/** One BatchAnchored log, normalised: hex in lowercase, numbers as the database takes them. */
export interface AnchorEvent {
  blockNumber: bigint;
  blockHash: `0x${string}`;
  txHash: `0x${string}`;
  logIndex: number;
  batchId: `0x${string}`;
  merkleRoot: `0x${string}`;
  recordCount: number;
  /** Lowercase address of the account that anchored the batch. */
  writer: `0x${string}`;
  /** Set by a node that reports a log of a block it has since dropped. */
  removed?: boolean;
}

export interface LogReader {
  /** The current range width (blocks per call); shrinks on failures. */
  readonly range: number;
  /**
   * Reads logs from `fromBlock` up to at most `maxToBlock`, in one call whose width is the
   * current range (shrinking it on failure). Returns the events and the last block read.
   */
  read(fromBlock: bigint, maxToBlock: bigint): Promise<{ events: AnchorEvent[]; toBlock: bigint }>;
  /**
   * The logs of exactly one block, by hash (EIP-234): they cannot come from another fork
   * than the header the caller holds. A node that no longer knows the hash fails the call.
   */
  readBlock(blockHash: `0x${string}`): Promise<AnchorEvent[]>;
}

export interface LogReaderOptions {
  client: PublicClient;
  address: `0x${string}`;
  maxRange: number;
  logger: Logger;
}

/** The first call's width (at most maxRange): small, so a dense chain does not start with a failure. */
const FIRST_RANGE = 100;
/** Logs one call aims at once the density is known: ~4 MB of JSON, well under a 10 MiB cap. */
const TARGET_LOGS_PER_CALL = 10_000;
/** A width that failed is not tried again for this many calls (density may change). */
const REMEMBER_FAILURE_FOR = 64;

/**
 * Reads BatchAnchored logs in ranges of at most `maxRange` blocks. The next range is sized
 * from the logs per block of the last call (TARGET_LOGS_PER_CALL), so a dense history is not
 * read past the response cap and thrown away: each such answer costs a full capped download.
 * A failing call (viem's response body cap, a provider's result limit) halves the range and
 * retries, and that width is not tried again for a while; a full range that found no logs
 * doubles. Only a one-block range that still fails is an error.
 */
export function createLogReader({
  client,
  address,
  maxRange,
  logger,
}: LogReaderOptions): LogReader {
  let range = Math.min(maxRange, FIRST_RANGE);
  /** The narrowest width that failed, and for how many more calls to keep below it. */
  let failedWidth = Number.POSITIVE_INFINITY;
  let failureMemory = 0;

  async function fetchLogs(
    where: { fromBlock: bigint; toBlock: bigint } | { blockHash: `0x${string}` },
  ): Promise<AnchorEvent[]> {
    const logs = await client.getContractEvents({
      address,
      abi: streamAnchorAbi,
      eventName: 'BatchAnchored',
      ...where,
      strict: true,
    });
    return logs.map((log) => ({
      blockNumber: log.blockNumber,
      blockHash: log.blockHash.toLowerCase() as `0x${string}`,
      txHash: log.transactionHash.toLowerCase() as `0x${string}`,
      logIndex: log.logIndex,
      batchId: log.args.batchId.toLowerCase() as `0x${string}`,
      merkleRoot: log.args.merkleRoot.toLowerCase() as `0x${string}`,
      recordCount: Number(log.args.recordCount),
      writer: log.args.writer.toLowerCase() as `0x${string}`,
      removed: log.removed,
    }));
  }
  const fetchRange = (fromBlock: bigint, toBlock: bigint) => fetchLogs({ fromBlock, toBlock });

  return {
    get range() {
      return range;
    },

    readBlock: (blockHash) => fetchLogs({ blockHash }),

    async read(
      fromBlock: bigint,
      maxToBlock: bigint,
    ): Promise<{ events: AnchorEvent[]; toBlock: bigint }> {
      for (;;) {
        const toBlock = minBig(maxToBlock, fromBlock + BigInt(range) - 1n);
        const width = Number(toBlock - fromBlock + 1n);
        try {
          const events = await fetchRange(fromBlock, toBlock);
          if (failureMemory > 0 && --failureMemory === 0) failedWidth = Number.POSITIVE_INFINITY;
          const ceiling = Math.min(maxRange, failedWidth - 1);
          if (events.length > 0) {
            const sized = Math.floor((TARGET_LOGS_PER_CALL * width) / events.length);
            range = Math.max(1, Math.min(ceiling, sized));
          } else if (width === range) {
            // No logs: nothing to size from, and an empty answer is tiny; double the width.
            range = Math.max(1, Math.min(ceiling, range * 2));
          }
          return { events, toBlock };
        } catch (error) {
          if (width <= 1) throw new LogFetchError(fromBlock, toBlock, error);
          failedWidth = Math.min(failedWidth, width);
          failureMemory = REMEMBER_FAILURE_FOR;
          range = Math.max(1, Math.ceil(width / 2));
          logger.warn(
            {
              fromBlock: fromBlock.toString(),
              toBlock: toBlock.toString(),
              newRange: range,
              reason: (error as { shortMessage?: string }).shortMessage ?? (error as Error).message,
            },
            'eth_getLogs failed; retrying with a smaller block range',
          );
        }
      }
    },
  };
}

export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
