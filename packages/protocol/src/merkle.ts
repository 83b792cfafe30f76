import { BaseError } from './errors';
import { loadWasmKeccak } from './keccak';
import type { Hex } from './primitives';
import type { LeafFields } from './record';

/**
 * A batch's Merkle tree, identical to OpenZeppelin's
 * `StandardMerkleTree.of(leaves.map(leafValue), [...LEAF_ENCODING])` (sortLeaves: true):
 * same root, same leaf hash and same `getProof(i)` for every input index i.
 */
export interface MerkleTree {
  root: Hex;
  /** Leaf hash per input index (keccak256(keccak256(abi.encode(...)))). */
  leafHashes: Hex[];
  /** Sibling hashes from the leaf of input index `i` up to the root (a fresh array). */
  proof(i: number): Hex[];
}

/** keccak-256 of `data`: 32 bytes. The result may be kept by the caller. */
export type Keccak256 = (data: Uint8Array) => Uint8Array;

/** Thrown for input the tree cannot be built from (no leaves, a malformed field). */
export class MerkleInputError extends BaseError {
  override name = 'MerkleInputError';
}

let wasmKeccak: Promise<Keccak256> | undefined;

/** The shared hash-wasm keccak-256, as a bytes-to-bytes function. */
function loadKeccak(): Promise<Keccak256> {
  wasmKeccak ??= loadWasmKeccak().then(
    (hasher): Keccak256 =>
      (data) => {
        hasher.init();
        hasher.update(data);
        return hasher.digest('binary');
      },
    (error: unknown) => {
      wasmKeccak = undefined;
      throw error;
    },
  );
  return wasmKeccak;
}

/**
 * Builds the batch tree over `leaves` in the given order with hash-wasm's keccak-256
 * (the hasher is instantiated on first use, hence async; the build itself is synchronous).
 */
export async function buildMerkleTree(leaves: readonly LeafFields[]): Promise<MerkleTree> {
  if (leaves.length === 0) throw emptyInput();
  return buildMerkleTreeWith(leaves, await loadKeccak());
}

/** As `buildMerkleTree`, synchronously, with the given keccak-256 (e.g. @noble/hashes' keccak_256). */
export function buildMerkleTreeWith(leaves: readonly LeafFields[], keccak: Keccak256): MerkleTree {
  const count = leaves.length;
  if (count === 0) throw emptyInput();

  // Leaf hashes, by input index.
  const leafBytes = new Uint8Array(count * 32);
  const encoder = new LeafEncoder();
  for (let i = 0; i < count; i++) {
    leafBytes.set(keccak(keccak(encoder.encode(leaves[i]!, i))), i * 32);
  }

  // Sort input indices by leaf hash as bytes; ties keep input order (Array#sort is stable,
  // as is the library's). A 48-bit prefix key settles almost every comparison.
  const keys = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const o = i * 32;
    keys[i] =
      (leafBytes[o]! * 0x10000 + leafBytes[o + 1]! * 0x100 + leafBytes[o + 2]!) * 0x1000000 +
      leafBytes[o + 3]! * 0x10000 +
      leafBytes[o + 4]! * 0x100 +
      leafBytes[o + 5]!;
  }
  const order = Array.from({ length: count }, (_, i) => i);
  order.sort((a, b) => keys[a]! - keys[b]! || compare32(leafBytes, a * 32, leafBytes, b * 32));

  // The tree as OpenZeppelin's makeMerkleTree lays it out: sorted leaf k at
  // tree[length - 1 - k], node i's children at 2i+1 and 2i+2, node = keccak(sorted pair).
  const length = 2 * count - 1;
  const nodes = new Uint8Array(length * 32);
  const treeIndex = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const input = order[k]!;
    const at = length - 1 - k;
    treeIndex[input] = at;
    nodes.set(leafBytes.subarray(input * 32, input * 32 + 32), at * 32);
  }
  const pair = new Uint8Array(64);
  for (let i = length - 1 - count; i >= 0; i--) {
    const left = (2 * i + 1) * 32;
    const right = left + 32;
    if (compare32(nodes, left, nodes, right) <= 0) {
      pair.set(nodes.subarray(left, right), 0);
      pair.set(nodes.subarray(right, right + 32), 32);
    } else {
      pair.set(nodes.subarray(right, right + 32), 0);
      pair.set(nodes.subarray(left, right), 32);
    }
    nodes.set(keccak(pair), i * 32);
  }

  // Every node but the root is some leaf's proof step, so hex them all at once.
  const hex = toHex32s(nodes, length);

  return {
    root: hex[0]!,
    leafHashes: Array.from(treeIndex, (at) => hex[at]!),
    proof(i: number): Hex[] {
      if (!Number.isInteger(i) || i < 0 || i >= count) {
        throw new RangeError(`leaf index ${i} out of range [0, ${count})`);
      }
      const proof: Hex[] = [];
      let at = treeIndex[i]!;
      while (at > 0) {
        proof.push(hex[at % 2 === 1 ? at + 1 : at - 1]!);
        at = (at - 1) >> 1;
      }
      return proof;
    },
  };
}

/**
 * What a receipt's proof check reads: the leaf fields, the leaf hash claimed for them, the
 * proof (sibling hashes from the leaf up) and the root it must lead to. A `Receipt` is one.
 */
export interface LeafProof extends LeafFields {
  leafHash: string;
  proof: readonly string[];
  merkleRoot: string;
}

/** Checks a LeafProof synchronously, with verifyProofWith's verdict. */
export type ProofVerifier = (claim: LeafProof) => boolean;

/**
 * Checks `claim` with the given keccak-256, giving the verdict of the receipt check built on
 * OpenZeppelin's merkle-tree (`leafHash(fields) === claim.leafHash &&
 * StandardMerkleTree.verify(claim.merkleRoot, LEAF_ENCODING, leafValue(fields), claim.proof)`):
 *
 * 1. the leaf, abi-encoded as the tree builder encodes it and hashed twice, must be exactly
 *    `claim.leafHash` as 0x-prefixed lowercase hex (an uppercase leafHash is refused);
 * 2. the proof is folded from that leaf with OpenZeppelin's node hash, keccak-256 of the two
 *    32-byte nodes sorted as bytes, smaller first. A proof node is taken as the library takes
 *    it: 64 hex digits of either case, with or without a `0x` prefix;
 * 3. the result must equal `claim.merkleRoot` as the library compares it: 64 lowercase hex
 *    digits, with or without a `0x` prefix (the library compares the root string itself with
 *    its lowercase hex, so it refuses an uppercase root, and so does this).
 *
 * Malformed input returns false and never throws: a proof node or root that is not 32 bytes
 * of hex (where the library throws), a field the leaf encoding refuses (`recordId` or
 * `contentHash` not 0x and 64 hex digits, `acceptedAt` not an integer in [0, 2^64),
 * `topic` or `subject` not a string), a proof that is not an array, a non-string node or root.
 * The library would pad a bytes32 field shorter than 32 bytes and coerce some non-string
 * values; such input is not a receipt (the schema requires 0x and 64 lowercase hex digits),
 * and this refuses it.
 *
 * Synchronous and stateless, and allocation-light: hex is parsed with a nibble table into
 * buffers shared by all calls (so `keccak` must not call back into this; neither
 * @noble/hashes nor hash-wasm does).
 */
export function verifyProofWith(keccak: Keccak256, claim: LeafProof): boolean {
  return checkProof(keccak, claim, undefined);
}

/**
 * verifyProofWith with the given keccak-256, remembering the last node hashes it computed
 * (up to MEMO_LIMIT): receipts of one batch share their upper proof nodes, so checking a
 * whole batch hashes each inner node at most twice (once from each child) instead of once
 * per receipt below it (for 1,024 leaves: 4 hashes a receipt instead of 12). A
 * remembered hash is reused only for the very same inputs (the same sibling string, the same
 * 32 bytes of the node below), so verdicts are verifyProofWith's. Every leaf is still
 * encoded and hashed. One verifier per hot path (it is synchronous; the memo is its own).
 */
export function createProofVerifier(keccak: Keccak256): ProofVerifier {
  const memo: NodeMemo = new Map();
  return (claim) => checkProof(keccak, claim, memo);
}

/** createProofVerifier on hash-wasm's keccak-256 (instantiated on first use, hence async). */
export async function loadProofVerifier(): Promise<ProofVerifier> {
  return createProofVerifier(await loadKeccak());
}

/**
 * Remembered proof steps by sibling string: `parent` is the node hash of `partner` and that
 * sibling. Bounded: cleared when full (a 2,048-leaf batch has 4,094 non-root nodes).
 */
type NodeMemo = Map<string, { partner: Uint8Array; parent: Uint8Array }>;
const MEMO_LIMIT = 4096;

function checkProof(keccak: Keccak256, claim: LeafProof, memo: NodeMemo | undefined): boolean {
  if (typeof claim !== 'object' || claim === null) return false;
  const { leafHash, proof, merkleRoot } = claim;
  if (typeof leafHash !== 'string' || typeof merkleRoot !== 'string' || !Array.isArray(proof)) {
    return false;
  }
  if (leafHash.length !== 66 || !hasHexPrefix(leafHash)) return false;

  proofScratch ??= { encoder: new LeafEncoder(), pair: new Uint8Array(64) };
  const scratch = proofScratch;
  let encoded: Uint8Array;
  try {
    encoded = scratch.encoder.encode(claim, 0);
  } catch (error) {
    if (error instanceof MerkleInputError) return false;
    throw error;
  }
  // Hash results are never written to, so `node` may be one kept in the memo.
  let node = keccak(keccak(encoded));
  if (!matchesLowerHex(leafHash, 2, node)) return false;

  const pair = scratch.pair;
  for (let i = 0; i < proof.length; i++) {
    const sibling: unknown = proof[i];
    if (memo !== undefined && typeof sibling === 'string') {
      const step = memo.get(sibling);
      // A node taken from the memo is the very object the next step remembers as partner.
      if (
        step !== undefined &&
        (step.partner === node || compare32(step.partner, 0, node, 0) === 0)
      ) {
        node = step.parent;
        continue;
      }
    }
    // The sibling goes to the right half; if it sorts first, the halves swap.
    if (!readNode(sibling, pair, 32)) return false;
    if (compare32(node, 0, pair, 32) <= 0) {
      pair.set(node, 0);
    } else {
      pair.copyWithin(0, 32, 64);
      pair.set(node, 32);
    }
    const parent = keccak(pair);
    if (memo !== undefined) {
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(sibling as string, { partner: node, parent });
    }
    node = parent;
  }

  if (merkleRoot.length === 66) {
    return hasHexPrefix(merkleRoot) && matchesLowerHex(merkleRoot, 2, node);
  }
  return merkleRoot.length === 64 && matchesLowerHex(merkleRoot, 0, node);
}

/** verifyProofWith's reused buffers: the leaf encoder and the 64-byte node pair. */
let proofScratch: { encoder: LeafEncoder; pair: Uint8Array } | undefined;

function hasHexPrefix(text: string): boolean {
  return text.charCodeAt(0) === 48 && text.charCodeAt(1) === 120; // 0x
}

/** Whether `text` from `at` is the 64 lowercase hex digits of the 32 bytes of `bytes`. */
function matchesLowerHex(text: string, at: number, bytes: Uint8Array): boolean {
  for (let j = 0; j < 32; j++, at += 2) {
    const b = 2 * bytes[j]!;
    if (text.charCodeAt(at) !== HEX_ASCII[b] || text.charCodeAt(at + 1) !== HEX_ASCII[b + 1]) {
      return false;
    }
  }
  return true;
}

/**
 * A proof node into `out` at `at`, if it is 32 bytes of hex as the library reads a node:
 * 64 hex digits of either case, with or without a 0x prefix. False otherwise.
 */
function readNode(value: unknown, out: Uint8Array, at: number): boolean {
  if (typeof value !== 'string') return false;
  let p: number;
  if (value.length === 66 && hasHexPrefix(value)) p = 2;
  else if (value.length === 64) p = 0;
  else return false;
  for (let j = 0; j < 32; j++, p += 2) {
    const hi = HEX_NIBBLE[value.charCodeAt(p)] ?? -1;
    const lo = HEX_NIBBLE[value.charCodeAt(p + 1)] ?? -1;
    if (hi < 0 || lo < 0) return false;
    out[at + j] = hi * 16 + lo;
  }
  return true;
}

function emptyInput(): MerkleInputError {
  return new MerkleInputError('cannot build a Merkle tree from zero leaves');
}

/** -1, 0 or 1 as the 32 bytes at `ao` in `a` sort before, equal or after those at `bo` in `b`. */
function compare32(a: Uint8Array, ao: number, b: Uint8Array, bo: number): number {
  for (let j = 0; j < 32; j++) {
    const d = a[ao + j]! - b[bo + j]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** ASCII of the two lowercase hex digits of byte b at [2b, 2b + 1]. */
const HEX_ASCII = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const digits = b.toString(16).padStart(2, '0');
  HEX_ASCII[2 * b] = digits.charCodeAt(0);
  HEX_ASCII[2 * b + 1] = digits.charCodeAt(1);
}

/**
 * `count` 32-byte values as 0x-prefixed lowercase hex: written as ASCII into one buffer,
 * decoded once and sliced (far less garbage than building each string piece by piece).
 */
function toHex32s(bytes: Uint8Array, count: number): Hex[] {
  const ascii = new Uint8Array(count * 66);
  for (let i = 0, p = 0; i < count; i++) {
    ascii[p++] = 48; // 0
    ascii[p++] = 120; // x
    for (let j = i * 32, end = j + 32; j < end; j++) {
      const at = 2 * bytes[j]!;
      ascii[p++] = HEX_ASCII[at]!;
      ascii[p++] = HEX_ASCII[at + 1]!;
    }
  }
  const text = new TextDecoder().decode(ascii);
  return Array.from({ length: count }, (_, i) => text.slice(i * 66, i * 66 + 66) as Hex);
}

const HEX_NIBBLE = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX_NIBBLE[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX_NIBBLE[65 + c] = 10 + c;
  HEX_NIBBLE[97 + c] = 10 + c;
}

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_64 = TWO_POW_32 * TWO_POW_32;
/** Head: recordId, topic offset, subject offset, contentHash, acceptedAt. */
const HEAD_BYTES = 5 * 32;

/**
 * abi.encode(bytes32 recordId, string topic, string subject, bytes32 contentHash,
 * uint64 acceptedAt) into one reused buffer. Strings are UTF-8 as TextEncoder writes them
 * (lone surrogates become U+FFFD), as in the library's encoder.
 */
class LeafEncoder {
  private buffer = new Uint8Array(512);
  private readonly utf8 = new TextEncoder();

  encode(leaf: LeafFields, index: number): Uint8Array {
    const { topic, subject, acceptedAt } = leaf;
    if (typeof topic !== 'string' || typeof subject !== 'string') {
      throw new MerkleInputError(`leaf ${index}: topic and subject must be strings`);
    }
    if (!Number.isInteger(acceptedAt) || acceptedAt < 0 || acceptedAt >= TWO_POW_64) {
      throw new MerkleInputError(`leaf ${index}: acceptedAt ${acceptedAt} is not a uint64`);
    }
    // UTF-8 takes at most 3 bytes per UTF-16 code unit; padding adds at most 31 per string.
    const worst = HEAD_BYTES + 2 * 32 + 3 * (topic.length + subject.length) + 2 * 31;
    if (this.buffer.length < worst) this.buffer = new Uint8Array(worst * 2);
    const buf = this.buffer;

    writeBytes32(buf, 0, leaf.recordId, index, 'recordId');
    writeBytes32(buf, 96, leaf.contentHash, index, 'contentHash');
    if (acceptedAt <= Number.MAX_SAFE_INTEGER) writeUint(buf, 128, acceptedAt);
    else writeUnsafeUint(buf, 128, acceptedAt);

    const topicAt = HEAD_BYTES;
    const topicLength = this.writeString(buf, topicAt, topic);
    const subjectAt = topicAt + 32 + padded(topicLength);
    const subjectLength = this.writeString(buf, subjectAt, subject);
    writeUint(buf, 32, topicAt);
    writeUint(buf, 64, subjectAt);
    return buf.subarray(0, subjectAt + 32 + padded(subjectLength));
  }

  /** Length word at `at`, then the UTF-8 bytes zero-padded to 32; returns the byte length. */
  private writeString(buf: Uint8Array, at: number, text: string): number {
    const { written } = this.utf8.encodeInto(text, buf.subarray(at + 32));
    writeUint(buf, at, written);
    buf.fill(0, at + 32 + written, at + 32 + padded(written));
    return written;
  }
}

function padded(length: number): number {
  return Math.ceil(length / 32) * 32;
}

/** A non-negative integer below 2^64 as a big-endian 32-byte word. */
function writeUint(buf: Uint8Array, at: number, value: number): void {
  writeWord(buf, at, Math.floor(value / TWO_POW_32), value % TWO_POW_32);
}

/**
 * An integer past 2^53 as the library encodes it: the value of its shortest decimal form,
 * `String(value)` (2^60 → 1152921504606847000), not the double's exact value.
 */
function writeUnsafeUint(buf: Uint8Array, at: number, value: number): void {
  const exact = BigInt(String(value));
  writeWord(buf, at, Number((exact >> 32n) & 0xffffffffn), Number(exact & 0xffffffffn));
}

/** The 32-byte big-endian word whose low 64 bits are high:low (two uint32). */
function writeWord(buf: Uint8Array, at: number, high: number, low: number): void {
  buf.fill(0, at, at + 24);
  for (let j = 0; j < 4; j++) {
    buf[at + 27 - j] = (high >>> (8 * j)) & 0xff;
    buf[at + 31 - j] = (low >>> (8 * j)) & 0xff;
  }
}

function writeBytes32(buf: Uint8Array, at: number, value: string, index: number, field: string) {
  if (typeof value !== 'string' || value.length !== 66 || value[0] !== '0' || value[1] !== 'x') {
    throw new MerkleInputError(`leaf ${index}: ${field} must be 0x and 64 hex digits`);
  }
  for (let j = 0; j < 32; j++) {
    const hi = HEX_NIBBLE[value.charCodeAt(2 + 2 * j)] ?? -1;
    const lo = HEX_NIBBLE[value.charCodeAt(3 + 2 * j)] ?? -1;
    if (hi < 0 || lo < 0) {
      throw new MerkleInputError(`leaf ${index}: ${field} must be 0x and 64 hex digits`);
    }
    buf[at + j] = hi * 16 + lo;
  }
}
