import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { toHex32, toHex32s, toHex32sBytewise } from './hex32';

/** `count` random 32-byte values, flat, and their hex as Node writes it. */
function values(count: number): [Uint8Array, string[]] {
  const flat = new Uint8Array(randomBytes(32 * count));
  const expected = Array.from(
    { length: count },
    (_, i) => `0x${Buffer.from(flat.subarray(32 * i, 32 * i + 32)).toString('hex')}`,
  );
  return [flat, expected];
}

describe('toHex32s', () => {
  test('default: 0x and 64 lowercase digits per value', () => {
    const [flat, expected] = values(3);
    expect(toHex32s(flat, 3)).toEqual(expected);
  });

  test.each([1, 959, 960, 961, 2500])('behavior: %i values, across decoding chunks', (count) => {
    const [flat, expected] = values(count);
    expect(toHex32s(flat, count)).toEqual(expected);
    expect(toHex32sBytewise(flat, count)).toEqual(expected);
  });

  test('behavior: every byte value, and the first `count` values of a longer buffer', () => {
    const flat = Uint8Array.from({ length: 32 * 10 }, (_, i) => i % 256);
    const expected = values(0)[1];
    for (let i = 0; i < 8; i++) {
      expected.push(`0x${Buffer.from(flat.subarray(32 * i, 32 * i + 32)).toString('hex')}`);
    }
    expect(toHex32s(flat, 8)).toEqual(expected);
    expect(toHex32sBytewise(flat, 8)).toEqual(expected);
  });
});

describe('toHex32', () => {
  test('default: one value as 0x and 64 lowercase digits', () => {
    const [flat, expected] = values(1);
    expect(toHex32(flat)).toBe(expected[0]);
  });

  test('behavior: every byte value, at an offset', () => {
    const flat = Uint8Array.from({ length: 32 * 9 }, (_, i) => i % 256);
    for (let i = 0; i < 8; i++) {
      const expected = `0x${Buffer.from(flat.subarray(32 * i + 5, 32 * i + 37)).toString('hex')}`;
      expect(toHex32(flat, 32 * i + 5)).toBe(expected);
    }
  });
});
