import { streamAnchorAbi } from '@streamanchor/contracts';
import { describe, expect, it } from 'vitest';
import { batchAnchoredEvent } from './abi';

describe('batchAnchoredEvent', () => {
  it('default: equals the BatchAnchored item of the generated contract ABI', () => {
    const fromContract = streamAnchorAbi.find(
      (item) => item.type === 'event' && item.name === 'BatchAnchored',
    );
    expect(fromContract).toBeDefined();
    expect(batchAnchoredEvent).toEqual(fromContract);
  });
});
