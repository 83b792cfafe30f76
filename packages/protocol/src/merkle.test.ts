import { readFileSync } from 'node:fs';
import { keccak_256 } from '@noble/hashes/sha3';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { describe, expect, test } from 'vitest';
import {
  buildMerkleTree,
  buildMerkleTreeWith,
  type Keccak256,
  MerkleInputError,
  type MerkleTree,
} from './merkle';
import type { Hex } from './primitives';
import { LEAF_ENCODING, type LeafFields, leafValue } from './record';

/** Deterministic PRNG (mulberry32) so that a failing case can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const utf8 = new TextEncoder();
const PIECES = ['a', 'Z', '.', '-', '_', '7', 'é', 'ß', '€', '中', '😀', '🧪', ' '];

function randomText(random: () => number): string {
  const kind = Math.floor(random() * 8);
  const pieces = (count: number) =>
    Array.from({ length: count }, () => PIECES[Math.floor(random() * PIECES.length)]).join('');
  switch (kind) {
    case 0:
      return 'x'.repeat(32); // exactly 32 bytes
    case 1:
      return 'y'.repeat(64); // exactly 64 bytes
    case 2:
      return '😀'.repeat(8); // exactly 32 bytes of 4-byte characters
    case 3:
      return `€${'é'.repeat(14)}${'a'.repeat(33)}`; // 64 bytes, mixed widths
    case 4:
      return pieces(40 + Math.floor(random() * 60)); // well over 32 bytes
    default:
      return pieces(1 + Math.floor(random() * 12));
  }
}

function randomHex32(random: () => number): Hex {
  let hex = '0x';
  for (let i = 0; i < 32; i++) {
    hex += Math.floor(random() * 256)
      .toString(16)
      .padStart(2, '0');
  }
  return hex as Hex;
}

const EDGE_TIMES = [0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];

function randomLeaves(count: number, seed: number): LeafFields[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) => ({
    recordId: randomHex32(random),
    topic: randomText(random),
    subject: randomText(random),
    contentHash: randomHex32(random),
    acceptedAt:
      i < EDGE_TIMES.length && count > 5
        ? EDGE_TIMES[i]!
        : Math.floor(random() * Number.MAX_SAFE_INTEGER),
  }));
}

/** The builder agrees with StandardMerkleTree on the root, every leaf and every proof. */
function expectSameAsLibrary(leaves: LeafFields[], tree: MerkleTree): void {
  const library = StandardMerkleTree.of(leaves.map(leafValue), [...LEAF_ENCODING]);
  const dump = library.dump();
  expect(tree.root).toBe(library.root);
  expect(tree.leafHashes).toHaveLength(leaves.length);
  leaves.forEach((_, i) => {
    expect(tree.leafHashes[i]).toBe(dump.tree[dump.values[i]!.treeIndex]);
    expect(tree.proof(i)).toEqual(library.getProof(i));
  });
}

const SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 16, 33, 100, 257];
const nobleKeccak: Keccak256 = (data) => keccak_256(data);

describe('buildMerkleTree', () => {
  test('default: same root, leaf hashes and proofs as StandardMerkleTree', async () => {
    const leaves = randomLeaves(10, 1);
    expectSameAsLibrary(leaves, await buildMerkleTree(leaves));
  });

  test.each(SIZES)('behavior: %i random leaves match StandardMerkleTree', async (size) => {
    const leaves = randomLeaves(size, 1000 + size);
    // The generator really covers the string shapes the encoding must get right.
    if (size >= 100) {
      const lengths = leaves.flatMap((l) => [l.topic, l.subject].map((s) => utf8.encode(s).length));
      expect(lengths).toContain(32);
      expect(lengths).toContain(64);
      expect(lengths.some((n) => n > 32 && n % 32 !== 0)).toBe(true);
    }
    expectSameAsLibrary(leaves, await buildMerkleTree(leaves));
  });

  test('behavior: the injected-hasher build (@noble/hashes) gives the same tree', () => {
    for (const size of [1, 2, 7, 33]) {
      const leaves = randomLeaves(size, 2000 + size);
      expectSameAsLibrary(leaves, buildMerkleTreeWith(leaves, nobleKeccak));
    }
  });

  test('behavior: identical leaves take tree positions in input order, as in the library', async () => {
    const [a, b] = randomLeaves(2, 3);
    const leaves = [a!, b!, a!, a!, b!];
    const tree = await buildMerkleTree(leaves);
    expectSameAsLibrary(leaves, tree);
    // Copies of `a` sit at different depths here, so their order shows in the proofs.
    expect(tree.proof(0)).not.toEqual(tree.proof(3));
  });

  test('behavior: empty strings, lone surrogates and uint64 times beyond 2^53', async () => {
    const [base] = randomLeaves(1, 4);
    const leaves: LeafFields[] = [
      { ...base!, topic: '', subject: '' },
      { ...base!, subject: 'broken \ud800 surrogate' },
      { ...base!, acceptedAt: 2 ** 60 }, // the library encodes String(2 ** 60)
      { ...base!, acceptedAt: 2 ** 64 - 2 ** 11 }, // the largest double below 2^64
      { ...base!, recordId: base!.recordId.toUpperCase().replace('0X', '0x') as Hex },
    ];
    expectSameAsLibrary(leaves, await buildMerkleTree(leaves));
  });

  test('behavior: docs/test-vectors/merkle-v1.json reproduces', async () => {
    const vector = JSON.parse(
      readFileSync(new URL('../../../docs/test-vectors/merkle-v1.json', import.meta.url), 'utf8'),
    ) as { merkleRoot: Hex; records: (LeafFields & { leafHash: Hex; proof: Hex[] })[] };
    const tree = await buildMerkleTree(vector.records);
    expect(tree.root).toBe(vector.merkleRoot);
    vector.records.forEach((record, i) => {
      expect(tree.leafHashes[i]).toBe(record.leafHash);
      expect(tree.proof(i)).toEqual(record.proof);
    });
  });

  test('behavior: proof() returns a fresh array each time', async () => {
    const tree = await buildMerkleTree(randomLeaves(4, 5));
    const first = tree.proof(1);
    first.pop();
    expect(tree.proof(1)).toHaveLength(2);
  });

  test('error: empty input throws a clear error', async () => {
    await expect(buildMerkleTree([])).rejects.toThrow(
      new MerkleInputError('cannot build a Merkle tree from zero leaves'),
    );
    expect(() => buildMerkleTreeWith([], nobleKeccak)).toThrow(MerkleInputError);
  });

  test('error: malformed fields name the leaf and the field', async () => {
    const [good] = randomLeaves(1, 6);
    const cases: [Partial<LeafFields>, RegExp][] = [
      [{ recordId: '0x1234' }, /leaf 1: recordId must be 0x and 64 hex digits/],
      [{ contentHash: `0x${'zz'.repeat(32)}` }, /leaf 1: contentHash must be/],
      [{ acceptedAt: -1 }, /leaf 1: acceptedAt -1 is not a uint64/],
      [{ acceptedAt: 1.5 }, /leaf 1: acceptedAt 1.5 is not a uint64/],
      [{ acceptedAt: 2 ** 64 }, /is not a uint64/],
    ];
    for (const [patch, message] of cases) {
      await expect(buildMerkleTree([good!, { ...good!, ...patch }])).rejects.toThrow(message);
    }
  });

  test('error: proof index out of range', async () => {
    const tree = await buildMerkleTree(randomLeaves(3, 7));
    expect(() => tree.proof(3)).toThrow(RangeError);
    expect(() => tree.proof(-1)).toThrow(RangeError);
    expect(() => tree.proof(0.5)).toThrow(RangeError);
  });
});
