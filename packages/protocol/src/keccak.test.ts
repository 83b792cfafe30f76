import { describe, expect, test } from 'vitest';
import { createContentHasher, loadWasmKeccak } from './keccak';
import { contentHashOf } from './record';

describe('createContentHasher', () => {
  test('default: equals contentHashOf', async () => {
    const hash = await createContentHasher();
    for (const text of ['', '{}', '"ü"', JSON.stringify({ emoji: '😀'.repeat(500), n: 1e21 })]) {
      expect(hash(text)).toBe(contentHashOf(text));
    }
  });

  test('behavior: one WebAssembly instance per process', async () => {
    expect(await loadWasmKeccak()).toBe(await loadWasmKeccak());
  });
});
