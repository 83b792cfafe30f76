import { readFileSync } from 'node:fs';
import { keccak_256 } from '@noble/hashes/sha3';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, test } from 'vitest';
import type { Hex } from './primitives';
import { Receipt, verifyReceiptProof } from './receipt';
import { canonicalPayload, contentHashOf, LEAF_ENCODING, leafHash, leafValue } from './record';

// The vector published with docs/protocol.md: if this test fails, the document is wrong.
const vector = JSON.parse(
  readFileSync(new URL('../../../docs/test-vectors/merkle-v1.json', import.meta.url), 'utf8'),
) as {
  leafEncoding: string[];
  merkleRoot: Hex;
  batchAnchoredTopic0: Hex;
  records: {
    payload: unknown;
    canonicalPayload: string;
    recordId: Hex;
    topic: string;
    subject: string;
    contentHash: Hex;
    acceptedAt: number;
    leafHash: Hex;
    proof: Hex[];
  }[];
  receiptHistory: { finalityDepth: number; arrivals: unknown[]; current: number };
};

/** The proof fold exactly as docs/protocol.md describes it, without the library. */
function foldProof(leaf: Hex, proof: Hex[]): Hex {
  let node = hexToBytes(leaf.slice(2));
  for (const sibling of proof.map((hex) => hexToBytes(hex.slice(2)))) {
    const [a, b] =
      Buffer.compare(Buffer.from(node), Buffer.from(sibling)) <= 0
        ? [node, sibling]
        : [sibling, node];
    node = keccak_256(new Uint8Array([...a, ...b]));
  }
  return `0x${bytesToHex(node)}`;
}

describe('docs/test-vectors/merkle-v1.json', () => {
  test('default: leaf encoding matches the protocol', () => {
    expect(vector.leafEncoding).toEqual([...LEAF_ENCODING]);
  });

  test('behavior: canonical payloads, content hashes and leaves', () => {
    for (const record of vector.records) {
      expect(canonicalPayload(record.payload)).toBe(record.canonicalPayload);
      expect(contentHashOf(record.canonicalPayload)).toBe(record.contentHash);
      expect(leafHash(record)).toBe(record.leafHash);
    }
  });

  test('behavior: the tree root and proofs, by the library and by the documented fold', () => {
    const tree = StandardMerkleTree.of(vector.records.map(leafValue), [...LEAF_ENCODING]);
    expect(tree.root).toBe(vector.merkleRoot);
    vector.records.forEach((record, i) => {
      expect(tree.getProof(i)).toEqual(record.proof);
      expect(foldProof(record.leafHash, record.proof)).toBe(vector.merkleRoot);
    });
  });

  test('behavior: BatchAnchored topic0', () => {
    const signature = 'BatchAnchored(bytes32,bytes32,uint32,address)';
    expect(`0x${bytesToHex(keccak_256(utf8ToBytes(signature)))}`).toBe(vector.batchAnchoredTopic0);
  });

  test('behavior: a receipt history, where the highest revision is current', () => {
    const { arrivals, current } = vector.receiptHistory;
    const kept = new Map<string, Receipt>();
    for (const arrival of arrivals) {
      expect(Value.Check(Receipt, arrival)).toBe(true);
      const receipt = arrival as Receipt;
      expect(verifyReceiptProof(receipt)).toBe(true);
      const held = kept.get(receipt.recordId);
      if (!held || receipt.revision > held.revision) kept.set(receipt.recordId, receipt);
    }
    const [only] = [...kept.values()];
    expect(kept.size).toBe(1);
    expect(only).toMatchObject({ revision: current, status: 'final' });
    expect(only?.confirmations).toBeGreaterThanOrEqual(vector.receiptHistory.finalityDepth);
  });
});
