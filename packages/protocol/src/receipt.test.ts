import { readFileSync } from 'node:fs';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, test } from 'vitest';
import type { Hex } from './primitives';
import { RECEIPT_STATUSES, Receipt, verifyReceiptProof } from './receipt';
import { canonicalPayload, contentHashOf, LEAF_ENCODING, leafHash, leafValue } from './record';

function hex32(n: number): Hex {
  return `0x${n.toString(16).padStart(64, '0')}`;
}

function receipts(count: number): Receipt[] {
  const leaves = Array.from({ length: count }, (_, i) => ({
    recordId: hex32(i + 1),
    topic: 'demo',
    subject: 'alice',
    contentHash: contentHashOf(canonicalPayload({ i })),
    acceptedAt: 1_700_000_000_000 + i,
  }));
  const tree = StandardMerkleTree.of(leaves.map(leafValue), [...LEAF_ENCODING]);
  return leaves.map((leaf, i) => ({
    status: 'included' as const,
    confirmations: 1,
    revision: 1,
    ...leaf,
    leafHash: leafHash(leaf),
    leafIndex: i,
    proof: tree.getProof(i) as Hex[],
    batchId: hex32(999),
    merkleRoot: tree.root as Hex,
    recordCount: count,
    chainId: 31337,
    contract: `0x${'ab'.repeat(20)}`,
    txHash: hex32(5),
    blockNumber: 7,
    blockHash: hex32(6),
    logIndex: 0,
  }));
}

describe('verifyReceiptProof', () => {
  test('default: every receipt of a batch verifies', () => {
    for (const count of [1, 2, 7]) {
      for (const receipt of receipts(count)) expect(verifyReceiptProof(receipt)).toBe(true);
    }
  });

  test('error: a tampered field fails', () => {
    const [receipt] = receipts(5);
    if (!receipt) throw new Error('no receipt');
    expect(verifyReceiptProof({ ...receipt, topic: 'other' })).toBe(false);
    expect(verifyReceiptProof({ ...receipt, contentHash: hex32(1) })).toBe(false);
    expect(verifyReceiptProof({ ...receipt, merkleRoot: hex32(1) })).toBe(false);
    expect(verifyReceiptProof({ ...receipt, proof: receipt.proof.slice(1) })).toBe(false);
  });
});

describe('Receipt schema', () => {
  test('default: every status is a valid receipt; confirmations ≥ 0, revision ≥ 1', () => {
    const [receipt] = receipts(1);
    for (const status of Object.keys(RECEIPT_STATUSES)) {
      expect(Value.Check(Receipt, { ...receipt, status })).toBe(true);
    }
    expect(Value.Check(Receipt, { ...receipt, status: 'pending' })).toBe(false);
    expect(Value.Check(Receipt, { ...receipt, confirmations: -1 })).toBe(false);
    expect(Value.Check(Receipt, { ...receipt, revision: 0 })).toBe(false);
    const { revision: _, ...withoutRevision } = receipt!;
    expect(Value.Check(Receipt, withoutRevision)).toBe(false);
  });
});

describe('RECEIPT_STATUSES and docs/protocol.md §9', () => {
  test('default: the status table lists every status with its meaning, and nothing else', () => {
    const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const section9 = doc.slice(doc.indexOf('## 9. Receipts'), doc.indexOf('\n## 10.'));
    const table = section9.indexOf('| status | meaning |');
    expect(table).toBeGreaterThan(-1);
    const section = section9.slice(table, section9.indexOf('\n\n', table));
    const rows = [...section.matchAll(/^\| `([a-z]+)` \| ([^|`]+?) \|$/gm)].map(
      ([, status, meaning]) => [status, meaning],
    );
    expect(rows).toEqual(Object.entries(RECEIPT_STATUSES));
  });
});
