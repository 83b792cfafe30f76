import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  type Bytes32,
  LEAF_ENCODING,
  type LeafFields,
  leafHash,
  leafValue,
} from '@streamanchor/protocol';
import { WriterError } from '../errors';

export interface BatchTree {
  merkleRoot: Bytes32;
  /** Per record, in input order (= leaf_index). */
  leaves: { leafHash: Bytes32; proof: Bytes32[] }[];
}

/** The tree library and the protocol disagree about a leaf: nothing is stored. */
export class LeafMismatchError extends WriterError {
  override name = 'LeafMismatchError';
}

/**
 * Builds the batch's StandardMerkleTree over the records in the given order and returns
 * its root and, for each record (value index i = leaf_index), its leaf hash and proof.
 * The protocol's `leafHash` must equal the tree's own leaf, or this throws.
 */
export function buildBatchTree(records: readonly LeafFields[]): BatchTree {
  const tree = StandardMerkleTree.of(records.map(leafValue), [...LEAF_ENCODING]);
  const { tree: nodes, values } = tree.dump();
  const leaves = records.map((record, i) => {
    const hash = leafHash(record);
    const treeLeaf = nodes[values[i]!.treeIndex];
    if (treeLeaf !== hash) {
      throw new LeafMismatchError('protocol leafHash differs from the tree leaf', {
        recordId: record.recordId,
        leafHash: hash,
        treeLeaf,
      });
    }
    return { leafHash: hash, proof: tree.getProof(i) as Bytes32[] };
  });
  return { merkleRoot: tree.root as Bytes32, leaves };
}
