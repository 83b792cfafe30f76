// Times the batcher's tree step (StandardMerkleTree.of + every proof + the protocol leaf check)
// for batches of N leaves. Figures only; nothing is asserted.
//
//   cd apps/chain-writer && npx tsx scripts/bench-tree.ts [leaves=1000] [rounds=5]
import { randomBytes } from 'node:crypto';
import { contentHashOf } from '@streamanchor/protocol';
import { buildBatchTree } from '../src/batcher/tree';

const leaves = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 5);
const records = Array.from({ length: leaves }, (_, i) => ({
  recordId: `0x${randomBytes(32).toString('hex')}` as const,
  topic: 'bench.topic',
  subject: `user-${i % 50}`,
  contentHash: contentHashOf(`{"n":${i}}`),
  acceptedAt: 1_700_000_000_000 + i,
}));

buildBatchTree(records.slice(0, Math.min(50, leaves))); // warm-up
const times: number[] = [];
for (let round = 0; round < rounds; round++) {
  const started = performance.now();
  buildBatchTree(records);
  times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)]!;
console.log(
  `tree+proofs for ${leaves} leaves: median ${median.toFixed(0)} ms, min ${times[0]!.toFixed(0)} ms, ` +
    `max ${times.at(-1)!.toFixed(0)} ms over ${rounds} rounds → ${Math.round((leaves / median) * 1000)} leaves/s`,
);
