/**
 * The order in which OpenZeppelin's StandardMerkleTree (sortLeaves: true) lays out leaves:
 * by leaf hash as bytes, ascending, ties in input order (its Array#sort is stable). Kept out
 * of the package's surface (index.ts does not export it); merkle.ts builds on it and
 * leaf-order.test.ts checks both ways of computing it against that definition.
 */

/** Input indices that fit beside a 32-bit-or-longer hash prefix in one double (2^21). */
const MAX_PREFIX_SORT = 1 << 21;

/**
 * Input indices of `hashes` (32 bytes each) in the library's leaf order. Up to 2^21 leaves,
 * each leaf becomes one double, hash prefix × 2^b + index (b bits for the index, the prefix
 * the top min(48, 53 − b) bits of the hash; at most 2^53, so exact), sorted natively
 * without a comparator; leaves whose prefixes tie are then put in order by their whole
 * hash, index last. Beyond that, leafOrderByComparison.
 */
export function leafOrder(hashes: readonly Uint8Array[]): Int32Array {
  return hashes.length <= MAX_PREFIX_SORT
    ? leafOrderByPrefix(hashes)
    : leafOrderByComparison(hashes);
}

/** leafOrder's prefix sort, for at most 2^21 hashes. */
export function leafOrderByPrefix(hashes: readonly Uint8Array[]): Int32Array {
  const count = hashes.length;
  if (count > MAX_PREFIX_SORT) throw new RangeError(`${count} leaves: more than 2^21`);
  const bits = count <= 1 ? 0 : 32 - Math.clz32(count - 1);
  const shift = 2 ** bits;
  const drop = 2 ** (48 - Math.min(48, 53 - bits));
  const keys = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const h = hashes[i]!;
    const top48 =
      (h[0]! * 0x10000 + h[1]! * 0x100 + h[2]!) * 0x1000000 +
      h[3]! * 0x10000 +
      h[4]! * 0x100 +
      h[5]!;
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
      compareHashes(hashes[order[m - 1]!]!, hashes[input]!) > 0
    ) {
      order[m] = order[m - 1]!;
      m--;
    }
    order[m] = input;
  }
  return order;
}

/** leafOrder with Array#sort and a byte comparator, for any count. */
export function leafOrderByComparison(hashes: readonly Uint8Array[]): Int32Array {
  const order = Array.from({ length: hashes.length }, (_, i) => i);
  order.sort((a, b) => compareHashes(hashes[a]!, hashes[b]!));
  return Int32Array.from(order);
}

/** -1, 0 or 1 as the 32 bytes of `a` sort before, equal or after those of `b`. */
export function compareHashes(a: Uint8Array, b: Uint8Array): number {
  for (let j = 0; j < 32; j++) {
    const d = a[j]! - b[j]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
