import { describe, expect, test } from 'vitest';
import { prng } from './_test/prng';
import { compareHashesAt, leafOrder, leafOrderByComparison, leafOrderByPrefix } from './leaf-order';

/** `count` hashes, flat; with `alike`, many share their first 5 to 31 bytes or all 32. */
function hashes(count: number, seed: number, alike: boolean): Uint8Array {
  const random = prng(seed);
  const flat = new Uint8Array(32 * count);
  for (let i = 0; i < flat.length; i++) flat[i] = Math.floor(random() * 256);
  if (alike) {
    for (let i = 1; i < count; i++) {
      if (random() < 0.5) continue;
      const from = Math.floor(random() * i);
      const shared = random() < 0.3 ? 32 : 5 + Math.floor(random() * 27);
      flat.copyWithin(32 * i, 32 * from, 32 * from + shared);
    }
  }
  return flat;
}

/** The definition: a stable sort of the input indices by hash bytes. */
function definition(flat: Uint8Array, count: number): number[] {
  return Array.from({ length: count }, (_, i) => i).sort(
    (a, b) => compareHashesAt(flat, 32 * a, flat, 32 * b) || a - b,
  );
}

describe('leafOrder', () => {
  test('default: hashes sorted as bytes, ties in input order', () => {
    const flat = hashes(100, 1, false);
    expect([...leafOrder(flat, 100)]).toEqual(definition(flat, 100));
  });

  test.each([1, 2, 3, 17, 256, 1000, 4099])(
    'behavior: %i hashes, many alike in 32+ bits or equal: both ways agree with the definition',
    (count) => {
      const flat = hashes(count, 100 + count, true);
      const expected = definition(flat, count);
      expect([...leafOrderByPrefix(flat, count)]).toEqual(expected);
      expect([...leafOrderByComparison(flat, count)]).toEqual(expected);
    },
  );

  test('error: the prefix sort refuses more than 2^21 hashes', () => {
    expect(() => leafOrderByPrefix(new Uint8Array(0), 2 ** 21 + 1)).toThrow(RangeError);
  });
});
