import { keccak_256 } from '@noble/hashes/sha3';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { standardLeafHash } from '@openzeppelin/merkle-tree/dist/hashes.js';
import canonicalize from 'canonicalize';
import { BaseError } from './errors';
import type { Bytes32 } from './primitives';

/**
 * The fields a Merkle leaf commits to, in this order, with these Solidity types
 * (OpenZeppelin StandardMerkleTree encoding: keccak256(keccak256(abi.encode(...)))).
 * The contract's `leafHash` computes the same value.
 */
export const LEAF_ENCODING = ['bytes32', 'string', 'string', 'bytes32', 'uint64'] as const;

export interface LeafFields {
  recordId: Bytes32;
  topic: string;
  subject: string;
  contentHash: Bytes32;
  /** Milliseconds since the epoch at which the relay accepted the record. */
  acceptedAt: number;
}

export type LeafValue = [Bytes32, string, string, Bytes32, string];

/** The leaf's values in LEAF_ENCODING order, as the merkle-tree library takes them. */
export function leafValue(fields: LeafFields): LeafValue {
  return [
    fields.recordId,
    fields.topic,
    fields.subject,
    fields.contentHash,
    String(fields.acceptedAt),
  ];
}

export function leafHash(fields: LeafFields): Bytes32 {
  return standardLeafHash([...LEAF_ENCODING], leafValue(fields)) as Bytes32;
}

/** Thrown when a payload has no canonical JSON form (lone surrogates, non-finite numbers). */
export class NonCanonicalPayloadError extends BaseError {
  override name = 'NonCanonicalPayloadError';
}

/**
 * The canonical text of a JSON payload: RFC 8785 (JSON Canonicalization Scheme).
 * The content hash is keccak-256 of its UTF-8 bytes.
 */
export function canonicalPayload(payload: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(payload);
  } catch (error) {
    throw new NonCanonicalPayloadError((error as Error).message);
  }
  if (text === undefined) throw new NonCanonicalPayloadError('payload has no JSON representation');
  return text;
}

/** Counts what `canonicalJson` met: the members of every object. */
export interface MemberCounter {
  members: number;
}

const isWellFormed = (text: string): boolean =>
  (text as string & { isWellFormed(): boolean }).isWellFormed();

function canonicalString(text: string): string {
  if (!isWellFormed(text)) throw new NonCanonicalPayloadError('Lone surrogate is not allowed');
  return JSON.stringify(text);
}

/** Objects with at most this many members have their names sorted in place by insertion. */
const INSERTION_SORT_MAX = 16;

/**
 * Sorts member names by UTF-16 code units, the order RFC 8785 takes (the default order of
 * Array.prototype.sort, and of `<` on strings). Small objects, the usual payload, are sorted
 * by insertion: the built-in sort costs several times more for a handful of names (it sets
 * up its merge state and work array on every call).
 */
function sortKeys(keys: string[]): void {
  const length = keys.length;
  if (length < 2) return;
  if (length > INSERTION_SORT_MAX) {
    keys.sort();
    return;
  }
  for (let i = 1; i < length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    // Names are distinct: no two compare equal.
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
}

function canonicalValue(value: unknown, counter: MemberCounter): string {
  switch (typeof value) {
    case 'string':
      return canonicalString(value);
    case 'number':
      // JSON.parse gives Infinity for 1e400: no canonical form.
      if (!Number.isFinite(value)) throw new NonCanonicalPayloadError(`${value} is not allowed`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let text = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) text += ',';
          text += canonicalValue(value[i], counter);
        }
        return `${text}]`;
      }
      const object = value as Record<string, unknown>;
      const keys = Object.keys(object);
      counter.members += keys.length;
      sortKeys(keys);
      let text = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        if (i > 0) text += ',';
        text += `${canonicalString(key)}:${canonicalValue(object[key], counter)}`;
      }
      return `${text}}`;
    }
    default:
      throw new NonCanonicalPayloadError(`a ${typeof value} is not a JSON value`);
  }
}

/**
 * `canonicalPayload` for a value JSON.parse returned (plain objects, arrays, strings,
 * numbers, booleans, null: no toJSON, no cycles, no undefined), several times faster; the
 * relay's hot path. Throws NonCanonicalPayloadError where canonicalPayload does (lone
 * surrogates, non-finite numbers). Adds the members of every object it met to `counter`:
 * JSON.parse keeps one member per name, so fewer members than the text has names means a
 * duplicate name. Recursive: the caller bounds the nesting (the relay's pre-scan does).
 */
export function canonicalJson(value: unknown, counter: MemberCounter = { members: 0 }): string {
  return canonicalValue(value, counter);
}

export function contentHashOf(canonicalText: string): Bytes32 {
  return `0x${bytesToHex(keccak_256(utf8ToBytes(canonicalText)))}`;
}

/** UTF-8 byte length without allocating; runs in browsers and Node alike. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
