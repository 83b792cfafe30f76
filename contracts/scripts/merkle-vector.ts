// Generates the cross-check vector hard-coded in test/StreamAnchor.t.sol
// (test_crossCheck_openZeppelinStandardMerkleTreeVector).
//
//   cd contracts && npx tsx scripts/merkle-vector.ts
//
// The tree is built by @openzeppelin/merkle-tree's StandardMerkleTree with the record leaf
// types the protocol uses; the output is Solidity source to paste into the test.
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { keccak256, pad, toHex } from 'viem';

const types = ['bytes32', 'string', 'string', 'bytes32', 'uint64'];

const values = Array.from({ length: 5 }, (_, i) => [
  pad(toHex(i + 1), { size: 32 }),
  `topic/${i % 2 === 0 ? 'alpha' : 'beta'}`,
  `subject-${i}-ünïcødé`,
  keccak256(toHex(`content ${i}`)),
  (1_700_000_000_000n + BigInt(i)).toString(),
]);

const tree = StandardMerkleTree.of(values, types);
const index = 3;
const [recordId, topic, subject, contentHash, acceptedAt] = tree.at(index)!;
const proof = tree.getProof(index);

const lines = [
  `// root   = ${tree.root}`,
  `// leaves = ${values.length}, proven index = ${index}`,
  `bytes32 constant VEC_ROOT = ${tree.root};`,
  `bytes32 constant VEC_LEAF = ${tree.leafHash(tree.at(index)!)};`,
  `bytes32 constant VEC_RECORD_ID = ${recordId};`,
  `string constant VEC_TOPIC = unicode"${topic}";`,
  `string constant VEC_SUBJECT = unicode"${subject}";`,
  `bytes32 constant VEC_CONTENT_HASH = ${contentHash};`,
  `uint64 constant VEC_ACCEPTED_AT = ${acceptedAt};`,
  `uint32 constant VEC_RECORD_COUNT = ${values.length};`,
  `// proof (${proof.length} nodes):`,
  ...proof.map((p, i) => `proof[${i}] = ${p};`),
];
console.log(lines.join('\n'));
