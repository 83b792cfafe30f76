import { readFileSync } from 'node:fs';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, test } from 'vitest';
import type { Hex } from './primitives';
import {
  createReceiptProofVerifier,
  RECEIPT_STATUSES,
  Receipt,
  ReceiptAnchor,
  ReceiptRecord,
  receiptOf,
  splitReceipt,
  verifyReceiptProof,
} from './receipt';
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

/** The check verifyReceiptProof made on OpenZeppelin's library; 'throws' where that threw. */
function libraryVerdict(receipt: Receipt): boolean | 'throws' {
  try {
    if (leafHash(receipt) !== receipt.leafHash) return false;
    return StandardMerkleTree.verify(
      receipt.merkleRoot,
      [...LEAF_ENCODING],
      leafValue(receipt),
      receipt.proof,
    );
  } catch {
    return 'throws';
  }
}

/** `hex` with the hex digit at `at` changed (to another lowercase digit). */
function flip(hex: string, at = hex.length - 1): Hex {
  const digit = hex[at] === '0' ? '1' : '0';
  return `${hex.slice(0, at)}${digit}${hex.slice(at + 1)}` as Hex;
}

const upper = (hex: string) => `0x${hex.slice(2).toUpperCase()}` as Hex;

/** Tampered copies of a receipt, named, with the verdict OpenZeppelin gives each. */
function tamperings(receipt: Receipt): [string, Receipt, boolean | 'throws'][] {
  const { proof } = receipt;
  const cases: [string, Receipt, boolean | 'throws'][] = [
    ['recordId', { ...receipt, recordId: flip(receipt.recordId) }, false],
    ['recordId uppercase (same bytes)', { ...receipt, recordId: upper(receipt.recordId) }, true],
    ['topic', { ...receipt, topic: `${receipt.topic}x` }, false],
    ['subject', { ...receipt, subject: 'mallory' }, false],
    ['contentHash', { ...receipt, contentHash: flip(receipt.contentHash, 2) }, false],
    ['acceptedAt', { ...receipt, acceptedAt: receipt.acceptedAt + 1 }, false],
    ['acceptedAt not an integer', { ...receipt, acceptedAt: receipt.acceptedAt + 0.5 }, 'throws'],
    ['acceptedAt beyond uint64', { ...receipt, acceptedAt: 2 ** 64 }, 'throws'],
    ['leafHash', { ...receipt, leafHash: flip(receipt.leafHash) }, false],
    ['leafHash uppercase', { ...receipt, leafHash: upper(receipt.leafHash) }, false],
    ['leafHash without 0x', { ...receipt, leafHash: receipt.leafHash.slice(2) as Hex }, false],
    ['merkleRoot', { ...receipt, merkleRoot: flip(receipt.merkleRoot, 40) }, false],
    ['merkleRoot uppercase', { ...receipt, merkleRoot: upper(receipt.merkleRoot) }, false],
    ['merkleRoot without 0x', { ...receipt, merkleRoot: receipt.merkleRoot.slice(2) as Hex }, true],
    [
      'merkleRoot 0X',
      { ...receipt, merkleRoot: `0X${receipt.merkleRoot.slice(2)}` as Hex },
      'throws',
    ],
    [
      'merkleRoot 31 bytes',
      { ...receipt, merkleRoot: receipt.merkleRoot.slice(0, 64) as Hex },
      false,
    ],
    ['proof node added', { ...receipt, proof: [...proof, hex32(3)] }, false],
    ['proof node added first', { ...receipt, proof: [hex32(3), ...proof] }, false],
    [
      'proof 31-byte node added',
      { ...receipt, proof: [...proof, hex32(3).slice(0, 64) as Hex] },
      'throws',
    ],
    ['leafIndex (not part of the proof)', { ...receipt, leafIndex: receipt.leafIndex + 1 }, true],
  ];
  proof.forEach((node, i) => {
    const swap = (value: Hex) => proof.map((n, j) => (j === i ? value : n));
    cases.push(
      [`proof[${i}] flipped`, { ...receipt, proof: swap(flip(node, 2 + (i % 64))) }, false],
      [`proof[${i}] dropped`, { ...receipt, proof: proof.filter((_, j) => j !== i) }, false],
      [
        `proof[${i}] twice`,
        { ...receipt, proof: proof.flatMap((n, j) => (j === i ? [n, n] : [n])) },
        false,
      ],
      [`proof[${i}] uppercase`, { ...receipt, proof: swap(upper(node)) }, true],
      [`proof[${i}] without 0x`, { ...receipt, proof: swap(node.slice(2) as Hex) }, true],
      [`proof[${i}] 31 bytes`, { ...receipt, proof: swap(node.slice(0, 64) as Hex) }, 'throws'],
      [`proof[${i}] 33 bytes`, { ...receipt, proof: swap(`${node}00`) }, 'throws'],
      [`proof[${i}] not hex`, { ...receipt, proof: swap(`0x${'g'.repeat(64)}`) }, 'throws'],
    );
  });
  if (proof.length > 1) {
    cases.push(['proof reversed', { ...receipt, proof: [...proof].reverse() }, false]);
  }
  return cases;
}

describe('verifyReceiptProof', () => {
  test('default: every receipt of a batch verifies', () => {
    for (const count of [1, 2, 7]) {
      for (const receipt of receipts(count)) expect(verifyReceiptProof(receipt)).toBe(true);
    }
  });

  test("behavior: tampered receipts get OpenZeppelin's verdict, false where it throws", async () => {
    const verifiers = {
      noble: verifyReceiptProof,
      'hash-wasm': await createReceiptProofVerifier(),
    };
    for (const count of [1, 2, 5, 8]) {
      for (const receipt of receipts(count)) {
        expect(libraryVerdict(receipt)).toBe(true);
        for (const [name, tampered, expected] of tamperings(receipt)) {
          const where = `${count} leaves, leaf ${receipt.leafIndex}: ${name}`;
          expect(libraryVerdict(tampered), where).toBe(expected);
          for (const [hasher, verify] of Object.entries(verifiers)) {
            expect(verify(tampered), `${hasher}, ${where}`).toBe(expected === true);
          }
        }
      }
    }
  });

  test('behavior: an uppercase merkleRoot is refused, as StandardMerkleTree.verify refuses it', () => {
    const [receipt] = receipts(3);
    const root = upper(receipt!.merkleRoot);
    expect(
      StandardMerkleTree.verify(root, [...LEAF_ENCODING], leafValue(receipt!), receipt!.proof),
    ).toBe(false);
    expect(verifyReceiptProof({ ...receipt!, merkleRoot: root })).toBe(false);
  });

  test('behavior: a bytes32 field must be 0x and 64 hex digits, though the library pads a short one', async () => {
    // The library's abi encoder takes 0x1234 for bytes32 as 0x1234 followed by 30 zero bytes,
    // so this receipt passes there; it is not a schema-valid receipt, and it is refused here.
    const padded = `0x1234${'0'.repeat(60)}` as Hex;
    const leaves = [1, 2, 3].map((i) => ({
      recordId: i === 1 ? padded : hex32(i),
      topic: 'demo',
      subject: 'alice',
      contentHash: hex32(100 + i),
      acceptedAt: i,
    }));
    const tree = StandardMerkleTree.of(leaves.map(leafValue), [...LEAF_ENCODING]);
    const [receipt] = receipts(1);
    const short: Receipt = {
      ...receipt!,
      ...leaves[0]!,
      recordId: '0x1234',
      leafHash: leafHash(leaves[0]!),
      proof: tree.getProof(0) as Hex[],
      merkleRoot: tree.root as Hex,
    };
    expect(libraryVerdict(short)).toBe(true);
    expect(verifyReceiptProof(short)).toBe(false);
    expect((await createReceiptProofVerifier())(short)).toBe(false);
    expect(verifyReceiptProof({ ...short, recordId: padded })).toBe(true);
  });

  test('error: a tampered field fails', () => {
    const [receipt] = receipts(5);
    if (!receipt) throw new Error('no receipt');
    expect(verifyReceiptProof({ ...receipt, topic: 'other' })).toBe(false);
    expect(verifyReceiptProof({ ...receipt, contentHash: hex32(1) })).toBe(false);
    expect(verifyReceiptProof({ ...receipt, merkleRoot: hex32(1) })).toBe(false);
    expect(verifyReceiptProof({ ...receipt, proof: receipt.proof.slice(1) })).toBe(false);
  });

  test('error: malformed input gives false instead of throwing', async () => {
    const [receipt] = receipts(4);
    const verify = await createReceiptProofVerifier();
    const malformed = [
      { ...receipt!, proof: [receipt!.proof[0]!.slice(0, 64) as Hex] },
      { ...receipt!, proof: 'not an array' },
      { ...receipt!, proof: [42] },
      { ...receipt!, acceptedAt: Number.NaN },
      { ...receipt!, subject: undefined },
      { ...receipt!, recordId: 'hello' },
      { ...receipt!, merkleRoot: null },
      null,
    ] as unknown as Receipt[];
    for (const bad of malformed) {
      expect(libraryVerdict(bad)).not.toBe(true);
      expect(verifyReceiptProof(bad)).toBe(false);
      expect(verify(bad)).toBe(false);
    }
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

describe('receiptOf and splitReceipt', () => {
  test('default: a receipt is its anchor and its record, members in the documented order', () => {
    const [receipt] = receipts(3);
    const { anchor, record } = splitReceipt(receipt!);
    expect(Value.Check(ReceiptAnchor, anchor)).toBe(true);
    expect(Value.Check(ReceiptRecord, record)).toBe(true);
    const whole = receiptOf(anchor, record);
    expect(whole).toEqual(receipt);
    expect(Object.keys(whole)).toEqual(
      Object.keys(Receipt.properties).sort((a, b) => order(a) - order(b)),
    );
  });

  test('behavior: the two halves share no member and together are every member of Receipt', () => {
    const anchorKeys = Object.keys(ReceiptAnchor.properties);
    const recordKeys = Object.keys(ReceiptRecord.properties);
    expect(anchorKeys.filter((key) => recordKeys.includes(key))).toEqual([]);
    expect([...anchorKeys, ...recordKeys].sort()).toEqual(Object.keys(Receipt.properties).sort());
  });
});

/** docs/protocol.md §9 lists a receipt's members in this order. */
const DOCUMENTED_ORDER = [
  'status',
  'confirmations',
  'revision',
  'recordId',
  'topic',
  'subject',
  'contentHash',
  'acceptedAt',
  'leafHash',
  'leafIndex',
  'proof',
  'batchId',
  'merkleRoot',
  'recordCount',
  'chainId',
  'contract',
  'txHash',
  'blockNumber',
  'blockHash',
  'logIndex',
];
const order = (key: string) => DOCUMENTED_ORDER.indexOf(key);
