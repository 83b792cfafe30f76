/**
 * The order in which OpenZeppelin's StandardMerkleTree (sortLeaves: true) lays out leaves:
 * by leaf hash as bytes, ascending, ties in input order (its Array#sort is stable). Kept out
 * of the package's surface (index.ts does not export it); merkle.ts builds on it and
 * leaf-order.test.ts checks both ways of computing it against that definition.
 *
 * Hashes are read from one flat buffer, 32 bytes each (hash i at 32i), as the tree builder
 * keeps them.
 */

/** Input indices that fit beside a 32-bit-or-longer hash prefix in one double (2^21). */
const MAX_PREFIX_SORT = 1 << 21;

/**
 * Input indices of the `count` hashes in `hashes` in the library's leaf order. Up to 2^21
 * leaves, each leaf becomes one double, hash prefix × 2^b + index (b bits for the index, the
 * prefix the top min(48, 53 − b) bits of the hash; at most 2^53, so exact), sorted natively
 * without a comparator; leaves whose prefixes tie are then put in order by their whole
 * hash, index last. Beyond that, leafOrderByComparison.
 */
export function leafOrder(hashes: Uint8Array, count: number): Int32Array {
  return count <= MAX_PREFIX_SORT
    ? leafOrderByPrefix(hashes, count)
    : leafOrderByComparison(hashes, count);
}

/** leafOrder's prefix sort, for at most 2^21 hashes. */
export function leafOrderByPrefix(hashes: Uint8Array, count: number): Int32Array {
  if (count > MAX_PREFIX_SORT) throw new RangeError(`${count} leaves: more than 2^21`);
  const bits = count <= 1 ? 0 : 32 - Math.clz32(count - 1);
  const shift = 2 ** bits;
  const drop = 2 ** (48 - Math.min(48, 53 - bits));
  const keys = new Float64Array(count);
  for (let i = 0, at = 0; i < count; i++, at += 32) {
    const top48 =
      (hashes[at]! * 0x10000 + hashes[at + 1]! * 0x100 + hashes[at + 2]!) * 0x1000000 +
      hashes[at + 3]! * 0x10000 +
      hashes[at + 4]! * 0x100 +
      hashes[at + 5]!;
    keys[i] = Math.floor(top48 / drop) * shift + i;
  }
  keys.sort();

  const order = new Int32Array(count);
  for (let k = 0; k < count; k++) order[k] = keys[k]! % shift;
  // Equal prefixes (equal hashes, or ones alike in their first 32+ bits): insertion sort by
  // the whole hash within the run; the run is in index order already and stays so on ties.
  for (let k = 1; k < count; k++) {
    const prefix = Math.floor(keys[k]! / shift);
    if (Math.floor(keys[k - 1]! / shift) !== prefix) continue;
    const input = order[k]!;
    let m = k;
    while (
      m > 0 &&
      Math.floor(keys[m - 1]! / shift) === prefix &&
      compareHashesAt(hashes, 32 * order[m - 1]!, hashes, 32 * input) > 0
    ) {
      order[m] = order[m - 1]!;
      m--;
    }
    order[m] = input;
  }
  return order;
}

/** leafOrder with Array#sort and a byte comparator, for any count. */
export function leafOrderByComparison(hashes: Uint8Array, count: number): Int32Array {
  const order = Array.from({ length: count }, (_, i) => i);
  order.sort((a, b) => compareHashesAt(hashes, 32 * a, hashes, 32 * b));
  return Int32Array.from(order);
}

/** -1, 0 or 1 as the 32 bytes of `a` sort before, equal or after those of `b`. */
export function compareHashes(a: Uint8Array, b: Uint8Array): number {
  return compareHashesAt(a, 0, b, 0);
}

/** compareHashes on the 32 bytes of `a` from `i` and of `b` from `j`. */
export function compareHashesAt(a: Uint8Array, i: number, b: Uint8Array, j: number): number {
  for (const end = i + 32; i < end; i++, j++) {
    const d = a[i]! - b[j]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
