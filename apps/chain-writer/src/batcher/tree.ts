import { type Bytes32, buildMerkleTree, type LeafFields } from '@streamanchor/protocol';

export interface BatchTree {
  merkleRoot: Bytes32;
  /** Per record, in input order (= leaf_index). Proofs are not kept: see readBatchContent. */
  leafHashes: Bytes32[];
}

/**
 * Builds the batch's tree over the records in the given order with the protocol's
 * `buildMerkleTree` (the same root, leaves and proofs as OpenZeppelin's
 * `StandardMerkleTree.of(records.map(leafValue), [...LEAF_ENCODING])`, which
 * packages/protocol/src/merkle.test.ts checks) and returns its root and, for each
 * record (value index i = leaf_index), its leaf hash.
 */
export async function buildBatchTree(records: readonly LeafFields[]): Promise<BatchTree> {
  const tree = await buildMerkleTree(records);
  return {
    merkleRoot: tree.root,
    leafHashes: tree.leafHashes,
  };
}
