import { BaseError } from './errors';
import { loadWasmKeccak } from './keccak';
import { compareHashes, leafOrder } from './leaf-order';
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
 * node) are most of it. Around them: each leaf is encoded into one reused buffer (hex read
 * through a two-digit table, ASCII strings copied without TextEncoder), hash results are kept
 * as the hasher returns them (no copying into a flat buffer), leaves are ordered by a native
 * sort of one number per leaf (see leafOrder), and every node's hex is written as ASCII into
 * one buffer, decoded once and sliced.
 */
export function buildMerkleTreeWith(leaves: readonly LeafFields[], keccak: Keccak256): MerkleTree {
  const count = leaves.length;
  if (count === 0) throw emptyInput();

  // Leaf hashes, by input index.
  const encoder = sharedEncoder();
  const leafHashes: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) leafHashes[i] = keccak(keccak(encoder.encode(leaves[i]!, i)));
  const order = leafOrder(leafHashes);

  // The tree as OpenZeppelin's makeMerkleTree lays it out: sorted leaf k at
  // tree[length - 1 - k], node i's children at 2i+1 and 2i+2, node = keccak(sorted pair).
  const length = 2 * count - 1;
  const nodes: Uint8Array[] = new Array(length);
  const treeIndex = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const input = order[k]!;
    const at = length - 1 - k;
    treeIndex[input] = at;
    nodes[at] = leafHashes[input]!;
  }
  const pair = new Uint8Array(64);
  for (let i = length - 1 - count; i >= 0; i--) {
    const left = nodes[2 * i + 1]!;
    const right = nodes[2 * i + 2]!;
    if (compareHashes(left, right) <= 0) {
      pair.set(left, 0);
      pair.set(right, 32);
    } else {
      pair.set(right, 0);
      pair.set(left, 32);
    }
    nodes[i] = keccak(pair);
  }

  // Every node but the root is some leaf's proof step, so hex them all at once.
  const hex = toHex32s(nodes);
  const leafHex: Hex[] = new Array(count);
  for (let i = 0; i < count; i++) leafHex[i] = hex[treeIndex[i]!]!;

  return {
    root: hex[0]!,
    leafHashes: leafHex,
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

  let encoded: Uint8Array;
  try {
    encoded = sharedEncoder().encode(claim, 0);
  } catch (error) {
    if (error instanceof MerkleInputError) return false;
    throw error;
  }
  // Hash results are never written to, so `node` may be one kept in the memo.
  let node = keccak(keccak(encoded));
  if (!matchesLowerHex(leafHash, 2, node)) return false;

  const pair = PAIR;
  const sibling = SIBLING;
  for (let i = 0; i < proof.length; i++) {
    const step: unknown = proof[i];
    if (memo !== undefined && typeof step === 'string') {
      const known = memo.get(step);
      // A node taken from the memo is the very object the next step remembers as partner.
      if (
        known !== undefined &&
        (known.partner === node || compareHashes(known.partner, node) === 0)
      ) {
        node = known.parent;
        continue;
      }
    }
    if (!readNode(step, sibling)) return false;
    if (compareHashes(node, sibling) <= 0) {
      pair.set(node, 0);
      pair.set(sibling, 32);
    } else {
      pair.set(sibling, 0);
      pair.set(node, 32);
    }
    const parent = keccak(pair);
    if (memo !== undefined) {
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(step as string, { partner: node, parent });
    }
    node = parent;
  }

  if (merkleRoot.length === 66) {
    return hasHexPrefix(merkleRoot) && matchesLowerHex(merkleRoot, 2, node);
  }
  return merkleRoot.length === 64 && matchesLowerHex(merkleRoot, 0, node);
}

/** checkProof's reused buffers (it is synchronous, and keccak never calls back into it). */
const PAIR = new Uint8Array(64);
const SIBLING = new Uint8Array(32);

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

/** ASCII of the two lowercase hex digits of byte b at [2b, 2b + 1]. */
const HEX_ASCII = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const digits = b.toString(16).padStart(2, '0');
  HEX_ASCII[2 * b] = digits.charCodeAt(0);
  HEX_ASCII[2 * b + 1] = digits.charCodeAt(1);
}

/** The same two ASCII digits as one 16-bit word in memory order, and `0x` likewise. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const HEX_WORD = new Uint16Array(256);
for (let b = 0; b < 256; b++) {
  const [first, second] = [HEX_ASCII[2 * b]!, HEX_ASCII[2 * b + 1]!];
  HEX_WORD[b] = LITTLE_ENDIAN ? first | (second << 8) : (first << 8) | second;
}
const PREFIX_WORD = LITTLE_ENDIAN ? 48 | (120 << 8) : (48 << 8) | 120;
const ASCII_DECODER = new TextDecoder();

/**
 * 32-byte values as 0x-prefixed lowercase hex: written as ASCII into one buffer (two digits
 * per 16-bit store), decoded once and sliced (far less garbage than building each string
 * piece by piece).
 */
function toHex32s(values: readonly Uint8Array[]): Hex[] {
  const count = values.length;
  const words = new Uint16Array(count * 33);
  for (let i = 0, p = 0; i < count; i++) {
    const value = values[i]!;
    words[p++] = PREFIX_WORD;
    for (let j = 0; j < 32; j++) words[p++] = HEX_WORD[value[j]!]!;
  }
  const text = ASCII_DECODER.decode(words);
  const hex: Hex[] = new Array(count);
  for (let i = 0; i < count; i++) hex[i] = text.slice(i * 66, i * 66 + 66) as Hex;
  return hex;
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
 * their high bytes are zero from the buffer's allocation and stay so. The subject's length
 * word and the string padding move with the topic's length, so they are cleared each time.
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
    if (acceptedAt <= Number.MAX_SAFE_INTEGER) {
      writeLow64(buf, 128, Math.floor(acceptedAt / TWO_POW_32), acceptedAt >>> 0);
    } else {
      // Past 2^53, as the library encodes it: the value of the shortest decimal form,
      // String(value) (2^60 → 1152921504606847000), not the double's exact value.
      const exact = BigInt(String(acceptedAt));
      writeLow64(buf, 128, Number(exact >> 32n), Number(exact & 0xffffffffn));
    }

    writeLow64(buf, 32, 0, HEAD_BYTES); // topic offset
    const topicLength = this.writeString(buf, HEAD_BYTES, topic);
    writeLow64(buf, HEAD_BYTES, 0, topicLength);
    const subjectAt = HEAD_BYTES + 32 + padded(topicLength);
    writeLow64(buf, 64, 0, subjectAt); // subject offset
    const subjectLength = this.writeString(buf, subjectAt, subject);
    buf.fill(0, subjectAt, subjectAt + 24);
    writeLow64(buf, subjectAt, 0, subjectLength);
    return buf.subarray(0, subjectAt + 32 + padded(subjectLength));
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
function writeLow64(buf: Uint8Array, at: number, high: number, low: number): void {
  buf[at + 24] = high >>> 24;
  buf[at + 25] = (high >>> 16) & 0xff;
  buf[at + 26] = (high >>> 8) & 0xff;
  buf[at + 27] = high & 0xff;
  buf[at + 28] = low >>> 24;
  buf[at + 29] = (low >>> 16) & 0xff;
  buf[at + 30] = (low >>> 8) & 0xff;
  buf[at + 31] = low & 0xff;
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
