import { streamAnchorAbi } from '@streamanchor/contracts';
import {
  type Account,
  type Address,
  type Hex,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
} from 'viem';
import type { WriterPublicClient } from '../chain';
import type { BatchView, GasEstimate, OpenBatch, TxStanding } from './decide';
import { errorText, revertErrorName } from './revert';

/** A block the submitter read as the newest: later ticks check it is still canonical. */
export interface HeadRef {
  number: bigint;
  hash: Hex;
}

/** The signer's nonces at one block: mined (at `head`) and pending (mined + contiguous pool). */
export interface Nonces {
  mined: number;
  pending: number;
}

/**
 * Every chain read the submitter makes, in one place. A tick reads `head` first and pins
 * the reads that take a block to it (`isAnchored`, the mined nonce), so "nonce used but
 * batch not anchored" is a statement about one block.
 */
export type ChainView = {
  head(): Promise<HeadRef>;
  /** False when `ref` is no longer the canonical block at its height (a reorg happened). */
  isCanonical(ref: HeadRef): Promise<boolean>;
  nonces(head: bigint): Promise<Nonces>;
  isAnchored(batchId: Hex, head: bigint): Promise<boolean>;
  /** Where a batch stands at `head` (its tx's receipt or pool presence, the anchor flag). */
  observe(batch: OpenBatch, head: bigint, minedNonce: number): Promise<BatchView>;
  /** anchorBatch's gas estimate at `latest` (not `pending`: a replacement is estimated without the tx it replaces). */
  estimateAnchorGas(batch: OpenBatch): Promise<GasEstimate>;
  /** Why a mined anchor tx reverted, replayed at its block (for logs). */
  revertReason(batch: OpenBatch, blockNumber: bigint): Promise<string>;
};

export function createChainView({
  publicClient,
  contract,
  account,
}: {
  publicClient: WriterPublicClient;
  contract: Address;
  account: Account;
}): ChainView {
  const anchorArgs = (batch: OpenBatch) =>
    [batch.batchId, batch.merkleRoot, batch.recordCount] as const;

  async function isAnchored(batchId: Hex, head: bigint): Promise<boolean> {
    return publicClient.readContract({
      address: contract,
      abi: streamAnchorAbi,
      functionName: 'isAnchored',
      args: [batchId],
      blockNumber: head,
    });
  }

  async function txStanding(txHash: Hex): Promise<TxStanding> {
    const receipt = await publicClient.getTransactionReceipt({ hash: txHash }).catch((error) => {
      if (error instanceof TransactionReceiptNotFoundError) return undefined;
      throw error;
    });
    if (receipt) {
      return {
        kind: 'mined',
        success: receipt.status === 'success',
        blockNumber: receipt.blockNumber,
      };
    }
    const pooled = await publicClient.getTransaction({ hash: txHash }).then(
      () => true,
      (error: unknown) => {
        if (error instanceof TransactionNotFoundError) return false;
        throw error;
      },
    );
    return { kind: pooled ? 'pooled' : 'absent' };
  }

  return {
    async head() {
      const block = await publicClient.getBlock({ blockTag: 'latest' });
      return { number: block.number, hash: block.hash };
    },

    async isCanonical(ref) {
      const block = await publicClient.getBlock({ blockNumber: ref.number }).catch(() => undefined);
      return block?.hash === ref.hash;
    },

    async nonces(head) {
      const [mined, pending] = await Promise.all([
        publicClient.getTransactionCount({ address: account.address, blockNumber: head }),
        publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' }),
      ]);
      return { mined, pending: Math.max(mined, pending) };
    },

    isAnchored,

    async observe(batch, head, minedNonce) {
      const [anchored, tx] = await Promise.all([
        isAnchored(batch.batchId, head),
        batch.tx ? txStanding(batch.tx.txHash) : Promise.resolve(undefined),
      ]);
      return { head, anchored, minedNonce, ...(tx ? { tx } : {}) };
    },

    async estimateAnchorGas(batch) {
      try {
        const gas = await publicClient.estimateContractGas({
          address: contract,
          abi: streamAnchorAbi,
          functionName: 'anchorBatch',
          args: anchorArgs(batch),
          account,
          blockTag: 'latest',
        });
        return { kind: 'ok', gas };
      } catch (error) {
        const errorName = revertErrorName(error);
        if (errorName) return { kind: 'reverted', errorName };
        return { kind: 'failed', reason: errorText(error) };
      }
    },

    async revertReason(batch, blockNumber) {
      try {
        await publicClient.simulateContract({
          address: contract,
          abi: streamAnchorAbi,
          functionName: 'anchorBatch',
          args: anchorArgs(batch),
          account,
          blockNumber,
        });
        return 'unknown (the call succeeds when replayed; out of gas?)';
      } catch (error) {
        return revertErrorName(error) ?? errorText(error);
      }
    },
  };
}
