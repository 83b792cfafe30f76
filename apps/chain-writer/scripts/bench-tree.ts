// Times the batcher's tree step for batches of N leaves, both ways: OpenZeppelin's
// StandardMerkleTree.of + getProof for every leaf (what the writer used before), and the
// protocol's buildMerkleTree + every proof (what buildBatchTree does now). Checks that both
// give the same root and proofs, then prints figures; nothing else is asserted.
//
//   cd apps/chain-writer && npx tsx scripts/bench-tree.ts [leaves=1000] [rounds=5] [libraryRounds=rounds]
import { randomBytes } from 'node:crypto';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { contentHashOf, LEAF_ENCODING, type LeafFields, leafValue } from '@streamanchor/protocol';
import { buildBatchTree } from '../src/batcher/tree';

const leaves = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 5);
const libraryRounds = Number(process.argv[4] ?? rounds);
const records: LeafFields[] = Array.from({ length: leaves }, (_, i) => ({
  recordId: `0x${randomBytes(32).toString('hex')}` as const,
  topic: 'bench.topic',
  subject: `user-${i % 50}`,
  contentHash: contentHashOf(`{"n":${i}}`),
  acceptedAt: 1_700_000_000_000 + i,
}));

function library(batch: LeafFields[]) {
  const tree = StandardMerkleTree.of(batch.map(leafValue), [...LEAF_ENCODING]);
  return { merkleRoot: tree.root, proofs: batch.map((_, i) => tree.getProof(i)) };
}

async function builder(batch: LeafFields[]) {
  const tree = await buildBatchTree(batch);
  return { merkleRoot: tree.merkleRoot, proofs: tree.leaves.map((leaf) => leaf.proof) };
}

async function measure(name: string, count: number, build: (batch: LeafFields[]) => unknown) {
  await build(records.slice(0, Math.min(50, leaves))); // warm-up
  const times: number[] = [];
  for (let round = 0; round < count; round++) {
    const started = performance.now();
    await build(records);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  console.log(
    `${name} tree+proofs for ${leaves} leaves: median ${median.toFixed(1)} ms, ` +
      `min ${times[0]!.toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms over ${count} rounds ` +
      `→ ${Math.round((leaves / median) * 1000)} leaves/s`,
  );
}

const expected = library(records);
const actual = await builder(records);
const same =
  expected.merkleRoot === actual.merkleRoot &&
  JSON.stringify(expected.proofs) === JSON.stringify(actual.proofs);
console.log(`same root and proofs: ${same ? 'yes' : 'NO'}`);
if (!same) process.exitCode = 1;

if (libraryRounds > 0) await measure('StandardMerkleTree', libraryRounds, library);
await measure('buildMerkleTree   ', rounds, builder);
