import { type Hex, hexToBytes, keccak256 } from 'viem';

/**
 * Whether a block's 2048-bit logs bloom may contain `item` (an address or a topic), per the
 * Yellow Paper (§4.3.1): three bits, each taken from a pair of bytes of keccak256(item),
 * low 11 bits. False means "certainly not in this block", so the indexer skips eth_getLogs.
 */
export function bloomMayContain(bloom: Hex, item: Hex): boolean {
  const bits = hexToBytes(bloom);
  if (bits.length !== 256) return true; // not a bloom we understand: do not skip the block
  const hash = hexToBytes(keccak256(item));
  for (let i = 0; i < 6; i += 2) {
    const bit = ((hash[i]! << 8) | hash[i + 1]!) & 0x7ff;
    // Bit 0 is the least significant bit of the last byte.
    const byte = bits[255 - (bit >> 3)]!;
    if ((byte & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}

/** Whether a block may hold a log of `address` with `topic0` (both must be in its bloom). */
export function blockMayHaveLogs(
  bloom: Hex | null | undefined,
  address: Hex,
  topic0: Hex,
): boolean {
  if (!bloom) return true;
  return bloomMayContain(bloom, address) && bloomMayContain(bloom, topic0);
}
