/**
 * Merkle benchmark (not a test): a batch tree and every leaf's proof, the writer's tree step.
 *
 *   npx tsx packages/protocol/bench/merkle.ts [--quick] [leaves=1000] [rounds=7]
 *
 * Rows, each from alternated rounds in one run:
 *   merkle          ours (buildMerkleTree + proof(i) for every leaf) against OpenZeppelin's
 *                   StandardMerkleTree.of + getProof(i) for every leaf, leaves/s.
 *   merkle-ceiling  ours against the keccak ceiling: the same leaves/s if the tree cost
 *                   nothing but its 3N − 1 keccak-256 calls (per leaf: keccak of its ABI
 *                   encoding, then keccak of that 32-byte hash; per inner node: keccak of 64
 *                   bytes), done with hash-wasm in a tight loop over pre-encoded inputs, the
 *                   cheapest way we know to call it, and the way the builder calls it:
 *                   init / update / digest('binary') on the shared hasher, every input a
 *                   typed array whose ArrayBuffer already exists (the leaf's 32-byte hash is
 *                   first copied into one reused buffer: hash-wasm reads `.buffer`, which for
 *                   a fresh small hash result makes V8 move it off the heap, and that costs
 *                   more than the copy). hash-wasm offers no cheaper public path (its wasm
 *                   exports and memory are private). Bar: ≥ 0.7×.
 * Before timing, ours must give byte-identical roots and proofs to StandardMerkleTree
 * (exit 1 if not).
 */
import { randomBytes } from 'node:crypto';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
// By path: @streamanchor/testing depends on this package, and bench.ts imports nothing.
import { alternate, compareRow, isQuick, reportRow } from '../../testing/src/bench';
import {
  buildMerkleTree,
  contentHashOf,
  encodeLeaf,
  LEAF_ENCODING,
  type LeafFields,
  leafValue,
  loadWasmKeccak,
} from '../src/index';

const quick = isQuick();
const positional = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const leaves = Number(positional[0] ?? 1000);
const rounds = Number(positional[1] ?? (quick ? 3 : 7));
/** Each run repeats the build until this long has passed, and reports leaves/s. */
const msPerRun = quick ? 150 : 400;

const records: LeafFields[] = Array.from({ length: leaves }, (_, i) => ({
  recordId: `0x${randomBytes(32).toString('hex')}` as const,
  topic: 'bench.topic',
  subject: `user-${i % 50}`,
  contentHash: contentHashOf(`{"n":${i}}`),
  acceptedAt: 1_700_000_000_000 + i,
}));

function library(batch: LeafFields[]) {
  const tree = StandardMerkleTree.of(batch.map(leafValue), [...LEAF_ENCODING]);
  return { root: tree.root, proofs: batch.map((_, i) => tree.getProof(i)) };
}

async function ours(batch: LeafFields[]) {
  const tree = await buildMerkleTree(batch);
  return { root: tree.root, proofs: batch.map((_, i) => tree.proof(i)) };
}

const expected = library(records);
const actual = await ours(records);
if (
  expected.root !== actual.root ||
  JSON.stringify(expected.proofs) !== JSON.stringify(actual.proofs)
) {
  console.error('broken: buildMerkleTree differs from StandardMerkleTree (root or proofs)');
  process.exit(1);
}
console.log(`same root and proofs as StandardMerkleTree for ${leaves} leaves: yes`);

const hasher = await loadWasmKeccak();
const keccak = (data: Uint8Array) => {
  hasher.init();
  hasher.update(data);
  return hasher.digest('binary');
};
const encoded = records.map((record) => encodeLeaf(record).slice());
const node = new Uint8Array(new ArrayBuffer(64));
const leafInner = new Uint8Array(new ArrayBuffer(32));
function ceiling(): void {
  for (const input of encoded) {
    leafInner.set(keccak(input));
    keccak(leafInner);
  }
  for (let i = 1; i < leaves; i++) keccak(node);
}

async function leavesPerSecond(build: () => unknown): Promise<number> {
  let built = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    await build();
    built += 1;
    elapsed = performance.now() - started;
  } while (elapsed < msPerRun);
  return (built * leaves * 1000) / elapsed;
}

// Warm-up of every path.
await leavesPerSecond(() => ours(records));
await leavesPerSecond(() => library(records));
await leavesPerSecond(ceiling);

const versusLibrary = await alternate({
  rounds,
  ours: () => leavesPerSecond(() => ours(records)),
  baseline: () => leavesPerSecond(() => library(records)),
});
reportRow(
  compareRow({
    id: 'merkle',
    what: `Merkle tree + all proofs, ${leaves.toLocaleString('en-US')} leaves`,
    unit: 'leaves/s',
    better: 'higher',
    baselineName: '@openzeppelin/merkle-tree',
    runs: versusLibrary,
  }),
);
const versusCeiling = await alternate({
  rounds,
  ours: () => leavesPerSecond(() => ours(records)),
  baseline: () => leavesPerSecond(ceiling),
});
reportRow(
  compareRow({
    id: 'merkle-ceiling',
    what: `Merkle tree + all proofs against its keccak calls alone, ${leaves.toLocaleString('en-US')} leaves`,
    unit: 'leaves/s',
    better: 'higher',
    baselineName: 'keccak ceiling (hash-wasm)',
    runs: versusCeiling,
    bar: { text: '≥ 0.7× keccak ceiling', ratio: 0.7 },
  }),
);
