/**
 * 32-byte values as 0x-prefixed lowercase hex, many at a time: the tree builder's hex. Kept
 * out of the package's surface (index.ts does not export it); hex32.test.ts checks both
 * ways against Node's own hex.
 */
import type { Hex } from './primitives';

/** ASCII of the two lowercase hex digits of byte b at [2b, 2b + 1]. */
export const HEX_ASCII = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const digits = b.toString(16).padStart(2, '0');
  HEX_ASCII[2 * b] = digits.charCodeAt(0);
  HEX_ASCII[2 * b + 1] = digits.charCodeAt(1);
}

/**
 * The same two ASCII digits as one 16-bit word, first digit in the low byte: toHex32s puts
 * two of them in each 32-bit store, which on a little-endian machine (checked) lays the
 * four digits out in order.
 */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const HEX_WORD = new Uint16Array(256);
for (let b = 0; b < 256; b++) HEX_WORD[b] = HEX_ASCII[2 * b]! | (HEX_ASCII[2 * b + 1]! << 8);
/** Two spaces, then `0x`: each value's first word (the spaces pad it to a 4-byte boundary). */
const PREFIX_WORD = 32 | (32 << 8) | (48 << 16) | (120 << 24);
const ASCII_DECODER = new TextDecoder();

/** Values per decoded string in toHex32s: 68 × 960 characters, well under V8's large-object size. */
const HEX_CHUNK = 960;
/** toHex32s's ASCII buffer (it is synchronous), one chunk long: 17 words a value. */
const HEX_WORDS = new Uint32Array(HEX_CHUNK * 17);
const HEX_TEXT = new Uint8Array(HEX_WORDS.buffer);

/**
 * The `count` 32-byte values in `values` (flat, 4-byte aligned) as 0x-prefixed lowercase hex:
 * written as ASCII into one reused buffer, four digits per 32-bit store from each 32-bit
 * load, decoded a chunk at a time and sliced (far less garbage, and far fewer steps, than
 * building each string piece by piece).
 */
export function toHex32s(values: Uint8Array, count: number): Hex[] {
  if (!LITTLE_ENDIAN) return toHex32sBytewise(values, count);
  const hex: Hex[] = new Array(count);
  const words = HEX_WORDS;
  const input = new Uint32Array(values.buffer, values.byteOffset, 8 * count);
  for (let first = 0, from = 0; first < count; first += HEX_CHUNK) {
    const end = Math.min(count, first + HEX_CHUNK);
    let p = 0;
    for (let i = first; i < end; i++) {
      words[p++] = PREFIX_WORD;
      for (let j = 0; j < 8; j++) {
        const w = input[from++]!; // bytes 0..3 of this word, byte 0 lowest
        words[p++] = HEX_WORD[w & 0xff]! | (HEX_WORD[(w >>> 8) & 0xff]! << 16);
        words[p++] = HEX_WORD[(w >>> 16) & 0xff]! | (HEX_WORD[w >>> 24]! << 16);
      }
    }
    const text = ASCII_DECODER.decode(HEX_TEXT.subarray(0, 4 * p));
    for (let i = first, at = 2; i < end; i++, at += 68) hex[i] = text.slice(at, at + 66) as Hex;
  }
  return hex;
}

/** toHex32's ASCII buffer (it is synchronous): `0x` then the 64 digits. */
const ONE_HEX = new Uint8Array(66);
ONE_HEX[0] = 48;
ONE_HEX[1] = 120;

/**
 * One 32-byte value (`bytes[offset .. offset + 32)`) as 0x-prefixed lowercase hex, decoded
 * from one reused ASCII buffer: a single flat string, no intermediate ones (a hot path's
 * content hash).
 */
export function toHex32(bytes: Uint8Array, offset = 0): Hex {
  const text = ONE_HEX;
  for (let p = 2, from = offset; p < 66; p += 2) {
    const b = 2 * bytes[from++]!;
    text[p] = HEX_ASCII[b]!;
    text[p + 1] = HEX_ASCII[b + 1]!;
  }
  return ASCII_DECODER.decode(text) as Hex;
}

/** toHex32s one byte at a time, for a big-endian machine. */
export function toHex32sBytewise(values: Uint8Array, count: number): Hex[] {
  const hex: Hex[] = new Array(count);
  const text = new Uint8Array(66);
  text[0] = 48;
  text[1] = 120;
  for (let i = 0, from = 0; i < count; i++) {
    for (let p = 2; p < 66; p += 2) {
      const b = 2 * values[from++]!;
      text[p] = HEX_ASCII[b]!;
      text[p + 1] = HEX_ASCII[b + 1]!;
    }
    hex[i] = ASCII_DECODER.decode(text) as Hex;
  }
  return hex;
}
