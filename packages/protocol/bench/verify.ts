// Receipt proof verification benchmark (not a test): builds a 1,024-leaf batch tree, then
// in each round times, back to back:
// - ours on hash-wasm, createReceiptProofVerifier (the indexer's outbox): a fresh verifier for
//   every pass over the batch, so each inner node is hashed once per pass (3 hashes a
//   receipt: two for its leaf, one inner node), as when the outbox checks a batch it has not
//   seen (its memo only ever helps within a batch);
// - ours on hash-wasm, stateless (verifyProofWith): every receipt from scratch (12 hashes),
//   as for receipts of unrelated batches; its keccak wrapper is the one merkle.ts uses;
// - ours on @noble/hashes, verifyReceiptProof (sync, stateless; the client SDK);
// - OpenZeppelin: StandardMerkleTree.verify (the baseline), and the check verifyReceiptProof
//   made before (leafHash(receipt) === receipt.leafHash, then StandardMerkleTree.verify).
//
//   npx tsx packages/protocol/bench/verify.ts [rounds=7] [msPerRun=300]
//   (or: cd packages/protocol && npx tsx bench/verify.ts, or pnpm run bench:verify)
//
// Each run verifies the receipts of the batch in order (proofs of 10 nodes), pass after
// pass, for at least msPerRun. The machine may be shared, so the figure to read is the
// median; the ratios are of medians. Every verdict must be true (a wrong one aborts);
// nothing is asserted on speed.
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
// By path: @streamanchor/testing depends on this package, and bench.ts imports nothing.
import { compareRow, isQuick, reportRow } from '../../testing/src/bench';
import {
  buildMerkleTree,
  canonicalPayload,
  contentHashOf,
  createReceiptProofVerifier,
  type Keccak256,
  LEAF_ENCODING,
  type LeafFields,
  leafHash,
  leafValue,
  loadWasmKeccak,
  type Receipt,
  verifyProofWith,
  verifyReceiptProof,
} from '../src/index';

const quick = isQuick();
const positional = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const rounds = Number(positional[0] ?? (quick ? 3 : 7));
const msPerRun = Number(positional[1] ?? (quick ? 150 : 300));
const LEAVES = 1024;

function hex32(n: number): `0x${string}` {
  return `0x${n.toString(16).padStart(64, '0')}`;
}

const leaves: LeafFields[] = Array.from({ length: LEAVES }, (_, i) => ({
  recordId: contentHashOf(`record ${i}`),
  topic: `sensors/${i % 7}`,
  subject: `device-${i % 97}`,
  contentHash: contentHashOf(canonicalPayload({ i, reading: i * 0.25, unit: 'C' })),
  acceptedAt: 1_700_000_000_000 + i * 13,
}));
const tree = await buildMerkleTree(leaves);
const library = StandardMerkleTree.of(leaves.map(leafValue), [...LEAF_ENCODING]);
if (library.root !== tree.root) throw new Error('the batch tree differs from StandardMerkleTree');

const receipts: Receipt[] = leaves.map((leaf, i) => ({
  status: 'final',
  confirmations: 64,
  revision: 2,
  ...leaf,
  leafHash: tree.leafHashes[i]!,
  leafIndex: i,
  proof: tree.proof(i),
  batchId: hex32(999),
  merkleRoot: tree.root,
  recordCount: LEAVES,
  chainId: 31337,
  contract: `0x${'ab'.repeat(20)}`,
  txHash: hex32(5),
  blockNumber: 7,
  blockHash: hex32(6),
  logIndex: 0,
}));

type Verify = (receipt: Receipt) => boolean;

const hasher = await loadWasmKeccak();
const wasmKeccak: Keccak256 = (data) => {
  hasher.init();
  hasher.update(data);
  return hasher.digest('binary');
};
const ozVerify: Verify = (r) =>
  StandardMerkleTree.verify(r.merkleRoot, [...LEAF_ENCODING], leafValue(r), r.proof);

const OURS_WASM = 'ours (hash-wasm, createReceiptProofVerifier)';
const OZ_VERIFY = 'OpenZeppelin StandardMerkleTree.verify';
/** Name, and the verifier to use for one pass over the batch. */
const candidates: [string, () => Verify | Promise<Verify>][] = [
  [OURS_WASM, () => createReceiptProofVerifier()],
  ['ours (hash-wasm, stateless)', () => (r) => verifyProofWith(wasmKeccak, r)],
  ['ours (noble, verifyReceiptProof)', () => verifyReceiptProof],
  [OZ_VERIFY, () => ozVerify],
  [
    'OpenZeppelin leafHash + verify (before)',
    () => (r) => leafHash(r) === r.leafHash && ozVerify(r),
  ],
];

/** Receipts per second over passes through the batch, each with a verifier from `forPass`. */
async function run(name: string, forPass: () => Verify | Promise<Verify>, ms: number) {
  let count = 0;
  let elapsed = 0;
  const start = performance.now();
  let verify = await forPass();
  do {
    for (let i = 0; i < 64; i++, count++) {
      if (count % LEAVES === 0 && count > 0) verify = await forPass();
      const receipt = receipts[count % LEAVES]!;
      if (!verify(receipt)) throw new Error(`${name}: receipt ${receipt.leafIndex} refused`);
    }
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return (count / elapsed) * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

for (const [name, forPass] of candidates) await run(name, forPass, Math.min(msPerRun, 200)); // warm-up
const results = new Map<string, number[]>(candidates.map(([name]) => [name, []]));
for (let round = 0; round < rounds; round++) {
  // Alternate the order each round, so no candidate always gets the same slot.
  for (const [name, forPass] of round % 2 === 0 ? candidates : [...candidates].reverse()) {
    results.get(name)!.push(await run(name, forPass, msPerRun));
  }
}

console.log(
  `receipt proof verification, ${LEAVES}-leaf tree (proofs of ${receipts[0]!.proof.length} nodes), ` +
    `${rounds} rounds of >= ${msPerRun} ms each, Node ${process.version}`,
);
const width = Math.max(...candidates.map(([name]) => name.length));
console.log(
  `${'receipts/s'.padEnd(width)}  ${'min'.padStart(10)}  ${'median'.padStart(10)}  ${'max'.padStart(10)}`,
);
for (const [name, values] of results) {
  console.log(
    `${name.padEnd(width)}  ${fmt(Math.min(...values)).padStart(10)}  ` +
      `${fmt(median(values)).padStart(10)}  ${fmt(Math.max(...values)).padStart(10)}`,
  );
}
const baseline = median(results.get(OZ_VERIFY)!);
for (const name of candidates.map(([n]) => n).filter((n) => n.startsWith('ours'))) {
  console.log(`${name} / ${OZ_VERIFY}: ${(median(results.get(name)!) / baseline).toFixed(1)}x`);
}

const ours = results.get(OURS_WASM)!;
const ozRuns = results.get(OZ_VERIFY)!;
const row = compareRow({
  id: 'verify',
  what: `receipt verification (leaf re-derived, whole path to the root), ${LEAVES}-leaf batch`,
  unit: 'receipts/s',
  better: 'higher',
  baselineName: OZ_VERIFY,
  runs: { ours, baseline: ozRuns, ratios: ours.map((value, i) => value / ozRuns[i]!) },
});
row.bar = { text: '≥ 50,000 receipts/s', met: row.ours.median >= 50_000 };
reportRow(row);
