import { readFileSync } from 'node:fs';
import { keccak_256 } from '@noble/hashes/sha3';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { standardLeafHash } from '@openzeppelin/merkle-tree/dist/hashes.js';
import { describe, expect, test } from 'vitest';
import { prng } from './_test/prng';
import {
  buildMerkleTree,
  buildMerkleTreeWith,
  createProofVerifier,
  type Keccak256,
  type LeafProof,
  loadProofVerifier,
  MerkleInputError,
  type MerkleTree,
  verifyProofWith,
} from './merkle';
import type { Hex } from './primitives';
import { LEAF_ENCODING, type LeafFields, leafValue } from './record';

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

  test('behavior: long strings (leaf encodings past the first scratch size) match StandardMerkleTree', async () => {
    const random = prng(11);
    const leaves = randomLeaves(40, 12).map((leaf, i) => ({
      ...leaf,
      // 300 to ~1,200 bytes a string: the encodings outgrow the builder's first buffer.
      topic: 'τ'.repeat(150 + Math.floor(random() * 300)),
      subject: i % 2 ? 'x'.repeat(300 + i) : '😀'.repeat(100 + i),
    }));
    expectSameAsLibrary(leaves, await buildMerkleTree(leaves));
  });

  test('behavior: a tree stays intact after later builds (the builder reuses its buffers)', async () => {
    const first = randomLeaves(33, 13);
    const tree = await buildMerkleTree(first);
    await buildMerkleTree(randomLeaves(257, 14));
    buildMerkleTreeWith(randomLeaves(5, 15), nobleKeccak);
    expectSameAsLibrary(first, tree);
  });

  test('behavior: a batch too large for the shared buffers gives the same tree as on @noble/hashes', async () => {
    // 12,000 leaves: 36,000 nodes' bytes, past the 1 MiB the builder keeps between builds.
    const leaves = randomLeaves(12_000, 16);
    const wasm = await buildMerkleTree(leaves);
    const noble = buildMerkleTreeWith(leaves, nobleKeccak);
    expect(wasm.root).toBe(noble.root);
    expect(wasm.leafHashes).toEqual(noble.leafHashes);
    for (let i = 0; i < leaves.length; i += 997) expect(wasm.proof(i)).toEqual(noble.proof(i));
    // And a spot check against the library on the builder's output.
    const claims = [0, 5_001, 11_999].map((i) => ({
      ...leaves[i]!,
      leafHash: wasm.leafHashes[i]!,
      proof: wasm.proof(i),
      merkleRoot: wasm.root,
    }));
    for (const claim of claims) expect(libraryVerdict(claim)).toBe(true);
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

/** Every leaf of an OpenZeppelin tree over `leaves` as a claim: fields, leaf hash, proof, root. */
function libraryClaims(leaves: LeafFields[]): LeafProof[] {
  const library = StandardMerkleTree.of(leaves.map(leafValue), [...LEAF_ENCODING]);
  const { tree, values } = library.dump();
  return leaves.map((leaf, i) => ({
    ...leaf,
    leafHash: tree[values[i]!.treeIndex]!,
    proof: library.getProof(i),
    merkleRoot: library.root,
  }));
}

/** StandardMerkleTree.verify on a claim, with the leaf hash checked first ('throws' if it throws). */
function libraryVerdict(claim: LeafProof): boolean | 'throws' {
  try {
    if (standardLeafHash([...LEAF_ENCODING], leafValue(claim)) !== claim.leafHash) return false;
    return StandardMerkleTree.verify(claim.merkleRoot, [...LEAF_ENCODING], leafValue(claim), [
      ...claim.proof,
    ]);
  } catch {
    return 'throws';
  }
}

describe('verifyProofWith', () => {
  const nobleVerify = (claim: LeafProof) => verifyProofWith(nobleKeccak, claim);

  test('default: every leaf of a library-built tree verifies, on @noble/hashes and hash-wasm', async () => {
    const wasmVerify = await loadProofVerifier();
    for (const claim of libraryClaims(randomLeaves(10, 8))) {
      expect(nobleVerify(claim)).toBe(true);
      expect(wasmVerify(claim)).toBe(true);
    }
  });

  test.each([1, 2, 3, 7, 64, 1000])(
    "behavior: %i random leaves give StandardMerkleTree.verify's verdict on every leaf, both hashers, with and without memo",
    async (size) => {
      const wasmVerify = await loadProofVerifier();
      const nobleMemoVerify = createProofVerifier(nobleKeccak);
      const claims = libraryClaims(randomLeaves(size, 3000 + size));
      const otherRoot = libraryClaims(randomLeaves(size, 4000 + size))[0]!.merkleRoot;
      claims.forEach((claim, i) => {
        const next = claims[(i + 1) % size]!;
        const cases: LeafProof[] = [
          claim,
          // Another leaf's proof, or (one leaf) another leaf hash and proof-less root.
          { ...claim, proof: next.proof, merkleRoot: size === 1 ? otherRoot : claim.merkleRoot },
          { ...claim, merkleRoot: otherRoot },
        ];
        cases.forEach((c, k) => {
          // The library checks about a thousand proofs a second: on the large tree it is
          // asked for every tenth leaf, and the others must give its verdict for the same case.
          const expected = size < 1000 || i % 10 === 0 ? libraryVerdict(c) : k === 0;
          expect(expected, `leaf ${i}, case ${k}`).toBe(k === 0);
          expect(nobleVerify(c), `noble, leaf ${i}, case ${k}`).toBe(expected);
          expect(wasmVerify(c), `hash-wasm, leaf ${i}, case ${k}`).toBe(expected);
          expect(nobleMemoVerify(c), `noble, remembering, leaf ${i}, case ${k}`).toBe(expected);
        });
      });
    },
    60_000,
  );

  test("behavior: shares the tree builder's leaf encoding (strings, lone surrogates, big times)", async () => {
    const wasmVerify = await loadProofVerifier();
    const [base] = randomLeaves(1, 9);
    const leaves: LeafFields[] = [
      { ...base!, topic: '', subject: '' },
      { ...base!, subject: 'broken \ud800 surrogate' },
      { ...base!, acceptedAt: 2 ** 60 },
      { ...base!, acceptedAt: 2 ** 64 - 2 ** 11 },
      { ...base!, topic: 'x'.repeat(32), subject: '😀'.repeat(200) },
    ];
    const ours = buildMerkleTreeWith(leaves, nobleKeccak);
    libraryClaims(leaves).forEach((claim, i) => {
      expect(claim.leafHash).toBe(ours.leafHashes[i]);
      expect(libraryVerdict(claim)).toBe(true);
      expect(nobleVerify(claim)).toBe(true);
      expect(wasmVerify(claim)).toBe(true);
    });
  });

  test('behavior: a remembering verifier keeps its verdicts across batches and past its memo limit', async () => {
    const verify = await loadProofVerifier();
    // 2 × 2,500 leaves: 9,996 non-root nodes, more than the memo holds, checked twice over.
    const batches = [2500, 2500].map((size, b) => {
      const leaves = randomLeaves(size, 5000 + b);
      const tree = buildMerkleTreeWith(leaves, nobleKeccak);
      return leaves.map((leaf, i) => ({
        ...leaf,
        leafHash: tree.leafHashes[i]!,
        proof: tree.proof(i),
        merkleRoot: tree.root,
      }));
    });
    for (let pass = 0; pass < 2; pass++) {
      for (const claims of batches) {
        claims.forEach((claim, i) => {
          const next = claims[(i + 1) % claims.length]!;
          expect(verify(claim), `pass ${pass}, leaf ${i}`).toBe(true);
          // Another leaf with this proof: the remembered steps are for other nodes below.
          expect(verify({ ...next, proof: claim.proof })).toBe(false);
          expect(verify({ ...claim, topic: `${claim.topic}!` })).toBe(false);
          const flipped: string[] = [...claim.proof];
          const top = flipped.length - 1;
          flipped[top] = `${flipped[top]!.slice(0, 65)}${flipped[top]!.endsWith('0') ? '1' : '0'}`;
          expect(verify({ ...claim, proof: flipped })).toBe(false);
        });
      }
      // One batch's proof against the other batch's root.
      expect(verify({ ...batches[0]![0]!, merkleRoot: batches[1]![0]!.merkleRoot })).toBe(false);
    }
  });

  test('behavior: a remembering verifier hashes each inner node once per batch, in any receipt order', async () => {
    const leaves = randomLeaves(300, 17);
    const tree = buildMerkleTreeWith(leaves, nobleKeccak);
    const claims = leaves.map((leaf, i) => ({
      ...leaf,
      leafHash: tree.leafHashes[i]!,
      proof: tree.proof(i),
      merkleRoot: tree.root,
    }));
    const random = prng(18);
    const shuffled = [...claims].sort(() => random() - 0.5);
    let hashes = 0;
    const verify = createProofVerifier((data) => {
      hashes++;
      return keccak_256(data);
    });
    for (const claim of shuffled) expect(verify(claim)).toBe(true);
    // Two hashes a leaf, one per inner node.
    expect(hashes).toBe(2 * 300 + 299);
  });

  test('behavior: a remembered step is reused only for a sibling that reads as the same bytes', async () => {
    const verify = await loadProofVerifier();
    const claims = libraryClaims(randomLeaves(16, 19));
    for (const claim of claims) expect(verify(claim)).toBe(true);
    // Every step is remembered now; each case must still get the library's verdict.
    claims.forEach((claim, i) => {
      const other = claims[(i + 5) % claims.length]!;
      const cases: LeafProof[] = [
        // The library reads a node in either case, with or without 0x.
        { ...claim, proof: claim.proof.map((node) => node.toUpperCase().replace('0X', '0x')) },
        { ...claim, proof: claim.proof.map((node) => node.slice(2)) },
        { ...claim, proof: [...claim.proof.slice(0, 2), ...other.proof.slice(2)] },
        { ...claim, proof: [claim.proof[0]!, other.proof[0]!, ...claim.proof.slice(2)] },
        { ...claim, proof: claim.proof.slice(0, -1) },
        { ...claim, proof: [...claim.proof, claim.proof.at(-1)!] },
        {
          ...claim,
          proof: [claim.proof[0]!, undefined as unknown as string, ...claim.proof.slice(2)],
        },
        { ...claim, proof: [claim.leafHash, ...claim.proof.slice(1)] },
      ];
      cases.forEach((c, k) => {
        expect(verify(c), `leaf ${i}, case ${k}`).toBe(libraryVerdict(c) === true);
        expect(nobleVerify(c), `noble, leaf ${i}, case ${k}`).toBe(libraryVerdict(c) === true);
      });
    });
  });

  test("behavior: a step remembered from the other child's side needs a sibling that reads as its node", async () => {
    const claims = libraryClaims(randomLeaves(16, 20));
    const [a] = claims;
    // b's parent is a's parent's sibling: b's step 1 is the node a's check computed last-but-one.
    const b = claims.find((c) => c.proof[2] === a!.proof[2] && c.proof[1] !== a!.proof[1])!;
    const withStep = (step: unknown): LeafProof => ({
      ...b,
      proof: [b.proof[0]!, step as string, ...b.proof.slice(2)],
    });
    const cases: [LeafProof, boolean][] = [
      [withStep(undefined), false],
      [withStep(b.proof[0]), false],
      [withStep(b.proof[1]!.toUpperCase().replace('0X', '0x')), true],
      [withStep(b.proof[1]!.slice(2)), true],
      [b, true],
    ];
    for (const [claim, verdict] of cases) {
      const verify = await loadProofVerifier();
      expect(verify(a!)).toBe(true);
      expect(verify(claim)).toBe(verdict);
      expect(libraryVerdict(claim) === true).toBe(verdict);
    }
  });

  test('error: malformed input gives false, where the library throws', () => {
    const [claim] = libraryClaims(randomLeaves(4, 10));
    const cases: LeafProof[] = [
      { ...claim!, proof: [claim!.proof[0]!.slice(0, 64), ...claim!.proof.slice(1)] }, // 31 bytes
      { ...claim!, proof: [`${claim!.proof[0]!}00`] }, // 33 bytes
      { ...claim!, proof: [`0x${'g'.repeat(64)}`] },
      { ...claim!, proof: [`0X${claim!.proof[0]!.slice(2)}`] },
      { ...claim!, proof: [''] },
      { ...claim!, proof: [null as unknown as string] },
      { ...claim!, merkleRoot: `0x${'zz'.repeat(32)}` },
      { ...claim!, recordId: '0x1234' as Hex }, // OZ pads it, so the leaf hash differs
      { ...claim!, acceptedAt: 1.5 },
      { ...claim!, acceptedAt: -1 },
      { ...claim!, acceptedAt: 2 ** 64 },
      { ...claim!, topic: 7 as unknown as string },
    ];
    cases.forEach((c, k) => {
      expect(libraryVerdict(c), `case ${k}`).not.toBe(true);
      expect(nobleVerify(c), `case ${k}`).toBe(false);
    });
    expect(nobleVerify({ ...claim!, proof: 'nope' as unknown as string[] })).toBe(false);
    expect(nobleVerify(null as unknown as LeafProof)).toBe(false);
  });
});
