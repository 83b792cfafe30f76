import { ServiceError } from '@streamanchor/service-kit';

/** Base of the indexer's errors. */
export class IndexerError extends ServiceError {
  override name = 'IndexerError';
}

/** The RPC endpoint serves another chain than CHAIN_ID says. */
export class ChainIdMismatchError extends IndexerError {
  override name = 'ChainIdMismatchError';
  constructor(expected: number, actual: number, rpcUrl: string) {
    super(`RPC_URL serves chain ${actual}, but CHAIN_ID is ${expected}`, {
      expected,
      actual,
      rpcUrl,
    });
  }
}

/** eth_getLogs failed even for a single block. */
export class LogFetchError extends IndexerError {
  override name = 'LogFetchError';
  constructor(fromBlock: bigint, toBlock: bigint, cause: unknown) {
    super(
      'eth_getLogs failed for the smallest range',
      {
        fromBlock: fromBlock.toString(),
        toBlock: toBlock.toString(),
        reason: (cause as { shortMessage?: string })?.shortMessage ?? (cause as Error)?.message,
      },
      { cause },
    );
  }
}

/** The chain has no block at a height the indexer needs (a lagging or inconsistent RPC node). */
export class BlockUnavailableError extends IndexerError {
  override name = 'BlockUnavailableError';
  constructor(blockNumber: bigint) {
    super('RPC node has no block at this height yet', { blockNumber: blockNumber.toString() });
  }
}
