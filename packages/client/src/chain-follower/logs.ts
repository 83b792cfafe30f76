import { type Bytes32, batchAnchoredEvent } from '@streamanchor/protocol';
import type { Client, Hex } from 'viem';
import { getLogs } from 'viem/actions';
import type { AnchoredBatchLog } from './types';

/**
 * The contract's BatchAnchored logs in blocks [fromBlock, toBlock] (docs/protocol.md §8,
 * `eth_getLogs` with its address and topic0; with `batchId`, that batch's only), in chain
 * order. Logs flagged removed, or without a block or transaction, are left out.
 */
export async function readBatchAnchoredLogs(
  client: Client,
  {
    contract,
    fromBlock,
    toBlock,
    batchId,
  }: { contract: Hex; fromBlock: number; toBlock: number; batchId?: Bytes32 },
): Promise<AnchoredBatchLog[]> {
  const logs = await getLogs(client, {
    address: contract,
    event: batchAnchoredEvent,
    ...(batchId === undefined ? {} : { args: { batchId } }),
    strict: true,
    fromBlock: BigInt(fromBlock),
    toBlock: BigInt(toBlock),
  });
  return logs
    .filter(
      (log) =>
        !log.removed &&
        log.blockHash !== null &&
        log.blockNumber !== null &&
        log.transactionHash !== null &&
        log.logIndex !== null,
    )
    .map((log) => ({
      batchId: log.args.batchId.toLowerCase() as Bytes32,
      merkleRoot: log.args.merkleRoot.toLowerCase() as Bytes32,
      recordCount: log.args.recordCount,
      writer: log.args.writer.toLowerCase(),
      contract: log.address.toLowerCase(),
      blockNumber: Number(log.blockNumber),
      blockHash: log.blockHash!.toLowerCase() as Bytes32,
      txHash: log.transactionHash!.toLowerCase() as Bytes32,
      logIndex: log.logIndex!,
    }))
    .sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
}
