import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { type Static, Type } from '@sinclair/typebox';
import { Address, Bytes32, EpochMillis, Subject, Topic } from './primitives';
import { LEAF_ENCODING, leafHash, leafValue } from './record';

/**
 * Proof that one record is in a batch anchored on chain. Everything a third party
 * needs to verify it: the leaf fields, the proof, and where the root was emitted.
 */
export const Receipt = Type.Object(
  {
    recordId: Bytes32,
    topic: Topic,
    subject: Subject,
    contentHash: Bytes32,
    acceptedAt: EpochMillis,
    leafHash: Bytes32,
    /** Position of the record in the batch, in the order the writer batched it. */
    leafIndex: Type.Integer({ minimum: 0 }),
    proof: Type.Array(Bytes32),
    batchId: Bytes32,
    merkleRoot: Bytes32,
    recordCount: Type.Integer({ minimum: 1 }),
    chainId: Type.Integer({ minimum: 1 }),
    contract: Address,
    txHash: Bytes32,
    blockNumber: Type.Integer({ minimum: 0 }),
    blockHash: Bytes32,
    logIndex: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type Receipt = Static<typeof Receipt>;

/**
 * Checks the receipt's own arithmetic: the leaf hash matches the leaf fields, and the
 * proof leads from that leaf to `merkleRoot`. It does not check the chain; a verifier
 * must also confirm that `merkleRoot` was emitted for `batchId` by `contract`.
 */
export function verifyReceiptProof(receipt: Receipt): boolean {
  if (leafHash(receipt) !== receipt.leafHash) return false;
  return StandardMerkleTree.verify(
    receipt.merkleRoot,
    [...LEAF_ENCODING],
    leafValue(receipt),
    receipt.proof,
  );
}
