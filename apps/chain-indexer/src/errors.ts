/** Base of the indexer's errors: a one-line `shortMessage` plus structured `details` for logs. */
export class IndexerError extends Error {
  override name = 'IndexerError';
  constructor(
    readonly shortMessage: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(`${shortMessage} ${JSON.stringify(details)}`, options);
  }
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
