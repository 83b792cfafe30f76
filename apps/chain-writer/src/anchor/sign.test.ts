// Pure: the fee bump rule, no anvil.
import { describe, expect, it } from 'vitest';
import { bumpFee, replacementFees } from './sign';

describe('replacementFees', () => {
  it('default: both fee fields rise at least 10 % over the replaced tx when the node’s fees did not move', () => {
    const old = { maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n };
    const fees = replacementFees(old, old);
    expect(fees.maxFeePerGas * 10n >= old.maxFeePerGas * 11n).toBe(true);
    expect(fees.maxPriorityFeePerGas * 10n >= old.maxPriorityFeePerGas * 11n).toBe(true);
  });

  it('behavior: the node’s current fees win when they are higher than the bump', () => {
    const old = { maxFeePerGas: 100n, maxPriorityFeePerGas: 10n };
    expect(replacementFees({ maxFeePerGas: 500n, maxPriorityFeePerGas: 50n }, old)).toEqual({
      maxFeePerGas: 500n,
      maxPriorityFeePerGas: 50n,
    });
  });

  it('behavior: maxFeePerGas never falls below the priority fee', () => {
    const fees = replacementFees(
      { maxFeePerGas: 1n, maxPriorityFeePerGas: 1n },
      { maxFeePerGas: 1n, maxPriorityFeePerGas: 100n },
    );
    expect(fees.maxFeePerGas >= fees.maxPriorityFeePerGas).toBe(true);
  });

  it('behavior: tiny fees still rise (the +1 wei)', () => {
    expect(bumpFee(1n)).toBe(2n);
    expect(bumpFee(0n)).toBe(1n);
  });
});
