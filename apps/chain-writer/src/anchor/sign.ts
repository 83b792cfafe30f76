import { streamAnchorAbi } from '@streamanchor/contracts';
import {
  type Address,
  encodeFunctionData,
  type Hex,
  keccak256,
  parseTransaction,
  type TransactionSerializableEIP1559,
} from 'viem';
import type { WriterPublicClient, WriterWalletClient } from '../chain';
import { WriterError } from '../errors';
import type { OpenBatch, StoredTx } from './decide';

/** A signed anchor transaction, as persisted before it is broadcast. */
export interface SignedAnchor extends StoredTx {
  batchId: Hex;
  /** The tx hash this one replaces (same nonce, higher fees) or supersedes (new nonce). */
  replaces?: Hex | null;
}

/** A signed 0-value self-transfer that uses up a nonce (fills a gap). Never stored. */
export interface SignedFiller {
  nonce: number;
  rawTx: Hex;
  txHash: Hex;
}

export interface SignAnchorParameters {
  batch: OpenBatch;
  nonce: number;
  gas: bigint;
  /** The stored tx this one replaces: at the same nonce, both fee fields are bumped ≥ 10 %. */
  replaces?: StoredTx;
}

export type Signer = {
  /** Lowercase signer address, as stored in batches.signer. */
  readonly address: Address;
  signAnchor(parameters: SignAnchorParameters): Promise<SignedAnchor>;
  /** `attempt` 0 uses the node's fees; every further attempt bumps them once more (≥ 10 % each). */
  signFiller(parameters: { nonce: number; attempt: number }): Promise<SignedFiller>;
};

/** Gas limit = estimate × 13/10 + this. */
const GAS_MARGIN = 10_000n;
/** A plain transfer's gas. */
const TRANSFER_GAS = 21_000n;

/**
 * Bumps a fee for a same-nonce replacement: +12.5 % and 1 wei, above the 10 % nodes
 * require (geth and anvil refuse a replacement raising either fee field by less).
 */
export function bumpFee(value: bigint): bigint {
  return (value * 1125n) / 1000n + 1n;
}

/** Fees for a replacement of `old`: the node's current ones, but never less than `old` bumped. */
export function replacementFees(
  current: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
  old: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
): { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } {
  const maxPriorityFeePerGas = bigMax(
    current.maxPriorityFeePerGas,
    bumpFee(old.maxPriorityFeePerGas),
  );
  const maxFeePerGas = bigMax(
    current.maxFeePerGas,
    bumpFee(old.maxFeePerGas),
    maxPriorityFeePerGas,
  );
  return { maxFeePerGas, maxPriorityFeePerGas };
}

/** Builds and signs the writer's transactions locally (the key never leaves this process). */
export function createSigner({
  publicClient,
  walletClient,
  chainId,
  contract,
}: {
  publicClient: WriterPublicClient;
  walletClient: WriterWalletClient;
  chainId: number;
  contract: Address;
}): Signer {
  const account = walletClient.account;
  const localSign = account.type === 'local' ? account.signTransaction?.bind(account) : undefined;
  if (!localSign) {
    throw new WriterError(
      'the writer signs locally: walletClient.account must be a local (private key) account',
      { accountType: account.type },
    );
  }
  const signTransaction = localSign;

  const fees = () => publicClient.estimateFeesPerGas({ type: 'eip1559' });

  return {
    address: account.address.toLowerCase() as Address,

    async signAnchor({ batch, nonce, gas, replaces }) {
      const args = [batch.batchId, batch.merkleRoot, batch.recordCount] as const;
      let fee = await fees();
      if (replaces) {
        const old = parseTransaction(replaces.rawTx);
        if (
          old.nonce === nonce &&
          old.maxFeePerGas !== undefined &&
          old.maxPriorityFeePerGas !== undefined
        ) {
          fee = replacementFees(fee, {
            maxFeePerGas: old.maxFeePerGas,
            maxPriorityFeePerGas: old.maxPriorityFeePerGas,
          });
        }
      }
      const tx: TransactionSerializableEIP1559 = {
        type: 'eip1559',
        chainId,
        nonce,
        to: contract,
        data: encodeFunctionData({ abi: streamAnchorAbi, functionName: 'anchorBatch', args }),
        value: 0n,
        gas: (gas * 13n) / 10n + GAS_MARGIN,
        maxFeePerGas: fee.maxFeePerGas,
        maxPriorityFeePerGas: fee.maxPriorityFeePerGas,
      };
      const rawTx = await signTransaction(tx);
      return {
        batchId: batch.batchId,
        nonce,
        rawTx,
        txHash: keccak256(rawTx),
        replaces: replaces?.txHash ?? null,
      };
    },

    async signFiller({ nonce, attempt }) {
      let fee = await fees();
      for (let i = 0; i < attempt; i++) fee = replacementFees(fee, fee);
      const rawTx = await signTransaction({
        type: 'eip1559',
        chainId,
        nonce,
        to: account.address,
        value: 0n,
        gas: TRANSFER_GAS,
        maxFeePerGas: fee.maxFeePerGas,
        maxPriorityFeePerGas: fee.maxPriorityFeePerGas,
      });
      return { nonce, rawTx, txHash: keccak256(rawTx) };
    },
  };
}

function bigMax(...values: bigint[]): bigint {
  let max = values[0] ?? 0n;
  for (const value of values) if (value > max) max = value;
  return max;
}
