import { BaseError } from './errors';
import { HEX_ASCII, toHex32s } from './hex32';
import { loadWasmKeccak } from './keccak';
import { compareHashes, compareHashesAt, leafOrder } from './leaf-order';
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

/**
 * As `buildMerkleTree`, synchronously, with the given keccak-256 (e.g. @noble/hashes' keccak_256).
 *
 * Where the time goes: on hash-wasm, the 3N − 1 keccak calls (two per leaf, one per inner
 * node) are most of it (bench/merkle.ts compares the build with those calls alone). Around
 * them: all leaves are encoded first (hex read through a two-digit table, ASCII strings
 * copied without TextEncoder) into one reused buffer, then hashed in a loop of their own; a
 * leaf's first hash is copied into LEAF_INNER before its second; every hash result is
 * copied at once into one flat buffer (32 bytes a node, in tree order), so the hasher's
 * fresh arrays die young and the scavenger has almost nothing to move; leaves are ordered by
 * a native sort of one number per leaf (see leafOrder); an inner node's children lie side by
 * side, copied as 32-bit words into the pair to hash; and every node's hex is written four
 * digits per store into one reused buffer, decoded a chunk at a time and sliced (toHex32s).
 */
export function buildMerkleTreeWith(leaves: readonly LeafFields[], keccak: Keccak256): MerkleTree {
  const count = leaves.length;
  if (count === 0) throw emptyInput();

  // Every leaf's encoding first, end to end, then their hashes: two tight loops run faster
  // than one that switches between encoding and hashing for every leaf.
  const encoder = sharedEncoder();
  const ends = new Int32Array(count);
  let encoded = scratchBuffer(ENCODED, 320 * count);
  for (let i = 0, end = 0; i < count; i++) {
    const leaf = encoder.encode(leaves[i]!, i);
    if (end + leaf.length > encoded.length) {
      const larger = new Uint8Array(2 * (end + leaf.length));
      larger.set(encoded.subarray(0, end));
      encoded = larger;
      if (larger.length <= SCRATCH_LIMIT) ENCODED.buffer = larger;
    }
    encoded.set(leaf, end);
    ends[i] = end += leaf.length;
  }
  const length = 2 * count - 1;
  // Both only live through this call: one buffer, reused by the next build of its size or less.
  const bytes = scratchBuffer(NODES, 32 * (length + count));
  const tree = bytes.subarray(0, 32 * length);
  const leafBytes = bytes.subarray(32 * length, 32 * (length + count));
  const inner = LEAF_INNER;
  for (let i = 0, start = 0; i < count; i++) {
    const end = ends[i]!;
    inner.set(keccak(encoded.subarray(start, end)));
    leafBytes.set(keccak(inner), 32 * i);
    start = end;
  }
  const order = leafOrder(leafBytes, count);

  // The tree as OpenZeppelin's makeMerkleTree lays it out: sorted leaf k at
  // tree[length - 1 - k], node i's children at 2i+1 and 2i+2, node = keccak(sorted pair).
  // Node i is bytes [32i, 32i + 32) of `tree`; the words views copy 4 bytes at a time.
  const treeWords = new Uint32Array(bytes.buffer, bytes.byteOffset, 8 * length);
  const leafWords = new Uint32Array(bytes.buffer, bytes.byteOffset + 32 * length, 8 * count);
  const treeIndex = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const input = order[k]!;
    const at = length - 1 - k;
    treeIndex[input] = at;
    for (let w = 0, to = 8 * at, from = 8 * input; w < 8; w++)
      treeWords[to + w] = leafWords[from + w]!;
  }
  const pairWords = new Uint32Array(16);
  const pair = new Uint8Array(pairWords.buffer);
  for (let i = length - 1 - count; i >= 0; i--) {
    const left = 32 * (2 * i + 1); // the right child follows at left + 32
    // Smaller first: the left child's words then the right's, or the other way round.
    const first = compareHashesAt(tree, left, tree, left + 32) <= 0 ? left >> 2 : (left >> 2) + 8;
    const second = first ^ ((left >> 2) ^ ((left >> 2) + 8));
    for (let w = 0; w < 8; w++) {
      pairWords[w] = treeWords[first + w]!;
      pairWords[w + 8] = treeWords[second + w]!;
    }
    tree.set(keccak(pair), 32 * i);
  }

  // Every node but the root is some leaf's proof step, so hex them all at once.
  const hex = toHex32s(tree, length);
  const leafHex: Hex[] = new Array(count);
  for (let i = 0; i < count; i++) leafHex[i] = hex[treeIndex[i]!]!;

  return {
    root: hex[0]!,
    leafHashes: leafHex,
    proof(i: number): Hex[] {
      if (!Number.isInteger(i) || i < 0 || i >= count) {
        throw new RangeError(`leaf index ${i} out of range [0, ${count})`);
      }
      let at = treeIndex[i]!;
      // One step per level below the root: a node at tree index `at` is log2(at + 1) deep.
      const proof: Hex[] = new Array(31 - Math.clz32(at + 1));
      for (let step = 0; at > 0; step++) {
        proof[step] = hex[((at - 1) ^ 1) + 1]!; // the sibling: at + 1 if at is odd, else at - 1
        at = (at - 1) >> 1;
      }
      return proof;
    },
  };
}

/**
 * The builder's two scratch buffers, kept between builds (it is synchronous): the leaves'
 * encodings, and the nodes' bytes (tree, then leaf hashes by input index). Neither outlives
 * a build: the tree keeps only hex. A build that needs more than SCRATCH_LIMIT bytes of one
 * gets its own, so a huge batch does not pin its memory.
 */
const ENCODED: { buffer?: Uint8Array } = {};
const NODES: { buffer?: Uint8Array } = {};
const SCRATCH_LIMIT = 1 << 20;

function scratchBuffer(slot: { buffer?: Uint8Array }, size: number): Uint8Array {
  const kept = slot.buffer;
  if (kept !== undefined && kept.length >= size) return kept;
  if (size > SCRATCH_LIMIT) return new Uint8Array(size);
  slot.buffer = new Uint8Array(Math.min(SCRATCH_LIMIT, 2 * size));
  return slot.buffer;
}

/**
 * The leaf's abi.encode(bytes32 recordId, string topic, string subject, bytes32 contentHash,
 * uint64 acceptedAt), the bytes whose keccak-256, hashed again, is its leaf hash (a fresh
 * array). Throws MerkleInputError for a field the encoding refuses.
 */
export function encodeLeaf(leaf: LeafFields): Uint8Array {
  return sharedEncoder().encode(leaf, 0).slice();
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
 * (up to MEMO_LIMIT entries): receipts of one batch share their upper proof nodes, so
 * checking a whole batch hashes each inner node once, whichever child's receipt comes
 * first, instead of once per receipt below it (for 1,024 leaves: 3 hashes a receipt instead
 * of 12). A remembered hash is reused only for the very same inputs (the same 32 bytes of
 * the node below, and a sibling that is the same string or reads as the same 32 bytes), so
 * verdicts are verifyProofWith's. Every leaf is still encoded and hashed. One verifier per
 * hot path (it is synchronous; the memo is its own).
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
 * One computed proof step: `parent` is the node hash of `child` and `other`; `otherText` is
 * a proof string known to read as `other` (when there is one). Kept under each child's key.
 */
interface MemoStep {
  child: Uint8Array;
  other: Uint8Array;
  otherText: string | undefined;
  parent: Uint8Array;
}

/**
 * Remembered steps by memoKey of a child, so that the receipts on both sides of a node find
 * it. Bounded: cleared when full. An n-leaf batch needs about 2n entries (n − 1 inner nodes,
 * each under both children's keys); the writer's batches reach 8,192 records under load
 * (BATCH_MAX_RECORDS), and a memo cleared in the middle of a batch hashes its upper nodes
 * again for every receipt after it. 65,536 entries (a few MB) hold two such batches.
 */
type NodeMemo = Map<number, MemoStep>;
const MEMO_LIMIT = 65_536;

/** A node's first 30 bits, as a small integer (a Map key V8 hashes cheaply). */
function memoKey(node: Uint8Array): number {
  return (node[0]! << 22) | (node[1]! << 14) | (node[2]! << 6) | (node[3]! >> 2);
}

function checkProof(keccak: Keccak256, claim: LeafProof, memo: NodeMemo | undefined): boolean {
  if (typeof claim !== 'object' || claim === null) return false;
  const { leafHash, proof, merkleRoot } = claim;
  if (typeof leafHash !== 'string' || typeof merkleRoot !== 'string' || !Array.isArray(proof)) {
    return false;
  }
  if (leafHash.length !== 66 || !hasHexPrefix(leafHash)) return false;

  let encoded: Uint8Array;
  try {
    encoded = sharedEncoder().encode(claim, 0);
  } catch (error) {
    if (error instanceof MerkleInputError) return false;
    throw error;
  }
  // Hash results are never written to, so `node` may be one kept in the memo.
  LEAF_INNER.set(keccak(encoded));
  let node = keccak(LEAF_INNER);
  if (!matchesLowerHex(leafHash, 2, node)) return false;
  // A proof string known to read as `node`: the leaf hash, just checked.
  let nodeText: string | undefined = leafHash;

  const pair = PAIR;
  const sibling = SIBLING;
  for (let i = 0; i < proof.length; i++) {
    const step: unknown = proof[i];
    let read = false;
    if (memo !== undefined) {
      const known = memo.get(memoKey(node));
      if (known !== undefined && (known.child === node || compareHashes(known.child, node) === 0)) {
        // The same string as one that read as `other`, or a string that reads as `other`.
        if (known.otherText !== undefined && step === known.otherText) {
          node = known.parent;
          nodeText = undefined;
          continue;
        }
        if (!readNode(step, sibling)) return false;
        read = true;
        if (compareHashes(sibling, known.other) === 0) {
          known.otherText = step as string; // so the next receipt with this string skips the read
          node = known.parent;
          nodeText = undefined;
          continue;
        }
      }
    }
    if (!read && !readNode(step, sibling)) return false;
    if (compareHashes(node, sibling) <= 0) {
      pair.set(node, 0);
      pair.set(sibling, 32);
    } else {
      pair.set(sibling, 0);
      pair.set(node, 32);
    }
    const parent = keccak(pair);
    if (memo !== undefined) {
      if (memo.size > MEMO_LIMIT - 2) memo.clear();
      const other = sibling.slice();
      memo.set(memoKey(node), { child: node, other, otherText: step as string, parent });
      memo.set(memoKey(other), { child: other, other: node, otherText: nodeText, parent });
    }
    node = parent;
    nodeText = undefined;
  }

  if (merkleRoot.length === 66) {
    return hasHexPrefix(merkleRoot) && matchesLowerHex(merkleRoot, 2, node);
  }
  return merkleRoot.length === 64 && matchesLowerHex(merkleRoot, 0, node);
}

/** checkProof's reused buffers (it is synchronous, and keccak never calls back into it). */
const PAIR = new Uint8Array(new ArrayBuffer(64));
const SIBLING = new Uint8Array(32);
/**
 * Where a leaf's first hash is copied before its second (checkProof's and the builder's).
 * hash-wasm reads its input through `.buffer`, and a small fresh typed array (as a hash
 * result is) has none until asked, when V8 must move its bytes off the heap: copying 32
 * bytes into this one, whose buffer exists, is much cheaper.
 */
const LEAF_INNER = new Uint8Array(new ArrayBuffer(32));

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
 * A proof node into `out`, if it is 32 bytes of hex as the library reads a node: 64 hex
 * digits of either case, with or without a 0x prefix. False otherwise.
 */
function readNode(value: unknown, out: Uint8Array): boolean {
  if (typeof value !== 'string') return false;
  if (value.length === 66) return hasHexPrefix(value) && readHex32(value, 2, out, 0);
  return value.length === 64 && readHex32(value, 0, out, 0);
}

/**
 * The 64 hex digits (either case) of `text` from `from` as 32 bytes into `out` at `at`;
 * false if any is not a hex digit (`text` must hold 64 characters from `from`).
 */
function readHex32(text: string, from: number, out: Uint8Array, at: number): boolean {
  let bad = 0;
  for (let end = at + 32; at < end; at++, from += 2) {
    const hi = text.charCodeAt(from);
    const lo = text.charCodeAt(from + 1);
    const byte = HEX_PAIR[((hi << 7) | lo) & 0x3fff]!;
    // Negative for a non-digit pair, or for a character past ASCII (which the index wraps).
    bad |= byte | -((hi | lo) >> 7);
    out[at] = byte;
  }
  return bad >= 0;
}

function emptyInput(): MerkleInputError {
  return new MerkleInputError('cannot build a Merkle tree from zero leaves');
}

/** Hex digit value by character code, -1 for a non-digit. */
const HEX_NIBBLE = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX_NIBBLE[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX_NIBBLE[65 + c] = 10 + c;
  HEX_NIBBLE[97 + c] = 10 + c;
}
/** Byte value of two hex digits (either case) by (first << 7 | second) code, -1 if not both digits. */
const HEX_PAIR = new Int16Array(1 << 14).fill(-1);
for (let hi = 0; hi < 128; hi++) {
  for (let lo = 0; lo < 128; lo++) {
    const [h, l] = [HEX_NIBBLE[hi]!, HEX_NIBBLE[lo]!];
    if (h >= 0 && l >= 0) HEX_PAIR[(hi << 7) | lo] = h * 16 + l;
  }
}

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_64 = TWO_POW_32 * TWO_POW_32;
/** Head: recordId, topic offset, subject offset, contentHash, acceptedAt. */
const HEAD_BYTES = 5 * 32;

let encoder: LeafEncoder | undefined;

/** The encoder the builder and the verifier share (both synchronous, so never at once). */
function sharedEncoder(): LeafEncoder {
  encoder ??= new LeafEncoder();
  return encoder;
}

/**
 * abi.encode(bytes32 recordId, string topic, string subject, bytes32 contentHash,
 * uint64 acceptedAt) into one reused buffer. Strings are UTF-8 as TextEncoder writes them
 * (lone surrogates become U+FFFD), as in the library's encoder; ASCII ones are copied
 * directly, which gives the same bytes.
 *
 * The words that hold a small number (the two offsets, acceptedAt, the topic's length) sit
 * at fixed places that nothing else writes, and only their low 8 bytes are ever written:
 * their high bytes are zero from the buffer's allocation and stay so (the topic's offset,
 * a constant, is written once per buffer). The subject's length word and the string padding
 * move with the topic's length, so they are cleared each time.
 */
class LeafEncoder {
  private buffer = new Uint8Array(0);
  /** The same bytes, for the big-endian 32-bit stores of writeLow64. */
  private words = new DataView(this.buffer.buffer);
  /** `buffer.subarray(0, 32 × k)` by k, made once per buffer (encode returns one per leaf). */
  private views: Uint8Array[] = [];
  private readonly utf8 = new TextEncoder();

  constructor() {
    this.grow(512);
  }

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
    if (this.buffer.length < worst) this.grow(worst * 2);
    const buf = this.buffer;
    const words = this.words;

    writeBytes32(buf, 0, leaf.recordId, index, 'recordId');
    writeBytes32(buf, 96, leaf.contentHash, index, 'contentHash');
    if (acceptedAt <= Number.MAX_SAFE_INTEGER) {
      writeLow64(words, 128, Math.floor(acceptedAt / TWO_POW_32), acceptedAt >>> 0);
    } else {
      // Past 2^53, as the library encodes it: the value of the shortest decimal form,
      // String(value) (2^60 → 1152921504606847000), not the double's exact value.
      const exact = BigInt(String(acceptedAt));
      writeLow64(words, 128, Number(exact >> 32n), Number(exact & 0xffffffffn));
    }

    const topicLength = this.writeString(buf, HEAD_BYTES, topic);
    writeLow64(words, HEAD_BYTES, 0, topicLength);
    const subjectAt = HEAD_BYTES + 32 + padded(topicLength);
    writeLow64(words, 64, 0, subjectAt); // subject offset
    const subjectLength = this.writeString(buf, subjectAt, subject);
    for (let p = subjectAt, end = subjectAt + 24; p < end; p += 4) words.setUint32(p, 0);
    writeLow64(words, subjectAt, 0, subjectLength);
    const bytes = subjectAt + 32 + padded(subjectLength);
    this.views[bytes >> 5] ??= buf.subarray(0, bytes);
    return this.views[bytes >> 5]!;
  }

  /** A zeroed buffer of `size` bytes, with the one constant word: the topic's offset. */
  private grow(size: number): void {
    this.buffer = new Uint8Array(size);
    this.words = new DataView(this.buffer.buffer);
    this.views = [];
    writeLow64(this.words, 32, 0, HEAD_BYTES);
  }

  /** The UTF-8 bytes of `text` at `at + 32`, zero-padded to 32; returns the byte length. */
  private writeString(buf: Uint8Array, at: number, text: string): number {
    const start = at + 32;
    const length = text.length;
    let written = length;
    for (let j = 0; j < length; j++) {
      const code = text.charCodeAt(j);
      if (code > 0x7f) {
        written = this.utf8.encodeInto(text, buf.subarray(start)).written;
        break;
      }
      buf[start + j] = code;
    }
    for (let p = start + written, end = start + padded(written); p < end; p++) buf[p] = 0;
    return written;
  }
}

function padded(length: number): number {
  return (length + 31) & ~31;
}

/** The low 8 bytes of the 32-byte big-endian word at `at`: high, then low (two uint32). */
function writeLow64(words: DataView, at: number, high: number, low: number): void {
  words.setUint32(at + 24, high);
  words.setUint32(at + 28, low);
}

function writeBytes32(buf: Uint8Array, at: number, value: string, index: number, field: string) {
  if (
    typeof value !== 'string' ||
    value.length !== 66 ||
    !hasHexPrefix(value) ||
    !readHex32(value, 2, buf, at)
  ) {
    throw new MerkleInputError(`leaf ${index}: ${field} must be 0x and 64 hex digits`);
  }
}
